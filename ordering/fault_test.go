package ordering_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowgear/rowgear/internal/testenv"
)

// workerProc is a worker process of the ordertest application.
type workerProc struct {
	cmd *exec.Cmd
	out *testenv.Buffer
}

func (w *world) spawn(bin, stateDir string) *workerProc {
	w.t.Helper()
	p := &workerProc{out: &testenv.Buffer{}}
	p.cmd = exec.Command(bin, "-file", w.cfgFile, "-concurrency", "4", "-fail", "0.05", "-state-dir", stateDir)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go p.cmd.Wait()
	w.t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

// The big one. 200 rows × 50 updates per source, written by 4 concurrent
// sessions; 2 worker processes (concurrency 4) whose handlers fail 5 % of
// their runs; one of them is killed with SIGKILL and restarted twice while
// the writers write. For every row of both sources: the versions its
// handlers applied strictly increase, the last is the row in the database,
// and no event's effect was applied twice (the handlers write in the
// event's transaction, ordering.Tx; Once never finds a repeat).
func TestOrderUnderConcurrencyFailuresAndKills(t *testing.T) {
	w := newWorld(t)
	const rows, updates = 200, 50
	output := w.writeKillingWorker(rows, updates, 1)
	w.checkOrder(rows, updates)
	logs := output()
	if t.Failed() {
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "dead") || strings.Contains(l, "ERROR") {
				t.Log(l)
			}
		}
	}
	failed := strings.Count(logs, "retry scheduled")
	applied := w.count("SELECT COUNT(*) FROM applied_log")
	t.Logf("%d events written, %d applied (the others superseded by a newer one of their row), %d random failures retried, %d redeliveries of applied events stopped by Once",
		2*rows*(updates+1), applied, failed, w.count("SELECT COUNT(*) FROM once_skipped"))
	if failed == 0 {
		t.Errorf("no handler failed: the test did not test retries\n%s", logs)
	}
}

// TestOrderWithBatchesUnderFailuresAndKills is the big one with the bridge
// sending batches (binlog.batch: 50) and the writers changing 20 rows per
// statement, so that batches form: 200 rows × 40 updates per source; 2
// worker processes whose handlers fail 5 % of their runs, one killed with
// SIGKILL and restarted twice. The same checks, and batches of several
// events did run.
func TestOrderWithBatchesUnderFailuresAndKills(t *testing.T) {
	db, dsn := testenv.DB(t)
	w := newWorldBatch(t, db, dsn, 50, testenv.Gearman(t))
	const rows, updates = 200, 40
	output := w.writeKillingWorker(rows, updates, 20)
	w.checkOrder(rows, updates)
	logs := output()
	batches, batched := w.count("SELECT COUNT(*) FROM batch_log"), w.count("SELECT COALESCE(SUM(events), 0) FROM batch_log")
	t.Logf("%d events written, %d applied, %d batch jobs ran to their end carrying %d events, %d random failures retried",
		2*rows*(updates+1), w.count("SELECT COUNT(*) FROM applied_log"), batches, batched,
		strings.Count(logs, "retry scheduled"))
	if batches == 0 || batched < 2*batches {
		t.Errorf("%d batch jobs carrying %d events: the test did not test batches", batches, batched)
	}
}

// writeKillingWorker runs two worker processes of the ordertest
// application (concurrency 4, handlers failing 5 % of their runs), writes
// as writeAll(rows, updates, chunk) and kill -9s the first worker at a
// third and at two thirds of the writes, starting it again each time. It
// returns what reads the workers' output so far.
func (w *world) writeKillingWorker(rows, updates, chunk int) (logs func() string) {
	t := w.t
	t.Helper()
	bin := testenv.Build(t, "github.com/rowgear/rowgear/internal/ordertest/worker")
	stateA, stateB := t.TempDir(), t.TempDir()
	a := w.spawn(bin, stateA)
	b := w.spawn(bin, stateB)
	out := []*testenv.Buffer{a.out, b.out}
	w.writeAll(rows, updates, chunk, func(third int) {
		testenv.Eventually(t, 60*time.Second, "jobs running", func() bool { return w.running() > 0 })
		a.cmd.Process.Kill()
		a = w.spawn(bin, stateA)
		out = append(out, a.out)
	})
	return func() string {
		var sb strings.Builder
		for _, o := range out {
			sb.WriteString(o.String())
		}
		return sb.String()
	}
}

// TestOrderAcrossGearmandFailover: both sources on two gearmands, the
// first with a durable SQLite queue, the UDF and the bridge listing both. 200
// rows × 30 updates per source by 4 sessions; the first gearmand is kill
// -9'd at a third of the writes and started again at two thirds, so each
// row's events are split between a queue that waited and one that ran on.
// Through the ordering middleware, for every row of both sources: the
// versions applied strictly increase and the last is the row in the
// database; no strict trigger write failed (writeAll).
func TestOrderAcrossGearmandFailover(t *testing.T) {
	g1 := testenv.StartGearmand(t, "--queue-type=libsqlite3",
		"--libsqlite3-db="+filepath.Join(t.TempDir(), "queue.sqlite"))
	g2 := testenv.StartGearmand(t)
	m := testenv.StartMariaDB(t, testenv.WithUDF(""),
		testenv.WithServerEnv("ROWGEAR_GEARMAN_SERVERS="+g1.Addr+","+g2.Addr, "ROWGEAR_GEARMAN_TIMEOUT_MS=2000"))
	w := newWorldOn(t, m.DB("app"), m.DSN+"app", g1.Addr, g2.Addr)
	w.work(4)
	const rows, updates = 200, 30
	w.writeAll(rows, updates, 1, func(third int) {
		if third == 1 {
			g1.Kill()
		} else {
			g1.Start()
		}
	})
	w.checkOrder(rows, updates)
	t.Logf("%d events written, %d applied (the others superseded by a newer one of their row)",
		2*rows*(updates+1), w.count("SELECT COUNT(*) FROM applied_log"))
}

// writeAll inserts rows rows in each of items_t and items_b, then updates
// each row updates times (v = v + 1), shuffled over 4 sessions, chunk
// consecutive rows per statement (one statement inserts them all when
// chunk > 1); at a third and at two thirds of the updates it calls at(1),
// then at(2). A failed write fails the test.
func (w *world) writeAll(rows, updates, chunk int, at func(third int)) {
	t := w.t
	t.Helper()
	const sessions = 4
	if chunk > 1 {
		w.exec("INSERT INTO items_t (id, v) SELECT seq, 0 FROM seq_1_to_" + fmt.Sprint(rows))
		w.exec("INSERT INTO items_b (id, v) SELECT seq, 0 FROM seq_1_to_" + fmt.Sprint(rows))
	} else {
		for i := 1; i <= rows; i++ {
			w.exec("INSERT INTO items_t (id, v) VALUES (?, 0)", i)
			w.exec("INSERT INTO items_b (id, v) VALUES (?, 0)", i)
		}
	}
	// Every (table, chunk of rows) updates times, shuffled, dealt to the
	// sessions.
	type write struct {
		table string
		id    int
	}
	var all []write
	for i := 1; i <= rows; i += chunk {
		for range updates {
			all = append(all, write{"items_t", i}, write{"items_b", i})
		}
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var done atomic.Int64
	var wg sync.WaitGroup
	for s := range sessions {
		c := w.session()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := s; k < len(all); k += sessions {
				wr := all[k]
				q, args := "UPDATE "+wr.table+" SET v = v + 1 WHERE id = ?", []any{wr.id}
				if chunk > 1 {
					q, args = "UPDATE "+wr.table+" SET v = v + 1 WHERE id BETWEEN ? AND ?", []any{wr.id, wr.id + chunk - 1}
				}
				if _, err := c.ExecContext(context.Background(), q, args...); err != nil {
					t.Errorf("update %s %d: %v", wr.table, wr.id, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	for _, third := range []int{1, 2} {
		testenv.Progressing(t, 120*time.Second, fmt.Sprintf("%d/3 of the writes", third), func() (int64, bool) {
			n := done.Load()
			return n, n >= int64(len(all)*third/3)
		})
		at(third)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// checkOrder waits for every row's last version to be applied and every
// job to be done, then checks, for every row of both models: the versions
// applied strictly increase, the last is the database's; no event was
// applied twice, no dead letter, no gate row left.
func (w *world) checkOrder(rows, updates int) {
	t := w.t
	t.Helper()
	// On a loaded machine the workers may need minutes; they are stuck only
	// when no handler applies anything for 2 minutes.
	testenv.Progressing(t, 120*time.Second, "every row's last version applied", func() (int64, bool) {
		applied := w.count("SELECT COUNT(*) FROM applied_log")
		return int64(applied), w.count(`SELECT COUNT(*) FROM (SELECT model, item_id, MAX(v) m FROM applied_log GROUP BY model, item_id) x
			WHERE m = ?`, updates) == 2*rows
	})
	testenv.Eventually(t, 60*time.Second, "every job done", w.settled)
	for _, m := range models {
		last := map[int64]int64{}
		for _, ap := range w.applied(m) {
			if prev, ok := last[ap.id]; ok && ap.v <= prev {
				t.Errorf("%s row %d: version %d applied after %d", m, ap.id, ap.v, prev)
			}
			last[ap.id] = ap.v
		}
		rs, err := w.db.Query("SELECT id, v FROM " + table(m))
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var id, v int64
			rs.Scan(&id, &v)
			if last[id] != v {
				t.Errorf("%s row %d: last applied version %d, database has %d", m, id, last[id], v)
			}
		}
		rs.Close()
	}
	w.zero("SELECT COUNT(*) FROM (SELECT event_id FROM applied_log GROUP BY event_id HAVING COUNT(*) > 1) x", "events applied more than once")
	// The handlers write in the event's transaction: a redelivery of an
	// event whose writes committed cannot happen, so Once never catches one.
	w.zero("SELECT COUNT(*) FROM once_skipped", "redeliveries of applied events (caught by Once)")
	w.zero("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead'", "dead letters")
	w.zero("SELECT COUNT(*) FROM rowgear_gate", "gate rows left")
	if t.Failed() {
		rs, err := w.db.Query("SELECT function, job_key, attempts, errors FROM rowgear_failed_jobs WHERE state = 'dead'")
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		for rs.Next() {
			var fn, key, errs string
			var attempts int
			rs.Scan(&fn, &key, &attempts, &errs)
			t.Logf("dead letter %s %s after %d attempts: %s", fn, key, attempts, errs)
		}
	}
}
