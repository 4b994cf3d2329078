package udf_test

// Integration tests of the gearman UDF (rowgear_udf.so) against the private
// MariaDB and real gearmand processes started by scripts/services and
// testenv. Tests that need a gearmand they can stop, kill or stall pass it as
// the per-call 4th argument `servers`, so the server-wide list that other
// packages' tests rely on is never changed here; the global list and the
// environment defaults are tested on a throwaway mariadbd of their own.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/mikespook/gearman-go/worker"

	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/triggers"
)

const soName = "rowgear_udf.so"

var (
	installOnce sync.Once
	installErr  error
)

// ensureUDF builds rowgear_udf.so, installs it into ROWGEAR_PLUGIN_DIR when it
// is not there yet, and creates the functions with install.sql.
func ensureUDF(t testing.TB) {
	t.Helper()
	dsn := testenv.MySQLDSN(t)
	installOnce.Do(func() { installErr = installUDF(dsn) })
	if installErr != nil {
		t.Fatalf("installing the UDF: %v", installErr)
	}
}

func installUDF(dsn string) error {
	const fix = "start the services with `eval \"$(scripts/services start)\"` from the repo root (it installs gcc, libgearman-dev and libmariadbd-dev and sets ROWGEAR_PLUGIN_DIR)"
	dir := os.Getenv("ROWGEAR_PLUGIN_DIR")
	if dir == "" {
		return fmt.Errorf("ROWGEAR_PLUGIN_DIR is not set: %s", fix)
	}
	if out, err := exec.Command("make", "-s").CombinedOutput(); err != nil {
		return fmt.Errorf("make in udf/ failed: %v\n%s\n%s", err, out, fix)
	}
	installed, err := os.ReadFile(filepath.Join(dir, soName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		if out, err := exec.Command("make", "-s", "install", "PLUGIN_DIR="+dir).CombinedOutput(); err != nil {
			return fmt.Errorf("make install PLUGIN_DIR=%s failed: %v\n%s", dir, err, out)
		}
	case err != nil:
		return err
	default:
		built, err := os.ReadFile(soName)
		if err != nil {
			return err
		}
		if !bytes.Equal(built, installed) {
			// Replacing it under a server that has it loaded would not take
			// effect (and other packages' tests use it): say so and go on.
			fmt.Fprintf(os.Stderr, "udf_test: %s in %s differs from the fresh build; the server runs the installed one. "+
				"To load the new build: mariadb -h127.0.0.1 -P3307 -uroot < udf/uninstall.sql && make -C udf install PLUGIN_DIR=%s && mariadb -h127.0.0.1 -P3307 -uroot < udf/install.sql\n",
				soName, dir, dir)
		}
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		return fmt.Errorf("mariadb: %v: %s", err, fix)
	}
	stmts, err := sqlLines("install.sql")
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("%s: %v (is %s in the server's plugin_dir %s?)", s, err, soName, dir)
		}
	}
	var n int64
	if err := db.QueryRow("SELECT gman_failures()").Scan(&n); err != nil {
		return fmt.Errorf("calling gman_failures(): %v", err)
	}
	return nil
}

// sqlLines returns the statements of an SQL file (one per line, comments skipped).
func sqlLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "--") {
			continue
		}
		out = append(out, strings.TrimSuffix(l, ";"))
	}
	return out, nil
}

// rowFn returns a row-event function name unique to this test: the UDF
// submits only names matching its allowlist (by default <ns>.<Model>.<op>).
func rowFn(t testing.TB) string {
	return testenv.Name(t, "udf") + ".T.insert"
}

// session returns one pinned connection (one server thread) on a fresh database.
func session(t testing.TB) (*sql.DB, *sql.Conn) {
	t.Helper()
	db, _ := testenv.DB(t)
	ensureUDF(t)
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return db, c
}

// submit calls one of the submit functions; a NULL result gives ok=false.
func submit(t testing.TB, c *sql.Conn, udf string, args ...any) (handle string, ok bool) {
	t.Helper()
	ph := strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")
	var h sql.NullString
	if err := c.QueryRowContext(context.Background(), "SELECT "+udf+"("+ph+")", args...).Scan(&h); err != nil {
		t.Fatalf("%s: %v", udf, err)
	}
	return h.String, h.Valid
}

func lastError(t testing.TB, c *sql.Conn) string {
	t.Helper()
	var s sql.NullString
	if err := c.QueryRowContext(context.Background(), "SELECT gman_last_error()").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s.String
}

func failures(t testing.TB, c *sql.Conn) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRowContext(context.Background(), "SELECT gman_failures()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type job struct {
	fn, unique, handle string
	data               []byte
}

// startWorker runs a gearman-go worker for fn on addr and returns the jobs it gets.
func startWorker(t testing.TB, addr, fn string) <-chan job {
	t.Helper()
	ch := make(chan job, 1000)
	w := worker.New(worker.Unlimited)
	w.ErrorHandler = func(err error) {}
	if err := w.AddServer("tcp4", addr); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFunc(fn, func(j worker.Job) ([]byte, error) {
		ch <- job{fn: j.Fn(), unique: j.UniqueId(), handle: j.Handle(), data: append([]byte(nil), j.Data()...)}
		return nil, nil
	}, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Ready(); err != nil {
		t.Fatalf("worker on %s: %v", addr, err)
	}
	go w.Work()
	t.Cleanup(w.Close)
	return ch
}

func receive(t testing.TB, ch <-chan job) job {
	t.Helper()
	select {
	case j := <-ch:
		return j
	case <-time.After(60 * time.Second):
		t.Fatal("no job reached the worker within 60 s")
	}
	return job{}
}

// prio returns gearmand's queued job counts for fn: high, normal, low.
func prio(t testing.TB, addr, fn string) [3]int {
	t.Helper()
	lines, err := testenv.Admin(context.Background(), addr, "prioritystatus")
	if err != nil {
		t.Fatalf("gearmand admin prioritystatus: %v", err)
	}
	var p [3]int
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) >= 4 && f[0] == fn {
			fmt.Sscan(f[1], &p[0])
			fmt.Sscan(f[2], &p[1])
			fmt.Sscan(f[3], &p[2])
		}
	}
	return p
}

// clientConns counts gearmand's connections that registered no function
// (clients), minus the admin connection asking.
func clientConns(t testing.TB, addr string) int {
	t.Helper()
	lines, err := testenv.Admin(context.Background(), addr, "workers")
	if err != nil {
		t.Fatalf("gearmand admin workers: %v", err)
	}
	n := 0
	for _, l := range lines {
		if strings.HasSuffix(strings.TrimSpace(l), ":") {
			n++
		}
	}
	return n - 1
}

// waitClientConns waits until gearmand lists n client connections: right
// after an admin command it may still list that connection.
func waitClientConns(t testing.TB, addr string, n int, why string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("gearmand %s to have %d client connections (%s)", addr, n, why), func() bool {
		return clientConns(t, addr) == n
	})
}

func TestSubmitReachesWorker(t *testing.T) {
	_, c := session(t)
	// The global server list (default 127.0.0.1:4730 or mysqld's
	// ROWGEAR_GEARMAN_SERVERS): normally the shared gearmand.
	var servers string
	if err := c.QueryRowContext(context.Background(), "SELECT gman_servers_set(NULL)").Scan(&servers); err != nil {
		t.Fatal(err)
	}
	if shared := testenv.Gearman(t); servers != shared {
		t.Logf("global server list is %q, the shared gearmand %q: using the global one", servers, shared)
	}
	addr := strings.Split(servers, ",")[0]
	fn := rowFn(t)
	jobs := startWorker(t, addr, fn)

	payload := `{"v":1,"op":"update","pk":{"id":42}}`
	h1, ok := submit(t, c, "gman_do_background", fn, payload)
	if !ok || !strings.HasPrefix(h1, "H:") {
		t.Fatalf("handle %q ok=%v, last error %q", h1, ok, lastError(t, c))
	}
	if e := lastError(t, c); e != "" {
		t.Errorf("gman_last_error() after a success = %q, want NULL", e)
	}
	// Same payload again, no unique key: a second job, never coalesced.
	h2, ok := submit(t, c, "gman_do_background", fn, payload, nil)
	if !ok || h2 == h1 {
		t.Fatalf("second submit: handle %q (first %q) ok=%v", h2, h1, ok)
	}
	// With an event id as the unique key.
	h3, ok := submit(t, c, "gman_do_background", fn, "third", "ev-123")
	if !ok {
		t.Fatal(lastError(t, c))
	}
	got := map[string]job{}
	for range 3 {
		j := receive(t, jobs)
		got[j.handle] = j
	}
	for _, h := range []string{h1, h2} {
		j, ok := got[h]
		if !ok || string(j.data) != payload || j.fn != fn {
			t.Errorf("job %s: got %+v", h, j)
		}
		if len(j.unique) != 36 { // libgearman's UUID
			t.Errorf("job %s: unique %q, want a generated UUID", h, j.unique)
		}
	}
	if got[h1].unique == got[h2].unique {
		t.Errorf("both NULL-unique jobs got unique %q", got[h1].unique)
	}
	if j := got[h3]; j.unique != "ev-123" || string(j.data) != "third" {
		t.Errorf("job %s: got unique %q data %q", h3, j.unique, j.data)
	}
}

func TestPriorities(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	for i, udf := range []string{"gman_do_high_background", "gman_do_background", "gman_do_low_background"} {
		for range i + 1 {
			if h, ok := submit(t, c, udf, fn, udf, nil, g.Addr); !ok || h == "" {
				t.Fatalf("%s: %s", udf, lastError(t, c))
			}
		}
	}
	if p := prio(t, g.Addr, fn); p != [3]int{1, 2, 3} {
		t.Fatalf("queued high/normal/low = %v, want [1 2 3]", p)
	}
	// gearmand hands out high, then normal, then low. The worker runs jobs
	// concurrently, so check the set, not the order.
	jobs := startWorker(t, g.Addr, fn)
	n := map[string]int{}
	for range 6 {
		n[string(receive(t, jobs).data)]++
	}
	if n["gman_do_high_background"] != 1 || n["gman_do_background"] != 2 || n["gman_do_low_background"] != 3 {
		t.Fatalf("received %v", n)
	}
}

func TestUniqueKey(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	h1, _ := submit(t, c, "gman_do_background", fn, "a", "event-1", g.Addr)
	h2, _ := submit(t, c, "gman_do_background", fn, "b", "event-1", g.Addr)
	if h1 == "" || h1 != h2 {
		t.Fatalf("same unique key: handles %q and %q, want the same (gearmand coalesces)", h1, h2)
	}
	submit(t, c, "gman_do_background", fn, "a", "event-2", g.Addr)
	// NULL and '' both mean "generate one": identical payloads stay two jobs.
	submit(t, c, "gman_do_background", fn, "same", nil, g.Addr)
	submit(t, c, "gman_do_background", fn, "same", nil, g.Addr)
	submit(t, c, "gman_do_background", fn, "same", "", g.Addr)
	if p := prio(t, g.Addr, fn); p[1] != 5 {
		t.Fatalf("queued normal jobs = %d, want 5 (event-1 once, event-2, three generated)", p[1])
	}
	// 63 bytes is the longest unique key libgearman sends unchanged.
	if _, ok := submit(t, c, "gman_do_background", fn, "x", strings.Repeat("u", 63), g.Addr); !ok {
		t.Fatalf("63-byte unique: %s", lastError(t, c))
	}
	if _, ok := submit(t, c, "gman_do_background", fn, "x", strings.Repeat("u", 64), g.Addr); ok {
		t.Fatal("64-byte unique key accepted (libgearman would truncate it)")
	}
	if e := lastError(t, c); !strings.Contains(e, "unique key") {
		t.Fatalf("last error %q", e)
	}
}

func TestConnectionReusedAcrossRowsAndStatements(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	ctx := context.Background()
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	mustExec(t, c, fmt.Sprintf(`CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW
		DO gman_do_background('%s', JSON_OBJECT('id', NEW.id), UUID(), '%s')`, fn, g.Addr))
	for i := range 200 {
		if _, err := c.ExecContext(ctx, "INSERT INTO t VALUES (?, ?)", i, i); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, c, "INSERT INTO t SELECT id + 1000, v FROM t") // 200 rows, one statement
	if p := prio(t, g.Addr, fn); p[1] != 400 {
		t.Fatalf("queued jobs = %d, want 400", p[1])
	}
	waitClientConns(t, g.Addr, 1, "after 400 rows from one session")
}

func TestStrictTriggerRefusesWriteWhenGearmandDown(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	mustExec(t, c, "INSERT INTO t VALUES (1, 0)")
	mustExec(t, c, fmt.Sprintf(`CREATE TRIGGER t_au AFTER UPDATE ON t FOR EACH ROW
BEGIN
  IF gman_do_background('%s', JSON_OBJECT('id', NEW.id, 'v', NEW.v), UUID(), '%s') IS NULL THEN
    SET @rowgear_msg = CONCAT('rowgear: job not queued for t: ', IFNULL(gman_last_error(), 'unknown error'));
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @rowgear_msg;
  END IF;
END`, fn, g.Addr))
	mustExec(t, c, "UPDATE t SET v = 1 WHERE id = 1")
	if p := prio(t, g.Addr, fn); p[1] != 1 {
		t.Fatalf("queued %d jobs, want 1", p[1])
	}

	g.Stop()
	start := time.Now()
	_, err := c.ExecContext(context.Background(), "UPDATE t SET v = 2 WHERE id = 1")
	took := time.Since(start)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1644 || string(me.SQLState[:]) != "45000" {
		t.Fatalf("UPDATE with gearmand down: err %v, want SIGNAL 45000", err)
	}
	t.Logf("refused in %s: %s", took, me.Message)
	for _, want := range []string{"rowgear: job not queued for t", fn, "GEARMAN_COULD_NOT_CONNECT", g.Addr} {
		if !strings.Contains(me.Message, want) {
			t.Errorf("message %q lacks %q", me.Message, want)
		}
	}
	if took > 1500*time.Millisecond {
		t.Errorf("refusal took %s, want within the 1000 ms timeout", took)
	}
	var v int
	c.QueryRowContext(context.Background(), "SELECT v FROM t WHERE id = 1").Scan(&v)
	if v != 1 {
		t.Fatalf("v = %d after the refused UPDATE, want 1", v)
	}

	g.Start()
	mustExec(t, c, "UPDATE t SET v = 3 WHERE id = 1")
	if p := prio(t, g.Addr, fn); p[1] != 1 { // the restarted gearmand is empty
		t.Fatalf("after restart queued %d, want 1", p[1])
	}
}

func TestLenientTriggerLetsWriteThrough(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	mustExec(t, c, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	mustExec(t, c, "INSERT INTO t VALUES (1, 0), (2, 0), (3, 0)")
	mustExec(t, c, fmt.Sprintf(`CREATE TRIGGER t_au AFTER UPDATE ON t FOR EACH ROW
		DO gman_do_background('%s', JSON_OBJECT('id', NEW.id), UUID(), '%s')`, fn, g.Addr))
	g.Kill()
	before := failures(t, c)
	res, err := c.ExecContext(context.Background(), "UPDATE t SET v = v + 1")
	if err != nil {
		t.Fatalf("lenient UPDATE failed: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 3 {
		t.Fatalf("rows affected %d, want 3", n)
	}
	if after := failures(t, c); after < before+3 {
		t.Fatalf("gman_failures() went from %d to %d, want +3 or more", before, after)
	}
	if e := lastError(t, c); !strings.Contains(e, "GEARMAN_COULD_NOT_CONNECT") {
		t.Fatalf("gman_last_error() = %q", e)
	}
}

// stalledServer accepts connections and never answers.
func stalledServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { // read and drop, so large writes do not block on us
				r := bufio.NewReader(c)
				for {
					if _, err := r.Discard(1 << 16); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// timedSubmit calls gman_do_background and times the call inside the server
// (SYSDATE is evaluated per call), so sending the arguments to a busy mariadbd
// does not count.
func timedSubmit(t testing.TB, c *sql.Conn, fn, payload, servers string) (ok bool, took time.Duration) {
	t.Helper()
	var h sql.NullString
	var before, after string
	if err := c.QueryRowContext(context.Background(), "SELECT SYSDATE(6), gman_do_background(?, ?, NULL, ?), SYSDATE(6)",
		fn, payload, servers).Scan(&before, &h, &after); err != nil {
		t.Fatal(err)
	}
	t0, err0 := time.Parse("2006-01-02 15:04:05.999999", before)
	t1, err1 := time.Parse("2006-01-02 15:04:05.999999", after)
	if err0 != nil || err1 != nil {
		t.Fatalf("SYSDATE(6): %q %q", before, after)
	}
	return h.Valid, t1.Sub(t0)
}

func TestStalledServerBoundedByTimeout(t *testing.T) {
	_, c := session(t)
	addr := stalledServer(t)
	fn := rowFn(t)
	var timeout int64
	if err := c.QueryRowContext(context.Background(), "SELECT gman_timeout_set(NULL)").Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{10, 1 << 20} {
		// The deadline grows by ROWGEAR_GEARMAN_TIMEOUT_MS_PER_MIB (default
		// 1000) per started MiB of workload.
		bound := time.Duration(timeout+int64((size+1<<20-1)>>20)*1000) * time.Millisecond
		start := time.Now()
		ok, took := timedSubmit(t, c, fn, strings.Repeat("s", size), addr)
		wall := time.Since(start)
		if ok {
			t.Fatalf("%d bytes: a server that never answers gave a handle", size)
		}
		e := lastError(t, c)
		t.Logf("%d bytes: NULL after %s in the server (%s wall): %s", size, took, wall, e)
		if took < bound*9/10 || took > bound+300*time.Millisecond {
			t.Errorf("%d bytes: took %s, want about the %s deadline", size, took, bound)
		}
		if !strings.Contains(e, "GEARMAN_TIMEOUT") {
			t.Errorf("last error %q lacks GEARMAN_TIMEOUT", e)
		}
	}
}

// usageAccount creates an account with no privilege but USAGE and returns
// a pinned connection of it: MariaDB has no EXECUTE privilege for UDFs, so
// this is what any SQL user can do.
func usageAccount(t *testing.T) *sql.Conn {
	t.Helper()
	_, root := session(t)
	user := testenv.Name(t, "u")[:30]
	mustExec(t, root, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'pw'", user))
	t.Cleanup(func() { root.ExecContext(context.Background(), fmt.Sprintf("DROP USER '%s'@'%%'", user)) })
	cfg, err := mysql.ParseDSN(testenv.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Passwd, cfg.DBName = user, "pw", ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSettingsReadOnlyFromSQL: no account, not even root, changes the
// server list or the timeout other sessions' triggers use, and a USAGE
// account can submit nothing but row-event functions.
func TestSettingsReadOnlyFromSQL(t *testing.T) {
	_, root := session(t)
	usage := usageAccount(t)
	ctx := context.Background()
	var servers0 string
	var timeout0 int64
	if err := root.QueryRowContext(ctx, "SELECT gman_servers_set(NULL), gman_timeout_set(NULL)").Scan(&servers0, &timeout0); err != nil {
		t.Fatal(err)
	}
	listener := stalledServer(t) // an attacker's listener
	for _, c := range []*sql.Conn{usage, root} {
		var v sql.NullString
		if err := c.QueryRowContext(ctx, "SELECT gman_servers_set(?)", listener).Scan(&v); err != nil || v.Valid {
			t.Errorf("gman_servers_set(listener) = %v, %v; want NULL", v, err)
		}
		if e := lastError(t, c); !strings.Contains(e, "read-only") {
			t.Errorf("gman_servers_set: last error %q", e)
		}
		var n sql.NullInt64
		if err := c.QueryRowContext(ctx, "SELECT gman_timeout_set(60000)").Scan(&n); err != nil || n.Valid {
			t.Errorf("gman_timeout_set(60000) = %v, %v; want NULL", n, err)
		}
		if e := lastError(t, c); !strings.Contains(e, "read-only") {
			t.Errorf("gman_timeout_set: last error %q", e)
		}
	}
	var servers1 string
	var timeout1 int64
	if err := root.QueryRowContext(ctx, "SELECT gman_servers_set(NULL), gman_timeout_set(NULL)").Scan(&servers1, &timeout1); err != nil {
		t.Fatal(err)
	}
	if servers1 != servers0 || timeout1 != timeout0 {
		t.Fatalf("settings changed from %q/%d to %q/%d", servers0, timeout0, servers1, timeout1)
	}
	// Forged work outside the row-event functions is refused: a record job,
	// a plain worker function.
	for _, fn := range []string{"rowgear.Article.publish", "Worker1.reverse", "rowgear.Article/x.insert", "insert"} {
		if h, ok := submit(t, usage, "gman_do_background", fn, `{"pk":{"id":100},"args":[true,true]}`); ok {
			t.Errorf("%s: submitted as %s", fn, h)
		}
		if e := lastError(t, usage); !strings.Contains(e, "is not allowed: ROWGEAR_UDF_FUNCTIONS") {
			t.Errorf("%s: last error %q", fn, e)
		}
	}
}

func TestArguments(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	ctx := context.Background()
	bad := []struct {
		args []any
		want string
	}{
		{[]any{nil, "w", nil, g.Addr}, "function name is NULL"},
		{[]any{"", "w", nil, g.Addr}, "function name is empty"},
		{[]any{strings.Repeat("f", 513), "w", nil, g.Addr}, "function name longer"},
		{[]any{fn, nil, nil, g.Addr}, "workload is NULL"},
		{[]any{fn, "w", nil, ""}, "servers must be"},
		// Bad server lists are refused, never turned into port 4730.
		{[]any{fn, "w", nil, "127.0.0.1:abc"}, "invalid server '127.0.0.1:abc': port 'abc' is not a number"},
		{[]any{fn, "w", nil, ":4730x"}, "invalid server ':4730x': no host"},
		{[]any{fn, "w", nil, "127.0.0.1:4730x"}, "port '4730x' is not a number"},
		{[]any{fn, "w", nil, "127.0.0.1:99999"}, "port '99999' is not a number 1..65535"},
		{[]any{fn, "w", nil, "127.0.0.1:0"}, "port '0' is not a number 1..65535"},
		{[]any{fn, "w", nil, "127.0.0.1:"}, "port '' is not a number"},
		{[]any{fn, "w", nil, ":99999"}, "invalid server ':99999': no host"},
		{[]any{fn, "w", nil, ":"}, "invalid server ':': no host"},
		{[]any{fn, "w", nil, "::::"}, "invalid server '::::': no host"},
		{[]any{fn, "w", nil, "fe80::1:4730"}, "write IPv6 addresses in brackets"},
		{[]any{fn, "w", nil, "[::1"}, "without ']'"},
		{[]any{fn, "w", nil, g.Addr + ",bad host"}, "bad character in host name"},
		{[]any{fn, "w", "a\x00b", g.Addr}, "unique key"},
	}
	for _, b := range bad {
		before := failures(t, c)
		if h, ok := submit(t, c, "gman_do_background", b.args...); ok {
			t.Errorf("%q: handle %q, want NULL", b.args, h)
			continue
		}
		if e := lastError(t, c); !strings.Contains(e, b.want) {
			t.Errorf("%q: last error %q, want %q", b.args, e, b.want)
		}
		if failures(t, c) <= before {
			t.Errorf("%q: not counted in gman_failures()", b.args)
		}
	}
	// An IPv6 address in brackets parses (nothing listens there: the
	// failure is the connection's, not the list's).
	if _, ok := submit(t, c, "gman_do_background", fn, "w", nil, fmt.Sprintf("[::1]:%d", testenv.FreePort(t))); ok {
		t.Error("a handle from [::1], where nothing listens")
	} else if e := lastError(t, c); strings.Contains(e, "invalid server") {
		t.Errorf("[::1]:port refused as invalid: %s", e)
	}
	// Empty workload, numbers coerced to strings.
	if _, ok := submit(t, c, "gman_do_background", fn, "", nil, g.Addr); !ok {
		t.Errorf("empty workload: %s", lastError(t, c))
	}
	var h sql.NullString
	if err := c.QueryRowContext(ctx, fmt.Sprintf("SELECT gman_do_low_background('%s', 12345, 678, '%s')", fn, g.Addr)).Scan(&h); err != nil || !h.Valid {
		t.Errorf("numeric arguments: %v %v %s", h, err, lastError(t, c))
	}
	if err := c.QueryRowContext(ctx, fmt.Sprintf("SELECT gman_do_high_background('%s', 1.5e3, NULL, '%s')", fn, g.Addr)).Scan(&h); err != nil || !h.Valid {
		t.Errorf("real argument: %v %v %s", h, err, lastError(t, c))
	}
	jobs := startWorker(t, g.Addr, fn)
	seen := map[string]string{}
	for range 3 {
		j := receive(t, jobs)
		seen[string(j.data)] = j.unique
	}
	if u, ok := seen["12345"]; !ok || u != "678" {
		t.Errorf("numeric workload/unique: got %v", seen)
	}
	if _, ok := seen[""]; !ok {
		t.Errorf("empty workload not received: %v", seen)
	}

	// Wrong argument counts are refused when the statement is prepared.
	for q, want := range map[string]string{
		"SELECT gman_do_background('f')":                 "takes 2 to 4 arguments",
		"SELECT gman_do_background('f','w','u','s','x')": "takes 2 to 4 arguments",
		"SELECT gman_servers_set()":                      "takes 1 argument",
		"SELECT gman_do_background()":                    "takes 2 to 4 arguments: function, workload [, unique [, servers]]",
		"SELECT gman_timeout_set(1, 2)":                  "takes 1 argument: NULL",
		"SELECT gman_failures(1)":                        "takes no arguments",
		"SELECT gman_last_error('x')":                    "takes no arguments",
		"SELECT gman_do_high_background()":               "takes 2 to 4 arguments",
		"SELECT gman_do_low_background(1,2,3,4,5,6,7,8)": "takes 2 to 4 arguments",
	} {
		_, err := c.ExecContext(ctx, q)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", q, err, want)
		}
	}

	// The global server list: read it, refuse any value, leave it unchanged.
	var cur string
	if err := c.QueryRowContext(ctx, "SELECT gman_servers_set(NULL)").Scan(&cur); err != nil || cur == "" {
		t.Fatalf("gman_servers_set(NULL) = %q, %v", cur, err)
	}
	for _, b := range []string{"", ",", "127.0.0.1:4730,", strings.Repeat("x", 5000), g.Addr} {
		var v sql.NullString
		if err := c.QueryRowContext(ctx, "SELECT gman_servers_set(?)", b).Scan(&v); err != nil || v.Valid {
			t.Errorf("gman_servers_set(%.20q) = %v, %v; want NULL", b, v, err)
		}
	}
	var after string
	c.QueryRowContext(ctx, "SELECT gman_servers_set(NULL)").Scan(&after)
	if after != cur {
		t.Fatalf("server list changed from %q to %q", cur, after)
	}
}

// TestLargeWorkload: a 4 MiB row in strict mode. gearmand 1.1.20 needs
// about 2 s to take in a 4 MiB packet, more than the default 1 s timeout;
// the deadline grows per MiB of workload, so inserting and deleting such a
// row works with the defaults, and the job arrives intact.
func TestLargeWorkload(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	ctx := context.Background()
	payload := make([]byte, 4<<20)
	rand.Read(payload)

	var timeout int64
	if err := c.QueryRowContext(ctx, "SELECT gman_timeout_set(NULL)").Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	jobs := startWorker(t, g.Addr, fn)
	mustExec(t, c, "CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB)")
	for _, ev := range []string{"INSERT", "DELETE"} {
		row := "NEW"
		if ev == "DELETE" {
			row = "OLD"
		}
		mustExec(t, c, fmt.Sprintf(`CREATE TRIGGER big_%s AFTER %s ON big FOR EACH ROW
BEGIN
  IF gman_do_background('%s', %s.b, UUID(), '%s') IS NULL THEN
    SET @rowgear_msg = CONCAT('rowgear: job not queued for big: ', IFNULL(gman_last_error(), 'unknown error'));
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @rowgear_msg;
  END IF;
END`, strings.ToLower(ev), ev, fn, row, g.Addr))
	}
	start := time.Now()
	if _, err := c.ExecContext(ctx, "INSERT INTO big VALUES (1, ?)", payload); err != nil {
		t.Fatalf("strict INSERT of a 4 MiB row with the %d ms timeout: %v", timeout, err)
	}
	if _, err := c.ExecContext(ctx, "DELETE FROM big WHERE id = 1"); err != nil {
		t.Fatalf("strict DELETE of a 4 MiB row with the %d ms timeout: %v", timeout, err)
	}
	t.Logf("4 MiB row inserted and deleted in %s (timeout %d ms + 1000 ms per MiB)", time.Since(start), timeout)
	sum := sha256.Sum256(payload)
	for range 2 {
		j := receive(t, jobs)
		if len(j.data) != len(payload) || sha256.Sum256(j.data) != sum {
			t.Fatalf("got a job of %d bytes, want the 4 MiB row", len(j.data))
		}
	}
}

func TestGearmandRestartBetweenCalls(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	if _, ok := submit(t, c, "gman_do_background", fn, "1", nil, g.Addr); !ok {
		t.Fatal(lastError(t, c))
	}
	// Killed and back before the next call: the kept connection is dead,
	// the call reconnects and succeeds.
	g.Kill()
	g.Start()
	if _, ok := submit(t, c, "gman_do_background", fn, "2", nil, g.Addr); !ok {
		t.Fatalf("first call after a restart: %s", lastError(t, c))
	}
	// Gone during a call: NULL, fast; back: the next call succeeds.
	g.Kill()
	start := time.Now()
	if _, ok := submit(t, c, "gman_do_background", fn, "3", nil, g.Addr); ok {
		t.Fatal("handle from a killed gearmand")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refused connection took %s", took)
	}
	g.Start()
	if _, ok := submit(t, c, "gman_do_background", fn, "4", nil, g.Addr); !ok {
		t.Fatalf("after gearmand came back: %s", lastError(t, c))
	}
	if p := prio(t, g.Addr, fn); p[1] != 1 {
		t.Fatalf("queued %d, want 1", p[1])
	}
}

// TestServerListFailover: a list with a dead server first still delivers,
// and a list of dead servers fails fast with both tried.
func TestServerListFailover(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	for range 3 {
		if _, ok := submit(t, c, "gman_do_background", fn, "x", nil, dead+","+g.Addr); !ok {
			t.Fatalf("dead server first: %s", lastError(t, c))
		}
	}
	if p := prio(t, g.Addr, fn); p[1] != 3 {
		t.Fatalf("queued %d, want 3", p[1])
	}
	dead2 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	start := time.Now()
	if _, ok := submit(t, c, "gman_do_background", fn, "x", nil, dead+","+dead2); ok {
		t.Fatal("handle from two dead servers")
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("two refused connections took %s", took)
	}
	if e := lastError(t, c); !strings.Contains(e, "tried 2 of 2 servers") {
		t.Errorf("last error %q", e)
	}
	// A stalled first server uses up its share of the call's deadline, and
	// the next server takes the job in the same call; the next calls
	// start with the server that worked.
	stalled := stalledServer(t) + "," + g.Addr
	if _, ok := submit(t, c, "gman_do_background", fn, "x", nil, stalled); !ok {
		t.Fatalf("no failover from a first server that never answers: %s", lastError(t, c))
	}
	for range 3 {
		if ok, took := timedSubmit(t, c, fn, "x", stalled); !ok || took > 500*time.Millisecond {
			t.Fatalf("after a timeout on the first server: ok=%v in %s: %s", ok, took, lastError(t, c))
		}
	}
	if _, ok := submit(t, c, "gman_do_background", fn, "x", nil, strings.Repeat(g.Addr+",", 17)+g.Addr); ok {
		t.Error("18 servers accepted")
	}
}

func mustExec(t testing.TB, c *sql.Conn, q string, args ...any) {
	t.Helper()
	if _, err := c.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// ownMariaDB starts a throwaway mariadbd with the fresh build of
// rowgear_udf.so in its own plugin dir and the given environment, for tests
// that change server-wide state (the global server list, the library's load
// state) or need threads that end (thread cache off). It is killed at cleanup.
func ownMariaDB(t *testing.T, env ...string) *testenv.MariaDB {
	t.Helper()
	ensureUDF(t) // builds the .so
	return testenv.StartMariaDB(t, testenv.WithUDF(soName), testenv.WithServerEnv(env...),
		testenv.WithArgs("--thread-cache-size=0"), testenv.WithoutBinlog())
}

func execFile(t testing.TB, db *sql.DB, path string) {
	t.Helper()
	stmts, err := sqlLines(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestEnvDefaultsGlobalListThreadsAndUnload runs on a mariadbd of its own:
// settings from mysqld's environment (servers, timeout, function allowlist,
// workload cap, log interval), a client freed when its thread ends,
// rate-limited error log lines with true counts, and DROP FUNCTION (library
// unload) while sessions hold clients, then re-install.
func TestEnvDefaultsGlobalListThreadsAndUnload(t *testing.T) {
	g1 := testenv.StartGearmand(t)
	g2 := testenv.StartGearmand(t)
	m := ownMariaDB(t, "ROWGEAR_GEARMAN_SERVERS="+g1.Addr, "ROWGEAR_GEARMAN_TIMEOUT_MS=700",
		"ROWGEAR_UDF_ALLOW_SERVERS_ARG=1", "ROWGEAR_UDF_LOG_INTERVAL_S=1", "ROWGEAR_UDF_MAX_WORKLOAD_BYTES=1000",
		"ROWGEAR_UDF_FUNCTIONS=app.*.insert,app.Article.update")
	db := m.DB("")
	db.SetMaxIdleConns(0) // a closed sql.Conn ends its session (and thread)
	execFile(t, db, "install.sql")
	execFile(t, db, "install.sql") // idempotent
	ctx := context.Background()
	conn := func() *sql.Conn {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1, c2, c3 := conn(), conn(), conn()
	defer c1.Close()
	defer c2.Close()

	var servers string
	var timeout int64
	if err := c1.QueryRowContext(ctx, "SELECT gman_servers_set(NULL), gman_timeout_set(NULL)").Scan(&servers, &timeout); err != nil {
		t.Fatal(err)
	}
	if servers != g1.Addr || timeout != 700 {
		t.Fatalf("defaults: servers %q timeout %d, want %q and 700 from the environment", servers, timeout, g1.Addr)
	}
	fn := "app." + testenv.Name(t, "m") + ".insert"
	for _, c := range []*sql.Conn{c1, c2, c3} {
		if _, ok := submit(t, c, "gman_do_background", fn, "x"); !ok {
			t.Fatal(lastError(t, c))
		}
	}
	if p := prio(t, g1.Addr, fn); p[1] != 3 {
		t.Fatalf("g1 queued %d, want 3", p[1])
	}
	waitClientConns(t, g1.Addr, 3, "one per session")
	// A session ends, its thread ends (thread cache off): its client goes.
	c3.Close()
	testenv.Eventually(t, 60*time.Second, "the ended session's gearman connection to close", func() bool {
		return clientConns(t, g1.Addr) == 2
	})

	// The global list cannot be changed from SQL: other sessions keep it.
	var set sql.NullString
	if err := c1.QueryRowContext(ctx, "SELECT gman_servers_set(?)", g2.Addr).Scan(&set); err != nil || set.Valid {
		t.Fatalf("gman_servers_set = %v, %v; want NULL", set, err)
	}
	if _, ok := submit(t, c2, "gman_do_background", fn, "y"); !ok {
		t.Fatal(lastError(t, c2))
	}
	if p := prio(t, g1.Addr, fn); p[1] != 4 {
		t.Fatalf("after gman_servers_set, g1 queued %d, want 4", p[1])
	}

	// Failures are logged to the error log, at most one line per interval
	// (1 s here); the next line counts the failures not logged in between
	// and says since when.
	logLines := func() []string {
		b, _ := os.ReadFile(m.ErrorLog())
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "rowgear_udf: gearmand ") {
				out = append(out, l)
			}
		}
		return out
	}
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := len(logLines())
	total0 := failures(t, c1)
	for range 5 {
		submit(t, c1, "gman_do_background", fn, "z", nil, dead)
	}
	if n := len(logLines()) - base; n != 1 {
		t.Fatalf("%d error log lines for 5 failures in a burst, want 1:\n%s", n, strings.Join(logLines(), "\n"))
	}
	// Keep failing until the interval has passed and a line is written.
	testenv.Eventually(t, 60*time.Second, "a second error log line after the 1 s interval", func() bool {
		submit(t, c1, "gman_do_background", fn, "z", nil, dead)
		return len(logLines())-base == 2
	})
	total := failures(t, c1) - total0
	line := logLines()[base+1]
	// The first line logged failure 1 of the burst; this one the last;
	// every failure in between is counted as not logged.
	want := fmt.Sprintf("and %d more failures not logged since the line at ", total-2)
	if !strings.Contains(line, want) || !strings.Contains(line, "gearmand "+dead+": GEARMAN_COULD_NOT_CONNECT") {
		t.Fatalf("second line %q, want %q after %d failures, the address first", line, want, total)
	}

	// The allowlist of ROWGEAR_UDF_FUNCTIONS, and the workload cap.
	if _, ok := submit(t, c1, "gman_do_background", "app.Article.update", "u"); !ok {
		t.Fatalf("app.Article.update: %s", lastError(t, c1))
	}
	for _, f := range []string{"app.Article.delete", "other.Article.insert", "app.Article.insert.x"} {
		if _, ok := submit(t, c1, "gman_do_background", f, "u"); ok {
			t.Errorf("%s submitted; the allowlist is app.*.insert,app.Article.update", f)
		}
	}
	if _, ok := submit(t, c1, "gman_do_background", fn, strings.Repeat("w", 1001)); ok {
		t.Error("a 1001-byte workload passed ROWGEAR_UDF_MAX_WORKLOAD_BYTES=1000")
	}
	if e := lastError(t, c1); !strings.Contains(e, "workload of 1001 bytes is over the limit of 1000 bytes") {
		t.Errorf("last error %q", e)
	}
	if _, ok := submit(t, c1, "gman_do_background", fn, strings.Repeat("w", 1000)); !ok {
		t.Errorf("a 1000-byte workload: %s", lastError(t, c1))
	}

	// Unload the library while sessions hold clients, then end them.
	execFile(t, db, "uninstall.sql")
	testenv.Eventually(t, 60*time.Second, "unload to close the gearman connections", func() bool {
		return clientConns(t, g1.Addr)+clientConns(t, g2.Addr) == 0
	})
	ids := make([]int64, 2)
	for i, c := range []*sql.Conn{c1, c2} {
		if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	c2.Close()
	c1.Close()
	// Their threads end with the library unloaded: the server must survive.
	testenv.Eventually(t, 60*time.Second, "the two sessions' threads to end", func() bool {
		var n int
		err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (?, ?)", ids[0], ids[1]).Scan(&n)
		if err != nil {
			t.Fatalf("mariadbd after unload and thread exits: %v", err)
		}
		return n == 0
	})
	if err := db.Ping(); err != nil {
		t.Fatalf("mariadbd after unload and thread exits: %v", err)
	}
	// Loaded again: defaults from the environment again.
	execFile(t, db, "install.sql")
	c4 := conn()
	defer c4.Close()
	if _, ok := submit(t, c4, "gman_do_background", fn, "w"); !ok {
		t.Fatal(lastError(t, c4))
	}
	if p := prio(t, g1.Addr, fn); p[1] != 6 {
		t.Fatalf("after re-install g1 queued %d, want 6", p[1])
	}
}

// TestEnvRefusals: a server list in mysqld's environment that does not
// parse fails every submit with the reason (never port 4730 instead), and
// without ROWGEAR_UDF_ALLOW_SERVERS_ARG the per-call list is refused.
func TestEnvRefusals(t *testing.T) {
	g := testenv.StartGearmand(t)
	m := ownMariaDB(t, "ROWGEAR_GEARMAN_SERVERS=127.0.0.1:abc", "ROWGEAR_UDF_ALLOW_SERVERS_ARG=")
	db := m.DB("")
	execFile(t, db, "install.sql")
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fn := rowFn(t)
	if _, ok := submit(t, c, "gman_do_background", fn, "x"); ok {
		t.Fatal("submitted with ROWGEAR_GEARMAN_SERVERS=127.0.0.1:abc")
	}
	if e := lastError(t, c); !strings.Contains(e, "ROWGEAR_GEARMAN_SERVERS=127.0.0.1:abc: invalid server '127.0.0.1:abc': port 'abc'") {
		t.Errorf("last error %q", e)
	}
	if _, ok := submit(t, c, "gman_do_background", fn, "x", nil, g.Addr); ok {
		t.Fatal("per-call server list accepted without ROWGEAR_UDF_ALLOW_SERVERS_ARG=1")
	}
	if e := lastError(t, c); !strings.Contains(e, "the servers argument is disabled") {
		t.Errorf("last error %q", e)
	}
	// rowgear_ring: the environment's bad list drops the ring (0, with the
	// reason: not the caller's fault); the per-call list is refused (NULL).
	ring := ringFn(t)
	if n, valid := ringOnce(t, c, ring); !valid || n != 0 {
		t.Fatalf("rowgear_ring with ROWGEAR_GEARMAN_SERVERS=127.0.0.1:abc = %d (valid %v), want 0", n, valid)
	}
	if e := lastError(t, c); !strings.Contains(e, "dropped: ROWGEAR_GEARMAN_SERVERS=127.0.0.1:abc: invalid server") {
		t.Errorf("last error %q", e)
	}
	if _, valid := ringOnce(t, c, ring, g.Addr); valid {
		t.Fatal("rowgear_ring: per-call server list accepted without ROWGEAR_UDF_ALLOW_SERVERS_ARG=1")
	}
	if e := lastError(t, c); !strings.Contains(e, "the servers argument is disabled") {
		t.Errorf("last error %q", e)
	}
	if p := prio(t, g.Addr, fn); p[1] != 0 {
		t.Fatalf("gearmand got %d jobs", p[1])
	}
	if p := prio(t, g.Addr, ring); p[1] != 0 {
		t.Fatalf("gearmand got %d rings", p[1])
	}
}

// benchUpdate times autocommit single-row UPDATEs, with or without an AFTER
// UPDATE trigger that queues an envelope-sized job (strict pattern).
//
//	go test ./udf -run '^$' -bench Update -benchtime 2000x
//
// With jsonOnly the trigger builds the same envelope into a variable and
// queues nothing: the difference to the full trigger is the UDF's own cost.
func benchUpdate(b *testing.B, trigger, jsonOnly bool) {
	db, _ := testenv.DB(b)
	ensureUDF(b)
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	mustExec(b, c, "CREATE TABLE articles (id INT PRIMARY KEY, title VARCHAR(200), views INT)")
	mustExec(b, c, "INSERT INTO articles VALUES (1, 'hello', 0)")
	if trigger {
		mustExec(b, c, triggerDDL(b, "articles", jsonOnly))
	}
	for i := range 50 { // warm up: connection, trigger compiled
		mustExec(b, c, fmt.Sprintf("UPDATE articles SET views = %d WHERE id = 1", -i))
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := c.ExecContext(ctx, fmt.Sprintf("UPDATE articles SET views = %d WHERE id = 1", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "updates/s")
}

func BenchmarkUpdatePlain(b *testing.B)           { benchUpdate(b, false, false) }
func BenchmarkUpdateTriggerJSONOnly(b *testing.B) { benchUpdate(b, true, true) }
func BenchmarkUpdateWithTrigger(b *testing.B)     { benchUpdate(b, true, false) }

// TestConcurrentSessions: 8 sessions submitting at once, each on its own
// connection to gearmand; then gearmand is killed and restarted between two
// waves, and every submit of the second wave still succeeds.
func TestConcurrentSessions(t *testing.T) {
	db, _ := testenv.DB(t)
	ensureUDF(t)
	g := testenv.StartGearmand(t)
	fn := rowFn(t)
	ctx := context.Background()
	conns := make([]*sql.Conn, 8)
	for i := range conns {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	wave := func() int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 100 {
					var h sql.NullString
					if err := c.QueryRowContext(ctx, "SELECT gman_do_background(?, 'x', NULL, ?)", fn, g.Addr).Scan(&h); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if h.Valid {
						ok++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return ok
	}
	if ok := wave(); ok != 800 {
		t.Fatalf("%d of 800 submits succeeded", ok)
	}
	waitClientConns(t, g.Addr, 8, "for 8 sessions")
	g.Kill()
	g.Start()
	if ok := wave(); ok != 800 {
		t.Fatalf("after a gearmand restart, %d of 800 submits succeeded", ok)
	}
	if p := prio(t, g.Addr, fn); p[1] != 800 {
		t.Fatalf("queued %d, want 800", p[1])
	}
}

// triggerDDL returns an AFTER UPDATE trigger on table (id, title, views)
// that queues the envelope strictly on a private gearmand, or with jsonOnly
// only builds it.
func triggerDDL(b *testing.B, table string, jsonOnly bool) string {
	envelope := `JSON_OBJECT('v', 1, 'id', ev, 'source', 'trigger', 'schema', DATABASE(), 'table', '` + table + `',
         'model', 'Article', 'op', 'update', 'pk', JSON_OBJECT('id', NEW.id),
         'row', JSON_OBJECT('id', NEW.id, 'title', NEW.title, 'views', NEW.views),
         'old', JSON_OBJECT('id', OLD.id, 'title', OLD.title, 'views', OLD.views),
         'ts', DATE_FORMAT(NOW(6), '%Y-%m-%dT%H:%i:%s.%fZ'))`
	head := "CREATE TRIGGER " + table + "_au AFTER UPDATE ON " + table + " FOR EACH ROW\nBEGIN\n  DECLARE ev CHAR(36) DEFAULT UUID();\n"
	if jsonOnly {
		return head + "  SET @rowgear_payload = " + envelope + ";\nEND"
	}
	g := testenv.StartGearmand(b)
	return head + "  IF gman_do_background('bench.Article.update', " + envelope + ", ev, '" + g.Addr + `') IS NULL THEN
    SET @rowgear_msg = CONCAT('rowgear: job not queued: ', IFNULL(gman_last_error(), '?'));
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @rowgear_msg;
  END IF;
END`
}

// BenchmarkUpdateRatio interleaves blocks of 100 autocommit single-row
// UPDATEs on a table without and a table with the strict trigger, in one
// session, so machine load hits both alike; b.N updates each.
func BenchmarkUpdateRatio(b *testing.B) {
	db, _ := testenv.DB(b)
	ensureUDF(b)
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, tb := range []string{"plain", "trig"} {
		mustExec(b, c, "CREATE TABLE "+tb+" (id INT PRIMARY KEY, title VARCHAR(200), views INT)")
		mustExec(b, c, "INSERT INTO "+tb+" VALUES (1, 'hello', 0)")
	}
	mustExec(b, c, triggerDDL(b, "trig", false))
	var dur [2]time.Duration
	run := func(k int, tb string, from, n int) {
		start := time.Now()
		for i := from; i < from+n; i++ {
			if _, err := c.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET views = %d WHERE id = 1", tb, i)); err != nil {
				b.Fatal(err)
			}
		}
		dur[k] += time.Since(start)
	}
	run(0, "plain", -50, 50) // warm up
	run(1, "trig", -50, 50)
	dur = [2]time.Duration{}
	b.ResetTimer()
	for done := 0; done < b.N; done += 100 {
		n := min(100, b.N-done)
		run(0, "plain", done, n)
		run(1, "trig", done, n)
	}
	b.ReportMetric(float64(dur[0].Microseconds())/float64(b.N), "plain-µs/update")
	b.ReportMetric(float64(dur[1].Microseconds())/float64(b.N), "trigger-µs/update")
	b.ReportMetric(float64(dur[1])/float64(dur[0]), "ratio")
}

// gooseUp returns the Up statements of the UDF's goose migration.
func gooseUp(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob("../migrations/*_gearman_udf.sql")
	if len(files) != 1 {
		t.Fatalf("the UDF migration: found %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	up, _, _ := strings.Cut(string(b), "-- +goose Down")
	_, up, _ = strings.Cut(up, "-- +goose Up")
	// Statements end with ';' at the end of a line, except between goose's
	// StatementBegin and StatementEnd, which enclose one statement.
	var out []string
	var block []string
	in := false
	for _, l := range strings.Split(up, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "-- +goose StatementBegin":
			in = true
		case l == "-- +goose StatementEnd":
			in = false
			out = append(out, strings.Join(block, "\n"))
			block = nil
		case in:
			block = append(block, l)
		case l != "" && !strings.HasPrefix(l, "--"):
			out = append(out, strings.TrimSuffix(l, ";"))
		}
	}
	return out
}

// TestInstallAndUpgradeUnderLoad: 8 sessions write rows through strict
// triggers while install.sql and the goose migration run again and a
// different build of the library replaces the installed one (make install);
// not one statement may fail. Then a restart loads the new build and
// writes go on. (Dropping the functions instead — the old upgrade advice —
// failed most statements with ERROR 1122 until FLUSH TABLES.)
func TestInstallAndUpgradeUnderLoad(t *testing.T) {
	g := testenv.StartGearmand(t)
	m := ownMariaDB(t, "ROWGEAR_GEARMAN_SERVERS="+g.Addr)
	db := m.DB("app")
	db.SetMaxOpenConns(16)
	execFile(t, db, "install.sql")
	fn := rowFn(t)
	ctx := context.Background()
	if _, err := db.Exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf(`CREATE TRIGGER t_au AFTER UPDATE ON t FOR EACH ROW
BEGIN
  IF gman_do_background('%s', JSON_OBJECT('id', NEW.id, 'v', NEW.v), UUID()) IS NULL THEN
    SET @rowgear_msg = CONCAT('rowgear: job not queued for t: ', IFNULL(gman_last_error(), 'unknown error'));
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @rowgear_msg;
  END IF;
END`, fn)); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if _, err := db.Exec("INSERT INTO t VALUES (?, 0)", i); err != nil {
			t.Fatal(err)
		}
	}
	// A different build of the library, as an upgrade would bring.
	src := t.TempDir()
	for _, f := range []string{"rowgear_udf.c", "Makefile"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("make", "-s", "-C", src)
	build.Env = append(os.Environ(), "CFLAGS=-O1 -g")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the new library: %v\n%s", err, out)
	}

	var ok, failed sync.Map
	writers := func(stop <-chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, bad := 0, 0
				for {
					select {
					case <-stop:
						ok.Store(i, n)
						failed.Store(i, bad)
						return
					default:
					}
					if _, err := db.ExecContext(ctx, "UPDATE t SET v = v + 1 WHERE id = ?", i); err != nil {
						if bad++; bad <= 3 {
							t.Errorf("writer %d: %v", i, err)
						}
						continue
					}
					n++
				}
			}()
		}
		return &wg
	}
	sum := func(m *sync.Map) int {
		n := 0
		m.Range(func(_, v any) bool { n += v.(int); return true })
		return n
	}
	// waitWrites lets the writers get at least n more statements through.
	progress := func() int {
		var s int
		db.QueryRow("SELECT SUM(v) FROM t").Scan(&s)
		return s
	}
	waitWrites := func(n int, what string) {
		from := progress()
		testenv.Eventually(t, 60*time.Second, what, func() bool { return progress() >= from+n })
	}

	stop := make(chan struct{})
	wg := writers(stop)
	waitWrites(200, "writes before the install")
	for range 3 {
		execFile(t, db, "install.sql")
		for _, s := range gooseUp(t) {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		waitWrites(100, "writes after install.sql and the migration")
	}
	if out, err := exec.Command("make", "-s", "-C", src, "install", "PLUGIN_DIR="+m.PluginDir()).CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	execFile(t, db, "install.sql")
	waitWrites(200, "writes after the library was replaced")
	close(stop)
	wg.Wait()
	t.Logf("%d statements while installing and upgrading, %d failed", sum(&ok), sum(&failed))
	if n := sum(&failed); n != 0 {
		t.Fatalf("%d statements failed", n)
	}
	if p := prio(t, g.Addr, fn); p[1] != sum(&ok) {
		t.Fatalf("gearmand queued %d jobs for %d updates", p[1], sum(&ok))
	}

	// The new build takes effect at the next restart.
	m.Stop()
	m.Start()
	if _, err := db.Exec("UPDATE t SET v = v + 1"); err != nil {
		t.Fatalf("after the restart with the new library: %v", err)
	}
}

// TestGeneratedStrictTriggerNamesServer: the strict trigger of package
// triggers passes the UDF's reason whole (MariaDB's SIGNAL takes 512
// characters), and the reason starts with the server and the code, so a
// message cut at MySQL 8's 128 still says which gearmand failed and how.
func TestGeneratedStrictTriggerNamesServer(t *testing.T) {
	db, _ := testenv.DB(t)
	ensureUDF(t)
	ctx := context.Background()
	if _, err := db.Exec("CREATE TABLE articles (id INT PRIMARY KEY, title VARCHAR(200))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO articles VALUES (1, 'a')"); err != nil {
		t.Fatal(err)
	}
	// The trigger writes its commit gate row into rowgear's table.
	if err := migrations.UpTo(ctx, db, migrations.Rowgear(), 10); err != nil {
		t.Fatal(err)
	}
	tab, err := sqlschema.LoadTable(ctx, db, "", "articles")
	if err != nil {
		t.Fatal(err)
	}
	trs, err := triggers.Generate(triggers.Spec{Namespace: "rowgear", Mode: triggers.Strict, Model: "Article",
		Table: "articles", Events: []string{"update"}}, tab)
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	const call = "rowgear_payload, rowgear_id)"
	if len(trs) != 1 || strings.Count(trs[0].Create, call) != 1 {
		t.Fatalf("cannot find the gman_do_background call in %v", trs)
	}
	if _, err := db.Exec(strings.Replace(trs[0].Create, call, "rowgear_payload, rowgear_id, '"+dead+"')", 1)); err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec("UPDATE articles SET title = 'b' WHERE id = 1")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1644 {
		t.Fatalf("UPDATE with gearmand down: %v, want SIGNAL 45000", err)
	}
	want := "rowgear: submitting rowgear.Article.update failed: gearmand " + dead + ": GEARMAN_COULD_NOT_CONNECT"
	if !strings.HasPrefix(me.Message, want) || len(want) > 128 {
		t.Fatalf("message %q (%d characters) does not start with %q", me.Message, len(me.Message), want)
	}
	if !strings.HasSuffix(me.Message, "; in gman_do_background(rowgear.Article.update)") {
		t.Fatalf("message %q (%d characters) is cut", me.Message, len(me.Message))
	}
}

// TestNameLookupBoundedByDeadline: a server name whose DNS server never
// answers (a stopped compose service) costs a write that server's share of
// the deadline, not the resolver's 2 × 5 s, and the next server takes the
// job. mariadbd runs with a resolv.conf naming a DNS server that reads
// queries and never answers.
func TestNameLookupBoundedByDeadline(t *testing.T) {
	dnsIP, queries := silentDNS(t)
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+dnsIP+"\noptions timeout:5 attempts:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := testenv.StartGearmand(t)
	ensureUDF(t)
	m := testenv.StartMariaDB(t, testenv.WithUDF(soName), testenv.WithoutBinlog(), testenv.WithResolvConf(conf),
		testenv.WithServerEnv("ROWGEAR_UDF_ALLOW_SERVERS_ARG=1", "ROWGEAR_GEARMAN_TIMEOUT_MS=1000",
			"ROWGEAR_GEARMAN_TIMEOUT_MS_PER_MIB=0"))
	db := m.DB("")
	execFile(t, db, "install.sql")
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fn := rowFn(t)
	const gone = "gearmand-gone.test"
	ok, took := timedSubmit(t, c, fn, "x", gone+":4730,"+g.Addr)
	if !ok {
		t.Fatalf("no failover past a name that does not resolve: %s", lastError(t, c))
	}
	if queries.Load() == 0 {
		t.Fatal("the silent DNS server saw no query: the lookup was not exercised")
	}
	if took >= time.Second {
		t.Errorf("the write took %s: the lookup was not bounded by the 1000 ms deadline", took)
	}
	// Alone, the name fails the write at the deadline, saying why.
	ok, took = timedSubmit(t, c, fn, "x", gone+":4730")
	if ok {
		t.Fatal("a handle from a server whose name does not resolve")
	}
	if took > 1500*time.Millisecond {
		t.Errorf("the refused write took %s against a 1000 ms deadline", took)
	}
	if e := lastError(t, c); !strings.Contains(e, "resolving '"+gone+"' took longer than the time left") {
		t.Errorf("last error %q", e)
	}
	// A name /etc/hosts answers works, at its IPv4 address.
	_, port, _ := net.SplitHostPort(g.Addr)
	if ok, _ := timedSubmit(t, c, fn, "x", "localhost:"+port); !ok {
		t.Fatalf("localhost:%s: %s", port, lastError(t, c))
	}
	if p := prio(t, g.Addr, fn); p[1] != 2 {
		t.Fatalf("queued %d, want 2", p[1])
	}
}

// silentDNS listens for DNS queries on port 53 of a loopback address of
// its own and never answers; it returns that address and counts the
// queries. The address is picked at random (and picked again when taken),
// so that test runs side by side (two clones' make test) do not collide.
func silentDNS(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	var pc net.PacketConn
	var err error
	var ip string
	for range 20 {
		ip = fmt.Sprintf("127.%d.%d.%d", 1+mrand.IntN(254), mrand.IntN(256), 1+mrand.IntN(254))
		if pc, err = net.ListenPacket("udp4", ip+":53"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("a silent DNS server on %s:53: %v", ip, err)
	}
	t.Cleanup(func() { pc.Close() })
	var n atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return ip, &n
}

// ringFn returns a doorbell function name unique to this call: rowgear_ring
// takes only names ending in ".outbox".
func ringFn(t testing.TB) string {
	return testenv.Name(t, "udf") + ".outbox"
}

// ringOnce calls rowgear_ring; valid is false for NULL.
func ringOnce(t testing.TB, c *sql.Conn, args ...any) (rang int64, valid bool) {
	t.Helper()
	ph := strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")
	var n sql.NullInt64
	if err := c.QueryRowContext(context.Background(), "SELECT rowgear_ring("+ph+")", args...).Scan(&n); err != nil {
		t.Fatalf("rowgear_ring: %v", err)
	}
	return n.Int64, n.Valid
}

// ringUntilWritten rings until a ring is written to a gearmand (the first
// rings of a session are dropped while its connect is under way, and for
// 500 ms after a failed one).
func ringUntilWritten(t testing.TB, c *sql.Conn, args ...any) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("rowgear_ring%q to write a ring", args), func() bool {
		n, valid := ringOnce(t, c, args...)
		if !valid {
			t.Fatalf("rowgear_ring%q = NULL: %s", args, lastError(t, c))
		}
		return n == 1
	})
}

// ringBurst rings n (< 1000000) times in one statement (a sequence table's
// rows, so the time is the UDF's, not n round trips') and counts the rings
// written (1), dropped (0) and NULL. One call per row: a sum over a derived
// column would be merged into one call per sum.
func ringBurst(ctx context.Context, c *sql.Conn, n int, fn, servers string) (written, dropped, null int, err error) {
	var sum int
	err = c.QueryRowContext(ctx, fmt.Sprintf("SELECT SUM(IFNULL(rowgear_ring(?, ?), 1000000)) FROM seq_1_to_%d", n),
		fn, servers).Scan(&sum)
	written, null = sum%1000000, sum/1000000
	return written, n - written - null, null, err
}

// TestRingReachesGearmand: a ring is a background job of the doorbell
// function (unique key the function's name, workload "ring") that a worker
// takes; rings while it is queued are one job; once a worker took it, the
// next ring is a new job.
func TestRingReachesGearmand(t *testing.T) {
	_, c := session(t)
	ctx := context.Background()
	// Through the global server list (mysqld's ROWGEAR_GEARMAN_SERVERS).
	var servers string
	if err := c.QueryRowContext(ctx, "SELECT gman_servers_set(NULL)").Scan(&servers); err != nil {
		t.Fatal(err)
	}
	fn := ringFn(t)
	jobs := startWorker(t, strings.Split(servers, ",")[0], fn)
	ringUntilWritten(t, c, fn)
	if j := receive(t, jobs); j.fn != fn || j.unique != fn || string(j.data) != "ring" {
		t.Errorf("job %+v, want function and unique %q, workload \"ring\"", j, fn)
	}
	if e := lastError(t, c); e != "" {
		t.Errorf("gman_last_error() after a written ring = %q, want NULL", e)
	}

	// A private gearmand with no worker: rings coalesce into one queued job.
	// 255 bytes is the longest name; its unique key is cut to gearmand's 63.
	g := testenv.StartGearmand(t)
	long := strings.Repeat("l", 255-len(".outbox")) + ".outbox"
	for _, f := range []string{fn, long} {
		ringUntilWritten(t, c, f, g.Addr)
		w, d, null, err := ringBurst(ctx, c, 200, f, g.Addr)
		if err != nil || null != 0 || w == 0 {
			t.Fatalf("200 rings of %.20s…: %d written, %d dropped, %d NULL, %v: %s", f, w, d, null, err, lastError(t, c))
		}
		// A ring of another function after them on the same connection:
		// once its job is queued, gearmand has read every ring before it.
		marker := ringFn(t)
		ringUntilWritten(t, c, marker, g.Addr)
		testenv.Eventually(t, 60*time.Second, "the marker ring's job", func() bool { return prio(t, g.Addr, marker)[1] == 1 })
		if p := prio(t, g.Addr, f); p[1] != 1 {
			t.Fatalf("%d queued jobs of %.20s… after %d rings, want 1 (coalesced)", p[1], f, w+1)
		}
	}
	jobs = startWorker(t, g.Addr, fn)
	receive(t, jobs)
	testenv.Eventually(t, 60*time.Second, "a ring after the job was taken to make a new job", func() bool {
		ringOnce(t, c, fn, g.Addr)
		select {
		case <-jobs:
			return true
		default:
			return false
		}
	})
}

// TestRingNeverWaits: a gearmand that reads nothing (SIGSTOP), one that is
// not there, and one killed: rings return 0 or 1 at once, never NULL, from
// one session and from four at a time; when gearmand is back, rings are
// written again and a job arrives.
func TestRingNeverWaits(t *testing.T) {
	db, c := session(t)
	ctx := context.Background()
	g := testenv.StartGearmand(t)
	fn := ringFn(t)
	ringUntilWritten(t, c, fn, g.Addr)
	// A UDF that waited for gearmand (1 s timeout) would need 1000 s.
	const bound = 30 * time.Second
	burst := func(what string, c *sql.Conn, servers string) (written int) {
		t.Helper()
		start := time.Now()
		w, d, null, err := ringBurst(ctx, c, 1000, fn, servers)
		took := time.Since(start)
		t.Logf("%s: 1000 rings in %s: %d written, %d dropped", what, took, w, d)
		if err != nil || null != 0 || w+d != 1000 || took > bound {
			t.Fatalf("%s: %d written, %d dropped, %d NULL in %s (%v), want 1000 rings of 0 or 1 within %s: %s",
				what, w, d, null, took, err, bound, lastError(t, c))
		}
		return w
	}

	g.Pause()
	burst("gearmand stopped, one session", c, g.Addr)
	// Four sessions at once, three of them new: their connects go into the
	// stopped gearmand's listen backlog and stay there.
	conns := []*sql.Conn{c}
	for range 3 {
		cc, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		conns = append(conns, cc)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, cc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, d, null, err := ringBurst(ctx, cc, 1000, fn, g.Addr)
			if err == nil && (null != 0 || w+d != 1000) {
				err = fmt.Errorf("%d written, %d dropped, %d NULL", w, d, null)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("gearmand stopped, four sessions: 4 × 1000 rings in %s", took)
	if err := errors.Join(errs...); err != nil || took > bound {
		t.Fatalf("four sessions, gearmand stopped: %v in %s (bound %s)", err, took, bound)
	}

	// Rings of one name less than 5 ms apart are one packet
	// (RING_COALESCE_MS): a burst never fills the socket buffers.
	long := strings.Repeat("l", 255-len(".outbox")) + ".outbox"
	start = time.Now()
	w, d, null, err := ringBurst(ctx, c, 200000, long, g.Addr)
	took = time.Since(start)
	t.Logf("gearmand stopped: 200000 rings of one 255-byte name in %s: %d written, %d dropped (%s)", took, w, d, lastError(t, c))
	if err != nil || null != 0 || d != 0 || took > bound {
		t.Fatalf("200000 rings of one name to a stopped gearmand: %d written, %d dropped, %d NULL in %s (%v), want none dropped (coalesced), within %s",
			w, d, null, took, err, bound)
	}
	// Rings of as many names fill the buffers (a few MB): the rest are
	// dropped, never waited for.
	start = time.Now()
	var sum int
	err = c.QueryRowContext(ctx, "SELECT SUM(IFNULL(rowgear_ring(CONCAT(LPAD(seq, 8, '0'), ?), ?), 1000000)) FROM seq_1_to_200000",
		long[8:], g.Addr).Scan(&sum)
	took = time.Since(start)
	w, null = sum%1000000, sum/1000000
	d = 200000 - w - null
	t.Logf("gearmand stopped: 200000 rings of 255-byte names in %s: %d written, %d dropped (%s)", took, w, d, lastError(t, c))
	if err != nil || null != 0 || d == 0 || took > bound {
		t.Fatalf("200000 rings of distinct names to a stopped gearmand: %d written, %d dropped, %d NULL in %s (%v), want some dropped, none NULL, within %s",
			w, d, null, took, err, bound)
	}

	// Nothing listens: every ring is dropped, at once.
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if w := burst("nothing listening", c, dead); w != 0 {
		t.Fatalf("%d rings written to %s, where nothing listens", w, dead)
	}
	if e := lastError(t, c); !strings.Contains(e, "dropped: "+dead+": Connection refused") {
		t.Errorf("gman_last_error() = %q, want the server and why", e)
	}

	// Going on: the rings written while it was stopped are one job.
	g.Resume()
	ringUntilWritten(t, c, fn, g.Addr)
	testenv.Eventually(t, 60*time.Second, "the ring's job after SIGCONT", func() bool { return prio(t, g.Addr, fn)[1] == 1 })

	// Killed (its job lost with it), then started again: rings are
	// dropped meanwhile, then written, and a job arrives.
	g.Kill()
	burst("gearmand killed", c, g.Addr)
	g.Start()
	ringUntilWritten(t, c, fn, g.Addr)
	testenv.Eventually(t, 60*time.Second, "the ring's job after a restart", func() bool { return prio(t, g.Addr, fn)[1] == 1 })
}

// TestRingRefusesBadArguments: only doorbell names (ending in ".outbox", at
// most 255 bytes, no NUL) are rung; anything else is NULL with the reason,
// and nothing reaches gearmand.
func TestRingRefusesBadArguments(t *testing.T) {
	_, c := session(t)
	ctx := context.Background()
	g := testenv.StartGearmand(t)
	bad := []struct {
		args []any
		want string
	}{
		{[]any{"rowgear.Article.insert", g.Addr}, "function 'rowgear.Article.insert' is not allowed: the name must end in '.outbox'"},
		{[]any{"", g.Addr}, "function name is empty"},
		{[]any{nil, g.Addr}, "function name is NULL"},
		{[]any{nil}, "function name is NULL"},
		{[]any{".outbox", g.Addr}, "must end in '.outbox'"},
		{[]any{"rowgear.outbox.x", g.Addr}, "must end in '.outbox'"},
		{[]any{42, g.Addr}, "function '42' is not allowed"},
		{[]any{strings.Repeat("f", 256-len(".outbox")) + ".outbox", g.Addr}, "longer than 255 bytes"},
		{[]any{"a\x00b.outbox", g.Addr}, "contains a NUL byte"},
		{[]any{"rowgear.outbox", ""}, "servers must be"},
		{[]any{"rowgear.outbox", "127.0.0.1:abc"}, "invalid server '127.0.0.1:abc': port 'abc' is not a number"},
	}
	for _, b := range bad {
		before := failures(t, c)
		if n, valid := ringOnce(t, c, b.args...); valid {
			t.Errorf("rowgear_ring%q = %d, want NULL", b.args, n)
			continue
		}
		if e := lastError(t, c); !strings.Contains(e, b.want) {
			t.Errorf("rowgear_ring%q: gman_last_error() = %q, want %q", b.args, e, b.want)
		}
		if failures(t, c) <= before {
			t.Errorf("rowgear_ring%q: not counted in gman_failures()", b.args)
		}
	}
	for q, want := range map[string]string{
		"SELECT rowgear_ring()":                 "takes 1 or 2 arguments: function [, servers]",
		"SELECT rowgear_ring('a.outbox', 1, 2)": "takes 1 or 2 arguments",
	} {
		if _, err := c.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", q, err, want)
		}
	}
	// A good ring after them reaches gearmand; the bad ones did not.
	ringUntilWritten(t, c, "rowgear.outbox", g.Addr)
	testenv.Eventually(t, 60*time.Second, "the good ring's job", func() bool { return prio(t, g.Addr, "rowgear.outbox")[1] == 1 })
	st, err := testenv.Status(ctx, g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for f := range st {
		if f != "rowgear.outbox" {
			t.Errorf("gearmand has function %q", f)
		}
	}
}

// TestRingSurvivesDurableQueueRestart: a queued ring is kept by gearmand's
// sqlite queue and gearmand starts again with it (an empty workload would
// be stored as NULL, and gearmand 1.1.20 then fails to load its queue).
func TestRingSurvivesDurableQueueRestart(t *testing.T) {
	_, c := session(t)
	g := testenv.StartGearmand(t, "--queue-type=libsqlite3", "--libsqlite3-db="+filepath.Join(t.TempDir(), "queue.sqlite"))
	fn := ringFn(t)
	ringUntilWritten(t, c, fn, g.Addr)
	testenv.Eventually(t, 60*time.Second, "the ring's job", func() bool { return prio(t, g.Addr, fn)[1] == 1 })
	g.Stop()
	g.Start()
	if p := prio(t, g.Addr, fn); p[1] != 1 {
		t.Fatalf("after a restart gearmand has %d queued rings, want 1", p[1])
	}
	jobs := startWorker(t, g.Addr, fn)
	if j := receive(t, jobs); string(j.data) != "ring" {
		t.Fatalf("job %+v after a restart", j)
	}
}

// TestRingThreadEndAndUnload runs on a mariadbd of its own whose global
// server list names gearmand by host name (resolved off the writer's
// thread: the first rings may be dropped): a ring connection is closed when
// its session's thread ends and when the library is unloaded, and the
// server survives threads ending after the unload.
func TestRingThreadEndAndUnload(t *testing.T) {
	g := testenv.StartGearmand(t)
	_, port, _ := strings.Cut(g.Addr, ":")
	m := ownMariaDB(t, "ROWGEAR_GEARMAN_SERVERS=localhost:"+port)
	db := m.DB("")
	db.SetMaxIdleConns(0) // a closed sql.Conn ends its session (and thread)
	execFile(t, db, "install.sql")
	ctx := context.Background()
	conn := func() *sql.Conn {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fn := ringFn(t)
	c1, c2, c3 := conn(), conn(), conn()
	defer c1.Close()
	defer c2.Close()
	for _, c := range []*sql.Conn{c1, c2, c3} {
		time.Sleep(10 * time.Millisecond) // past RING_COALESCE_MS (5 ms): each session writes its own
		ringUntilWritten(t, c, fn)
	}
	testenv.Eventually(t, 60*time.Second, "the ring's job", func() bool { return prio(t, g.Addr, fn)[1] == 1 })
	waitClientConns(t, g.Addr, 3, "one per session")
	c3.Close()
	waitClientConns(t, g.Addr, 2, "the ended session's ring connection closed")

	ids := make([]int64, 2)
	for i, c := range []*sql.Conn{c1, c2} {
		if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	execFile(t, db, "uninstall.sql")
	waitClientConns(t, g.Addr, 0, "unload closes the ring connections")
	c2.Close()
	c1.Close()
	testenv.Eventually(t, 60*time.Second, "the two sessions' threads to end", func() bool {
		var n int
		err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (?, ?)", ids[0], ids[1]).Scan(&n)
		if err != nil {
			t.Fatalf("mariadbd after unload and thread exits: %v", err)
		}
		return n == 0
	})
	execFile(t, db, "install.sql")
	c4 := conn()
	defer c4.Close()
	jobs := startWorker(t, g.Addr, fn)
	receive(t, jobs)
	ringUntilWritten(t, c4, fn)
	receive(t, jobs)
}

// TestRingNameLookupNeverWaits: a ring to a name whose DNS server never
// answers is dropped at once (the lookup goes on in the background), and
// the next server of the list takes the rings meanwhile.
func TestRingNameLookupNeverWaits(t *testing.T) {
	dnsIP, queries := silentDNS(t)
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+dnsIP+"\noptions timeout:5 attempts:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := testenv.StartGearmand(t)
	ensureUDF(t)
	m := testenv.StartMariaDB(t, testenv.WithUDF(soName), testenv.WithoutBinlog(), testenv.WithResolvConf(conf),
		testenv.WithServerEnv("ROWGEAR_UDF_ALLOW_SERVERS_ARG=1"))
	db := m.DB("")
	execFile(t, db, "install.sql")
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustExec(t, c, "USE mysql") // for ringBurst's sequence table
	fn := ringFn(t)
	const gone = "gearmand-gone.test:4730"
	start := time.Now()
	w, d, null, err := ringBurst(ctx, c, 1000, fn, gone)
	took := time.Since(start)
	if err != nil || w != 0 || d != 1000 || null != 0 || took > 30*time.Second {
		t.Fatalf("1000 rings to a name that does not resolve: %d written, %d dropped, %d NULL in %s (%v)", w, d, null, took, err)
	}
	t.Logf("1000 rings to a name whose DNS server is silent: dropped in %s", took)
	if e := lastError(t, c); !strings.Contains(e, "dropped: "+gone+": resolving gearmand-gone.test") {
		t.Errorf("last error %q", e)
	}
	testenv.Eventually(t, 60*time.Second, "the silent DNS server to see the lookup", func() bool { return queries.Load() > 0 })
	// The name first, a live gearmand second: the second takes the rings.
	ringUntilWritten(t, c, fn, gone+","+g.Addr)
	testenv.Eventually(t, 60*time.Second, "the ring's job", func() bool { return prio(t, g.Addr, fn)[1] == 1 })
}
