package rowgear_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowgear/rowgear"
	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

// TestMain: Run and Shutdown leave no goroutine behind, nor do the tests'
// applications (their HTTP servers, bridges and clients).
func TestMain(m *testing.M) { testenv.RunWithoutLeaks(m, testenv.RemoveBuilds) }

// Note is the embedding application's model: its inserts come from the
// binlog; shout and flaky are record jobs.
type Note struct {
	dispatch.Record
	app *app

	ID   int64  `db:"id,pk"`
	Body string `db:"body"`
}

func (n *Note) TriggerInsert(ctx context.Context) error {
	_, err := n.DB().ExecContext(ctx, "INSERT INTO handled (note_id, body) VALUES (?, ?)", n.ID, n.Body)
	return err
}

// Shout returns the note's body in capitals.
func (n *Note) Shout(context.Context) (string, error) { return strings.ToUpper(n.Body), nil }

// Flaky fails its first run and succeeds at its second.
func (n *Note) Flaky(context.Context) error {
	if n.app.flaky.Add(1) == 1 {
		return errors.New("flaky: first run fails")
	}
	return nil
}

// app is the application's state: what its middleware saw.
type app struct {
	flaky atomic.Int64
	mu    sync.Mutex
	seen  []string // "function: error" of each run the middleware saw
}

func (a *app) register(reg *dispatch.Registry) error {
	reg.Use(func(next gearman.Handler) gearman.Handler {
		return func(ctx context.Context, j *gearman.Job) (any, error) {
			out, err := next(ctx, j)
			a.mu.Lock()
			a.seen = append(a.seen, fmt.Sprintf("%s: %v", j.Function, err))
			a.mu.Unlock()
			return out, err
		}
	})
	reg.HandleFunc("Worker1.reverse", func(_ context.Context, j *gearman.Job) (any, error) {
		r := []rune(string(j.Workload))
		for i, k := 0, len(r)-1; i < k; i, k = i+1, k-1 {
			r[i], r[k] = r[k], r[i]
		}
		return string(r), nil
	})
	return dispatch.Register[Note](reg, "Note",
		dispatch.Constructor(func() *Note { return &Note{app: a} }),
		dispatch.RecordJob("shout", (*Note).Shout),
		dispatch.RecordJob("flaky", (*Note).Flaky))
}

func (a *app) saw(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range a.seen {
		if strings.HasSuffix(x, s) {
			return true
		}
	}
	return false
}

// env is one test's database, gearmand and gearman.yml.
type env struct {
	db   *sql.DB
	dsn  string
	gm   string
	ns   string
	cfg  *config.Config
	file string
}

func newEnv(t *testing.T, migrate bool) *env {
	t.Helper()
	db, dsn := testenv.DB(t)
	e := &env{db: db, dsn: dsn, gm: testenv.Gearman(t), ns: testenv.Name(t, "emb")}
	if migrate {
		if _, err := migrations.Up(context.Background(), db, migrations.Rowgear().WithoutUDF()); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		"CREATE TABLE notes (id BIGINT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL)",
		"CREATE TABLE handled (note_id BIGINT NOT NULL, body TEXT NOT NULL)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	e.file = filepath.Join(t.TempDir(), "gearman.yml")
	yml := fmt.Sprintf(`all:
  namespace: %s
  server: {default: '%s'}
  worker:
    plain:
      %s: [Worker1, reverse]
  dbworker:
    notes: {Note: [shout, flaky, ~]}
  models:
    Note: {table: notes, events: [insert], source: binlog}
  database: {dsn: '%s'}
  binlog: {server_id: %d, position: table}
  retry:
    default: {attempts: 3, backoff: 100ms, max_backoff: 200ms}
`, e.ns, e.gm, e.ns+"_reverse", dsn, 100000+rand.IntN(1<<30))
	if err := os.WriteFile(e.file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.cfg, err = config.Load(e.file, ""); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serve is an application's main: its own HTTP API (POST /notes writes a
// row; the worker's metrics and readiness on the same server), binlogbridge
// and a rowgear worker in one process, until ctx ends; then it shuts all
// three down.
func serve(ctx context.Context, ln net.Listener, cfg *config.Config, db *sql.DB, register func(*dispatch.Registry) error, opts ...rowgear.WorkerOption) error {
	reg := dispatch.NewRegistry(dispatch.WithLogger(quiet))
	if err := register(reg); err != nil {
		return err
	}
	w, err := rowgear.NewWorker(ctx, cfg, reg, append([]rowgear.WorkerOption{rowgear.WithLogger(quiet)}, opts...)...)
	if err != nil {
		return err
	}
	b, err := bridge.New(ctx, cfg, bridge.WithLogger(quiet))
	if err != nil {
		w.Shutdown(ctx)
		return err
	}
	defer b.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /notes", func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		res, err := db.ExecContext(r.Context(), "INSERT INTO notes (body) VALUES (?)", string(body))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		id, _ := res.LastInsertId()
		fmt.Fprint(rw, id)
	})
	mux.Handle("GET /metrics", w.MetricsHandler())
	mux.Handle("GET /readyz", w.ReadyHandler())
	srv := &http.Server{Handler: mux}

	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errs[0] = err
		}
	})
	wg.Go(func() { errs[1] = b.Run(ctx) })
	wg.Go(func() { errs[2] = w.Run(ctx) })
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(sctx), w.Shutdown(sctx))
	wg.Wait()
	return errors.Join(append(errs, err)...)
}

// TestWorkerEmbeddedBesideHTTPServer: an application runs a worker and a
// bridge in its own main beside its HTTP server; a row written through its
// API reaches the handler, a record job answers, /readyz of its own server
// is the worker's, and cancelling ctx stops everything cleanly.
func TestWorkerEmbeddedBesideHTTPServer(t *testing.T) {
	e := newEnv(t, true)
	a := &app{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, ln, e.cfg, e.db, a.register, rowgear.WithSet("notes"), rowgear.WithConcurrency(2))
	}()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	url := "http://" + ln.Addr().String()
	testenv.Eventually(t, 30*time.Second, "/readyz of the application's server to answer 200", func() bool {
		res, err := hc.Get(url + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	testenv.Eventually(t, 30*time.Second, "the bridge to save its start position", func() bool {
		return e.count(t, "SELECT COUNT(*) FROM rowgear_binlog_position") == 1
	})

	res, err := hc.Post(url+"/notes", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /notes: %s %s", res.Status, id)
	}
	testenv.Eventually(t, 30*time.Second, "Note.TriggerInsert of note "+string(id), func() bool {
		return e.count(t, "SELECT COUNT(*) FROM handled WHERE note_id = ? AND body = 'hello'", string(id)) == 1
	})

	gc := gearman.NewClient([]string{e.gm})
	defer gc.Close()
	reg := dispatch.NewRegistry()
	if err := a.register(reg); err != nil {
		t.Fatal(err)
	}
	jobs := dispatch.NewClient(gc, reg, e.ns)
	var nid int64
	fmt.Sscan(string(id), &nid)
	jctx, jcancel := context.WithTimeout(ctx, 30*time.Second)
	defer jcancel()
	out, err := jobs.Task(jctx, &Note{ID: nid}, "shout")
	if err != nil || out.String() != "HELLO" {
		t.Fatalf("shout: %v, %v", out, err)
	}
	// The application's middleware (Registry.Use) runs inside the retry
	// guard: it sees the handler's own error of the first run, and the
	// guard retries the job.
	if _, err := jobs.TaskBackground(jctx, &Note{ID: nid}, "flaky"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the flaky job to succeed at its retry", func() bool {
		return a.flaky.Load() >= 2 && a.saw("Note.flaky: <nil>")
	})
	if !a.saw("Note.flaky: flaky: first run fails") {
		t.Errorf("the application's middleware did not see the handler's error; it saw %q", a.seen)
	}

	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("the application stopped with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the application did not stop within 60 s of its ctx ending")
	}
	if _, err := hc.Get(url + "/readyz"); err == nil {
		t.Error("the application's server still answers after it stopped")
	}
}

// reverse starts a worker of the plain set whose handler blocks until
// release is closed, and returns it with its Run's result.
func blockingWorker(t *testing.T, e *env, started chan<- struct{}, release <-chan struct{}) *rowgear.Worker {
	t.Helper()
	reg := dispatch.NewRegistry()
	reg.HandleFunc("Worker1.reverse", func(_ context.Context, j *gearman.Job) (any, error) {
		close(started)
		<-release
		return "done: " + string(j.Workload), nil
	})
	w, err := rowgear.NewWorker(context.Background(), e.cfg, reg, rowgear.WithSet("plain"), rowgear.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Functions(); len(got) != 1 || got[0] != e.ns+"_reverse" {
		t.Fatalf("functions %v", got)
	}
	return w
}

// TestWorkerShutdownLetsRunningJobsFinish: Shutdown stops taking jobs,
// waits for the running one to finish and report, and Run then returns nil;
// a worker runs once.
func TestWorkerShutdownLetsRunningJobsFinish(t *testing.T) {
	e := newEnv(t, false)
	started, release := make(chan struct{}), make(chan struct{})
	w := blockingWorker(t, e, started, release)
	ran := make(chan error, 1)
	go func() { ran <- w.Run(context.Background()) }()

	gc := gearman.NewClient([]string{e.gm})
	defer gc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	result := make(chan string, 1)
	go func() {
		res, err := gc.Task(ctx, e.ns+"_reverse", []byte("abc"), gearman.Normal)
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		result <- res.String()
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the job did not start")
	}
	shut := make(chan error, 1)
	go func() { shut <- w.Shutdown(ctx) }()
	// Shutdown cannot end while the handler runs; a Shutdown whose ctx
	// ends first says so.
	short, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer scancel()
	if err := w.Shutdown(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a running job and a short ctx: %v", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a job was running", err)
	default:
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := <-result; got != "done: abc" {
		t.Errorf("the running job's client got %q", got)
	}
	if w.Done() != 1 {
		t.Errorf("Done %d, want 1", w.Done())
	}
	if err := w.Run(ctx); !errors.Is(err, rowgear.ErrWorkerStopped) {
		t.Errorf("second Run: %v", err)
	}
}

// TestNewWorkerChecks: NewWorker reports what would fail later, as what it
// is, and leaves nothing open.
func TestNewWorkerChecks(t *testing.T) {
	e := newEnv(t, false)
	a := &app{}
	reg := dispatch.NewRegistry()
	if err := a.register(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  *config.Config
		opts []rowgear.WorkerOption
		is   error
		want string
	}{
		{"bad option", e.cfg, []rowgear.WorkerOption{rowgear.WithConcurrency(0)}, nil, "WithConcurrency(0): want 1 or more"},
		{"unknown set", e.cfg, []rowgear.WorkerOption{rowgear.WithSet("nosuch")}, config.ErrUnknownSet, `WithSet("nosuch")`},
		{"unknown server", e.cfg, []rowgear.WorkerOption{rowgear.WithServer("other")}, nil, "other"},
		{"not migrated", e.cfg, nil, rowgear.ErrNotMigrated, "pending"},
		{"bad dsn", e.cfg, []rowgear.WorkerOption{rowgear.WithDSN(strings.Replace(e.dsn, "root@", "root:wrong@", 1))}, nil, "Access denied"},
	} {
		w, err := rowgear.NewWorker(ctx, c.cfg, reg, c.opts...)
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (worker %v), want %v %q", c.name, err, w, c.is, c.want)
		}
	}
	// Registrations that disagree with gearman.yml: no handler for Note.
	if _, err := migrations.Up(ctx, e.db, migrations.Rowgear().WithoutUDF()); err != nil {
		t.Fatal(err)
	}
	if _, err := rowgear.NewWorker(ctx, e.cfg, dispatch.NewRegistry(), rowgear.WithSet("notes")); !errors.Is(err, dispatch.ErrMismatch) {
		t.Errorf("empty registry: %v", err)
	}
	// The application's own pool: used, not closed.
	w, err := rowgear.NewWorker(ctx, e.cfg, reg, rowgear.WithDB(e.db), rowgear.WithSet("notes"), rowgear.WithLogger(quiet),
		rowgear.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(w.Functions(), " "); !strings.Contains(got, e.ns+".Note.insert") || !strings.Contains(got, e.ns+".Note.shout") {
		t.Errorf("functions %s", got)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.db.PingContext(ctx); err != nil {
		t.Errorf("the worker closed the application's pool: %v", err)
	}
	// Shutdown before Run releases the worker; Run then refuses.
	w, err = rowgear.NewWorker(ctx, e.cfg, reg, rowgear.WithLogger(quiet), rowgear.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Run(ctx); !errors.Is(err, rowgear.ErrWorkerStopped) {
		t.Errorf("Run after Shutdown: %v", err)
	}
}

// TestWorkerOptionsCheckThemselves: each bad argument is an error of
// NewWorker naming the option.
func TestWorkerOptionsCheckThemselves(t *testing.T) {
	cfg := &config.Config{}
	reg := dispatch.NewRegistry()
	for name, opt := range map[string]rowgear.WorkerOption{
		"WithSet":         rowgear.WithSet(""),
		"WithServer":      rowgear.WithServer(""),
		"WithDSN":         rowgear.WithDSN(""),
		"WithDB":          rowgear.WithDB(nil),
		"WithLogger":      rowgear.WithLogger(nil),
		"WithName":        rowgear.WithName(""),
		"WithConcurrency": rowgear.WithConcurrency(-1),
		"WithMaxJobs":     rowgear.WithMaxJobs(-1),
		"WithIdleTimeout": rowgear.WithIdleTimeout(-time.Second),
		"WithJobTimeout":  rowgear.WithJobTimeout(-time.Second),
		"WithStateDir":    rowgear.WithStateDir(""),
		"WithMiddleware":  rowgear.WithMiddleware(nil),
		"WithListeners":   rowgear.WithListeners("", ""),
	} {
		if _, err := rowgear.NewWorker(context.Background(), cfg, reg, opt); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestWorkerSpeaksTheConfiguredSerializer: with `serializer: php` in
// gearman.yml the worker decodes a PHP-serialized workload and answers in
// serialize() (as an sfGearmanPlugin client expects), and logs where
// rowgear reads the file differently from the plugin.
func TestWorkerSpeaksTheConfiguredSerializer(t *testing.T) {
	gm := testenv.Gearman(t)
	ns := testenv.Name(t, "php")
	file := filepath.Join(t.TempDir(), "gearman.yml")
	yml := fmt.Sprintf(`all:
  namespace: %s
  serializer: php
  server: {default: '%s'}
  worker:
    plain:
      %s_sum: [Worker1, sum]
`, ns, gm, ns)
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notes) == 0 {
		t.Fatal("a namespace without naming: gives no note")
	}
	reg := dispatch.NewRegistry()
	reg.HandleFunc("Worker1.sum", func(_ context.Context, j *gearman.Job) (any, error) {
		var in map[string]int
		if err := j.Decode(&in); err != nil {
			return nil, err
		}
		return map[string]int{"sum": in["a"] + in["b"]}, nil
	})
	var logged bytes.Buffer
	w, err := rowgear.NewWorker(context.Background(), cfg, reg, rowgear.WithSet("plain"),
		rowgear.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	gc := gearman.NewClient([]string{gm})
	defer gc.Close()
	// What PHP's serialize(['a' => 2, 'b' => 3]) writes.
	res, err := gc.Task(ctx, ns+"_sum", []byte(`a:2:{s:1:"a";i:2;s:1:"b";i:3;}`), gearman.Normal)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.String(); got != `a:1:{s:3:"sum";i:5;}` {
		t.Errorf("result %q, want PHP's serialize(['sum' => 5])", got)
	}
	if !strings.Contains(logged.String(), "read differently from sfGearmanPlugin") {
		t.Errorf("no note logged at start:\n%s", logged.String())
	}
}
