-- The trigger source's outbox (triggers.mode: outbox): the commit-gate row
-- carries the event itself. The trigger writes fn and payload in the
-- writer's transaction and sets relay_after to its "due at once" value
-- (1000-01-01); a relay in the worker claims due rows (READ COMMITTED,
-- FOR UPDATE SKIP LOCKED: an uncommitted row is locked by its writer and
-- skipped), publishes them and moves relay_after to when they are sent
-- again if still there; the worker deletes the row in the transaction that
-- applies the event. Rows of strict and lenient triggers keep relay_after
-- NULL and a digest, and are never relayed.
--
-- The index on relay_after (InnoDB appends the id) gives the claim its
-- order: the rows due at once first, in id order, then the rows whose
-- resend time passed. Run this migration in every schema that holds a
-- rowgear_gate (models.<Model>.schema), as 00010.

-- +goose Up
ALTER TABLE rowgear_gate
  MODIFY digest BINARY(32) NULL,
  ADD COLUMN fn VARBINARY(255) NULL,
  ADD COLUMN payload LONGBLOB NULL,
  ADD COLUMN relay_after DATETIME(6) NULL,
  ADD KEY rowgear_gate_relay (relay_after);

-- +goose Down
ALTER TABLE rowgear_gate
  DROP KEY rowgear_gate_relay,
  DROP COLUMN relay_after,
  DROP COLUMN payload,
  DROP COLUMN fn;
