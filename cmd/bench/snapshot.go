package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/internal/benchutil"
	"github.com/rowgear/rowgear/internal/replica"
	"github.com/rowgear/rowgear/ordering"
)

// snapTable is section 8's source table (replica.DDL).
const snapTable = "snap_items"

// snapshotUnderLoad: section 8, the Done-when run of issue 13. A
// table of b.snapRows rows is snapshotted by a real binlogbridge process
// while a writer keeps ≈500 single-row UPDATEs/s plus some DELETEs and
// INSERTs on it; the bridge is kill -9'd at a third and at two thirds of
// the snapshot and restarted; a worker (dispatch + ordering + retry guard)
// applies every event, snapshot ones through TriggerSnapshot, to a replica
// table. Figures: the snapshot's rate, the writer's statement latency
// before (for --snapshot-before) vs during the snapshot, and whether the
// replica's checksum ends equal to the source's.
func (b *bench) snapshotUnderLoad(ctx context.Context) error {
	const sec = "8"
	n := b.snapRows
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "bench: snapshot: "+format+"\n", args...)
	}
	t0 := time.Now()
	for _, q := range []string{
		"CREATE TABLE " + snapTable + " " + replica.DDL,
		"CREATE TABLE " + replica.Table + " " + replica.DDL,
	} {
		if _, err := b.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	for i := 0; i < n; i += 10000 {
		// MariaDB's sequence engine: 10,000 rows a statement.
		q := fmt.Sprintf("INSERT INTO %s SELECT seq, seq, 'initial' FROM seq_%d_to_%d", snapTable, i, min(i+10000, n)-1)
		if _, err := b.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	logf("%d rows written in %s", n, time.Since(t0).Round(time.Millisecond))

	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	defer b.stopGearmand(g)
	ns := "bench_snap"
	cfg := &config.Config{
		File: "bench", Namespace: ns,
		Servers: map[string][]string{"default": {g.Addr}},
		Models: map[string]config.Model{"Item": {Table: snapTable, Schema: b.dbName,
			Events: []string{"insert", "update", "delete"}, Source: "binlog"}},
		Database: config.Database{DSN: b.dsn},
	}

	// The worker: as an application's, ordering inside the retry guard.
	counts := &replica.Counts{}
	o, err := ordering.New(b.db, ordering.WithConfig(cfg), ordering.WithLogger(b.log))
	if err != nil {
		return err
	}
	w, cleanup, err := b.modelWorker(ctx, cfg, 8, true, o.Middleware(), func(reg *dispatch.Registry) error {
		return replica.Register(reg, "Item", counts)
	})
	if err != nil {
		return err
	}
	defer cleanup()
	stopWorker := runWorker(ctx, w)
	defer stopWorker()

	// The bridge: the binlogbridge binary, so that kill -9 is real.
	br, err := b.bridgeProc(ctx, ns, g.Addr)
	if err != nil {
		return err
	}
	defer br.stop()

	// The writer, from its own connection.
	wdb, err := sql.Open("mysql", b.dsn)
	if err != nil {
		return err
	}
	defer wdb.Close()
	wr := &snapWriter{db: wdb, n: n}
	wctx, stopWrites := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() { defer wg.Done(); werr = wr.run(wctx) }()
	defer func() { stopWrites(); wg.Wait() }()
	sleepCtx(ctx, b.snapBefore) // the writer's latency before the snapshot
	wr.phase.Store(1)

	began := time.Now()
	id, err := bridge.RequestSnapshot(ctx, b.db, "Item", b.snapChunk, bridge.SnapshotRate(b.snapRate))
	if err != nil {
		return err
	}
	var kills []int64
	var killedAt []string
	var p bridge.SnapshotProgress
	lastLog := time.Now()
	for p.Status != "done" {
		if ctx.Err() != nil || werr != nil {
			return fmt.Errorf("interrupted: %v %v", ctx.Err(), werr)
		}
		if br.exited() {
			return fmt.Errorf("binlogbridge exited on its own; its log: %s", br.logPath)
		}
		time.Sleep(200 * time.Millisecond)
		if p, err = snapshotProgress(ctx, b.db, id); err != nil {
			return err
		}
		if p.Status == "failed" {
			return fmt.Errorf("snapshot failed: %s", p.Error)
		}
		if len(kills) < 2 && p.RowsDone >= int64(n)*int64(len(kills)+1)/3 {
			br.kill9()
			kills = append(kills, p.RowsDone)
			killedAt = append(killedAt, time.Since(wr.began).Round(time.Second).String())
			logf("binlogbridge kill -9'd at %d rows", p.RowsDone)
			if err := br.start(); err != nil {
				return err
			}
		}
		if time.Since(lastLog) > 10*time.Second {
			logf("%d/%d rows read, %d handler calls (%d TriggerSnapshot)", p.RowsDone, p.RowsEstimate,
				counts.Applied(), counts.Snapshot.Load())
			lastLog = time.Now()
		}
	}
	took := time.Since(began)
	wr.phase.Store(2)
	stopWrites()
	wg.Wait()
	if werr != nil {
		return fmt.Errorf("writer: %w", werr)
	}
	logf("snapshot done in %s; waiting for the replica", took.Round(time.Millisecond))
	// The writer's figures now: the replica may take long to catch up.
	logf("writer before: %+v; during: %+v", benchutil.Percentiles(wr.samples(0)), benchutil.Percentiles(wr.samples(1)))
	logf("slowest statement of each minute before: %v; during: %v", wr.minuteMaxima(0), wr.minuteMaxima(1))
	logf("slowest statements before: %s", wr.slowest(0, 5))
	logf("slowest statements during: %s; binlogbridge kill -9'd at %s", wr.slowest(1, 10), strings.Join(killedAt, ", "))

	// The worker drains what the snapshot queued at its own pace: wait
	// until the replica equals the source, or stops changing for 5 minutes.
	done := time.Now()
	var src, rep string
	equal := false
	lastRep, changed := "", time.Now()
	for ctx.Err() == nil && time.Since(changed) < 5*time.Minute {
		if src, err = replica.Checksum(ctx, b.db, snapTable); err != nil {
			return err
		}
		if rep, err = replica.Checksum(ctx, b.db, replica.Table); err != nil {
			return err
		}
		if equal = src == rep; equal {
			break
		}
		if rep != lastRep {
			lastRep, changed = rep, time.Now()
		}
		logf("replica %s, source %s; %d handler calls", rep, src, counts.Applied())
		sleepCtx(ctx, 5*time.Second)
	}
	converged := time.Since(done)

	before, during := benchutil.Percentiles(wr.samples(0)), benchutil.Percentiles(wr.samples(1))
	b.add(sec, fmt.Sprintf("snapshot of a %d-row table, rows read (bridge kill -9'd at %d and %d)", n, kills[0], kills[1]),
		float64(p.RowsDone), "rows")
	b.add(sec, "snapshot rows/s, under the writer, kills and restarts included", float64(p.RowsDone)/took.Seconds(), "rows/s").
		note(fmt.Sprintf("paced at ≤ %d rows/s (0: unpaced), chunks of %d", b.snapRate, b.snapChunk))
	b.add(sec, "writer statements/s during the snapshot (90% UPDATE, 4% DELETE, 6% INSERT)", float64(during.N)/took.Seconds(), "stmt/s")
	b.add(sec, "writer statement p99 before the snapshot", before.P99/1000, "ms")
	b.add(sec, "writer statement p99 during the snapshot", during.P99/1000, "ms").vs("before", before.P99/1000)
	b.add(sec, "writer statement max before the snapshot", before.Max/1000, "ms")
	b.add(sec, "writer statement max during the snapshot", during.Max/1000, "ms").vs("before", before.Max/1000)
	b.add(sec, "writer statement p99.9 before / during the snapshot", p999(wr.samples(1)), "ms").vs("before", p999(wr.samples(0)))
	b.add(sec, "extra wait of the slowest statement during vs before (target ≤ 100 ms)", (during.Max-before.Max)/1000, "ms").
		note(fmt.Sprintf("%d statements before, %d during", before.N, during.N))
	b.add(sec, "extra p99 during vs before", (during.P99-before.P99)/1000, "ms")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	bm, dm := wr.minuteMaxima(0), wr.minuteMaxima(1)
	if len(bm) > 0 && len(dm) > 0 {
		over := 0
		for _, m := range dm {
			if m > slices.Max(bm)+100*time.Millisecond {
				over++
			}
		}
		sorted := slices.Sorted(slices.Values(dm))
		b.add(sec, "slowest statement of each minute during the snapshot: median", ms(sorted[len(sorted)/2]), "ms").
			vs("slowest of a minute before", ms(slices.Max(bm)))
		b.add(sec, "minutes of the snapshot whose slowest statement waited > 100 ms longer than the slowest before", float64(over), "minutes").
			note(fmt.Sprintf("of %d whole minutes", len(dm)))
	}

	b.add(sec, "handler calls: TriggerSnapshot", float64(counts.Snapshot.Load()), "calls")
	b.add(sec, "handler calls: insert, update, delete", float64(counts.Insert.Load()+counts.Update.Load()+counts.Delete.Load()), "calls")
	eq := 0.0
	if equal {
		eq = 1
	}
	b.add(sec, "replica equal to source (1: same count and CRC32 sum)", eq, "").note("source " + src + ", replica " + rep)
	b.add(sec, "replica caught up after the snapshot ended", converged.Seconds(), "s")
	logf("writer before: %+v; during: %+v", before, during)
	if !equal {
		return fmt.Errorf("replica %s differs from source %s after %s", rep, src, converged.Round(time.Second))
	}
	return nil
}

// p999 is the 99.9th percentile of d in ms.
func p999(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return float64(d[min(len(d)-1, len(d)*999/1000)].Microseconds()) / 1000
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func snapshotProgress(ctx context.Context, db *sql.DB, id int64) (bridge.SnapshotProgress, error) {
	all, err := bridge.Snapshots(ctx, db)
	if err != nil {
		return bridge.SnapshotProgress{}, err
	}
	for _, s := range all {
		if s.ID == id {
			return s, nil
		}
	}
	return bridge.SnapshotProgress{}, fmt.Errorf("snapshot %d not found", id)
}

// snapWriter changes random rows of snapTable at ≈555 statements/s (500
// UPDATEs), timing each statement, by phase (0 before, 1 during, 2 after
// the snapshot).
type snapWriter struct {
	db    *sql.DB
	n     int
	phase atomic.Int32
	mu    sync.Mutex
	lat   [3][]time.Duration
	at    [3][]time.Duration // when each statement of lat started, since began
	began time.Time
}

func (w *snapWriter) run(ctx context.Context) error {
	r := rand.New(rand.NewPCG(13, 14))
	w.began = time.Now()
	_, err := benchutil.Pace(ctx, 555, 1<<40, 24*time.Hour, 2*time.Millisecond, func(k int) error {
		for range k {
			id := r.IntN(w.n + w.n/100)
			q, args := "UPDATE "+snapTable+" SET v = v + 1, note = 'updated' WHERE id = ?", []any{id}
			switch x := r.IntN(100); {
			case x < 4:
				q = "DELETE FROM " + snapTable + " WHERE id = ?"
			case x < 10:
				q, args = "INSERT IGNORE INTO "+snapTable+" VALUES (?, ?, 'inserted')", []any{id, r.IntN(1000)}
			}
			t0 := time.Now()
			if _, err := w.db.ExecContext(ctx, q, args...); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			d := time.Since(t0)
			w.mu.Lock()
			ph := w.phase.Load()
			w.lat[ph] = append(w.lat[ph], d)
			w.at[ph] = append(w.at[ph], t0.Sub(w.began))
			w.mu.Unlock()
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (w *snapWriter) samples(phase int) []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.lat[phase]...)
}

// minuteMaxima is the slowest statement of each whole minute of phase.
// The minute before the snapshot has one maximum and the snapshot's half
// hour thirty: their largest is not a fair comparison, their spread is.
func (w *snapWriter) minuteMaxima(phase int) []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.at[phase]) == 0 {
		return nil
	}
	first := w.at[phase][0]
	var maxima []time.Duration
	for i, d := range w.lat[phase] {
		m := int((w.at[phase][i] - first) / time.Minute)
		for len(maxima) <= m {
			maxima = append(maxima, 0)
		}
		maxima[m] = max(maxima[m], d)
	}
	if len(maxima) > 1 {
		maxima = maxima[:len(maxima)-1] // the last minute is not whole
	}
	return maxima
}

// slowest lists the k slowest statements of phase: how long, and when
// (since the writer began), for matching with the bridge's kills.
func (w *snapWriter) slowest(phase, k int) string {
	w.mu.Lock()
	idx := make([]int, len(w.lat[phase]))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return int(w.lat[phase][b] - w.lat[phase][a]) })
	var out []string
	for _, i := range idx[:min(k, len(idx))] {
		out = append(out, fmt.Sprintf("%s at %s", w.lat[phase][i].Round(time.Millisecond), w.at[phase][i].Round(time.Second)))
	}
	w.mu.Unlock()
	return strings.Join(out, ", ")
}

// bridgeProc is a binlogbridge process.
type bridgeProc struct {
	bin, cfgPath, posPath, logPath string
	cmd                            *exec.Cmd
	done                           chan struct{}
}

// bridgeProc builds binlogbridge and starts it on model Item of snapTable,
// its position in a file; it returns once the start position is saved.
func (b *bench) bridgeProc(ctx context.Context, ns, addr string) (*bridgeProc, error) {
	dir, err := os.MkdirTemp(b.dir, "binlogbridge-")
	if err != nil {
		return nil, err
	}
	p := &bridgeProc{bin: filepath.Join(dir, "binlogbridge"), cfgPath: filepath.Join(dir, "gearman.yml"),
		posPath: filepath.Join(dir, "position.json"), logPath: filepath.Join(dir, "bridge.log")}
	build := exec.CommandContext(ctx, "go", "build", "-o", p.bin, "github.com/rowgear/rowgear/cmd/binlogbridge")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building binlogbridge: %w\n%s", err, out)
	}
	yml := fmt.Sprintf("all:\n  namespace: %s\n  server:\n    default: %s\n  models:\n    Item: {table: %s, source: binlog}\n"+
		"  database:\n    dsn: '%s'\n  binlog:\n    server_id: %d\n    position: file:%s\n    stats_interval: 5s\n",
		ns, addr, snapTable, b.dsn, 100000+rand.IntN(1<<30), p.posPath)
	if err := os.WriteFile(p.cfgPath, []byte(yml), 0o600); err != nil {
		return nil, err
	}
	if err := p.start(); err != nil {
		return nil, err
	}
	if !waitFor(ctx, 20*time.Second, func() bool { _, err := os.Stat(p.posPath); return err == nil }) {
		p.stop()
		return nil, fmt.Errorf("binlogbridge did not save its start position within 20 s; its log: %s", p.logPath)
	}
	return p, nil
}

func (p *bridgeProc) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	p.cmd = exec.Command(p.bin, "--file", p.cfgPath, "--concurrency", fmt.Sprint(bridgeConns))
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.done)
	return nil
}

func (p *bridgeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *bridgeProc) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop ends the bridge with SIGTERM (it flushes and saves), or SIGKILL
// after 30 s.
func (p *bridgeProc) stop() {
	if p.cmd == nil || p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill9()
	}
}
