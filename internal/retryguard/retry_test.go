package retryguard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/ids"
	"github.com/rowgear/rowgear/internal/retryguard"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/retry"
)

// TestMain doubles as the worker process of the crash tests: with
// RETRY_TEST_WORKER set it runs a guarded worker instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("RETRY_TEST_WORKER"); mode != "" {
		os.Exit(workerProcess(mode))
	}
	testenv.RunWithoutLeaks(m, nil)
}

func policy(attempts int, backoff time.Duration) func(string) config.RetryPolicy {
	return func(string) config.RetryPolicy {
		return config.RetryPolicy{Attempts: attempts, Backoff: backoff, MaxBackoff: 10 * backoff}
	}
}

func workerProcess(mode string) int {
	dsn, addr, fn, dir := os.Getenv("RETRY_DSN"), os.Getenv("RETRY_GEARMAN"), os.Getenv("RETRY_FN"), os.Getenv("RETRY_JOURNAL")
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return 2
	}
	j, err := retryguard.OpenJournal(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c := gearman.NewClient([]string{addr})
	g := retryguard.NewGuard(retryguard.NewStore(db), c, policy(3, 200*time.Millisecond), retryguard.WithJournal(j),
		retryguard.WithPollInterval(20*time.Millisecond))
	ctx := context.Background()
	if err := g.Recover(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	h := func(ctx context.Context, job *gearman.Job) (any, error) {
		switch mode {
		case "crash":
			os.Exit(3)
		case "fail-once":
			var n int
			db.QueryRowContext(ctx, "SELECT COUNT(*) FROM runs").Scan(&n)
			db.ExecContext(ctx, "INSERT INTO runs (payload) VALUES (?)", string(job.Workload))
			if n == 0 {
				return nil, errors.New("first run fails")
			}
		}
		return nil, nil
	}
	w := gearman.NewWorker([]string{addr})
	w.Register(fn, g.Wrap(fn, h))
	go g.Run(ctx)
	w.Run(ctx)
	return 0
}

type fixture struct {
	db   *sql.DB
	dsn  string
	addr string
	fn   string
	c    *gearman.Client
}

func setup(t *testing.T) *fixture {
	t.Helper()
	db, dsn := testenv.DB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := migrations.UpRowgear(ctx, db); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, dsn: dsn, addr: testenv.Gearman(t), fn: testenv.Name(t, "job")}
	f.c = gearman.NewClient([]string{f.addr})
	t.Cleanup(func() { f.c.Close() })
	return f
}

// run runs a guarded worker for fn with handler h until the test ends.
func (f *fixture) run(t *testing.T, g *retryguard.Guard, h gearman.Handler) {
	w := gearman.NewWorker([]string{f.addr})
	w.Register(f.fn, g.Wrap(f.fn, h))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.Run(ctx) }()
	go func() { defer wg.Done(); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func (f *fixture) submit(t *testing.T, payload string) string {
	t.Helper()
	key := ids.New()
	if _, err := f.c.Background(context.Background(), f.fn, payload, gearman.Normal, gearman.Unique(key)); err != nil {
		t.Fatal(err)
	}
	return key
}

func (f *fixture) dead(t *testing.T) []retryguard.Entry {
	t.Helper()
	es, err := retryguard.NewStore(f.db).List(context.Background(), "dead")
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestFailTwiceThenSucceedRespectsBackoff(t *testing.T) {
	f := setup(t)
	const base = 200 * time.Millisecond
	g := retryguard.NewGuard(retryguard.NewStore(f.db), f.c, policy(5, base), retryguard.WithPollInterval(10*time.Millisecond))
	var mu sync.Mutex
	var runs []time.Time
	var payloads []string
	f.run(t, g, func(_ context.Context, j *gearman.Job) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, time.Now())
		payloads = append(payloads, string(j.Workload))
		if len(runs) <= 2 {
			return nil, fmt.Errorf("transient failure %d", len(runs))
		}
		return nil, nil
	})
	f.submit(t, "the event")
	testenv.Eventually(t, 60*time.Second, "three runs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(runs) >= 3
	})
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 3 {
		t.Fatalf("%d runs, want 3", len(runs))
	}
	// Jitter keeps each wait in [d/2, d] of the doubling backoff.
	for i, min := range []time.Duration{base / 2, base} {
		if gap := runs[i+1].Sub(runs[i]); gap < min {
			t.Errorf("retry %d came %s after the failure, before its backoff of at least %s", i+1, gap, min)
		}
	}
	for _, p := range payloads {
		if p != "the event" {
			t.Fatalf("a handler saw payload %q: the retry header leaked", p)
		}
	}
	// The third run succeeded; its row goes once that run has ended.
	testenv.Eventually(t, 60*time.Second, "the retried job's row to be deleted", func() bool {
		es, err := retryguard.NewStore(f.db).List(context.Background(), "")
		return err == nil && len(es) == 0
	})
}

func TestAlwaysFailingEndsDeadThenReplays(t *testing.T) {
	f := setup(t)
	g := retryguard.NewGuard(retryguard.NewStore(f.db), f.c, policy(3, 20*time.Millisecond), retryguard.WithPollInterval(10*time.Millisecond))
	var mu sync.Mutex
	fixed, done := false, 0
	runs := 0
	f.run(t, g, func(context.Context, *gearman.Job) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		runs++
		if !fixed {
			return nil, fmt.Errorf("search engine down (run %d)", runs)
		}
		done++
		return nil, nil
	})
	key := f.submit(t, "payload-1")
	var d []retryguard.Entry
	testenv.Eventually(t, 60*time.Second, "a dead letter", func() bool { d = f.dead(t); return len(d) == 1 })
	e := d[0]
	if e.Key != key || e.Function != f.fn || e.Attempts != 3 || string(e.Payload) != "payload-1" || len(e.Errors) != 3 {
		t.Fatalf("dead letter %+v", e)
	}
	for i, fl := range e.Errors {
		if fl.Attempt != i+1 || fl.Error != fmt.Sprintf("search engine down (run %d)", i+1) {
			t.Fatalf("error %d: %+v", i, fl)
		}
	}
	mu.Lock()
	fixed = true
	mu.Unlock()
	if n, err := g.Replay(context.Background(), e.ID); err != nil || n != 1 {
		t.Fatalf("replay: %d %v", n, err)
	}
	testenv.Eventually(t, 60*time.Second, "the replayed job to succeed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done == 1
	})
	if d := f.dead(t); len(d) != 0 {
		t.Fatalf("dead letters left after replay: %+v", d)
	}
	if _, err := g.Replay(context.Background(), e.ID); !errors.Is(err, retryguard.ErrNoEntry) {
		t.Fatalf("replay of a gone id: %v", err)
	}
}

func TestPermanentErrorGoesStraightToDeadLetter(t *testing.T) {
	f := setup(t)
	bad := errors.New("bad payload")
	g := retryguard.NewGuard(retryguard.NewStore(f.db), f.c, policy(5, 10*time.Millisecond), retryguard.WithPermanentErrors(bad))
	var mu sync.Mutex
	runs := 0
	f.run(t, g, func(_ context.Context, j *gearman.Job) (any, error) {
		mu.Lock()
		runs++
		mu.Unlock()
		if string(j.Workload) == "typed" {
			return nil, fmt.Errorf("decoding: %w", bad)
		}
		return nil, retry.Permanent(errors.New("article 7 is gone"))
	})
	f.submit(t, "marked")
	f.submit(t, "typed")
	testenv.Eventually(t, 60*time.Second, "two dead letters", func() bool { return len(f.dead(t)) == 2 })
	for _, e := range f.dead(t) {
		if e.Attempts != 1 || len(e.Errors) != 1 {
			t.Fatalf("permanent error was retried: %+v", e)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if runs != 2 {
		t.Fatalf("%d runs, want 2", runs)
	}
}

func TestTimeoutFailsTheRun(t *testing.T) {
	f := setup(t)
	g := retryguard.NewGuard(retryguard.NewStore(f.db), f.c, func(string) config.RetryPolicy {
		return config.RetryPolicy{Attempts: 1, Timeout: 50 * time.Millisecond}
	})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.run(t, g, func(ctx context.Context, _ *gearman.Job) (any, error) {
		<-release // ignores its context: the guard fails the job anyway
		return nil, nil
	})
	f.submit(t, "slow")
	testenv.Eventually(t, 60*time.Second, "a dead letter", func() bool { return len(f.dead(t)) == 1 })
	if e := f.dead(t)[0]; !strings.Contains(e.LastError(), "timed out after 50ms") {
		t.Fatalf("dead letter error %q", e.LastError())
	}
}

// workerProc is a worker process; exited yields its Wait result once.
type workerProc struct {
	cmd    *exec.Cmd
	exited chan error
}

func (f *fixture) worker(t *testing.T, mode, journal string) *workerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RETRY_TEST_WORKER="+mode, "RETRY_DSN="+f.dsn, "RETRY_GEARMAN="+f.addr,
		"RETRY_FN="+f.fn, "RETRY_JOURNAL="+journal)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &workerProc{cmd: cmd, exited: make(chan error, 1)}
	done := make(chan struct{})
	go func() { p.exited <- cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return p
}

// A job whose handler kills the process ends in the dead-letter table after
// one worker restart per attempt, instead of looping forever.
func TestCrashingJobEndsDeadAfterRestarts(t *testing.T) {
	f := setup(t)
	journal := t.TempDir()
	f.submit(t, "poison")
	crashes := 0
	for crashes < 10 && len(f.dead(t)) == 0 {
		p := f.worker(t, "crash", journal)
		for waiting := true; waiting; {
			select {
			case err := <-p.exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 3 {
					t.Fatalf("worker exited with %v, want the handler's exit 3", err)
				}
				crashes++
				waiting = false
			case <-time.After(20 * time.Millisecond):
				if len(f.dead(t)) > 0 {
					waiting = false
				}
			}
		}
	}
	d := f.dead(t)
	if len(d) != 1 {
		t.Fatalf("no dead letter after %d crashes", crashes)
	}
	if crashes != 3 || d[0].Attempts != 3 || len(d[0].Errors) != 3 || string(d[0].Payload) != "poison" {
		t.Fatalf("after %d crashes: %+v", crashes, d[0])
	}
	for _, e := range d[0].Errors {
		if !strings.Contains(e.Error, "worker process died") {
			t.Fatalf("error history %+v", d[0].Errors)
		}
	}
}

// SIGKILL between a failure and its re-submit loses nothing: the retry
// waits in the table and the next worker sends it.
func TestSIGKILLBetweenFailureAndResubmit(t *testing.T) {
	f := setup(t)
	if _, err := f.db.Exec("CREATE TABLE runs (payload VARCHAR(50), at DATETIME(6) NOT NULL DEFAULT NOW(6))"); err != nil {
		t.Fatal(err)
	}
	journal := t.TempDir()
	p := f.worker(t, "fail-once", journal)
	f.submit(t, "must arrive")
	store := retryguard.NewStore(f.db)
	testenv.Eventually(t, 60*time.Second, "the retry row", func() bool {
		es, _ := store.List(context.Background(), "retry")
		return len(es) == 1
	})
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	f.worker(t, "fail-once", journal)
	// A new worker process: its build and start took over 60 s with two
	// test suites on the 2 cores.
	testenv.Eventually(t, 180*time.Second, "the second run", func() bool {
		var n int
		f.db.QueryRow("SELECT COUNT(*) FROM runs").Scan(&n)
		return n == 2
	})
	testenv.Eventually(t, 60*time.Second, "the table to empty", func() bool {
		es, _ := store.List(context.Background(), "")
		return len(es) == 0
	})
	// The new worker kept the backoff the dead one had scheduled (200ms,
	// jittered down to no less than half).
	var gap int64
	f.db.QueryRow("SELECT TIMESTAMPDIFF(MICROSECOND, MIN(at), MAX(at)) FROM runs").Scan(&gap)
	if gap < 100_000 {
		t.Fatalf("the retry ran %dµs after the failure, before its backoff", gap)
	}
}

// A handler that panics is a failed run like any other: with no timeout in
// its policy (the default) too, the guard records it, here as a dead letter.
func TestPanicIsAFailedRun(t *testing.T) {
	f := setup(t)
	g := retryguard.NewGuard(retryguard.NewStore(f.db), f.c, policy(1, 10*time.Millisecond))
	f.run(t, g, func(context.Context, *gearman.Job) (any, error) { panic("handler blew up") })
	f.submit(t, "boom")
	testenv.Eventually(t, 60*time.Second, "a dead letter", func() bool { return len(f.dead(t)) == 1 })
	if e := f.dead(t)[0]; !strings.Contains(e.LastError(), "panic: handler blew up") || string(e.Payload) != "boom" {
		t.Fatalf("dead letter %+v", e)
	}
}

// TestNestedRunIsJournaledOnce: a guarded run inside another (an event of
// a batch job) adds no journal entry of its own: the journal holds the
// outer job only, which is the one gearmand hands out again after a crash.
func TestNestedRunIsJournaledOnce(t *testing.T) {
	f := setup(t)
	dir := t.TempDir()
	j, err := retryguard.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	g := retryguard.NewGuard(retryguard.NewStore(f.db), f.c, policy(3, 10*time.Millisecond), retryguard.WithJournal(j))
	starts := func() []string {
		var out []string
		files, _ := os.ReadDir(dir)
		for _, fi := range files {
			data, _ := os.ReadFile(filepath.Join(dir, fi.Name()))
			for _, l := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(l, "S ") {
					out = append(out, l)
				}
			}
		}
		return out
	}
	var during []string
	inner := g.Wrap("app.Item.update", func(context.Context, *gearman.Job) (any, error) {
		during = starts()
		return nil, nil
	})
	outer := g.Wrap("app.Item.batch", func(ctx context.Context, job *gearman.Job) (any, error) {
		return inner(ctx, &gearman.Job{Function: "app.Item.update", Unique: "event-1", Workload: []byte("{}")})
	})
	if _, err := outer(context.Background(), &gearman.Job{Function: "app.Item.batch", Unique: "batch-1", Workload: []byte("[{}]")}); err != nil {
		t.Fatal(err)
	}
	if len(during) != 1 || !strings.Contains(during[0], "app.Item.batch\tbatch-1") {
		t.Fatalf("journal starts while the inner run ran: %q, want the batch's alone", during)
	}
}

// TestRetryLostWithGearmandIsSentAgain: a retry's job that gearmand lost
// (its memory queue, SIGKILLed while the job waited for a worker) is
// resubmitted from its row once its resend time has passed, and runs; the
// row goes once that run has succeeded.
func TestRetryLostWithGearmandIsSentAgain(t *testing.T) {
	f := setup(t)
	gm := testenv.StartGearmand(t)
	f.addr = gm.Addr
	c := gearman.NewClient([]string{gm.Addr})
	defer c.Close()
	f.c = c
	g := retryguard.NewGuard(retryguard.NewStore(f.db), c, policy(5, 100*time.Millisecond),
		retryguard.WithPollInterval(20*time.Millisecond), retryguard.WithResendAfter(2*time.Second))
	var runs atomic.Int64
	h := g.Wrap(f.fn, func(context.Context, *gearman.Job) (any, error) {
		if runs.Add(1) == 1 {
			return nil, errors.New("first run fails")
		}
		return nil, nil
	})
	work := func() (stop func()) {
		w := gearman.NewWorker([]string{gm.Addr})
		w.Register(f.fn, h)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	gctx, stopGuard := context.WithCancel(context.Background())
	guardDone := make(chan struct{})
	go func() { defer close(guardDone); g.Run(gctx) }()
	defer func() { stopGuard(); <-guardDone }()

	stopWorker := work()
	f.submit(t, "the job")
	testenv.Eventually(t, time.Minute, "the first run to fail", func() bool { return runs.Load() == 1 })
	stopWorker()
	// The guard resubmits the retry to gearmand, where no worker takes it:
	// its row is then due again only after the resend time.
	testenv.Eventually(t, time.Minute, "the retry resubmitted", func() bool {
		var n int
		f.db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'retry' AND due_at > NOW(6) + INTERVAL 1 SECOND").Scan(&n)
		return n == 1
	})
	gm.Kill() // the memory queue goes, and the resubmitted job with it
	gm.Start()
	defer work()()
	testenv.Eventually(t, time.Minute, "the retry to run again from its row", func() bool { return runs.Load() == 2 })
	testenv.Eventually(t, time.Minute, "the row deleted after its run succeeded", func() bool {
		es, err := retryguard.NewStore(f.db).List(context.Background(), "")
		return err == nil && len(es) == 0
	})
}
