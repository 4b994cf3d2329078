-- The binlog history a saved bridge position belongs to (bridge.Position.
-- History): part of every binlog event id and seq, so that ids never repeat
-- and seqs keep their order when a server's binlog starts again (RESET
-- MASTER, a rebuilt server). Empty in rows of older bridges: the bridge
-- picks a history when it loads one.

-- +goose Up
ALTER TABLE rowgear_binlog_position ADD COLUMN IF NOT EXISTS history VARCHAR(32) NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE rowgear_binlog_position DROP COLUMN IF EXISTS history;
