-- Commit-exact, per-row ordered delivery (package ordering).
--
-- rowgear_gate: one row per trigger event, inserted by the trigger inside
-- the writer's transaction. A worker's shared-lock read of it waits for that
-- transaction: present = committed, absent = rolled back. digest is the
-- SHA-256 of the payload the trigger sent (without its seq suffix), so a
-- job sent by hand through the UDF cannot pass for a row event. Only the
-- trigger definer and the worker need privileges on it.
--
-- rowgear_row_seq: the last applied seq of each row (model, source and
-- primary key, hashed), row-locked while its handler runs.
--
-- rowgear_applied: event ids whose effects a handler committed
-- (ordering.Once), written in the handler's own transaction.

-- +goose Up
CREATE TABLE rowgear_gate (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  digest BINARY(32) NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  KEY rowgear_gate_created (created_at)
) ENGINE=InnoDB;

CREATE TABLE rowgear_row_seq (
  row_key BINARY(20) NOT NULL PRIMARY KEY COMMENT 'SHA-1 of model, source and primary key',
  model VARCHAR(64) NOT NULL,
  seq VARBINARY(40) NOT NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB;

CREATE TABLE rowgear_applied (
  event_id VARBINARY(64) NOT NULL PRIMARY KEY,
  applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  KEY rowgear_applied_at (applied_at)
) ENGINE=InnoDB;

-- +goose Down
DROP TABLE IF EXISTS rowgear_applied;
DROP TABLE IF EXISTS rowgear_row_seq;
DROP TABLE IF EXISTS rowgear_gate;
