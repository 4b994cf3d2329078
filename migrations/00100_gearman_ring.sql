-- rowgear_ring, the outbox's doorbell (udf/README.md): the line of
-- udf/install.sql that 00099 predates (Down: that of udf/uninstall.sql).
-- rowgear_udf.so must be a build that has it (make -C udf install). Up is
-- safe to run while the application writes; never run Down on a server
-- whose triggers ring (ERROR 1122 until FLUSH TABLES).

-- +goose Up
-- Created only when missing, as in 00099: the server checks INSERT on the
-- mysql schema before IF NOT EXISTS, and the compose stack's migrate
-- account has only SELECT on mysql.func (its start-up creates the function
-- as root).
-- +goose StatementBegin
BEGIN NOT ATOMIC
  IF (SELECT COUNT(*) FROM mysql.func WHERE name = 'rowgear_ring') < 1 THEN
    CREATE FUNCTION IF NOT EXISTS rowgear_ring RETURNS INTEGER SONAME 'rowgear_udf.so';
  END IF;
END
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS rowgear_ring;
