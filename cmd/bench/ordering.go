package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/sqlschema"
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
	if err := b.gateCost(ctx, sec, tables, nrows); err != nil {
		return err
	}
	// The orderer's pools: its own (ordering.OpenDB: begin, gate and claim
	// in one round trip), and a plain one in READ COMMITTED, where each
	// statement is a round trip of its own (the path before OpenDB).
	odb, err := ordering.OpenDB(b.dsn, 16)
	if err != nil {
		return err
	}
	defer odb.Close()
	pdb, err := sql.Open("mysql", b.dsn+"&tx_isolation=%27READ-COMMITTED%27")
	if err != nil {
		return err
	}
	defer pdb.Close()
	pdb.SetMaxIdleConns(16)
	d := drain{table: "items_o_gate", nrows: nrows, rounds: 3, odb: odb, pdb: pdb}
	d.per = min(b.rows, 4000) / d.rounds
	rates, err := b.drainRounds(ctx, d)
	if err != nil {
		return err
	}
	alone, err := b.ordererAlone(ctx, map[string]*sql.DB{"plain": pdb, "OpenDB": odb})
	if err != nil {
		return err
	}
	b.reportOrdering(sec, d, alone, rates)
	return nil
}

// gateCost sets up tables (plain, trigger without the gate, trigger with
// it), times UPDATEs on each and adds the writer's figures.
func (b *bench) gateCost(ctx context.Context, sec string, tables []string, nrows int) error {
	for _, t := range tables {
		if err := b.createItems(ctx, t, nrows); err != nil {
			return err
		}
	}
	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	if err := b.installTriggerGate(ctx, "bench_ord_ng", tables[1], g.Addr, false); err != nil {
		return err
	}
	if err := b.installTriggerGate(ctx, "bench_ord", tables[2], g.Addr, true); err != nil {
		return err
	}
	dur, updates, err := b.timeTableUpdates(ctx, tables, nrows)
	if err != nil {
		return err
	}
	b.stopGearmand(g)
	us := func(k int) float64 { return float64(dur[k].Microseconds()) / float64(updates) }
	b.add(sec, "UPDATE latency, plain table", us(0), "µs").note(fmt.Sprintf("%d UPDATEs per table, interleaved", updates))
	b.add(sec, "UPDATE latency, trigger + UDF without the commit gate", us(1), "µs").vs("plain UPDATE µs", us(0))
	b.add(sec, "UPDATE latency, trigger + UDF + commit gate (writer's cost)", us(2), "µs").vs("plain UPDATE µs", us(0))
	b.add(sec, "UPDATE latency, commit gate vs no gate", us(2), "µs").vs("trigger without gate µs", us(1))
	return nil
}

// timeTableUpdates times interleaved blocks of 100 single-row autocommit
// UPDATEs on one session, as in section 2, up to b.rows/4 per table. It
// returns the time spent on each table and the UPDATEs run on each.
func (b *bench) timeTableUpdates(ctx context.Context, tables []string, nrows int) ([]time.Duration, int, error) {
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	dur := make([]time.Duration, len(tables))
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
				return nil, 0, err
			}
		}
	}
	clear(dur)
	updates := 0
	for limit := time.Now().Add(2 * b.maxTime); updates < b.rows/4 && time.Now().Before(limit); updates += 100 {
		for k := range tables {
			if err := block(k, updates); err != nil {
				return nil, 0, err
			}
		}
	}
	return dur, updates, nil
}

// drain describes section 5's consumer measurement: per events queued on
// table's first nrows rows, then drained by one worker (4 at once, retry
// guard), in rounds; odb is the ordering.OpenDB pool, pdb the plain one.
type drain struct {
	table      string
	nrows, per int
	rounds     int
	odb, pdb   *sql.DB
}

// drainModes are the consumer's middlewares: none, the gate only and gate
// with per-row ordering, each on the plain pool and on OpenDB's.
var drainModes = []string{"none", "gate-plain", "gate", "ordered-plain", "ordered"}

// drainRounds runs the modes interleaved in rounds and keeps each mode's
// best rate in events/s (the shared machine's load swings more than the
// modes differ).
func (b *bench) drainRounds(ctx context.Context, d drain) (map[string]float64, error) {
	rates := map[string]float64{}
	for r := range d.rounds {
		for _, mode := range drainModes {
			rate, err := b.drainOnce(ctx, d, mode, r)
			if err != nil {
				return nil, err
			}
			rates[mode] = max(rates[mode], rate)
		}
	}
	return rates, nil
}

// drainOnce queues d.per trigger events on a fresh gearmand, then times one
// worker with mode's middleware until it has answered them all.
func (b *bench) drainOnce(ctx context.Context, d drain, mode string, round int) (float64, error) {
	n := d.per
	g, err := b.gearmand("memory")
	if err != nil {
		return 0, err
	}
	ns := fmt.Sprintf("bench_ord_%s_%d", strings.ReplaceAll(mode, "-", "_"), round)
	if err := b.installTriggerGate(ctx, ns, d.table, g.Addr, true); err != nil {
		return 0, err
	}
	if err := b.writeUpdates(ctx, d.table, d.nrows, n, 4); err != nil {
		return 0, err
	}
	cfg := b.modelConfig(ns, g.Addr, d.table, "trigger")
	mw, err := b.drainMiddleware(cfg, d, mode)
	if err != nil {
		return 0, err
	}
	newRecorder()
	w, cleanup, err := b.itemWorkerMW(ctx, cfg, 4, true, mw)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	stop := runWorker(ctx, w)
	ok := waitFor(ctx, 60*time.Second, func() bool { return w.Done() >= int64(n) })
	el := time.Since(start)
	stop()
	cleanup()
	b.stopGearmand(g)
	if !ok {
		return 0, fmt.Errorf("mode %s: %d of %d events done in 60 s", mode, w.Done(), n)
	}
	return float64(n) / el.Seconds(), nil
}

// drainMiddleware is the ordering middleware of mode: nil for "none", the
// gate only for "gate…", on the plain pool for "…-plain".
func (b *bench) drainMiddleware(cfg *config.Config, d drain, mode string) (func(gearman.Handler) gearman.Handler, error) {
	if mode == "none" {
		return nil, nil
	}
	opts := []ordering.Option{ordering.WithConfig(cfg), ordering.WithLogger(b.log)}
	if strings.HasPrefix(mode, "gate") {
		opts = append(opts, ordering.WithUnordered("Item"))
	}
	db := d.odb
	if strings.HasSuffix(mode, "-plain") {
		db = d.pdb
	}
	o, err := ordering.New(db, opts...)
	if err != nil {
		return nil, err
	}
	return o.Middleware(), nil
}

// reportOrdering adds the consumer's figures: the orderer alone (µs by
// "source/pool"), then the drain rates by mode.
func (b *bench) reportOrdering(sec string, d drain, alone, rates map[string]float64) {
	b.add(sec, "orderer alone, binlog event (row claim), a round trip per statement", alone["binlog/plain"], "µs").
		note("per event, 1 at once, no gearmand, no-op handler")
	b.add(sec, "orderer alone, binlog event, ordering.OpenDB pool", alone["binlog/OpenDB"], "µs").vs("a round trip per statement µs", alone["binlog/plain"])
	b.add(sec, "orderer alone, trigger event (gate + row claim), a round trip per statement", alone["trigger/plain"], "µs")
	b.add(sec, "orderer alone, trigger event, ordering.OpenDB pool", alone["trigger/OpenDB"], "µs").vs("a round trip per statement µs", alone["trigger/plain"])
	b.add(sec, "drain queued trigger events, no middleware (phantoms, no order)", rates["none"], "events/s").
		note(fmt.Sprintf("%d events over %d rows, 1 worker, 4 at once; best of %d interleaved rounds", d.per, d.nrows, d.rounds))
	b.add(sec, "drain, commit gate only (ordered: false), a round trip per statement", rates["gate-plain"], "events/s").vs("no middleware events/s", rates["none"])
	b.add(sec, "drain, commit gate only, ordering.OpenDB pool (2 round trips)", rates["gate"], "events/s").vs("a round trip per statement", rates["gate-plain"])
	b.add(sec, "drain, gate + per-row ordering, a round trip per statement", rates["ordered-plain"], "events/s").vs("gate only, same pool", rates["gate-plain"])
	b.add(sec, "drain, gate + per-row ordering, ordering.OpenDB pool (the default)", rates["ordered"], "events/s").vs("a round trip per statement", rates["ordered-plain"])
	b.add(sec, "drain, gate + per-row ordering (the default) vs no middleware", rates["ordered"], "events/s").vs("no middleware events/s", rates["none"])
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

// ordererAlone times package ordering without gearmand: events handed to
// its middleware one at a time (a no-op handler), the plain pool and
// OpenDB's interleaved in blocks. Binlog events claim their row; trigger
// events (a gate row each, written here as the trigger would) also pass
// the gate. Returns µs per event by "source/pool".
func (b *bench) ordererAlone(ctx context.Context, pools map[string]*sql.DB) (map[string]float64, error) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	noop := func(context.Context, *gearman.Job) (any, error) { return nil, nil }
	const block, blocks, nrows = 200, 5, 500
	dur := map[string]time.Duration{}
	seq := 0
	event := func(source string, i int) (*gearman.Job, error) {
		seq++
		id := strconv.Itoa(i % nrows)
		env := &events.Envelope{V: events.Version, ID: fmt.Sprintf("alone.%d", seq), Source: source,
			Schema: b.dbName, Table: "items_alone", Model: "Alone", Op: events.OpUpdate,
			PK: events.Row{"id": raw(id)}, Row: events.Row{"id": raw(id), "n": raw("2")}, Old: events.Row{"id": raw(id), "n": raw("1")},
			Modified: []string{"n"}, TS: time.Now()}
		if source == events.SourceBinlog {
			env.Pos = "binlog.000001:4"
			env.Seq = fmt.Sprintf("%06d:%012d:%05d", 1, seq, 0)
			data, err := events.Encode(env)
			return &gearman.Job{Function: "bench_alone.Alone.update", Workload: data}, err
		}
		// As the trigger: the gate row holds the SHA-256 of the envelope
		// without seq; seq (the gate id) is appended to what is sent.
		body, err := events.Encode(env)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		res, err := b.db.ExecContext(ctx, "INSERT INTO "+sqlschema.GateTable+" (digest) VALUES (?)", sum[:])
		if err != nil {
			return nil, err
		}
		gate, _ := res.LastInsertId()
		data := append(body[:len(body)-1:len(body)-1], fmt.Sprintf(`, "seq": "%020d"}`, gate)...)
		return &gearman.Job{Function: "bench_alone.Alone.update", Workload: data}, nil
	}
	for k := range blocks {
		for _, source := range []string{events.SourceBinlog, events.SourceTrigger} {
			for _, pool := range []string{"plain", "OpenDB"} {
				o, err := ordering.New(pools[pool], ordering.WithLogger(b.log))
				if err != nil {
					return nil, err
				}
				h := o.Wrap(noop)
				jobs := make([]*gearman.Job, block)
				for i := range jobs {
					if jobs[i], err = event(source, k*block+i); err != nil {
						return nil, err
					}
				}
				t0 := time.Now()
				for _, j := range jobs {
					if _, err := h(ctx, j); err != nil {
						return nil, fmt.Errorf("orderer, %s event on the %s pool: %w", source, pool, err)
					}
				}
				if k > 0 { // the first block warms up (and inserts the rows' seq)
					dur[source+"/"+pool] += time.Since(t0)
				}
			}
		}
	}
	us := map[string]float64{}
	for k, d := range dur {
		us[k] = float64(d.Microseconds()) / float64(block*(blocks-1))
	}
	return us, nil
}
