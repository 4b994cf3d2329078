-- binlogbridge's snapshots (backfills): one row per request. A row inserted
-- with status 'requested' (by `bridge snapshot Model…`, or by the
-- application) makes a bridge that publishes the model snapshot its table;
-- the bridge writes its progress and its low/high watermarks here (the
-- watermark updates are how it finds its chunk reads in the binlog).

-- +goose Up
CREATE TABLE IF NOT EXISTS rowgear_snapshots (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  model VARCHAR(190) NOT NULL,
  status ENUM('requested', 'running', 'done', 'failed') NOT NULL DEFAULT 'requested',
  chunk_size INT UNSIGNED NOT NULL DEFAULT 1000,
  last_key TEXT NULL COMMENT 'primary key of the last row published, a JSON array in event form',
  max_key TEXT NULL COMMENT 'primary key of the last row when the snapshot started',
  rows_done BIGINT UNSIGNED NOT NULL DEFAULT 0,
  rows_estimate BIGINT UNSIGNED NOT NULL DEFAULT 0,
  watermark VARCHAR(40) NULL,
  error TEXT NULL,
  requested_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- +goose Down
DROP TABLE IF EXISTS rowgear_snapshots;
