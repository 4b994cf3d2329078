-- A snapshot's pace: at most rows_per_second rows a second (0: as fast as
-- gearmand takes them). Unpaced, a big snapshot takes all the pipeline's
-- spare capacity, and the application's writers wait for the CPU.

-- +goose Up
ALTER TABLE rowgear_snapshots
  ADD COLUMN rows_per_second INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'at most this many rows read a second; 0: unpaced' AFTER chunk_size;

-- +goose Down
ALTER TABLE rowgear_snapshots DROP COLUMN rows_per_second;
