-- Removes rowgear's gearman UDFs. Triggers calling them fail until install.sql runs again.
DROP FUNCTION IF EXISTS gman_do_background;
DROP FUNCTION IF EXISTS gman_do_high_background;
DROP FUNCTION IF EXISTS gman_do_low_background;
DROP FUNCTION IF EXISTS gman_servers_set;
DROP FUNCTION IF EXISTS gman_timeout_set;
DROP FUNCTION IF EXISTS gman_failures;
DROP FUNCTION IF EXISTS gman_last_error;
