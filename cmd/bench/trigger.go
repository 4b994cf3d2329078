package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowgear/rowgear"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/internal/benchutil"
	"github.com/rowgear/rowgear/internal/outbox"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/triggers"
)

// installTrigger generates our strict AFTER UPDATE trigger for the Item
// model on table and installs it, submitting to gearmand addr: the
// generated call gman_do_background(fn, envelope, id) gets the UDF's
// per-call server argument, so the shared server's global list (other
// users' gearmand) is left alone.
//
// With addr empty the call becomes CONCAT(fn, envelope, id): the trigger
// builds the same envelope but sends nothing, which splits the trigger's
// cost between building the JSON and the round trip to gearmand.
func (b *bench) installTrigger(ctx context.Context, ns, table, addr string) error {
	return b.installTriggerGate(ctx, ns, table, addr, true)
}

// installTriggerGate is installTrigger, without the commit gate (its
// gate-row INSERT and seq) when gate is false: the trigger before package
// ordering, to measure what the gate costs the writer.
func (b *bench) installTriggerGate(ctx context.Context, ns, table, addr string, gate bool) error {
	t, err := sqlschema.LoadTable(ctx, b.db, b.dbName, table)
	if err != nil {
		return err
	}
	trs, err := triggers.Generate(triggers.Spec{Namespace: ns, Mode: triggers.Strict, Model: "Item",
		Schema: b.dbName, Table: table, Events: []string{"update"}}, t)
	if err != nil {
		return err
	}
	for _, tr := range trs {
		const call = "rowgear_payload, rowgear_id)"
		if strings.Count(tr.Create, call) != 1 {
			return fmt.Errorf("trigger %s: cannot find the gman_do_background call to point at %s", tr.Name, addr)
		}
		ddl := strings.Replace(tr.Create, call, "rowgear_payload, rowgear_id, '"+addr+"')", 1)
		if addr == "" {
			ddl = strings.Replace(tr.Create, "gman_do_background(", "CONCAT(", 1)
		}
		if !gate {
			var kept []string
			for _, line := range strings.Split(ddl, "\n") {
				if !strings.Contains(line, sqlschema.GateTable) && !strings.Contains(line, "LAST_INSERT_ID()") {
					kept = append(kept, line)
				}
			}
			ddl = strings.Join(kept, "\n")
		}
		if _, err := b.db.ExecContext(ctx, tr.Drop); err != nil {
			return err
		}
		if _, err := b.db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("%s: %w", tr.Name, err)
		}
	}
	return nil
}

// installOutboxTrigger installs the generated outbox AFTER UPDATE trigger
// of the Item model on table: it writes the event row and rings the
// doorbell (rowgear_ring, which never waits) on gearmand addr, through the
// UDF's per-call server argument; with addr empty it rings no doorbell
// (the split of section 2's UPDATE cost).
func (b *bench) installOutboxTrigger(ctx context.Context, ns, table, addr string) error {
	t, err := sqlschema.LoadTable(ctx, b.db, b.dbName, table)
	if err != nil {
		return err
	}
	trs, err := triggers.Generate(triggers.Spec{Namespace: ns, Mode: triggers.Outbox, Model: "Item",
		Schema: b.dbName, Table: table, Events: []string{"update"}}, t)
	if err != nil {
		return err
	}
	for _, tr := range trs {
		ddl := tr.Create
		ring := "rowgear_ring('" + outbox.Doorbell(ns) + "')"
		if !strings.Contains(ddl, ring) {
			return fmt.Errorf("trigger %s: cannot find the doorbell", tr.Name)
		}
		if addr != "" {
			ddl = strings.ReplaceAll(ddl, ring, "rowgear_ring('"+outbox.Doorbell(ns)+"', '"+addr+"')")
		} else {
			ddl = strings.ReplaceAll(ddl, "DO "+ring+";", "")
		}
		if _, err := b.db.ExecContext(ctx, tr.Drop); err != nil {
			return err
		}
		if _, err := b.db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("%s: %w", tr.Name, err)
		}
	}
	return nil
}

func (b *bench) createItems(ctx context.Context, table string, n int) error {
	if _, err := b.db.ExecContext(ctx, "CREATE TABLE "+table+" "+itemDDL); err != nil {
		return err
	}
	for i := 0; i < n; i += 500 {
		if err := insertItems(ctx, b.db, table, i, min(500, n-i)); err != nil {
			return err
		}
	}
	return nil
}

// insertItems inserts rows from, from+1, … in one statement.
func insertItems(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, table string, from, n int) error {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + table + " (id, n, body, written_at) VALUES ")
	for i := from; i < from+n; i++ {
		if i > from {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "(%d,0,'a body of some length for row %d',NOW(6))", i, i)
	}
	_, err := db.ExecContext(ctx, sb.String())
	return err
}

// triggerPath: section 2. What the trigger costs an UPDATE, split into
// its parts, then the whole path end to end.
func (b *bench) triggerPath(ctx context.Context) error {
	const sec = "2"
	const nrows = 1000 // rows the UPDATEs cycle through
	if err := b.updateCost(ctx, sec, nrows); err != nil {
		return err
	}
	if err := b.triggerEndToEnd(ctx, sec, nrows); err != nil {
		return err
	}
	return b.outboxEndToEnd(ctx, sec, nrows)
}

// outboxBatch is the relay's triggers.batch in outboxEndToEnd.
const outboxBatch = 100

// outboxEndToEnd: the default trigger path end to end. 4 writers update
// distinct rows of a table with the generated outbox trigger; a
// rowgear.Worker (4 jobs at once, its relay sending batches of up to 100
// events, the retry guard and the ordering as dbworker runs them) applies
// them from a fresh gearmand with its memory queue.
func (b *bench) outboxEndToEnd(ctx context.Context, sec string, nrows int) error {
	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	defer b.stopGearmand(g)
	const ns = "bench_outbox_e2e"
	if err := b.installOutboxTrigger(ctx, ns, "items_outbox", g.Addr); err != nil {
		return err
	}
	// The UPDATE cost's gate rows go: outbox rows of another namespace
	// (no relay) and strict ones no worker ever takes (the gearmand of
	// their trigger has none), 12,000 or more; the relay's sweep reads the
	// rows below its mark at every poll (100 ms here).
	if _, err := b.db.ExecContext(ctx, "DELETE FROM "+sqlschema.GateTable); err != nil {
		return err
	}
	cfg := b.modelConfig(ns, g.Addr, "items_outbox", "trigger")
	cfg.Triggers = config.Triggers{Mode: "outbox", Batch: outboxBatch, Poll: 100 * time.Millisecond}
	stopLatency, err := b.measureLatency(ctx)
	if err != nil {
		return err
	}
	defer stopLatency()
	reg := dispatch.NewRegistry()
	if err := dispatch.Register[Item](reg, "Item"); err != nil {
		return err
	}
	// The drain: the outbox filled with no worker (so no relay) running,
	// then emptied by one, as after an outage.
	r := newRecorder()
	from, err := b.gateTop(ctx)
	if err != nil {
		return err
	}
	n, _, err := b.spreadUpdates(ctx, "items_outbox", nrows, 4, 0, time.Now().Add(time.Minute))
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := rowgear.NewWorker(wctx, cfg, reg, rowgear.WithDSN(b.dsn), rowgear.WithConcurrency(4),
		rowgear.WithLogger(b.log), rowgear.WithStateDir(filepath.Join(b.dir, "outbox-journal")),
		rowgear.WithMiddleware(b.latency.Middleware, b.latency.HandlerStart))
	if err != nil {
		return err
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() { cancel(); <-done }()
	ok := b.outboxEmpty(ctx, ns, from)
	f := b.add(sec, fmt.Sprintf("drain: %d outbox events queued with no worker, then one rowgear.Worker (relay batches of %d, ordered, 4 at once)", n, outboxBatch),
		float64(n)/time.Since(start).Seconds(), "events/s")
	f.note(fmt.Sprintf("%d handler runs", r.n.Load()))
	if !ok {
		f.note("the outbox did not empty within 2 min")
	}
	// Flat out, then at the 2,000 writes/s: flat out the writers
	// take both cores and the relay and worker queue behind them.
	for _, rate := range []int{0, 2000, 1000} {
		if err := b.outboxPhase(ctx, sec, ns, nrows, rate); err != nil {
			return err
		}
	}
	return nil
}

// outboxEmpty waits up to 2 min for namespace ns's outbox rows past id
// from to be gone: done, since ordering skips an event overtaken by a
// newer one of its row, so not every event reaches a handler. It looks
// every 2 ms by primary key from the first row left: a COUNT(*) of the
// whole gate table (the other sections' rows in it) competed with the
// relay and worker it times.
func (b *bench) outboxEmpty(ctx context.Context, ns string, from uint64) bool {
	return waitFor(ctx, 2*time.Minute, func() bool {
		var id uint64
		err := b.db.QueryRowContext(ctx, "SELECT id FROM "+sqlschema.GateTable+" WHERE id > ? AND fn LIKE '"+ns+".%' ORDER BY id LIMIT 1", from).Scan(&id)
		if err == nil {
			from = id - 1 // the rows before it are gone: start there next time
		}
		return errors.Is(err, sql.ErrNoRows)
	})
}

// gateTop is the highest commit-gate id so far: a phase's rows come after it.
func (b *bench) gateTop(ctx context.Context) (uint64, error) {
	var id uint64
	err := b.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM "+sqlschema.GateTable).Scan(&id)
	return id, err
}

// outboxPhase is one measurement of outboxEndToEnd: 4 writers flat out
// (rate 0) or offering rate UPDATEs/s between them.
func (b *bench) outboxPhase(ctx context.Context, sec, ns string, nrows, rate int) error {
	r := newRecorder()
	const writers = 4
	label := "4 writers flat out"
	if rate > 0 {
		label = fmt.Sprintf("%d UPDATEs/s offered", rate)
	}
	from, err := b.gateTop(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	n, writeDur, err := b.spreadUpdates(ctx, "items_outbox", nrows, writers, rate, start.Add(b.maxTime))
	if err != nil {
		return err
	}
	ok := b.outboxEmpty(ctx, ns, from)
	el := time.Since(start)
	got := r.n.Load()
	f := b.add(sec, fmt.Sprintf("end to end: outbox trigger → relay → gearmand → rowgear.Worker (batches of %d, ordered), %s", outboxBatch, label), float64(n)/el.Seconds(), "events/s").
		vs("UPDATEs/s committed", float64(n)/writeDur.Seconds())
	if !ok {
		f.note(fmt.Sprintf("the outbox did not empty within 2 min of %d events", n))
	} else {
		f.note(fmt.Sprintf("%d writers, %d events, %d handler runs (the others overtaken by a newer one of their row)", writers, n, got))
	}
	awaitSamples(ctx, r, got)
	addLatency(b, sec, "outbox commit → handler, "+label, r, "the trigger's UTC_TIMESTAMP(6) (package latency)")
	return nil
}

// updateVariant is one table of section 2's UPDATE cost, with the body of
// its hand-written trigger ("": none, or the generated one).
type updateVariant struct{ table, name, body string }

// updateVariants split the UPDATE's cost: a trigger that does nothing, one
// that only writes a commit-gate row, the generated strict trigger building
// the envelope without the gate and without sending it, the same with the
// gate, the outbox trigger without and with its doorbell, and the strict
// trigger whole (last).
var updateVariants = []updateVariant{
	{"items_plain", "plain table", ""},
	{"items_empty", "a trigger doing nothing (SET @x = 1)", "BEGIN SET @x = 1; END"},
	{"items_gaterow", "a trigger writing one commit-gate row, nothing else", "BEGIN INSERT INTO " + sqlschema.GateTable + " (digest) VALUES (REPEAT('x', 32)); END"},
	{"items_env", "generated trigger building the envelope, no gate, no UDF call", ""},
	{"items_json", "generated trigger building the envelope and its gate row, no UDF call", ""},
	{"items_quiet", "generated outbox trigger without its doorbell (the event row only)", ""},
	{"items_outbox", "generated outbox trigger (the event row + the doorbell, the default)", ""},
	{"items_trig", "generated strict trigger + UDF (waits for gearmand)", ""},
}

// updateCost sets up section 2's tables, times UPDATEs on each, and adds
// the figures.
func (b *bench) updateCost(ctx context.Context, sec string, nrows int) error {
	if err := b.createUpdateVariants(ctx, nrows); err != nil {
		return err
	}
	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	if err := b.installVariantTriggers(ctx, "bench_trig", g.Addr); err != nil {
		return err
	}
	dur, updates, err := b.timeVariantUpdates(ctx, nrows)
	if err != nil {
		return err
	}
	b.reportUpdateCost(sec, dur, updates)
	b.stopGearmand(g)
	return nil
}

// createUpdateVariants creates the tables of updateVariants and their
// hand-written triggers.
func (b *bench) createUpdateVariants(ctx context.Context, nrows int) error {
	for _, v := range updateVariants {
		if err := b.createItems(ctx, v.table, nrows); err != nil {
			return err
		}
		if v.body != "" {
			if _, err := b.db.ExecContext(ctx, "CREATE TRIGGER rowgear_bench_"+v.table+" AFTER UPDATE ON "+v.table+" FOR EACH ROW "+v.body); err != nil {
				return err
			}
		}
	}
	return nil
}

// installVariantTriggers installs the generated triggers of updateVariants:
// whole (submitting to addr), without the UDF call, and without gate either.
func (b *bench) installVariantTriggers(ctx context.Context, ns, addr string) error {
	if err := b.installTrigger(ctx, ns, "items_trig", addr); err != nil {
		return err
	}
	if err := b.installTrigger(ctx, ns, "items_json", ""); err != nil {
		return err
	}
	if err := b.installOutboxTrigger(ctx, ns, "items_outbox", addr); err != nil {
		return err
	}
	if err := b.installOutboxTrigger(ctx, ns, "items_quiet", ""); err != nil {
		return err
	}
	return b.installTriggerGate(ctx, ns, "items_env", "", false)
}

// timeVariantUpdates times interleaved blocks of 100 single-row autocommit
// UPDATEs on one session, so machine noise hits every table alike. It
// returns the time spent on each of updateVariants and the UPDATEs run on
// each.
func (b *bench) timeVariantUpdates(ctx context.Context, nrows int) ([]time.Duration, int, error) {
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	dur := make([]time.Duration, len(updateVariants))
	block := func(k int, table string, from int) error {
		t0 := time.Now()
		for i := from; i < from+100; i++ {
			if _, err := conn.ExecContext(ctx, "UPDATE "+table+" SET n = n + 1, written_at = NOW(6) WHERE id = ?", i%nrows); err != nil {
				return err
			}
		}
		dur[k] += time.Since(t0)
		return nil
	}
	for i := 0; i < 2; i++ { // warm-up
		for k, v := range updateVariants {
			if err := block(k, v.table, 0); err != nil {
				return nil, 0, err
			}
		}
	}
	clear(dur)
	updates := 0
	limit := time.Now().Add(2 * b.maxTime)
	for updates < b.rows/2 && time.Now().Before(limit) {
		for k, v := range updateVariants {
			if err := block(k, v.table, updates); err != nil {
				return nil, 0, fmt.Errorf("UPDATE %s: %w", v.table, err)
			}
		}
		updates += 100
	}
	return dur, updates, nil
}

// reportUpdateCost adds the UPDATE cost figures: each variant's latency
// beside the plain table's, and the whole trigger path's rate.
func (b *bench) reportUpdateCost(sec string, dur []time.Duration, updates int) {
	us := func(k int) float64 { return float64(dur[k].Microseconds()) / float64(updates) }
	plainUS, trigUS := us(0), us(len(updateVariants)-1)
	b.add(sec, "UPDATE latency, plain table", plainUS, "µs").note(fmt.Sprintf("%d single-row autocommit UPDATEs per table", updates))
	for k, v := range updateVariants[1:] {
		f := b.add(sec, "UPDATE latency, "+v.name, us(k+1), "µs").vs("plain UPDATE µs", plainUS)
		if v.table == "items_outbox" {
			f.note("ratio = cost, target ≤ 1.45")
		}
	}
	b.add(sec, "UPDATE rate, generated trigger + UDF", 1e6/trigUS, "rows/s").vs("plain UPDATE rows/s", 1e6/plainUS)
	b.ceilings["update_plain_us"], b.ceilings["update_trig_us"] = plainUS, trigUS
}

// triggerEndToEnd: 4 writers updating distinct rows, the trigger
// submitting to a fresh gearmand, one worker (4 jobs at once) with
// dispatch and the retry guard, as dbworker runs.
func (b *bench) triggerEndToEnd(ctx context.Context, sec string, nrows int) error {
	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	defer b.stopGearmand(g)
	ns := "bench_trig_e2e"
	if err := b.installTrigger(ctx, ns, "items_trig", g.Addr); err != nil {
		return err
	}
	cfg := b.modelConfig(ns, g.Addr, "items_trig", "trigger")
	stopLatency, err := b.measureLatency(ctx)
	if err != nil {
		return err
	}
	defer stopLatency()
	w, cleanup, err := b.itemWorker(ctx, cfg, 4, true)
	if err != nil {
		return err
	}
	defer cleanup()
	r := newRecorder() // latency: from the tracker (the trigger's UTC_TIMESTAMP(6))
	stop := runWorker(ctx, w)
	defer stop()
	const writers = 4
	start := time.Now()
	n, writeDur, err := b.spreadUpdates(ctx, "items_trig", nrows, writers, 0, start.Add(b.maxTime))
	if err != nil {
		return err
	}
	ok := waitFor(ctx, 30*time.Second, func() bool { return r.n.Load() >= n })
	got := r.n.Load()
	el := time.Duration(r.last.Load() - start.UnixNano())
	commitRate := float64(n) / writeDur.Seconds()
	f := b.add(sec, "end to end: trigger → gearmand → worker+dispatch+guard", float64(got)/el.Seconds(), "events/s").
		vs("UPDATEs/s committed", commitRate)
	if !ok {
		f.note(fmt.Sprintf("only %d of %d events arrived", got, n))
	} else {
		f.note(fmt.Sprintf("%d writers, %d events", writers, n))
	}
	awaitSamples(ctx, r, got)
	addLatency(b, sec, "trigger commit → handler", r, "the trigger's UTC_TIMESTAMP(6) (package latency)")
	return nil
}

// spreadUpdates runs single-row autocommit UPDATEs on table's first nrows
// rows from writers sessions, writer k taking rows k, k+writers, …, until
// b.rows are written or deadline passes. It returns how many were written
// and how long the writing took. With rate > 0 the writers share that
// many UPDATEs/s between them (an offered load) rather than run flat out.
func (b *bench) spreadUpdates(ctx context.Context, table string, nrows, writers, rate int, deadline time.Time) (int64, time.Duration, error) {
	var written atomic.Int64
	var wg sync.WaitGroup
	var werr error
	var once sync.Once
	start := time.Now()
	var tokens chan struct{}
	if rate > 0 {
		tokens = make(chan struct{}, rate)
		pctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			defer close(tokens)
			_, _ = benchutil.Pace(pctx, rate, b.rows, time.Until(deadline), time.Millisecond, func(n int) error {
				for range n {
					select {
					case tokens <- struct{}{}:
					case <-pctx.Done():
						return pctx.Err()
					}
				}
				return nil
			})
		}()
	}
	for k := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; written.Load() < int64(b.rows) && time.Now().Before(deadline); i += writers {
				if tokens != nil {
					if _, ok := <-tokens; !ok {
						return
					}
				}
				if _, err := b.db.ExecContext(ctx, "UPDATE "+table+" SET n = n + 1, written_at = NOW(6) WHERE id = ?", i%nrows); err != nil {
					once.Do(func() { werr = err })
					return
				}
				written.Add(1)
			}
		}()
	}
	wg.Wait()
	return written.Load(), time.Since(start), werr
}

// addLatency adds r's commit → handler percentiles, each beside the same
// percentile measured from the statement's start (the row's written_at,
// NOW(6)): commit comes after the start, so the ratio must stay ≤ 1.
func addLatency(b *bench, sec, what string, r *recorder, note string) {
	commit, stmt := r.latencies()
	l, s := benchutil.Percentiles(commit), benchutil.Percentiles(stmt)
	b.add(sec, what+" p50", l.P50/1e3, "ms").vs("statement start → handler", s.P50/1e3).note(note)
	b.add(sec, what+" p95", l.P95/1e3, "ms").vs("statement start → handler", s.P95/1e3)
	b.add(sec, what+" p99", l.P99/1e3, "ms").vs("statement start → handler", s.P99/1e3).
		note(fmt.Sprintf("max %.1f ms, n=%d", l.Max/1e3, l.N))
}
