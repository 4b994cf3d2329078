// Package mariadb_test checks the compose stack's MariaDB accounts
// (accounts.sh, run by entrypoint.sh) against a real MariaDB: each program
// runs with its own account and password file, as docker-compose.yml runs
// it, and cannot do what it does not need.
package mariadb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilds()
	os.Exit(code)
}

const repo = "../.."

// entrypoint runs entrypoint.sh with its paths under dir and a stand-in
// for mariadbd that keeps the init file it was given; it returns that file.
func entrypoint(t *testing.T, dir string, env ...string) string {
	t.Helper()
	datadir := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(datadir, "mysql"), 0o755); err != nil { // initialised: no install-db
		t.Fatal(err)
	}
	kept := filepath.Join(dir, "init.sql")
	stub := filepath.Join(dir, "mariadbd")
	script := "#!/bin/sh\nfor a; do case $a in --init-file=*) cp \"${a#--init-file=}\" " + kept + ";; esac; done\n"
	if err := os.WriteFile(stub, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(repo, "docker", "mariadb", "entrypoint.sh"))
	cmd.Env = append(os.Environ(), "ROWGEAR_DATADIR="+datadir, "ROWGEAR_SECRETS_DIR="+filepath.Join(dir, "secrets"),
		"ROWGEAR_INIT_DIR="+filepath.Join(dir, "run"), "ROWGEAR_INSTALL_SQL="+filepath.Join(repo, "udf", "install.sql"),
		"ROWGEAR_ACCOUNTS="+filepath.Join(repo, "docker", "mariadb", "accounts.sh"), "ROWGEAR_MARIADBD="+stub)
	cmd.Env = append(cmd.Env, "ROWGEAR_APP_TABLES=articles,comments")
	cmd.Env = append(cmd.Env, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("entrypoint.sh: %v\n%s", err, out)
	}
	return kept
}

func TestAccountsLeastPrivilege(t *testing.T) {
	g := testenv.StartGearmand(t)
	dir := t.TempDir()
	// The first start generates the passwords; the next keeps them, or
	// takes one from the environment.
	entrypoint(t, dir)
	secret := func(role string) string {
		b, err := os.ReadFile(filepath.Join(dir, "secrets", role, "password"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	first := map[string]string{}
	for _, role := range []string{"migrate", "bridge", "worker", "app"} {
		if first[role] = secret(role); len(first[role]) < 20 {
			t.Fatalf("%s: generated password %q", role, first[role])
		}
	}
	if first["app"] == first["worker"] {
		t.Fatal("two accounts got the same password")
	}
	init := entrypoint(t, dir, "ROWGEAR_DB_PASSWORD_APP=chosen'pw\\")
	passwords := map[string]string{}
	for role, pw := range first {
		passwords[role] = pw
	}
	passwords["app"] = "chosen'pw\\"
	for role, pw := range passwords {
		if got := secret(role); got != pw {
			t.Fatalf("%s: password after a restart %q, want %q", role, got, pw)
		}
	}

	// mariadbd with that init file, as the container runs it, on a server
	// where the single account of older stacks exists; restarted once, as
	// the init file runs at every start.
	initSQL, err := os.ReadFile(init)
	if err != nil {
		t.Fatal(err)
	}
	withOld := filepath.Join(dir, "init-with-old-account.sql")
	if err := os.WriteFile(withOld, append([]byte("CREATE USER IF NOT EXISTS 'rowgear'@'%' IDENTIFIED BY 'rowgear';\n"+
		"GRANT ALL ON *.* TO 'rowgear'@'%';\n"), initSQL...), 0o644); err != nil {
		t.Fatal(err)
	}
	m := testenv.StartMariaDB(t, testenv.WithUDF(""), testenv.WithServerEnv("ROWGEAR_GEARMAN_SERVERS="+g.Addr),
		testenv.WithArgs("--log-bin-trust-function-creators=1", "--init-file="+withOld))
	m.Stop()
	m.Start()
	root := m.DB("")
	ctx := context.Background()
	var funcs int
	if err := root.QueryRow("SELECT COUNT(*) FROM mysql.func").Scan(&funcs); err != nil || funcs != 8 {
		t.Fatalf("the init file created %d UDF functions (%v), want 8: see %s", funcs, err, m.ErrorLog())
	}

	// Each program: its DSN without password, its password file (the one
	// the entrypoint wrote, as its container mounts it).
	env := func(role string) []string {
		f := filepath.Join(dir, "secrets", role, "password")
		return append(os.Environ(),
			"ROWGEAR_CONFIG="+filepath.Join(repo, "models", "config", "gearman.yml"),
			"ROWGEAR_GEARMAN="+g.Addr,
			fmt.Sprintf("ROWGEAR_DATABASE_DSN=rowgear_%s@tcp(%s)/rowgear", role, m.Addr),
			"ROWGEAR_DB_PASSWORD_FILE="+f)
	}
	open := func(role string) *sql.DB {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "rowgear_"+role, passwords[role], "tcp", m.Addr, "rowgear"
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	dbworker := testenv.Build(t, "github.com/rowgear/rowgear/cmd/dbworker")

	// migrate: rowgear's migrations and the application's, triggers too.
	mig := exec.Command(dbworker, "migrate", "up")
	mig.Env = env("migrate")
	if out, err := mig.CombinedOutput(); err != nil {
		t.Fatalf("dbworker migrate up as rowgear_migrate: %v\n%s", err, out)
	}

	// binlogbridge, with the table store.
	bridge := exec.Command(testenv.Build(t, "github.com/rowgear/rowgear/cmd/binlogbridge"))
	bridge.Env = env("bridge")
	var bridgeOut testenv.Buffer
	bridge.Stdout, bridge.Stderr = &bridgeOut, &bridgeOut
	if err := bridge.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bridge.Process.Kill(); bridge.Wait() })
	app, worker, bridgeDB, migrate := open("app"), open("worker"), open("bridge"), open("migrate")
	testenv.Eventually(t, 60*time.Second, "the bridge to save its start position", func() bool {
		var n int
		return root.QueryRow("SELECT COUNT(*) FROM rowgear.rowgear_binlog_position").Scan(&n) == nil && n == 1
	})

	testenv.Eventually(t, 60*time.Second, "the bridge's heartbeats", func() bool {
		var n int
		return root.QueryRow("SELECT COUNT(*) FROM rowgear.rowgear_heartbeat").Scan(&n) == nil && n > 0
	})

	// The application writes: the outbox trigger (the definer's rights)
	// writes Article.insert into rowgear_gate, which the app account cannot
	// touch, and rings the doorbell; the bridge publishes Comment.insert.
	mustExec(t, app, "INSERT INTO articles (title, body) VALUES ('t', 'b')")
	mustExec(t, app, "INSERT INTO comments (article_id, author, body) VALUES (1, 'ann', 'hi')")
	testenv.Eventually(t, 60*time.Second, "the article's event in the outbox and the comment's job queued in gearmand", func() bool {
		var n int
		if root.QueryRow("SELECT COUNT(*) FROM rowgear.rowgear_gate WHERE fn = 'rowgear.Article.insert' AND relay_after IS NOT NULL").Scan(&n) != nil {
			return false
		}
		st, err := testenv.Status(ctx, g.Addr)
		return err == nil && n == 1 && st["rowgear.Comment.insert"].Total == 1
	})
	// The worker's DML.
	mustExec(t, worker, "UPDATE articles SET published_at = NOW(6) WHERE id = 1")
	mustExec(t, worker, "DELETE FROM rowgear_failed_jobs WHERE id = 0")

	// And what each cannot do.
	for _, c := range []struct {
		who  string
		db   *sql.DB
		stmt string
	}{
		{"app", app, "SELECT COUNT(*) FROM mysql.user"},
		{"app", app, "CREATE TABLE x (id INT)"},
		{"app", app, "INSERT INTO rowgear_gate (id, digest) VALUES (1, 'forged')"},
		{"app", app, "SELECT COUNT(*) FROM rowgear_failed_jobs"},
		{"app", app, "SELECT gman_servers_set('127.0.0.1:1')"}, // runs, but read-only: checked below
		{"worker", worker, "DROP TABLE articles"},
		{"worker", worker, "CREATE TABLE x (id INT)"},
		{"worker", worker, "CREATE DATABASE other"},
		{"bridge", bridgeDB, "UPDATE articles SET title = 'x'"},
		{"bridge", bridgeDB, "DELETE FROM comments"},
		{"migrate", migrate, "CREATE FUNCTION gman_evil RETURNS STRING SONAME 'rowgear_udf.so'"},
		{"migrate", migrate, "CREATE DATABASE other"},
		{"migrate", migrate, "SELECT COUNT(*) FROM mysql.user"},
	} {
		var v sql.NullString
		err := c.db.QueryRow(c.stmt).Scan(&v)
		if strings.HasPrefix(c.stmt, "SELECT gman_servers_set") {
			if err != nil || v.Valid {
				t.Errorf("%s: %s = %v, %v; want NULL (read-only)", c.who, c.stmt, v, err)
			}
			continue
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) || (me.Number != 1044 && me.Number != 1142 && me.Number != 1227) {
			t.Errorf("%s: %s: %v, want access denied", c.who, c.stmt, err)
		}
	}
	old, err := sql.Open("mysql", "rowgear:rowgear@tcp("+m.Addr+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Ping(); err == nil {
		t.Error("the old rowgear account with the default password still logs in")
	}
	if t.Failed() {
		t.Logf("bridge output:\n%s", bridgeOut.String())
	}
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
