// Package testenv gives integration tests the real services started by
// scripts/services: gearmand and a private MariaDB with a row binlog. With the
// integration tier on (ROWGEAR_INTEGRATION=1, which scripts/services exports)
// tests fail, never skip, when the services are missing, and say how to start
// them; with it off they skip (see Integration).
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/internal/gearmanadmin"
)

const howto = "start the services with `eval \"$(scripts/services start)\"` from the repo root, or run `make test`"

// Gearman returns the address of the shared gearmand.
func Gearman(t testing.TB) string {
	t.Helper()
	Integration(t)
	addr := os.Getenv("ROWGEAR_GEARMAN")
	if addr == "" {
		t.Fatalf("ROWGEAR_GEARMAN is not set: %s", howto)
	}
	if err := dial(addr); err != nil {
		t.Fatalf("gearmand at %s: %v: %s", addr, err, howto)
	}
	return addr
}

// MySQLDSN returns the DSN of the private MariaDB server, without a database.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	Integration(t)
	dsn := os.Getenv("ROWGEAR_MYSQL_DSN")
	if dsn == "" {
		t.Fatalf("ROWGEAR_MYSQL_DSN is not set: %s", howto)
	}
	return dsn
}

// DB creates a fresh database on the private MariaDB server for this test,
// drops it at the end, and returns a handle on it and its DSN.
func DB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	cfg, err := mysql.ParseDSN(MySQLDSN(t))
	if err != nil {
		t.Fatalf("ROWGEAR_MYSQL_DSN: %v", err)
	}
	root, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := root.Ping(); err != nil {
		t.Fatalf("mariadb at %s: %v: %s", cfg.Addr, err, howto)
	}
	name := Name(t, "t")
	if _, err := root.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	cfg.DBName = name
	cfg.ParseTime = false
	cfg.MultiStatements = true
	dsn := cfg.FormatDSN()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		r, err := sql.Open("mysql", MySQLDSN(t))
		if err == nil {
			r.Exec("DROP DATABASE IF EXISTS `" + name + "`")
			r.Close()
		}
	})
	return db, dsn
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

// Name returns a name unique to this run of this test, safe as a gearman
// function name or a database name (at most 64 bytes).
func Name(t testing.TB, prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	n := unsafe.ReplaceAllString(t.Name(), "_")
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	return strings.ToLower(prefix + "_" + n + "_" + hex.EncodeToString(b))
}

// Eventually polls cond every 10 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Progressing polls every 100 ms until poll says done, for as long as the
// progress it reports keeps growing: it fails when progress has not grown
// for stall. For the long waits of big tests, whose speed depends on the
// machine's load: a slow machine gets the time it needs, a stuck pipeline
// fails after stall, and the failure says how far it got.
func Progressing(t testing.TB, stall time.Duration, what string, poll func() (progress int64, done bool)) {
	t.Helper()
	last, done := poll()
	since := time.Now()
	for !done {
		if time.Since(since) > stall {
			t.Fatalf("timed out waiting for %s: no progress for %s (stuck at %d)", what, stall, last)
		}
		time.Sleep(100 * time.Millisecond)
		var n int64
		if n, done = poll(); n > last {
			last, since = n, time.Now()
		}
	}
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// FreePort returns a loopback TCP port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Gearmand is a private gearmand for tests that stop, kill or restart it.
type Gearmand struct {
	t    testing.TB
	Addr string
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// StartGearmand starts a private gearmand on a free loopback port; extra
// arguments (a queue type, say) are passed through. It is killed at cleanup.
func StartGearmand(t testing.TB, extra ...string) *Gearmand {
	t.Helper()
	Tool(t, "gearmand", "run `scripts/services install`")
	g := &Gearmand{t: t, port: FreePort(t), dir: t.TempDir(), args: extra}
	g.Addr = fmt.Sprintf("127.0.0.1:%d", g.port)
	g.Start()
	t.Cleanup(g.Kill)
	return g
}

// Start starts (or restarts) the server and waits until it accepts connections.
func (g *Gearmand) Start() {
	g.t.Helper()
	args := append([]string{"--listen=127.0.0.1", fmt.Sprintf("--port=%d", g.port),
		"--log-file=" + filepath.Join(g.dir, "log"), "--pid-file=" + filepath.Join(g.dir, "pid"),
		"--verbose=WARNING"}, g.args...)
	g.cmd = exec.Command("gearmand", args...)
	if err := g.cmd.Start(); err != nil {
		g.t.Fatalf("start gearmand: %v", err)
	}
	Eventually(g.t, 60*time.Second, "gearmand to listen on "+g.Addr, func() bool { return dial(g.Addr) == nil })
}

// Stop stops the server with SIGTERM and waits for it to exit.
func (g *Gearmand) Stop() { g.signal(os.Interrupt) }

// Kill kills the server with SIGKILL and waits for it to exit.
func (g *Gearmand) Kill() { g.signal(os.Kill) }

// Pause stops the server with SIGSTOP: its sockets stay open and the kernel
// still completes connects into its listen backlog, but it reads and
// answers nothing until Resume. Kill and cleanup work on a paused server.
func (g *Gearmand) Pause() { g.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (g *Gearmand) Resume() { g.cmd.Process.Signal(syscall.SIGCONT) }

func (g *Gearmand) signal(sig os.Signal) {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	g.cmd.Process.Signal(sig)
	g.cmd.Wait()
	g.cmd = nil
}

// Admin sends one command of gearmand's text admin protocol and returns the
// lines of its answer (without the closing ".").
func Admin(ctx context.Context, addr, command string) ([]string, error) {
	return gearmanadmin.Admin(ctx, addr, command)
}

// FuncStatus is one line of gearmand's admin "status".
type FuncStatus struct {
	Function                  string
	Total, Running, Available int
}

// Status returns gearmand's admin "status" by function name.
func Status(ctx context.Context, addr string) (map[string]FuncStatus, error) {
	st, err := gearmanadmin.Status(ctx, addr)
	if err != nil {
		return nil, err
	}
	out := map[string]FuncStatus{}
	for _, s := range st {
		out[s.Function] = FuncStatus{s.Function, s.Queued, s.Running, s.Workers}
	}
	return out, nil
}

// Strings runs a query of one string column and returns its rows; an error
// fails the test.
func Strings(t testing.TB, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}
