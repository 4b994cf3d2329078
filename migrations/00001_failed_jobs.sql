-- Failed jobs are never silently lost (package retry): retries waiting for
-- their backoff and dead letters, with each job's whole payload and error
-- history; and the crash counts of jobs whose worker process died.

-- +goose Up
CREATE TABLE IF NOT EXISTS rowgear_failed_jobs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  state ENUM('retry', 'dead') NOT NULL,
  function VARCHAR(255) NOT NULL,
  job_key VARCHAR(64) NOT NULL COMMENT 'the first run''s unique key: the event id of a row event',
  attempts INT NOT NULL COMMENT 'runs made (dead) or the number of the next run (retry)',
  errors JSON NOT NULL COMMENT '[{"at","attempt","error"}], oldest first',
  payload LONGBLOB NOT NULL,
  due_at DATETIME(6) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY rowgear_failed_jobs_due (state, due_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS rowgear_job_crashes (
  function VARCHAR(255) NOT NULL,
  job_key VARCHAR(64) NOT NULL,
  crashes INT NOT NULL,
  PRIMARY KEY (function, job_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE IF EXISTS rowgear_job_crashes;
DROP TABLE IF EXISTS rowgear_failed_jobs;
