-- The gearman UDFs the triggers call: the statements of udf/install.sql
-- (Down: udf/uninstall.sql). rowgear_udf.so must be in the server's plugin_dir
-- (make -C udf install). Up is safe to run while the application writes.
-- Functions are server-wide, not per database: Down breaks the triggers of
-- every database on the server (ERROR 1122 until FLUSH TABLES); never run
-- Down to upgrade the library: replace the .so and restart (udf/README.md).

-- +goose Up
-- One block that creates only what is missing: the server checks INSERT on
-- the mysql schema before IF NOT EXISTS, so an account without it (the
-- compose stack's migrate account: SELECT on mysql.func only) passes when
-- the functions exist (the MariaDB image's start-up creates them as root).
-- +goose StatementBegin
BEGIN NOT ATOMIC
  IF (SELECT COUNT(*) FROM mysql.func WHERE name IN ('gman_do_background', 'gman_do_high_background', 'gman_do_low_background', 'gman_servers_set', 'gman_timeout_set', 'gman_failures', 'gman_last_error')) < 7 THEN
    CREATE FUNCTION IF NOT EXISTS gman_do_background RETURNS STRING SONAME 'rowgear_udf.so';
    CREATE FUNCTION IF NOT EXISTS gman_do_high_background RETURNS STRING SONAME 'rowgear_udf.so';
    CREATE FUNCTION IF NOT EXISTS gman_do_low_background RETURNS STRING SONAME 'rowgear_udf.so';
    CREATE FUNCTION IF NOT EXISTS gman_servers_set RETURNS STRING SONAME 'rowgear_udf.so';
    CREATE FUNCTION IF NOT EXISTS gman_timeout_set RETURNS INTEGER SONAME 'rowgear_udf.so';
    CREATE FUNCTION IF NOT EXISTS gman_failures RETURNS INTEGER SONAME 'rowgear_udf.so';
    CREATE FUNCTION IF NOT EXISTS gman_last_error RETURNS STRING SONAME 'rowgear_udf.so';
  END IF;
END
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS gman_do_background;
DROP FUNCTION IF EXISTS gman_do_high_background;
DROP FUNCTION IF EXISTS gman_do_low_background;
DROP FUNCTION IF EXISTS gman_servers_set;
DROP FUNCTION IF EXISTS gman_timeout_set;
DROP FUNCTION IF EXISTS gman_failures;
DROP FUNCTION IF EXISTS gman_last_error;
