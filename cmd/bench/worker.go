package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	gw "github.com/mikespook/gearman-go/worker"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
)

// prequeue queues n Item update envelopes for fn on addr (8 bare
// connections) and returns how many were queued.
func (b *bench) prequeue(ctx context.Context, addr, fn string, n int) (int, error) {
	_, done, err := submitBare(ctx, addr, fn, b.samplePayload("bench", 7), n, 8, 4*b.maxTime)
	return done, err
}

// drain runs start (a worker) and returns jobs/s until count reaches n or
// the time cap passes.
func (b *bench) drain(ctx context.Context, n int, count func() int64, start func() (stop func())) (float64, int64) {
	t0 := time.Now()
	stop := start()
	waitFor(ctx, b.maxTime, func() bool { return count() >= int64(n) })
	el := time.Since(t0)
	got := count()
	stop()
	return float64(min(got, int64(n))) / el.Seconds(), got
}

// workerDispatch: section 4.
func (b *bench) workerDispatch(ctx context.Context) error {
	const sec = "4"
	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	defer b.stopGearmand(g)
	type variant struct {
		name        string
		concurrency int
		kind        string // bare, runner, dispatch, guard
	}
	variants := []variant{
		{"bare gearman-go worker, no-op", 1, "bare"},
		{"our runner, no-op handler", 1, "runner"},
		{"our runner + dispatch (decode, Scan, TriggerUpdate)", 1, "dispatch"},
		{"our runner + dispatch + retry.Guard (as dbworker)", 1, "guard"},
		{"bare gearman-go worker, no-op", 4, "bare"},
		{"our runner + dispatch + retry.Guard (as dbworker)", 4, "guard"},
	}
	bare := map[int]float64{}
	for i, v := range variants {
		ns := fmt.Sprintf("bench_w%d", i)
		fn := events.FuncName(ns, "Item", "update")
		n, err := b.prequeue(ctx, g.Addr, fn, b.rows)
		if err != nil {
			return err
		}
		var rate float64
		var got int64
		switch v.kind {
		case "bare":
			var cnt atomic.Int64
			rate, got = b.drain(ctx, n, cnt.Load, func() func() {
				w := gw.New(v.concurrency)
				w.ErrorHandler = func(error) {}
				w.AddServer("tcp", g.Addr)
				w.AddFunc(fn, func(gw.Job) ([]byte, error) { cnt.Add(1); return nil, nil }, 0)
				if err := w.Ready(); err != nil {
					panic(err)
				}
				go w.Work()
				return w.Close
			})
		case "runner":
			var cnt atomic.Int64
			w := gearman.NewWorker([]string{g.Addr}, gearman.WithConcurrency(v.concurrency), gearman.WithLogger(b.log))
			w.Register(fn, func(context.Context, *gearman.Job) (any, error) { cnt.Add(1); return nil, nil })
			rate, got = b.drain(ctx, n, cnt.Load, func() func() { return runWorker(ctx, w) })
		default:
			r := newRecorder()
			w, cleanup, err := b.itemWorker(ctx, b.modelConfig(ns, g.Addr, "items", "binlog"), v.concurrency, v.kind == "guard")
			if err != nil {
				return err
			}
			rate, got = b.drain(ctx, n, r.n.Load, func() func() { return runWorker(ctx, w) })
			cleanup()
		}
		name := fmt.Sprintf("jobs/s, %s, %d at once", v.name, v.concurrency)
		f := b.add(sec, name, rate, "jobs/s")
		if v.kind == "bare" {
			bare[v.concurrency] = rate
		} else {
			f.vs("bare gearman-go", bare[v.concurrency])
			over := (1/rate - 1/bare[v.concurrency]) * 1e6
			b.add(sec, fmt.Sprintf("overhead per job over bare, %s, %d at once", v.kind, v.concurrency), over, "µs")
		}
		if got < int64(n) {
			f.note(fmt.Sprintf("%d of %d jobs, time-capped", got, n))
		}
	}
	return nil
}
