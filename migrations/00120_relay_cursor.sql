-- The outbox relay's cursor (triggers.mode: outbox). A relay reads the
-- committed outbox rows past its namespace's cursor, in id order, and
-- moves the cursor on with a compare-and-set; it writes nothing to the
-- rows it sends. The compare-and-set is the claim: several relays (one per
-- worker process) take turns, and each run of rows is sent by one of them.
--
--   sent_to  every committed row up to this id has been read and sent
--            (a row its writer had not committed yet is looked at again
--            by the relay that passed it)
--   mark     sent_to as it was at mark_at
--   due_to   rows up to this id were sent at least triggers.resend_after
--            ago: a row still there (and due: relay_after <= NOW(6)) was
--            lost on the way, and the relay's sweep sends it again and
--            moves its relay_after on
--
-- The sweep reads rows up to due_to by id, so relay_after loses its index
-- (an index entry less for every trigger event to write and delete). Run
-- this migration in every schema that holds a rowgear_gate, as 00110.
-- After TRUNCATE rowgear_gate (ids start again at 1), DELETE FROM
-- rowgear_relay, or the relay's sweep, not its cursor, sends the new rows.

-- +goose Up
CREATE TABLE rowgear_relay (
  name VARBINARY(255) NOT NULL PRIMARY KEY COMMENT 'namespace; empty: every row',
  sent_to BIGINT UNSIGNED NOT NULL DEFAULT 0,
  mark BIGINT UNSIGNED NOT NULL DEFAULT 0,
  mark_at DATETIME(6) NOT NULL DEFAULT '1000-01-01 00:00:00',
  due_to BIGINT UNSIGNED NOT NULL DEFAULT 0
) ENGINE=InnoDB;

ALTER TABLE rowgear_gate DROP KEY rowgear_gate_relay;

-- +goose Down
ALTER TABLE rowgear_gate ADD KEY rowgear_gate_relay (relay_after);
DROP TABLE IF EXISTS rowgear_relay;
