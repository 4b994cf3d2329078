-- Installs rowgear's gearman UDFs (rowgear_udf.so must be in the server's plugin_dir).
-- Idempotent on MariaDB (CREATE FUNCTION IF NOT EXISTS, 10.1.3+). MySQL 8 has no
-- IF NOT EXISTS for loadable functions: run uninstall.sql first, then these
-- statements without "IF NOT EXISTS". One statement per line. Safe to run while
-- triggers write; to upgrade the library replace the .so and restart (README.md).
CREATE FUNCTION IF NOT EXISTS gman_do_background RETURNS STRING SONAME 'rowgear_udf.so';
CREATE FUNCTION IF NOT EXISTS gman_do_high_background RETURNS STRING SONAME 'rowgear_udf.so';
CREATE FUNCTION IF NOT EXISTS gman_do_low_background RETURNS STRING SONAME 'rowgear_udf.so';
CREATE FUNCTION IF NOT EXISTS gman_servers_set RETURNS STRING SONAME 'rowgear_udf.so';
CREATE FUNCTION IF NOT EXISTS gman_timeout_set RETURNS INTEGER SONAME 'rowgear_udf.so';
CREATE FUNCTION IF NOT EXISTS gman_failures RETURNS INTEGER SONAME 'rowgear_udf.so';
CREATE FUNCTION IF NOT EXISTS gman_last_error RETURNS STRING SONAME 'rowgear_udf.so';
CREATE FUNCTION IF NOT EXISTS rowgear_ring RETURNS INTEGER SONAME 'rowgear_udf.so';
