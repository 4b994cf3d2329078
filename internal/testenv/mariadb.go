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
// it, need a binlog of their own, or change server-wide state: its own
// datadir, tmpdir and plugin dir (in a t.TempDir), a free loopback port, a
// row-based binlog with full images (unless WithoutBinlog), root without a
// password over TCP.
type MariaDB struct {
	t    testing.TB
	Addr string // 127.0.0.1:port
	// DSN is root's go-sql-driver DSN, without a database.
	DSN  string
	Port int
	Dir  string // datadir, tmpdir, plugin dir, socket, logs
	opts options
	cmd  *exec.Cmd
	done chan struct{}
}

// Option configures StartMariaDB.
type Option func(*options)

type options struct {
	args     []string // extra mariadbd arguments
	env      []string // extra mariadbd environment
	plugins  []string // shared libraries copied into the plugin dir
	noBinlog bool
	resolv   string // the /etc/resolv.conf mariadbd sees
}

// WithArgs passes extra arguments to mariadbd, after the default ones.
func WithArgs(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

// WithServerEnv adds KEY=VALUE pairs to mariadbd's environment (the test's
// environment otherwise), e.g. "TZ=Europe/Berlin".
func WithServerEnv(env ...string) Option {
	return func(o *options) { o.env = append(o.env, env...) }
}

// WithUDF copies the shared library so into the server's plugin dir, ready
// for CREATE FUNCTION ... SONAME. An empty so is the rowgear_udf.so that
// scripts/services installed into ROWGEAR_PLUGIN_DIR.
func WithUDF(so string) Option {
	return func(o *options) { o.plugins = append(o.plugins, so) }
}

// WithoutBinlog starts the server with --skip-log-bin (stored functions
// then need no DETERMINISTIC or log_bin_trust_function_creators).
func WithoutBinlog() Option {
	return func(o *options) { o.noBinlog = true }
}

// WithResolvConf runs mariadbd in a mount namespace of its own where
// /etc/resolv.conf is the file at path: a test can point the server's name
// lookups at a DNS server it controls. Needs root (unshare -m).
func WithResolvConf(path string) Option {
	return func(o *options) { o.resolv = path }
}

// StartMariaDB initialises a datadir with mariadb-install-db and starts
// mariadbd on it, as scripts/services does, configured by opts. It is
// killed at cleanup.
func StartMariaDB(t testing.TB, opts ...Option) *MariaDB {
	t.Helper()
	for _, bin := range []string{"mariadb-install-db", "mariadbd"} {
		Tool(t, bin, "run `scripts/services install`")
	}
	m := &MariaDB{t: t, Port: FreePort(t), Dir: t.TempDir()}
	for _, o := range opts {
		o(&m.opts)
	}
	m.Addr = fmt.Sprintf("127.0.0.1:%d", m.Port)
	m.DSN = fmt.Sprintf("root@tcp(%s)/", m.Addr)
	for _, d := range []string{m.tmpDir(), m.PluginDir()} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, so := range m.opts.plugins {
		m.installPlugin(so)
	}
	// Its own tmpdir, here and in mariadbd: at start-up mariadbd deletes the
	// #sql* files in its tmpdir, which in /tmp are the shared server's
	// temporary tables.
	install := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+m.path("data"),
		"--tmpdir="+m.tmpDir(), "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.Start()
	t.Cleanup(m.Kill)
	return m
}

func (m *MariaDB) installPlugin(so string) {
	m.t.Helper()
	if so == "" {
		dir := os.Getenv("ROWGEAR_PLUGIN_DIR")
		if dir == "" {
			m.t.Fatalf("ROWGEAR_PLUGIN_DIR is not set: %s", howto)
		}
		so = filepath.Join(dir, "rowgear_udf.so")
	}
	lib, err := os.ReadFile(so)
	if err != nil {
		m.t.Fatalf("the UDF: %v (%s)", err, howto)
	}
	if err := os.WriteFile(filepath.Join(m.PluginDir(), filepath.Base(so)), lib, 0o755); err != nil {
		m.t.Fatal(err)
	}
}

func (m *MariaDB) path(name string) string { return filepath.Join(m.Dir, name) }

func (m *MariaDB) tmpDir() string { return m.path("tmp") }

// PluginDir is the server's plugin_dir.
func (m *MariaDB) PluginDir() string { return m.path("plugin") }

// ErrorLog is the path of the server's error log (named with an
// extension: mariadbd adds .err to a --log-error without one).
func (m *MariaDB) ErrorLog() string { return m.path("error.log") }

// Start starts (or restarts) the server on the same datadir and port and
// waits until it answers queries.
func (m *MariaDB) Start() {
	m.t.Helper()
	args := []string{"--no-defaults", "--user=root",
		"--datadir=" + m.path("data"), "--tmpdir=" + m.tmpDir(),
		"--socket=" + m.path("sock"), "--pid-file=" + m.path("pid"),
		"--bind-address=127.0.0.1", fmt.Sprintf("--port=%d", m.Port),
		"--plugin-dir=" + m.PluginDir(), "--log-error=" + m.ErrorLog(),
		"--max-allowed-packet=64M", "--innodb-buffer-pool-size=64M",
		"--innodb-flush-log-at-trx-commit=2"}
	if m.opts.noBinlog {
		args = append(args, "--skip-log-bin")
	} else {
		args = append(args, "--log-bin="+m.path("data/binlog"), "--binlog-format=ROW",
			"--binlog-row-image=FULL", "--binlog-row-metadata=FULL", "--server-id=1", "--sync-binlog=0")
	}
	m.cmd = exec.Command("mariadbd", append(args, m.opts.args...)...)
	if m.opts.resolv != "" {
		// unshare execs in place, and so does sh: the pid stays mariadbd's.
		m.cmd = exec.Command("unshare", append([]string{"-m", "--", "sh", "-c",
			`mount --bind "$0" /etc/resolv.conf && exec mariadbd "$@"`, m.opts.resolv}, m.cmd.Args[1:]...)...)
	}
	if len(m.opts.env) > 0 {
		m.cmd.Env = append(os.Environ(), m.opts.env...)
	}
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mariadbd: %v", err)
	}
	done := make(chan struct{})
	m.done = done
	go func(c *exec.Cmd) { c.Wait(); close(done) }(m.cmd)
	db := m.open()
	defer db.Close()
	Eventually(m.t, 60*time.Second, "mariadbd to answer on "+m.Addr, func() bool {
		select {
		case <-done:
			log, _ := os.ReadFile(m.ErrorLog())
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
// The handle allows multiple statements and is closed at cleanup.
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
