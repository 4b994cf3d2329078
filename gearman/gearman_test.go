package gearman_test

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/funcname"
	"github.com/rowgear/rowgear/internal/testenv"
)

// startWorker runs w until the test ends and returns a channel closed when
// Run returns.
func startWorker(t *testing.T, w *gearman.Worker) (context.CancelFunc, <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return cancel, done
}

// taskAsync runs Task in the background; the channel yields its result, or
// its error's text.
func taskAsync(ctx context.Context, c *gearman.Client, fn string) <-chan string {
	res := make(chan string, 1)
	go func() {
		r, err := c.Task(ctx, fn, "", gearman.Normal)
		if err != nil {
			res <- err.Error()
			return
		}
		res <- r.String()
	}()
	return res
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSeedReverseAndHash(t *testing.T) {
	addr := testenv.Gearman(t)
	fnRev, fnHash := testenv.Name(t, "reverse"), testenv.Name(t, "hash")
	w := gearman.NewWorker([]string{addr})
	w.Register(fnRev, reverse)
	w.Register(fnHash, hash)
	startWorker(t, w)

	c := gearman.NewClient([]string{addr})
	defer c.Close()
	ctx := ctxT(t)
	r, err := c.Task(ctx, fnRev, "Hello!", gearman.Normal)
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != "!olleH" {
		t.Fatalf("reverse = %q", r.String())
	}
	got, err := gearman.TaskAs[[]string](ctx, c, fnHash, "Hello!", gearman.High)
	if err != nil {
		t.Fatal(err)
	}
	m, s := md5.Sum([]byte("Hello!")), sha1.Sum([]byte("Hello!"))
	if len(got) != 2 || got[0] != hex.EncodeToString(m[:]) || got[1] != hex.EncodeToString(s[:]) {
		t.Fatalf("hash = %v", got)
	}
	// A raw result does not decode into a value.
	var v []string
	if err := r.Decode(&v); !errors.Is(err, gearman.ErrNotSerialized) {
		t.Fatalf("Decode raw into []string: %v", err)
	}
}

func TestBackgroundHandleAndConcurrentUse(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "bg")
	var mu sync.Mutex
	seen := map[string]bool{}
	w := gearman.NewWorker([]string{addr}, gearman.WithConcurrency(4))
	w.Register(fn, func(_ context.Context, j *gearman.Job) (any, error) {
		mu.Lock()
		seen[string(j.Workload)] = true
		mu.Unlock()
		return nil, nil
	})
	startWorker(t, w)
	c := gearman.NewClient([]string{addr}, gearman.WithConnections(3))
	defer c.Close()
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := c.Background(ctx, fn, "m"+string(rune('A'+i%26))+strings.Repeat("x", i), gearman.Normal)
			if err == nil && !strings.HasPrefix(h, "H:") {
				err = errors.New("handle " + h)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "50 jobs done", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 50
	})
}

func TestPriorities(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "prio")
	c := gearman.NewClient([]string{addr})
	defer c.Close()
	ctx := ctxT(t)
	for _, p := range []gearman.Priority{gearman.Low, gearman.Normal, gearman.High, gearman.Low, gearman.High} {
		if _, err := c.Background(ctx, fn, p.String(), p); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var order []string
	w := gearman.NewWorker([]string{addr}, gearman.WithMaxJobs(5))
	w.Register(fn, func(_ context.Context, j *gearman.Job) (any, error) {
		mu.Lock()
		order = append(order, string(j.Workload))
		mu.Unlock()
		return nil, nil
	})
	_, done := startWorker(t, w)
	<-done
	if got := strings.Join(order, ","); got != "high,high,normal,low,low" {
		t.Fatalf("order = %s", got)
	}
}

func TestCountStopsAfterExactlyNJobs(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "count")
	c := gearman.NewClient([]string{addr})
	defer c.Close()
	ctx := ctxT(t)
	for range 5 {
		if _, err := c.Background(ctx, fn, "x", gearman.Normal); err != nil {
			t.Fatal(err)
		}
	}
	w := gearman.NewWorker([]string{addr}, gearman.WithMaxJobs(3), gearman.WithConcurrency(2))
	w.Register(fn, func(context.Context, *gearman.Job) (any, error) { return nil, nil })
	_, done := startWorker(t, w)
	<-done
	if w.Done() != 3 {
		t.Fatalf("worker did %d jobs, want 3", w.Done())
	}
	// gearmand requeues a job the worker grabbed but did not run once it
	// sees the connection close, which may come after Run returned.
	testenv.Eventually(t, 60*time.Second, "2 jobs queued, none running", func() bool {
		st, err := testenv.Status(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		return st[fn].Total == 2 && st[fn].Running == 0
	})
}

func TestIdleTimeoutStops(t *testing.T) {
	addr := testenv.Gearman(t)
	w := gearman.NewWorker([]string{addr}, gearman.WithIdleTimeout(300*time.Millisecond))
	w.Register(testenv.Name(t, "idle"), func(context.Context, *gearman.Job) (any, error) { return nil, nil })
	_, done := startWorker(t, w)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop when idle")
	}
}

func TestErrorAndPanicFailTheJobOnly(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "fail")
	w := gearman.NewWorker([]string{addr})
	w.Register(fn, func(_ context.Context, j *gearman.Job) (any, error) {
		switch string(j.Workload) {
		case "error":
			return nil, errors.New("boom from handler")
		case "panic":
			panic("kaboom")
		}
		return "ok", nil
	})
	startWorker(t, w)
	c := gearman.NewClient([]string{addr})
	defer c.Close()
	ctx := ctxT(t)
	for _, tc := range []struct{ in, msg string }{{"error", "boom from handler"}, {"panic", "panic: kaboom"}} {
		_, err := c.Task(ctx, fn, tc.in, gearman.Normal)
		var je *gearman.JobError
		if !errors.Is(err, gearman.ErrJobFailed) || !errors.As(err, &je) || je.Msg != tc.msg {
			t.Fatalf("%s: err = %v, want a JobError with %q", tc.in, err, tc.msg)
		}
	}
	r, err := c.Task(ctx, fn, "fine", gearman.Normal)
	if err != nil || r.String() != "ok" {
		t.Fatalf("after failures: %v %v", r, err)
	}
}

func TestStopFinishesRunningJob(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "slow")
	started, release := make(chan struct{}), make(chan struct{})
	w := gearman.NewWorker([]string{addr}, gearman.WithConcurrency(2))
	w.Register(fn, func(ctx context.Context, j *gearman.Job) (any, error) {
		close(started)
		<-release
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return "finished", nil
	})
	cancel, done := startWorker(t, w)
	c := gearman.NewClient([]string{addr})
	defer c.Close()
	ctx := ctxT(t)
	res := taskAsync(ctx, c, fn)
	<-started
	cancel() // SIGTERM in dbworker
	select {
	case <-done:
		t.Fatal("Run returned while a job was running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-done
	if got := <-res; got != "finished" {
		t.Fatalf("client got %q", got)
	}
}

func TestGearmandRestart(t *testing.T) {
	g := testenv.StartGearmand(t)
	fn := testenv.Name(t, "restart")
	got := make(chan string, 10)
	w := gearman.NewWorker([]string{g.Addr})
	w.Register(fn, func(_ context.Context, j *gearman.Job) (any, error) {
		got <- string(j.Workload)
		return nil, nil
	})
	startWorker(t, w)
	c := gearman.NewClient([]string{g.Addr}, gearman.WithResponseTimeout(2*time.Second))
	defer c.Close()
	ctx := ctxT(t)
	if _, err := c.Background(ctx, fn, "before", gearman.Normal); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "before" {
		t.Fatal(m)
	}
	g.Kill()
	if _, err := c.Background(ctx, fn, "down", gearman.Normal); !errors.Is(err, gearman.ErrUnavailable) {
		t.Fatalf("submit while down: %v", err)
	}
	g.Start()
	if _, err := c.Background(ctx, fn, "after", gearman.Normal); err != nil {
		t.Fatalf("first submit after restart: %v", err)
	}
	select {
	case m := <-got:
		if m != "after" {
			t.Fatal(m)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not come back after the restart")
	}
}

func TestQueue(t *testing.T) {
	addr := testenv.Gearman(t)
	name := testenv.Name(t, "q")
	c := gearman.NewClient([]string{addr})
	defer c.Close()
	q := gearman.NewQueue(c)
	ctx := ctxT(t)
	if _, err := q.Get(ctx, name, 200*time.Millisecond); !errors.Is(err, gearman.ErrTimeout) {
		t.Fatalf("Get on empty queue: %v", err)
	}
	if err := q.Put(ctx, name, "a message", gearman.Normal); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, name, map[string]int{"urgent": 1}, gearman.High); err != nil {
		t.Fatal(err)
	}
	m, err := q.Get(ctx, name, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]int
	if err := m.Decode(&v); err != nil || v["urgent"] != 1 {
		t.Fatalf("first message %q: %v %v", m.Data, v, err)
	}
	m, err = q.Get(ctx, name, 5*time.Second)
	if err != nil || string(m.Data) != "a message" {
		t.Fatalf("second message: %v %v", m, err)
	}
	if _, err := q.Get(ctx, name, 100*time.Millisecond); !errors.Is(err, gearman.ErrTimeout) {
		t.Fatalf("Get after draining: %v", err)
	}
	// A Get that waits receives a message put while it waits.
	res := make(chan *gearman.Message, 1)
	go func() {
		m, err := q.Get(ctx, name, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		res <- m
	}()
	if err := q.Put(ctx, name, "late", gearman.Low); err != nil {
		t.Fatal(err)
	}
	if m := <-res; m == nil || string(m.Data) != "late" {
		t.Fatalf("waiting Get: %v", m)
	}
	st, _ := testenv.Status(ctx, addr)
	if s := st[funcname.Queue(name)]; s.Total != 0 {
		t.Fatalf("queue left %d jobs in gearmand", s.Total)
	}
}

// A Get that times out while messages keep arriving neither loses nor
// duplicates any: every message put is got exactly once.
func TestQueueGetTimeoutsLoseNothing(t *testing.T) {
	addr := testenv.Gearman(t)
	name := testenv.Name(t, "qt")
	c := gearman.NewClient([]string{addr})
	defer c.Close()
	q := gearman.NewQueue(c)
	ctx := ctxT(t)
	const n = 200
	go func() {
		for i := range n {
			q.Put(ctx, name, []byte{byte(i)}, gearman.Normal)
		}
	}()
	seen := map[byte]int{}
	for len(seen) < n {
		m, err := q.Get(ctx, name, time.Millisecond) // many time out mid-flight
		if errors.Is(err, gearman.ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Data[0]]++
		if seen[m.Data[0]] > 1 {
			t.Fatalf("message %d delivered twice", m.Data[0])
		}
	}
}

func TestGearmanCLIJobAnsweredByOurWorker(t *testing.T) {
	addr := testenv.Gearman(t)
	if _, err := exec.LookPath("gearman"); err != nil {
		t.Fatalf("the gearman CLI is missing: run `scripts/services install` (%v)", err)
	}
	fn := testenv.Name(t, "cli")
	w := gearman.NewWorker([]string{addr})
	w.Register(fn, reverse)
	startWorker(t, w)
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.CommandContext(ctxT(t), "gearman", "-h", host, "-p", port, "-f", fn, "--", "Hello!").CombinedOutput()
	if err != nil {
		t.Fatalf("gearman CLI: %v: %s", err, out)
	}
	if strings.TrimSpace(string(out)) != "!olleH" {
		t.Fatalf("gearman CLI got %q", out)
	}
}

// A handler reaches its client through the job: partial data and status.
func TestJobSendsDataAndStatus(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "data")
	w := gearman.NewWorker([]string{addr})
	w.Register(fn, func(_ context.Context, j *gearman.Job) (any, error) {
		if err := j.SendStatus(1, 2); err != nil {
			return nil, err
		}
		if err := j.SendData([]byte("part 1")); err != nil {
			return nil, err
		}
		return "done", nil
	})
	startWorker(t, w)
	c := gearman.NewClient([]string{addr})
	defer c.Close()
	r, err := c.Task(ctxT(t), fn, "", gearman.Normal)
	if err != nil {
		t.Fatal(err)
	}
	want := []gearman.Update{{Status: true, Numerator: 1, Denominator: 2}, {Data: []byte("part 1")}}
	if r.String() != "done" || !reflect.DeepEqual(r.Updates, want) {
		t.Fatalf("result %q, updates %+v, want %+v", r.Data, r.Updates, want)
	}
}

// A caller whose context ends during its submit does not break the
// connection it shares with another caller's foreground job: that job's
// result still reaches its caller.
func TestCancelledSubmitKeepsOthersResults(t *testing.T) {
	addr := testenv.Gearman(t)
	fn, other := testenv.Name(t, "slow"), testenv.Name(t, "other")
	started, release := make(chan struct{}), make(chan struct{})
	w := gearman.NewWorker([]string{addr}, gearman.WithConcurrency(2))
	w.Register(fn, func(context.Context, *gearman.Job) (any, error) {
		close(started)
		<-release
		return "finished", nil
	})
	w.Register(other, func(context.Context, *gearman.Job) (any, error) { return nil, nil })
	startWorker(t, w)
	c := gearman.NewClient([]string{addr}, gearman.WithConnections(1))
	defer c.Close()
	ctx := ctxT(t)
	res := taskAsync(ctx, c, fn)
	<-started
	for range 20 { // on the one connection; the ended context wins about half the selects
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.Background(cctx, other, "x", gearman.Normal); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	close(release)
	if got := <-res; got != "finished" {
		t.Fatalf("client got %q", got)
	}
}

// A handler that leaves its job to gearmand (ErrRequeue, as the retry guard
// does while its database is down) gets it back at once: the worker backs
// off instead of running it again in a tight loop.
func TestRequeueBacksOff(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "requeue")
	var mu sync.Mutex
	var first time.Time
	runs := 0
	done := make(chan struct{})
	w := gearman.NewWorker([]string{addr})
	w.Register(fn, func(context.Context, *gearman.Job) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		runs++
		if first.IsZero() {
			first = time.Now()
		}
		if time.Since(first) < 500*time.Millisecond {
			return nil, fmt.Errorf("database down: %w", gearman.ErrRequeue)
		}
		close(done)
		return nil, nil
	})
	startWorker(t, w)
	c := gearman.NewClient([]string{addr})
	defer c.Close()
	if _, err := c.Background(ctxT(t), fn, "x", gearman.Normal); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the job never completed")
	}
	mu.Lock()
	defer mu.Unlock()
	if runs > 10 {
		t.Fatalf("the requeued job ran %d times in 500ms", runs)
	}
}

// Close lets calls in progress finish: a foreground job's result still
// reaches its caller.
func TestCloseLetsTasksFinish(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "slow")
	started, release := make(chan struct{}), make(chan struct{})
	w := gearman.NewWorker([]string{addr})
	w.Register(fn, func(context.Context, *gearman.Job) (any, error) {
		close(started)
		<-release
		return "finished", nil
	})
	startWorker(t, w)
	c := gearman.NewClient([]string{addr})
	res := make(chan string, 1)
	go func() {
		r, err := c.Task(ctxT(t), fn, "", gearman.Normal)
		if err != nil {
			res <- err.Error()
			return
		}
		res <- r.String()
	}()
	<-started
	c.Close()
	close(release)
	if got := <-res; got != "finished" {
		t.Fatalf("client got %q", got)
	}
}

// OnCreated reports the handle once gearmand queued the job, while Task
// still waits for its result: here no worker exists until the callback ran.
func TestOnCreatedBeforeTheResult(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "created")
	c := gearman.NewClient([]string{addr}, gearman.WithConnections(1))
	defer c.Close()
	created := make(chan string, 1)
	type res struct {
		r   *gearman.Result
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := c.Task(ctxT(t), fn, "x", gearman.Normal, gearman.OnCreated(func(h string) { created <- h }))
		done <- res{r, err}
	}()
	var handle string
	select {
	case handle = <-created:
	case r := <-done:
		t.Fatalf("Task returned before OnCreated: %v, %v", r.r, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("OnCreated was not called")
	}
	if handle == "" {
		t.Fatal("OnCreated got an empty handle")
	}
	select {
	case r := <-done:
		t.Fatalf("Task returned with no worker: %v, %v", r.r, r.err)
	default:
	}
	w := gearman.NewWorker([]string{addr})
	w.Register(fn, func(context.Context, *gearman.Job) (any, error) { return "ran", nil })
	startWorker(t, w)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.r.String() != "ran" || r.r.Handle != handle {
		t.Fatalf("result %q of %s, want \"ran\" of %s", r.r.String(), r.r.Handle, handle)
	}
}
