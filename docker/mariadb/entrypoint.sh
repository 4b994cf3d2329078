#!/bin/bash
# Starts MariaDB for rowgear's compose stack. On the first start (an empty
# data volume) it initialises the datadir. On every start it runs an init
# file (idempotent) that creates the gearman UDF functions as root (so the
# migrate account needs no INSERT on the mysql schema) and one account per
# rowgear program with least privilege (accounts.sh), then runs mariadbd in
# the foreground.
#
# Passwords: ROWGEAR_DB_PASSWORD_MIGRATE, _BRIDGE, _WORKER, _APP when set;
# else the one kept from an earlier start; else a random one. Each is
# written to /run/rowgear-secrets/<role>/password, a volume that only that
# program's container mounts too (it reads it with ROWGEAR_DB_PASSWORD_FILE).
# No default password exists; root logs in only through the local socket.
#
# Env: ROWGEAR_DB_NAME (rowgear), ROWGEAR_APP_TABLES (the application's
# tables, comma-separated: the only ones rowgear_app may use). ROWGEAR_GEARMAN_SERVERS and the other
# ROWGEAR_* variables of udf/README.md are read by the UDF inside mariadbd.
# The paths can be moved for docker/mariadb/accounts_test.go, which runs
# this script: ROWGEAR_DATADIR, ROWGEAR_SECRETS_DIR, ROWGEAR_INIT_DIR,
# ROWGEAR_INSTALL_SQL, ROWGEAR_ACCOUNTS, ROWGEAR_MARIADBD.
set -euo pipefail

db=${ROWGEAR_DB_NAME:-rowgear}
datadir=${ROWGEAR_DATADIR:-/var/lib/mysql}
secrets=${ROWGEAR_SECRETS_DIR:-/run/rowgear-secrets}
initdir=${ROWGEAR_INIT_DIR:-/run/mysqld}

if [ ! -d "$datadir/mysql" ]; then
	echo "rowgear-mariadb: initialising $datadir" >&2
	mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
		--auth-root-authentication-method=socket >/dev/null
fi

for role in migrate bridge worker app; do
	var=ROWGEAR_DB_PASSWORD_${role^^}
	f=$secrets/$role/password
	mkdir -p "$secrets/$role"
	if [ -n "${!var:-}" ]; then
		printf '%s\n' "${!var}" >"$f"
	elif [ ! -s "$f" ]; then
		head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$f"
	fi
	# Readable by the program's own user in its container (another uid).
	chmod 0444 "$f"
	export "$var=$(head -n 1 "$f")"
done

mkdir -p "$initdir"
chown mysql:mysql "$initdir"
init=$initdir/rowgear-init.sql
{
	grep -v '^--' "${ROWGEAR_INSTALL_SQL:-/usr/share/rowgear/install.sql}"
	"${ROWGEAR_ACCOUNTS:-rowgear-accounts}" "$db" "${ROWGEAR_APP_TABLES:-}"
} >"$init"
chown mysql:mysql "$init"
chmod 0600 "$init"
unset ROWGEAR_DB_PASSWORD_MIGRATE ROWGEAR_DB_PASSWORD_BRIDGE ROWGEAR_DB_PASSWORD_WORKER ROWGEAR_DB_PASSWORD_APP

exec "${ROWGEAR_MARIADBD:-mariadbd}" --user=mysql --init-file="$init" "$@"
