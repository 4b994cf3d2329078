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
	if err := b.fillSnapTable(ctx, n); err != nil {
		return err
	}
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
	counts := &replica.Counts{}
	stopWorker, err := b.startReplicaWorker(ctx, cfg, counts)
	if err != nil {
		return err
	}
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
	wr.start(ctx)
	defer wr.halt()
	sleepCtx(ctx, b.snapBefore) // the writer's latency before the snapshot
	wr.phase.Store(1)

	sr, err := b.snapshotWithKills(ctx, n, br, wr, counts)
	if err != nil {
		return err
	}
	wr.phase.Store(2)
	if err := wr.halt(); err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	snapLogf("snapshot done in %s; waiting for the replica", sr.took.Round(time.Millisecond))
	// The writer's figures now: the replica may take long to catch up.
	wr.logFigures(sr.killedAt)

	rs, err := b.awaitReplica(ctx, counts)
	if err != nil {
		return err
	}
	before, during := b.reportSnapshot(sec, n, sr, wr, counts, rs)
	snapLogf("writer before: %+v; during: %+v", before, during)
	if !rs.equal {
		return fmt.Errorf("replica %s differs from source %s after %s", rs.rep, rs.src, rs.converged.Round(time.Second))
	}
	return nil
}

// snapLogf logs section 8's progress on stderr.
func snapLogf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: snapshot: "+format+"\n", args...)
}

// fillSnapTable creates snapTable with n rows, and the empty replica table.
func (b *bench) fillSnapTable(ctx context.Context, n int) error {
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
	snapLogf("%d rows written in %s", n, time.Since(t0).Round(time.Millisecond))
	return nil
}

// startReplicaWorker starts the worker applying cfg's events to the
// replica table, counting them in counts: as an application's, ordering
// inside the retry guard. The returned func stops it.
func (b *bench) startReplicaWorker(ctx context.Context, cfg *config.Config, counts *replica.Counts) (func(), error) {
	o, err := ordering.New(b.db, ordering.WithConfig(cfg), ordering.WithLogger(b.log))
	if err != nil {
		return nil, err
	}
	w, cleanup, err := b.modelWorker(ctx, cfg, 8, true, o.Middleware(), func(reg *dispatch.Registry) error {
		return replica.Register(reg, "Item", counts)
	})
	if err != nil {
		return nil, err
	}
	stopWorker := runWorker(ctx, w)
	return func() { stopWorker(); cleanup() }, nil
}

// snapResult is what snapshotWithKills saw: the last progress, how long
// the snapshot took, and the rows read when the bridge was killed (and
// when, since the writer began).
type snapResult struct {
	p        bridge.SnapshotProgress
	took     time.Duration
	kills    []int64
	killedAt []string
}

// snapshotWithKills requests the snapshot of n rows and waits until it is
// done, kill -9'ing the bridge and restarting it at a third and at two
// thirds of the rows.
func (b *bench) snapshotWithKills(ctx context.Context, n int, br *bridgeProc, wr *snapWriter, counts *replica.Counts) (snapResult, error) {
	var sr snapResult
	began := time.Now()
	id, err := bridge.RequestSnapshot(ctx, b.db, "Item", b.snapChunk, bridge.SnapshotRate(b.snapRate))
	if err != nil {
		return sr, err
	}
	lastLog := time.Now()
	for sr.p.Status != "done" {
		if err := snapshotInterrupted(ctx, br, wr); err != nil {
			return sr, err
		}
		time.Sleep(200 * time.Millisecond)
		if sr.p, err = snapshotProgress(ctx, b.db, id); err != nil {
			return sr, err
		}
		if sr.p.Status == "failed" {
			return sr, fmt.Errorf("snapshot failed: %s", sr.p.Error)
		}
		if len(sr.kills) < 2 && sr.p.RowsDone >= int64(n)*int64(len(sr.kills)+1)/3 {
			br.kill9()
			sr.kills = append(sr.kills, sr.p.RowsDone)
			sr.killedAt = append(sr.killedAt, time.Since(wr.began).Round(time.Second).String())
			snapLogf("binlogbridge kill -9'd at %d rows", sr.p.RowsDone)
			if err := br.start(); err != nil {
				return sr, err
			}
		}
		if time.Since(lastLog) > 10*time.Second {
			snapLogf("%d/%d rows read, %d handler calls (%d TriggerSnapshot)", sr.p.RowsDone, sr.p.RowsEstimate,
				counts.Applied(), counts.Snapshot.Load())
			lastLog = time.Now()
		}
	}
	sr.took = time.Since(began)
	return sr, nil
}

// snapshotInterrupted says why the snapshot cannot go on, if it cannot:
// ctx ended, the writer failed or the bridge exited on its own.
func snapshotInterrupted(ctx context.Context, br *bridgeProc, wr *snapWriter) error {
	if werr := wr.failed(); ctx.Err() != nil || werr != nil {
		return fmt.Errorf("interrupted: %v %v", ctx.Err(), werr)
	}
	if br.exited() {
		return fmt.Errorf("binlogbridge exited on its own; its log: %s", br.logPath)
	}
	return nil
}

// replicaState is the end of the wait for the replica: both checksums,
// whether they are equal, and how long the wait took.
type replicaState struct {
	src, rep  string
	equal     bool
	converged time.Duration
}

// awaitReplica lets the worker drain what the snapshot queued at its own
// pace: it waits until the replica equals the source, or stops changing
// for 5 minutes.
func (b *bench) awaitReplica(ctx context.Context, counts *replica.Counts) (replicaState, error) {
	var rs replicaState
	done := time.Now()
	lastRep, changed := "", time.Now()
	var err error
	for ctx.Err() == nil && time.Since(changed) < 5*time.Minute {
		if rs.src, err = replica.Checksum(ctx, b.db, snapTable); err != nil {
			return rs, err
		}
		if rs.rep, err = replica.Checksum(ctx, b.db, replica.Table); err != nil {
			return rs, err
		}
		if rs.equal = rs.src == rs.rep; rs.equal {
			break
		}
		if rs.rep != lastRep {
			lastRep, changed = rs.rep, time.Now()
		}
		snapLogf("replica %s, source %s; %d handler calls", rs.rep, rs.src, counts.Applied())
		sleepCtx(ctx, 5*time.Second)
	}
	rs.converged = time.Since(done)
	return rs, nil
}

// reportSnapshot adds section 8's figures and returns the writer's
// percentiles before and during the snapshot.
func (b *bench) reportSnapshot(sec string, n int, sr snapResult, wr *snapWriter, counts *replica.Counts, rs replicaState) (before, during benchutil.Latency) {
	before, during = benchutil.Percentiles(wr.samples(0)), benchutil.Percentiles(wr.samples(1))
	b.add(sec, fmt.Sprintf("snapshot of a %d-row table, rows read (bridge kill -9'd at %d and %d)", n, sr.kills[0], sr.kills[1]),
		float64(sr.p.RowsDone), "rows")
	b.add(sec, "snapshot rows/s, under the writer, kills and restarts included", float64(sr.p.RowsDone)/sr.took.Seconds(), "rows/s").
		note(fmt.Sprintf("paced at ≤ %d rows/s (0: unpaced), chunks of %d", b.snapRate, b.snapChunk))
	b.add(sec, "writer statements/s during the snapshot (90% UPDATE, 4% DELETE, 6% INSERT)", float64(during.N)/sr.took.Seconds(), "stmt/s")
	b.add(sec, "writer statement p99 before the snapshot", before.P99/1000, "ms")
	b.add(sec, "writer statement p99 during the snapshot", during.P99/1000, "ms").vs("before", before.P99/1000)
	b.add(sec, "writer statement max before the snapshot", before.Max/1000, "ms")
	b.add(sec, "writer statement max during the snapshot", during.Max/1000, "ms").vs("before", before.Max/1000)
	b.add(sec, "writer statement p99.9 before / during the snapshot", p999(wr.samples(1)), "ms").vs("before", p999(wr.samples(0)))
	b.add(sec, "extra wait of the slowest statement during vs before (target ≤ 100 ms)", (during.Max-before.Max)/1000, "ms").
		note(fmt.Sprintf("%d statements before, %d during", before.N, during.N))
	b.add(sec, "extra p99 during vs before", (during.P99-before.P99)/1000, "ms")
	b.reportMinuteMaxima(sec, wr.minuteMaxima(0), wr.minuteMaxima(1))

	b.add(sec, "handler calls: TriggerSnapshot", float64(counts.Snapshot.Load()), "calls")
	b.add(sec, "handler calls: insert, update, delete", float64(counts.Insert.Load()+counts.Update.Load()+counts.Delete.Load()), "calls")
	eq := 0.0
	if rs.equal {
		eq = 1
	}
	b.add(sec, "replica equal to source (1: same count and CRC32 sum)", eq, "").note("source " + rs.src + ", replica " + rs.rep)
	b.add(sec, "replica caught up after the snapshot ended", rs.converged.Seconds(), "s")
	return before, during
}

// reportMinuteMaxima compares the slowest statement of each minute during
// the snapshot (dm) with the slowest of a minute before (bm).
func (b *bench) reportMinuteMaxima(sec string, bm, dm []time.Duration) {
	if len(bm) == 0 || len(dm) == 0 {
		return
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
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

	cancel context.CancelFunc // of run's context, set by start
	wg     sync.WaitGroup
	err    error // run's, under mu
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

// start runs the writer in the background until halt.
func (w *snapWriter) start(ctx context.Context) {
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		err := w.run(wctx)
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}()
}

// halt stops the writer and returns its error; calling it again is a
// no-op returning the same.
func (w *snapWriter) halt() error {
	w.cancel()
	w.wg.Wait()
	return w.failed()
}

// failed is the error the writer stopped on, nil while it runs.
func (w *snapWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// logFigures logs the writer's latencies before and during the snapshot,
// its slowest statements beside when the bridge was killed.
func (w *snapWriter) logFigures(killedAt []string) {
	snapLogf("writer before: %+v; during: %+v", benchutil.Percentiles(w.samples(0)), benchutil.Percentiles(w.samples(1)))
	snapLogf("slowest statement of each minute before: %v; during: %v", w.minuteMaxima(0), w.minuteMaxima(1))
	snapLogf("slowest statements before: %s", w.slowest(0, 5))
	snapLogf("slowest statements during: %s; binlogbridge kill -9'd at %s", w.slowest(1, 10), strings.Join(killedAt, ", "))
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
