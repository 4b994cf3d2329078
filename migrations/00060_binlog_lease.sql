-- Bridge high availability (binlog.ha): the lease that lets one of several
-- bridges of a source publish (one row per binlog.server_id, the bridges'
-- group), and every bridge's last report, active or standby, for `status`.
-- epoch grows at every election; position saves carry it (fencing).

-- +goose Up
CREATE TABLE IF NOT EXISTS rowgear_binlog_lease (
  server_id INT UNSIGNED NOT NULL PRIMARY KEY,
  holder VARCHAR(191) NOT NULL,
  epoch BIGINT UNSIGNED NOT NULL,
  expires_at TIMESTAMP(6) NOT NULL,
  acquired_at TIMESTAMP(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS rowgear_binlog_bridges (
  server_id INT UNSIGNED NOT NULL,
  instance VARCHAR(191) NOT NULL,
  role VARCHAR(16) NOT NULL,
  epoch BIGINT UNSIGNED NOT NULL DEFAULT 0,
  position TEXT NOT NULL,
  seen_at TIMESTAMP(6) NOT NULL,
  PRIMARY KEY (server_id, instance)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- +goose Down
DROP TABLE IF EXISTS rowgear_binlog_bridges;
DROP TABLE IF EXISTS rowgear_binlog_lease;
