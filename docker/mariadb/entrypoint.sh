#!/bin/bash
# Starts MariaDB for rowgear's compose stack. On the first start (an empty
# data volume) it initialises the datadir. On every start it makes sure the
# application database and its user exist (an init file, idempotent), then
# runs mariadbd in the foreground.
#
# Env: ROWGEAR_DB_NAME (rowgear), ROWGEAR_DB_USER (rowgear),
# ROWGEAR_DB_PASSWORD (rowgear). ROWGEAR_GEARMAN_SERVERS is read by the UDF
# inside mariadbd: where triggers send their jobs (gearmand:4730).
set -euo pipefail

db=${ROWGEAR_DB_NAME:-rowgear}
user=${ROWGEAR_DB_USER:-rowgear}
pass=${ROWGEAR_DB_PASSWORD:-rowgear}
datadir=/var/lib/mysql

if [ ! -d "$datadir/mysql" ]; then
	echo "rowgear-mariadb: initialising $datadir" >&2
	mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
		--auth-root-authentication-method=socket >/dev/null
fi

sqlstr() { printf "'%s'" "${1//\'/\'\'}"; }
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld
init=/run/mysqld/rowgear-init.sql
# The application user creates tables, triggers and (migration 00002) the
# UDF functions, and binlogbridge reads the binlog with it: the stack's one
# user gets every privilege. Split the roles for production (see README).
cat >"$init" <<SQL
CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS $(sqlstr "$user")@'%' IDENTIFIED BY $(sqlstr "$pass");
ALTER USER $(sqlstr "$user")@'%' IDENTIFIED BY $(sqlstr "$pass");
GRANT ALL PRIVILEGES ON *.* TO $(sqlstr "$user")@'%';
SQL
chown mysql:mysql "$init"
chmod 0600 "$init"

exec mariadbd --user=mysql --init-file="$init" "$@"
