package main

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/ordering"
)

// orderingPath: section 5. What the commit gate costs the writer (its
// gate-row INSERT in the trigger), and what package ordering costs the
// consumer: the same queued trigger events drained with no middleware, with
// the gate only (ordered: false) and with gate and per-row ordering.
func (b *bench) orderingPath(ctx context.Context) error {
	const sec = "5"
	const nrows = 1000
	tables := []string{"items_o_plain", "items_o_nogate", "items_o_gate"}
	for _, t := range tables {
		if err := b.createItems(ctx, t, nrows); err != nil {
			return err
		}
	}
	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	if err := b.installTriggerGate(ctx, "bench_ord_ng", "items_o_nogate", g.Addr, false); err != nil {
		return err
	}
	if err := b.installTriggerGate(ctx, "bench_ord", "items_o_gate", g.Addr, true); err != nil {
		return err
	}
	// Interleaved blocks of 100 single-row autocommit UPDATEs on one
	// session, as in section 2.
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return err
	}
	var dur [3]time.Duration
	block := func(k, from int) error {
		t0 := time.Now()
		for i := from; i < from+100; i++ {
			if _, err := conn.ExecContext(ctx, "UPDATE "+tables[k]+" SET n = n + 1, written_at = NOW(6) WHERE id = ?", i%nrows); err != nil {
				return fmt.Errorf("UPDATE %s: %w", tables[k], err)
			}
		}
		dur[k] += time.Since(t0)
		return nil
	}
	for range 2 { // warm-up
		for k := range tables {
			if err := block(k, 0); err != nil {
				conn.Close()
				return err
			}
		}
	}
	dur = [3]time.Duration{}
	updates := 0
	for limit := time.Now().Add(2 * b.maxTime); updates < b.rows/4 && time.Now().Before(limit); updates += 100 {
		for k := range tables {
			if err := block(k, updates); err != nil {
				conn.Close()
				return err
			}
		}
	}
	conn.Close()
	b.stopGearmand(g)
	us := func(k int) float64 { return float64(dur[k].Microseconds()) / float64(updates) }
	b.add(sec, "UPDATE latency, plain table", us(0), "µs").note(fmt.Sprintf("%d UPDATEs per table, interleaved", updates))
	b.add(sec, "UPDATE latency, trigger + UDF without the commit gate", us(1), "µs").vs("plain UPDATE µs", us(0))
	b.add(sec, "UPDATE latency, trigger + UDF + commit gate (writer's cost)", us(2), "µs").vs("plain UPDATE µs", us(0))
	b.add(sec, "UPDATE latency, commit gate vs no gate", us(2), "µs").vs("trigger without gate µs", us(1))

	// The consumer: n events queued first, then drained by one worker (4 at
	// once, retry guard), timed until the worker has answered them all.
	n := min(b.rows, 4000)
	rates := map[string]float64{}
	// The orderer's own connections in READ COMMITTED, as the package
	// documentation advises: one round trip less per event.
	odb, err := sql.Open("mysql", b.dsn+"&tx_isolation=%27READ-COMMITTED%27")
	if err != nil {
		return err
	}
	defer odb.Close()
	odb.SetMaxIdleConns(16)
	for _, mode := range []string{"none", "gate", "ordered"} {
		g, err := b.gearmand("memory")
		if err != nil {
			return err
		}
		ns := "bench_ord_" + mode
		if err := b.installTriggerGate(ctx, ns, "items_o_gate", g.Addr, true); err != nil {
			return err
		}
		if err := b.writeUpdates(ctx, "items_o_gate", nrows, n, 4); err != nil {
			return err
		}
		cfg := b.modelConfig(ns, g.Addr, "items_o_gate", "trigger")
		var mw func(gearman.Handler) gearman.Handler
		if mode != "none" {
			opts := []ordering.Option{ordering.WithConfig(cfg), ordering.WithLogger(b.log)}
			if mode == "gate" {
				opts = append(opts, ordering.WithUnordered("Item"))
			}
			o, err := ordering.New(odb, opts...)
			if err != nil {
				return err
			}
			mw = o.Middleware()
		}
		newRecorder()
		w, cleanup, err := b.itemWorkerMW(ctx, cfg, 4, true, mw)
		if err != nil {
			return err
		}
		start := time.Now()
		stop := runWorker(ctx, w)
		ok := waitFor(ctx, 60*time.Second, func() bool { return w.Done() >= int64(n) })
		el := time.Since(start)
		stop()
		cleanup()
		b.stopGearmand(g)
		if !ok {
			return fmt.Errorf("mode %s: %d of %d events done in 60 s", mode, w.Done(), n)
		}
		rates[mode] = float64(n) / el.Seconds()
	}
	b.add(sec, "drain queued trigger events, no middleware (phantoms, no order)", rates["none"], "events/s").
		note(fmt.Sprintf("%d events over %d rows, 1 worker, 4 at once", n, nrows))
	b.add(sec, "drain, commit gate only (ordered: false)", rates["gate"], "events/s").vs("no middleware events/s", rates["none"])
	b.add(sec, "drain, commit gate + per-row ordering (default)", rates["ordered"], "events/s").vs("gate only (unordered) events/s", rates["gate"])
	return nil
}

// writeUpdates runs n single-row autocommit UPDATEs on table's first nrows
// rows from writers sessions at once.
func (b *bench) writeUpdates(ctx context.Context, table string, nrows, n, writers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := b.db.ExecContext(ctx, "UPDATE "+table+" SET n = n + 1, written_at = NOW(6) WHERE id = ?", i%int64(nrows)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
