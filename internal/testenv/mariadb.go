package testenv

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// MariaDB is a private MariaDB server for tests that stop, kill or restart
// it, or that need a binlog of their own: its own datadir (a t.TempDir), a
// free loopback port, a row-based binlog with full images, root without a
// password over TCP.
type MariaDB struct {
	t    testing.TB
	Addr string // 127.0.0.1:port
	// DSN is root's go-sql-driver DSN, without a database.
	DSN  string
	Port int
	Dir  string // datadir, socket, logs
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMariaDB initialises a datadir with mariadb-install-db and starts
// mariadbd on it (as scripts/services does, minus the UDF); extra
// arguments are passed to mariadbd. It is killed at cleanup.
func StartMariaDB(t testing.TB, extra ...string) *MariaDB {
	t.Helper()
	for _, bin := range []string{"mariadb-install-db", "mariadbd"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed: run `scripts/services install` (%v)", bin, err)
		}
	}
	m := &MariaDB{t: t, Port: FreePort(t), Dir: t.TempDir(), args: extra}
	m.Addr = fmt.Sprintf("127.0.0.1:%d", m.Port)
	m.DSN = fmt.Sprintf("root@tcp(%s)/", m.Addr)
	install := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+m.path("data"),
		"--user=root", "--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	if err := os.Mkdir(m.path("plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Kill)
	return m
}

func (m *MariaDB) path(name string) string { return filepath.Join(m.Dir, name) }

// Start starts (or restarts) the server on the same datadir and port and
// waits until it answers queries.
func (m *MariaDB) Start() {
	m.t.Helper()
	args := append([]string{"--no-defaults", "--user=root",
		"--datadir=" + m.path("data"), "--socket=" + m.path("sock"), "--pid-file=" + m.path("pid"),
		"--bind-address=127.0.0.1", fmt.Sprintf("--port=%d", m.Port),
		"--log-bin=" + m.path("data/binlog"), "--binlog-format=ROW", "--binlog-row-image=FULL",
		"--server-id=1", "--plugin-dir=" + m.path("plugin"), "--log-error=" + m.path("log"),
		"--max-allowed-packet=64M", "--innodb-buffer-pool-size=64M",
		"--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0"}, m.args...)
	m.cmd = exec.Command("mariadbd", args...)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mariadbd: %v", err)
	}
	done := make(chan struct{})
	m.done = done
	go func(c *exec.Cmd) { c.Wait(); close(done) }(m.cmd)
	db := m.open()
	defer db.Close()
	Eventually(m.t, 30*time.Second, "mariadbd to answer on "+m.Addr, func() bool {
		select {
		case <-done:
			log, _ := os.ReadFile(m.path("log"))
			m.t.Fatalf("mariadbd exited at start:\n%s", log)
		default:
		}
		return db.Ping() == nil
	})
}

// Stop stops the server with SIGTERM (a clean shutdown) and waits for it.
func (m *MariaDB) Stop() { m.signal(syscall.SIGTERM) }

// Kill kills the server with SIGKILL and waits for it to exit.
func (m *MariaDB) Kill() { m.signal(os.Kill) }

func (m *MariaDB) signal(sig os.Signal) {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	m.cmd.Process.Signal(sig)
	<-m.done
	m.cmd = nil
}

// DB opens a handle on database name (empty: none), creating it if needed.
func (m *MariaDB) DB(name string) *sql.DB {
	m.t.Helper()
	if name != "" {
		root := m.open()
		defer root.Close()
		if _, err := root.Exec("CREATE DATABASE IF NOT EXISTS `" + name + "` CHARACTER SET utf8mb4"); err != nil {
			m.t.Fatal(err)
		}
	}
	db, err := sql.Open("mysql", m.DSN+name+"?multiStatements=true")
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { db.Close() })
	return db
}

func (m *MariaDB) open() *sql.DB {
	db, err := sql.Open("mysql", m.DSN)
	if err != nil {
		m.t.Fatal(err)
	}
	return db
}
