#!/bin/bash
# Prints the SQL that gives each rowgear program its own account with what
# it needs and nothing more (idempotent: CREATE/ALTER USER, GRANT):
#
#   rowgear_migrate  migrations: every privilege on DB only (tables, triggers),
#                    and SELECT on mysql.func (the UDF migration checks
#                    which functions exist; the server's start-up creates
#                    them as root: see entrypoint.sh)
#   rowgear_bridge   binlogbridge: REPLICATION SLAVE and BINLOG MONITOR,
#                    SELECT on DB, and writes to its position, heartbeat,
#                    snapshot and HA lease tables only
#   rowgear_worker   dbworker: SELECT, INSERT, UPDATE, DELETE on DB (its
#                    handlers', retries' and commit gate's tables)
#   rowgear_app      the application (the demo writer): the same DML on the
#                    application's own TABLES only. Nothing on rowgear's
#                    tables: an account that can write rowgear_gate can
#                    forge trigger events (the triggers run as their
#                    definer, rowgear_migrate, and need nothing of it).
#
# Usage: accounts.sh DB [TABLES], TABLES the application's tables, comma-
# separated (none: the app account gets no table), with the passwords in ROWGEAR_DB_PASSWORD_MIGRATE,
# _BRIDGE, _WORKER and _APP. docker/mariadb/entrypoint.sh runs it at every
# start; docker/mariadb/accounts_test.go runs it against a real MariaDB.
set -euo pipefail

db=${1:?usage: accounts.sh DB [TABLES]}
tables=${2:-}
str() {
	local s=${1//\\/\\\\}
	printf "'%s'" "${s//\'/\'\'}"
}
dbq="\`${db//\`/\`\`}\`"

account() { # name password grant...
	local u p
	u=$(str "$1")@"'%'"
	p=$(str "$2")
	shift 2
	echo "CREATE USER IF NOT EXISTS $u IDENTIFIED BY $p;"
	echo "ALTER USER $u IDENTIFIED BY $p;"
	local g
	for g in "$@"; do echo "GRANT $g TO $u;"; done
}

echo "CREATE DATABASE IF NOT EXISTS $dbq CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
# Older stacks had one account, rowgear, with ALL ON *.* and the default
# password rowgear. Locked, not dropped: the triggers it created name it as
# their DEFINER and keep running.
echo "ALTER USER IF EXISTS 'rowgear'@'%' ACCOUNT LOCK;"
account rowgear_migrate "$ROWGEAR_DB_PASSWORD_MIGRATE" "ALL PRIVILEGES ON $dbq.*" "SELECT ON mysql.func"
# CREATE in the table grant lets it be granted before migrate creates the table.
account rowgear_bridge "$ROWGEAR_DB_PASSWORD_BRIDGE" "REPLICATION SLAVE, BINLOG MONITOR ON *.*" \
	"SELECT ON $dbq.*" "CREATE, INSERT, UPDATE ON $dbq.\`rowgear_binlog_position\`" \
	"CREATE, INSERT, UPDATE, DELETE ON $dbq.\`rowgear_heartbeat\`" \
	"CREATE, UPDATE ON $dbq.\`rowgear_snapshots\`" \
	"CREATE, INSERT, UPDATE ON $dbq.\`rowgear_binlog_lease\`" \
	"CREATE, INSERT, UPDATE ON $dbq.\`rowgear_binlog_bridges\`"
account rowgear_worker "$ROWGEAR_DB_PASSWORD_WORKER" "SELECT, INSERT, UPDATE, DELETE ON $dbq.*"
app=()
IFS=, read -ra names <<<"$tables"
for t in "${names[@]}"; do
	# CREATE lets the grant precede the migration that creates the table.
	[ -n "$t" ] && app+=("SELECT, INSERT, UPDATE, DELETE, CREATE ON $dbq.\`${t//\`/\`\`}\`")
done
account rowgear_app "$ROWGEAR_DB_PASSWORD_APP" "${app[@]}"
