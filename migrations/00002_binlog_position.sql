-- binlogbridge's saved position (binlog.position: table): one row per bridge
-- server_id. IF NOT EXISTS adopts the table older bridges created themselves.

-- +goose Up
CREATE TABLE IF NOT EXISTS rowgear_binlog_position (
  server_id INT UNSIGNED NOT NULL PRIMARY KEY,
  binlog_file VARCHAR(512) NOT NULL,
  binlog_pos BIGINT UNSIGNED NOT NULL,
  gtid_set TEXT NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- +goose Down
DROP TABLE IF EXISTS rowgear_binlog_position;
