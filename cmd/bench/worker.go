package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	gw "github.com/mikespook/gearman-go/worker"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
)

// prequeue queues n Item update envelopes for fn on addr (8 bare
// connections) and returns how many were queued. With seq, they are
// events of 1,000 rows in commit order, each with its own seq, as the
// bridge sends them; without, n copies of one event without seq.
func (b *bench) prequeue(ctx context.Context, addr, fn string, n int, seq bool) (int, error) {
	one := b.samplePayload("bench", 7)
	payload := func(int64) []byte { return one }
	if seq {
		payload = b.seqPayload
	}
	_, done, err := submitBare(ctx, addr, fn, payload, n, 8, 4*b.maxTime)
	return done, err
}

// seqPayload is event i of prequeue's events with seq: of row i%1000, each
// newer than the one before it.
func (b *bench) seqPayload(i int64) []byte {
	ev, err := events.Decode(b.samplePayload("bench", int(i%1000)))
	if err != nil {
		panic(err)
	}
	ev.ID = fmt.Sprintf("binlog.000001:%d:0", 1000+i)
	ev.Seq = fmt.Sprintf("%06d:%012d:%05d", 1, 1000+i, 0)
	data, err := events.Encode(ev)
	if err != nil {
		panic(err)
	}
	return data
}

// prequeueBatches queues n events with seq (as prequeue) in batch jobs of
// size events on fn, a model's batch function, and returns how many
// events were queued.
func (b *bench) prequeueBatches(ctx context.Context, addr, fn string, n, size int) (int, error) {
	payload := func(k int64) []byte {
		envs := make([][]byte, size)
		for i := range envs {
			envs[i] = b.seqPayload((k-1)*int64(size) + int64(i))
		}
		return eventwire.EncodeBatch(envs)
	}
	_, done, err := submitBare(ctx, addr, fn, payload, n/size, 8, 4*b.maxTime)
	return done * size, err
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
		kind        string // bare, runner, dispatch, guard, ordering
	}
	variants := []variant{
		{"bare gearman-go worker, no-op", 1, "bare"},
		{"our runner, no-op handler", 1, "runner"},
		{"our runner + dispatch (decode, Scan, TriggerUpdate)", 1, "dispatch"},
		{"our runner + dispatch + retryguard.Guard", 1, "guard"},
		{"rowgear.Worker (as dbworker: observation + retryguard.Guard + ordering)", 1, "ordering"},
		{"bare gearman-go worker, no-op", 4, "bare"},
		{"our runner + dispatch + retryguard.Guard", 4, "guard"},
		{"rowgear.Worker (as dbworker: observation + retryguard.Guard + ordering)", 4, "ordering"},
		{"rowgear.Worker (as dbworker), batch jobs of 100 events", 1, "batch"},
		{"rowgear.Worker (as dbworker), batch jobs of 100 events", 4, "batch"},
	}
	bare := map[int]float64{}
	for i, v := range variants {
		ns := fmt.Sprintf("bench_w%d", i)
		fn := events.FuncName(ns, "Item", "update")
		var n int
		if v.kind == "batch" {
			n, err = b.prequeueBatches(ctx, g.Addr, events.FuncName(ns, "Item", events.OpBatch), b.rows, 100)
		} else {
			n, err = b.prequeue(ctx, g.Addr, fn, b.rows, v.kind == "ordering")
		}
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
		case "ordering", "batch":
			cfg := b.modelConfig(ns, g.Addr, "items", "binlog")
			w, err := b.dbworker(ctx, cfg, v.concurrency)
			if err != nil {
				return err
			}
			count := w.Done // a stale event is skipped, not handled
			if v.kind == "batch" {
				count = func() int64 { return 100 * w.Done() } // events, handled or skipped
			}
			rate, got = b.drain(ctx, n, count, func() func() { return runDBWorker(ctx, w) })
		default:
			r := newRecorder()
			cfg := b.modelConfig(ns, g.Addr, "items", "binlog")
			w, cleanup, err := b.itemWorker(ctx, cfg, v.concurrency, v.kind != "dispatch")
			if err != nil {
				return err
			}
			rate, got = b.drain(ctx, n, r.n.Load, func() func() { return runWorker(ctx, w) })
			cleanup()
		}
		name, unit := fmt.Sprintf("jobs/s, %s, %d at once", v.name, v.concurrency), "jobs/s"
		if v.kind == "batch" {
			name, unit = fmt.Sprintf("events/s, %s, %d at once", v.name, v.concurrency), "events/s"
		}
		f := b.add(sec, name, rate, unit)
		if v.kind == "bare" {
			bare[v.concurrency] = rate
		} else {
			f.vs("bare gearman-go", bare[v.concurrency])
			over := (1/rate - 1/bare[v.concurrency]) * 1e6
			per := "job"
			if v.kind == "batch" {
				per = "event"
			}
			b.add(sec, fmt.Sprintf("overhead per %s over bare, %s, %d at once", per, v.kind, v.concurrency), over, "µs")
		}
		if got < int64(n) {
			f.note(fmt.Sprintf("%d of %d jobs, time-capped", got, n))
		}
	}
	return nil
}
