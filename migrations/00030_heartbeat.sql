-- Heartbeats of binlogbridge (package bridge): every 250 ms (--heartbeat) the bridge
-- inserts a row with the database's clock to the microsecond (the
-- statement's start; the commit is between it and acked_at); when it reads
-- that row back from the binlog it stores where it found it and when. A
-- binlog event's commit time is interpolated by position between two
-- heartbeats and bounded by when the bridge read it (package latency);
-- the age of the newest heartbeat read is the bridge's lag. The bridge
-- keeps ten minutes of rows.

-- +goose Up
CREATE TABLE rowgear_heartbeat (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  server_id INT UNSIGNED NOT NULL COMMENT 'the bridge''s binlog.server_id',
  ts DATETIME(6) NOT NULL COMMENT 'UTC_TIMESTAMP(6) when written',
  binlog_file VARCHAR(512) NULL COMMENT 'where the bridge read it back; NULL until then',
  binlog_pos BIGINT UNSIGNED NULL,
  read_at DATETIME(6) NULL COMMENT 'when the bridge read it, by the bridge''s clock (UTC)',
  acked_at DATETIME(6) NULL COMMENT 'when its INSERT returned to the bridge (UTC): the commit was before',
  KEY rowgear_heartbeat_read (server_id, binlog_file, binlog_pos)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE IF EXISTS rowgear_heartbeat;
