-- Removes rowgear's gearman UDFs. Triggers calling them fail (ERROR 1122) until install.sql runs
-- again AND FLUSH TABLES: never run this to upgrade (see README.md, installing and upgrading).
DROP FUNCTION IF EXISTS gman_do_background;
DROP FUNCTION IF EXISTS gman_do_high_background;
DROP FUNCTION IF EXISTS gman_do_low_background;
DROP FUNCTION IF EXISTS gman_servers_set;
DROP FUNCTION IF EXISTS gman_timeout_set;
DROP FUNCTION IF EXISTS gman_failures;
DROP FUNCTION IF EXISTS gman_last_error;
DROP FUNCTION IF EXISTS rowgear_ring;
