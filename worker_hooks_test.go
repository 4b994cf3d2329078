package rowgear_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
)

// TestWorkerWithModel: WithModel keeps the model's functions of the set,
// and of those the methods named (the plugin's triggerInsert is insert);
// a model or method the set does not serve is ErrNotInSet naming it.
func TestWorkerWithModel(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	newW := func(opts ...rowgear.WorkerOption) (*rowgear.Worker, error) {
		reg := dispatch.NewRegistry()
		if err := (&app{}).register(reg); err != nil {
			t.Fatal(err)
		}
		return rowgear.NewWorker(ctx, e.cfg, reg, append([]rowgear.WorkerOption{rowgear.WithDB(e.db), rowgear.WithSet("notes"),
			rowgear.WithLogger(quiet), rowgear.WithStateDir(t.TempDir())}, opts...)...)
	}
	all, err := newW()
	if err != nil {
		t.Fatal(err)
	}
	all.Shutdown(ctx)
	w, err := newW(rowgear.WithModel("Note"))
	if err != nil {
		t.Fatal(err)
	}
	w.Shutdown(ctx)
	if !slices.Equal(w.Functions(), all.Functions()) || !slices.Contains(all.Functions(), e.ns+".Note.shout") {
		t.Errorf("WithModel(Note): %v, want the set's %v", w.Functions(), all.Functions())
	}
	w, err = newW(rowgear.WithModel("Note", "triggerInsert", " shout"))
	if err != nil {
		t.Fatal(err)
	}
	w.Shutdown(ctx)
	if want := []string{e.ns + ".Note.insert", e.ns + ".Note.shout"}; !slices.Equal(w.Functions(), want) {
		t.Errorf("WithModel(Note, triggerInsert, shout): %v, want %v", w.Functions(), want)
	}
	for _, c := range []struct {
		opt  rowgear.WorkerOption
		name string
	}{{rowgear.WithModel("Article"), "Article"}, {rowgear.WithModel("Note", "shout", "publish"), "publish"}} {
		if _, err := newW(c.opt); !errors.Is(err, rowgear.ErrNotInSet) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: %v, want ErrNotInSet naming it", c.name, err)
		}
	}
}

// hookLog records the hooks' calls in order.
type hookLog struct {
	mu    sync.Mutex
	calls []string
}

func (h *hookLog) add(s string) { h.mu.Lock(); h.calls = append(h.calls, s); h.mu.Unlock() }

func (h *hookLog) get() []string { h.mu.Lock(); defer h.mu.Unlock(); return slices.Clone(h.calls) }

func (h *hookLog) hooks() rowgear.Hooks {
	return rowgear.Hooks{
		OnStart:      func(context.Context) { h.add("start") },
		OnIdle:       func(context.Context) { h.add("idle") },
		OnStop:       func(_ context.Context, err error) { h.add("stop") },
		OnJobTimeout: func(_ context.Context, fn string) { h.add("timeout " + fn) },
	}
}

// TestWorkerDrainFiresHooks: WithDrain returns at once with no job queued,
// calling OnStart, OnIdle and OnStop in that order.
func TestWorkerDrainFiresHooks(t *testing.T) {
	e := newEnv(t, false)
	reg := dispatch.NewRegistry()
	reg.HandleFunc("Worker1.reverse", func(context.Context, *gearman.Job) (any, error) { return "", nil })
	var h hookLog
	w, err := rowgear.NewWorker(context.Background(), e.cfg, reg, rowgear.WithSet("plain"), rowgear.WithLogger(quiet),
		rowgear.WithDrain(), rowgear.WithHooks(h.hooks()))
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	start := time.Now()
	go func() { ran <- w.Run(context.Background()) }()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		w.Shutdown(context.Background())
		t.Fatal("a draining worker with no job queued did not return")
	}
	t.Logf("returned after %s", time.Since(start))
	if got := h.get(); !slices.Equal(got, []string{"start", "idle", "stop"}) {
		t.Errorf("hooks %v, want start, idle, stop", got)
	}
}

// TestWorkerJobTimeoutHook: a handler that outlives WithJobTimeout fires
// OnJobTimeout with its function; the worker goes on.
func TestWorkerJobTimeoutHook(t *testing.T) {
	e := newEnv(t, false)
	reg := dispatch.NewRegistry()
	reg.HandleFunc("Worker1.reverse", func(ctx context.Context, j *gearman.Job) (any, error) {
		if string(j.Workload) == "slow" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return "quick", nil
	})
	var h hookLog
	w, err := rowgear.NewWorker(context.Background(), e.cfg, reg, rowgear.WithSet("plain"), rowgear.WithLogger(quiet),
		rowgear.WithJobTimeout(200*time.Millisecond), rowgear.WithHooks(h.hooks()))
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- w.Run(context.Background()) }()
	gc := gearman.NewClient([]string{e.gm})
	defer gc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := gc.Task(ctx, e.ns+"_reverse", []byte("slow"), gearman.Normal); err == nil {
		t.Error("the slow job succeeded")
	}
	if res, err := gc.Task(ctx, e.ns+"_reverse", []byte("fast"), gearman.Normal); err != nil || res.String() != "quick" {
		t.Errorf("the job after the timeout: %v %v", res, err)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if got := h.get(); !slices.Equal(got, []string{"start", "timeout " + e.ns + "_reverse", "stop"}) {
		t.Errorf("hooks %v, want start, the slow job's timeout, stop", got)
	}
}
