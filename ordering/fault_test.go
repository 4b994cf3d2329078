package ordering_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
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
// and no event's effect was applied twice (ordering.Once).
func TestOrderUnderConcurrencyFailuresAndKills(t *testing.T) {
	w := newWorld(t)
	bin := testenv.Build(t, "github.com/rowgear/rowgear/ordering/internal/ordertest/worker")
	const rows, updates, sessions = 200, 50, 4
	for i := 1; i <= rows; i++ {
		w.exec("INSERT INTO items_t (id, v) VALUES (?, 0)", i)
		w.exec("INSERT INTO items_b (id, v) VALUES (?, 0)", i)
	}
	stateA, stateB := t.TempDir(), t.TempDir()
	a := w.spawn(bin, stateA)
	b := w.spawn(bin, stateB)

	// Every (table, row) 50 times, shuffled, dealt to the sessions.
	type write struct {
		table string
		id    int
	}
	var all []write
	for i := 1; i <= rows; i++ {
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
				if _, err := c.ExecContext(context.Background(), "UPDATE "+wr.table+" SET v = v + 1 WHERE id = ?", wr.id); err != nil {
					t.Errorf("update %s %d: %v", wr.table, wr.id, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	// Kill -9 worker A at a third and two thirds of the writes, restart it.
	for _, frac := range []int{1, 2} {
		testenv.Eventually(t, 120*time.Second, fmt.Sprintf("%d/3 of the writes", frac), func() bool {
			return done.Load() >= int64(len(all)*frac/3)
		})
		testenv.Eventually(t, 60*time.Second, "jobs running", func() bool { return w.running() > 0 })
		a.cmd.Process.Kill()
		a = w.spawn(bin, stateA)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	testenv.Eventually(t, 90*time.Second, "every row's last version applied", func() bool {
		return w.count(`SELECT COUNT(*) FROM (SELECT model, item_id, MAX(v) m FROM applied_log GROUP BY model, item_id) x
			WHERE m = ?`, updates) == 2*rows
	})
	testenv.Eventually(t, 30*time.Second, "every job done", w.settled)

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
	w.zero("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead'", "dead letters")
	w.zero("SELECT COUNT(*) FROM rowgear_gate", "gate rows left")
	logs := a.out.String() + b.out.String()
	failed := strings.Count(logs, "retry scheduled")
	applied := w.count("SELECT COUNT(*) FROM applied_log")
	t.Logf("%d events written, %d applied (the others superseded by a newer one of their row), %d random failures retried, %d redeliveries of applied events stopped by Once",
		2*rows*(updates+1), applied, failed, w.count("SELECT COUNT(*) FROM once_skipped"))
	if failed == 0 {
		t.Errorf("no handler failed: the test did not test retries\n%s", logs)
	}
}
