package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/canal"
	"github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/benchutil"
	"github.com/rowgear/rowgear/ordering"
)

const bridgeConns = 8 // the bridge's default concurrency

func (b *bench) binlogPos(ctx context.Context) (bridge.Position, error) {
	var p bridge.Position
	err := b.db.QueryRowContext(ctx, "SHOW BINLOG STATUS").Scan(&p.File, &p.Pos, new(string), new(string))
	return p, err
}

// canalRate decodes the binlog from start with canal alone (a handler that
// counts the rows of table) until rows rows, and returns rows/s. Its
// config is the bridge's: same table filter, value options, flavor.
func (b *bench) canalRate(ctx context.Context, start bridge.Position, table string, rows int) (float64, int, error) {
	dsn, err := gomysql.ParseDSN(b.dsn)
	if err != nil {
		return 0, 0, err
	}
	c := canal.NewDefaultConfig()
	c.Addr, c.User, c.Password = dsn.Addr, dsn.User, dsn.Passwd
	c.Charset = "utf8mb4"
	c.ServerID = uint32(100000 + rand.IntN(1<<30))
	c.Flavor = mysql.MariaDBFlavor
	c.Dump.ExecutionPath = ""
	c.IncludeTableRegex = []string{"^" + regexp.QuoteMeta(b.dbName) + `\.` + regexp.QuoteMeta(table) + "$"}
	c.UseDecimal, c.ParseTime = false, false
	c.TimestampStringLocation = time.UTC
	c.Logger = b.log
	cn, err := canal.NewCanal(c)
	if err != nil {
		return 0, 0, err
	}
	h := &countRows{}
	cn.SetEventHandler(h)
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- cn.RunFrom(mysql.Position{Name: start.File, Pos: start.Pos}) }()
	waitFor(ctx, b.maxTime, func() bool { return h.n.Load() >= int64(rows) })
	el := time.Since(t0)
	n := h.n.Load()
	cn.Close()
	<-done
	return float64(min(n, int64(rows))) / el.Seconds(), int(n), nil
}

type countRows struct {
	canal.DummyEventHandler
	n atomic.Int64
}

func (h *countRows) OnRow(e *canal.RowsEvent) error { h.n.Add(int64(len(e.Rows))); return nil }

// startBridge runs a bridge publishing the Item model of table to
// gearmand addr, from start (nil: the end of the binlog).
func (b *bench) startBridge(ctx context.Context, ns, addr, table string, start *bridge.Position, more ...bridge.Option) (*bridge.Bridge, func() error, error) {
	cfg := b.modelConfig(ns, addr, table, "binlog")
	cfg.Binlog = bridgeBinlog(filepath.Join(b.dir, ns+"-pos.json"))
	opts := append([]bridge.Option{bridge.WithLogger(b.log)}, more...)
	if start != nil {
		opts = append(opts, bridge.WithStart(start))
	}
	br, err := bridge.New(ctx, cfg, opts...)
	if err != nil {
		return nil, nil, err
	}
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- br.Run(bctx) }()
	stop := sync.OnceValue(func() error { // idempotent: a deferred stop may follow an early one
		cancel()
		err := <-done
		br.Close()
		return err
	})
	// The bridge saves its start position before it streams: once the file
	// exists, every later write is published.
	posFile := cfg.Binlog.Position[len("file:"):]
	if !waitFor(ctx, 20*time.Second, func() bool { _, err := os.Stat(posFile); return err == nil }) {
		stop()
		return nil, nil, fmt.Errorf("the bridge did not fix its start position within 20 s")
	}
	return br, stop, nil
}

func bridgeBinlog(posFile string) configBinlog {
	return configBinlog{ServerID: uint32(100000 + rand.IntN(1<<30)), Flavor: "mariadb",
		Position: "file:" + posFile, Concurrency: bridgeConns}
}

// publishRate runs a bridge from start over rows already in the binlog,
// with a no-op worker (bare gearman, 8 at once) answering its jobs, until
// rows events were handled; rows/s. The bridge's saved position waits for
// the workers' answers, and its window of jobs in flight stops it when no
// worker answers, so the worker is part of the measure: the bridge's own
// ceiling, without dispatch, guard or ordering.
func (b *bench) publishRate(ctx context.Context, ns, addr, table string, start bridge.Position, rows int) (float64, int64, error) {
	w := gearman.NewWorker([]string{addr}, gearman.WithConcurrency(8), gearman.WithLogger(b.log))
	for _, op := range []string{"insert", "update"} {
		w.Register(events.FuncName(ns, "Item", op), func(context.Context, *gearman.Job) (any, error) { return nil, nil })
	}
	stopWorker := runWorker(ctx, w)
	defer stopWorker()
	t0 := time.Now()
	br, stop, err := b.startBridge(ctx, ns, addr, table, &start)
	if err != nil {
		return 0, 0, err
	}
	waitFor(ctx, b.maxTime, func() bool { return br.Stats().Handled >= int64(rows) })
	el := time.Since(t0)
	n := br.Stats().Handled
	if err := stop(); err != nil {
		return 0, 0, err
	}
	return float64(min(n, int64(rows))) / el.Seconds(), n, nil
}

// binlogPath: section 3.
func (b *bench) binlogPath(ctx context.Context) error {
	const sec = "3"
	if _, err := b.db.ExecContext(ctx, "CREATE TABLE items "+itemDDL); err != nil {
		return err
	}
	start, err := b.binlogPos(ctx)
	if err != nil {
		return err
	}
	for i := 0; i < b.rows; i += 500 {
		if err := insertItems(ctx, b.db, "items", i, min(500, b.rows-i)); err != nil {
			return err
		}
	}
	canalRate, n, err := b.canalRate(ctx, start, "items", b.rows)
	if err != nil {
		return err
	}
	f := b.add(sec, "canal alone: decode rows", canalRate, "rows/s")
	if n < b.rows {
		f.note(fmt.Sprintf("%d rows, time-capped", n))
	}
	for _, queue := range []string{"memory", "sqlite"} {
		g, err := b.gearmand(queue)
		if err != nil {
			return err
		}
		rate, pub, err := b.publishRate(ctx, "bench_pub_"+queue, g.Addr, "items", start, b.rows)
		b.stopGearmand(g)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("bridge publish, handled by a no-op worker, %s queue, %d conns", queue, bridgeConns)
		ceil, ok := b.ceilings[ceilingKey(queue, bridgeConns)]
		f := b.add(sec, name, rate, "rows/s")
		if ok {
			f.vs(fmt.Sprintf("DoBg %s, %d conns", queue, bridgeConns), ceil)
		}
		if pub < int64(b.rows) {
			f.note(fmt.Sprintf("%d rows, time-capped", pub))
		}
		if queue == "memory" {
			b.add(sec, name, rate, "rows/s").vs("canal alone", canalRate)
			b.ceilings["bridge_publish"] = rate
		}
	}
	return b.binlogEndToEnd(ctx)
}

// binlogEndToEnd: writer → MariaDB → bridge (batches of --batch) →
// gearmand (memory) → worker (dispatch + retry guard + ordering, as
// dbworker) at fixed offered loads and at saturation; then the pipeline
// alone, draining rows already in the binlog, with and without ordering
// and batches, against gearmand's one-job-per-event ceiling.
func (b *bench) binlogEndToEnd(ctx context.Context) error {
	const sec = "3"
	if _, err := b.db.ExecContext(ctx, "CREATE TABLE items_e2e "+itemDDL); err != nil {
		return err
	}
	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	defer b.stopGearmand(g)
	ns := "bench_e2e"
	_, stopBridge, err := b.startBridge(ctx, ns, g.Addr, "items_e2e", nil, bridge.WithBatch(b.batch), bridge.WithConcurrency(b.batchConns))
	if err != nil {
		return err
	}
	defer stopBridge()
	stopLatency, err := b.measureLatency(ctx)
	if err != nil {
		return err
	}
	defer stopLatency()
	cfg := b.modelConfig(ns, g.Addr, "items_e2e", "binlog")
	mw, closeOrd, err := b.orderer(cfg, 4)
	if err != nil {
		return err
	}
	defer closeOrd()
	w, cleanup, err := b.itemWorkerMW(ctx, cfg, 4, true, mw)
	if err != nil {
		return err
	}
	defer cleanup()
	stopWorker := runWorker(ctx, w)
	defer stopWorker()
	what := fmt.Sprintf("ordering on, batches of ≤ %d, %d bridge conns", b.batch, b.batchConns)
	// Warm-up, not measured: the worker's and the orderer's connections,
	// the bridge's first reads. Without it the first phase's tail was the
	// start-up's (≈0.8 s for its first few hundred rows).
	warm := newRecorder()
	if err := insertItems(ctx, b.db, "items_e2e", 0, 500); err != nil {
		return err
	}
	if !waitFor(ctx, 60*time.Second, func() bool { return warm.n.Load() >= 500 }) {
		return fmt.Errorf("warm-up: %d of 500 events arrived in 60 s", warm.n.Load())
	}
	awaitSamples(ctx, warm, 500) // its latencies, resolved late, must not land in the first phase
	next := 500
	phase := func(rate int, label string) error {
		r := newRecorder() // latency: from the tracker, not written_at
		var total int
		var dur time.Duration
		if rate > 0 {
			total = min(b.rows, rate*int(b.maxTime/time.Second))
			dur = b.maxTime
		} else {
			total, dur = b.rows, b.maxTime
		}
		t0 := time.Now()
		var wrote int
		var err error
		if rate > 0 {
			wrote, err = benchutil.Pace(ctx, rate, total, dur, 10*time.Millisecond, func(n int) error {
				err := insertItems(ctx, b.db, "items_e2e", next, n)
				next += n
				return err
			})
		} else {
			for wrote < total && time.Since(t0) < dur && err == nil {
				n := min(500, total-wrote)
				err = insertItems(ctx, b.db, "items_e2e", next, n)
				next += n
				wrote += n
			}
		}
		if err != nil {
			return err
		}
		writeDur := time.Since(t0)
		ok := waitFor(ctx, 60*time.Second, func() bool { return r.n.Load() >= int64(wrote) })
		got := r.n.Load()
		el := time.Duration(r.last.Load() - t0.UnixNano())
		eps := float64(got) / el.Seconds()
		f := b.add(sec, "end to end binlog → handler, "+what+", "+label, eps, "events/s")
		if rate > 0 {
			f.vs("offered rows/s", float64(rate))
		} else {
			f.vs("bridge publish rows/s", b.ceilings["bridge_publish"])
		}
		note := fmt.Sprintf("%d rows written at %.0f rows/s", wrote, float64(wrote)/writeDur.Seconds())
		if !ok {
			note += fmt.Sprintf("; only %d arrived", got)
		}
		f.note(note)
		awaitSamples(ctx, r, got)
		addLatency(b, sec, "binlog commit → handler, "+what+", "+label, r,
			"commit time from µs heartbeats (package latency)")
		return nil
	}
	for _, rate := range []int{1000, 5000} {
		if err := phase(rate, fmt.Sprintf("%dk rows/s offered", rate/1000)); err != nil {
			return err
		}
	}
	if err := phase(0, "saturation, writer beside"); err != nil {
		return err
	}
	stopWorker()
	stopBridge()
	for i, v := range []struct {
		ordered bool
		batch   int
	}{{false, 1}, {true, 1}, {false, b.batch}, {true, b.batch}} {
		if err := b.binlogDrain(ctx, g.Addr, i, v.ordered, v.batch); err != nil {
			return err
		}
	}
	return nil
}

// orderer returns package ordering's middleware on its own pool, as
// dbworker has it, and what closes that pool.
func (b *bench) orderer(cfg *config.Config, concurrency int) (func(gearman.Handler) gearman.Handler, func(), error) {
	odb, err := ordering.OpenDB(b.dsn, concurrency)
	if err != nil {
		return nil, nil, err
	}
	o, err := ordering.New(odb, ordering.WithConfig(cfg), ordering.WithLogger(b.log))
	if err != nil {
		odb.Close()
		return nil, nil, err
	}
	return o.Middleware(), func() { odb.Close() }, nil
}

// binlogDrain writes --rows rows (500 per INSERT), then starts a bridge at
// the position before them and a worker (4 at once, retry guard, ordering
// when ordered) and measures events/s until every row's handler ran: the
// pipeline at saturation, with no writer competing for the cores.
func (b *bench) binlogDrain(ctx context.Context, addr string, k int, ordered bool, batch int) error {
	const sec = "3"
	table := fmt.Sprintf("items_drain%d", k)
	if _, err := b.db.ExecContext(ctx, "CREATE TABLE "+table+" "+itemDDL); err != nil {
		return err
	}
	start, err := b.binlogPos(ctx)
	if err != nil {
		return err
	}
	for i := 0; i < b.rows; i += 500 {
		if err := insertItems(ctx, b.db, table, i, min(500, b.rows-i)); err != nil {
			return err
		}
	}
	ns := fmt.Sprintf("bench_drain%d", k)
	cfg := b.modelConfig(ns, addr, table, "binlog")
	var mw func(gearman.Handler) gearman.Handler
	what := "no ordering"
	if ordered {
		var closeOrd func()
		if mw, closeOrd, err = b.orderer(cfg, 4); err != nil {
			return err
		}
		defer closeOrd()
		what = "ordering on"
	}
	w, cleanup, err := b.itemWorkerMW(ctx, cfg, 4, true, mw)
	if err != nil {
		return err
	}
	defer cleanup()
	r := newRecorder()
	t0 := time.Now()
	stopWorker := runWorker(ctx, w)
	defer stopWorker()
	conns := bridgeConns
	if batch > 1 {
		conns = b.batchConns
	}
	br, stopBridge, err := b.startBridge(ctx, ns, addr, table, &start, bridge.WithBatch(batch), bridge.WithConcurrency(conns))
	if err != nil {
		return err
	}
	defer stopBridge()
	ok := waitFor(ctx, b.maxTime*4, func() bool { return r.n.Load() >= int64(b.rows) })
	got := r.n.Load()
	el := time.Duration(r.last.Load() - t0.UnixNano())
	jobs := fmt.Sprintf("one job per event, %d bridge conns", conns)
	if batch > 1 {
		jobs = fmt.Sprintf("batches of ≤ %d, %d bridge conns", batch, conns)
	}
	f := b.add(sec, fmt.Sprintf("binlog → handler, draining %d rows (bridge, gearmand, worker, MariaDB only), %s, %s", b.rows, what, jobs),
		float64(got)/el.Seconds(), "events/s")
	if ceil, ok := b.ceilings[ceilingKey("memory", bridgeConns)]; ok {
		f.vs(fmt.Sprintf("DoBg memory, %d conns (one job per event)", bridgeConns), ceil)
	}
	if !ok {
		f.note(fmt.Sprintf("only %d of %d arrived", got, b.rows))
	}
	st := br.Stats()
	f.note(fmt.Sprintf("%d events published, %d handled", st.Published, st.Handled))
	return nil
}
