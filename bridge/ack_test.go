package bridge_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/internal/ordertest"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

// ackWorld: the shared MariaDB, a private gearmand with its memory queue,
// the bridge in the test process publishing ItemB (items_b), and worker
// processes of the ordertest application (retry guard, ordering, a handler
// logging each applied version in applied_log).
type ackWorld struct {
	t       *testing.T
	db      *sql.DB
	g       *testenv.Gearmand
	cfgFile string
	posFile string
	bin     string
	b       *running
}

func newAckWorld(t *testing.T, batch, concurrency int) *ackWorld {
	testenv.Integration(t)
	db, dsn := testenv.DB(t)
	if err := migrations.UpRowgear(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ordertest.Schema); err != nil {
		t.Fatal(err)
	}
	w := &ackWorld{t: t, db: db, g: testenv.StartGearmand(t)}
	w.bin = testenv.Build(t, "github.com/rowgear/rowgear/internal/ordertest/worker")
	t.Cleanup(testenv.RemoveBuilds)
	dir := t.TempDir()
	w.posFile = filepath.Join(dir, "position.json")
	yml := ordertest.Config(testenv.Name(t, "ns"), []string{w.g.Addr}, dsn, w.posFile, batch, concurrency)
	w.cfgFile = filepath.Join(dir, "gearman.yml")
	if err := os.WriteFile(w.cfgFile, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, dsn: dsn, gearman: w.g.Addr, posFile: w.posFile, yml: yml}
	w.b = e.startBridge()
	return w
}

// spawn starts a worker process (concurrency 4, no failures); it is killed
// at the end of the test.
func (w *ackWorld) spawn() *exec.Cmd {
	w.t.Helper()
	cmd := exec.Command(w.bin, "-file", w.cfgFile, "-concurrency", "4", "-state-dir", w.t.TempDir())
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if w.t.Failed() {
			w.t.Logf("worker %d:\n%s", cmd.Process.Pid, out.String())
		}
	})
	return cmd
}

func (w *ackWorld) count(q string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.db.QueryRow(q, args...).Scan(&n); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// gtidSeq is domain 0's sequence number in a MariaDB GTID set ("0-1-42,…").
func gtidSeq(set string) int64 {
	for _, g := range strings.Split(set, ",") {
		parts := strings.Split(strings.TrimSpace(g), "-")
		if len(parts) == 3 && parts[0] == "0" {
			n, _ := strconv.ParseInt(parts[2], 10, 64)
			return n
		}
	}
	return 0
}

// savedSeq is the GTID seq of the position file.
func (w *ackWorld) savedSeq() int64 {
	b, err := os.ReadFile(w.posFile)
	if err != nil {
		return 0
	}
	var p bridge.Position
	if json.Unmarshal(b, &p) != nil {
		return 0
	}
	return gtidSeq(p.GTID)
}

// write is one committed update: row id reached version v in transaction
// seq.
type write struct {
	seq   int64
	id, v int
}

// ackChanges is the number of row changes of the kill test:
// ROWGEAR_ACK_CHANGES, default 4,000.
func ackChanges(t *testing.T) int {
	if s := os.Getenv("ROWGEAR_ACK_CHANGES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 6 {
			t.Fatalf("ROWGEAR_ACK_CHANGES=%q: want a number ≥ 6", s)
		}
		return n
	}
	return 4000
}

// TestAckSurvivesGearmandAndWorkerKills: 2 writers update 200 rows of a
// binlog model (each writer its own rows, one autocommit UPDATE each); at a
// third of the writes gearmand, whose memory queue holds the bridge's jobs,
// is killed with SIGKILL and started again 6 s later; at two thirds one of
// the two worker processes is killed with SIGKILL and started again. Every
// row's last version is applied, versions apply in commit order, no event
// twice, no dead letter; and all along, the position the bridge would save
// never passes a change whose row had not reached it in applied_log.
func TestAckSurvivesGearmandAndWorkerKills(t *testing.T) {
	for _, c := range []struct {
		name               string
		batch, concurrency int
	}{{"single jobs", 1, 4}, {"batches", 50, 2}} {
		t.Run(c.name, func(t *testing.T) { testAckKills(t, c.batch, c.concurrency) })
	}
}

func testAckKills(t *testing.T, batch, concurrency int) {
	w := newAckWorld(t, batch, concurrency)
	const rows = 200
	total := ackChanges(t)
	if _, err := w.db.Exec("INSERT INTO items_b (id, v) SELECT seq, 0 FROM seq_1_to_" + strconv.Itoa(rows)); err != nil {
		t.Fatal(err)
	}
	a, _ := w.spawn(), w.spawn()

	// The writers: writer k updates the rows id%2 == k, at random.
	var mu sync.Mutex
	var writes []write
	var done atomic.Int64
	var wg sync.WaitGroup
	for k := range 2 {
		conn, err := w.db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			ver := map[int]int{}
			for range total / 2 {
				id := 1 + k + 2*rand.IntN(rows/2)
				if _, err := conn.ExecContext(context.Background(), "UPDATE items_b SET v = v + 1 WHERE id = ?", id); err != nil {
					t.Errorf("update %d: %v", id, err)
					return
				}
				var g string
				if err := conn.QueryRowContext(context.Background(), "SELECT @@last_gtid").Scan(&g); err != nil {
					t.Errorf("last_gtid: %v", err)
					return
				}
				ver[id]++
				mu.Lock()
				writes = append(writes, write{gtidSeq(g), id, ver[id]})
				mu.Unlock()
				done.Add(1)
			}
		}()
	}

	// The monitor: the position the bridge would save (all handled up to
	// it) against what the handlers applied, read after it.
	stopMon := make(chan struct{})
	monDone := make(chan struct{})
	var checks, violations, stored int
	var firstViolation, firstStored string
	go func() {
		defer close(monDone)
		for {
			select {
			case <-stopMon:
				return
			case <-time.After(100 * time.Millisecond):
			}
			seq := gtidSeq(w.b.b.Stats().Position.GTID)
			mu.Lock()
			var below []write
			for _, wr := range writes {
				if wr.seq <= seq {
					below = append(below, wr)
				}
			}
			mu.Unlock()
			applied := map[int]int{}
			rs, err := w.db.Query("SELECT item_id, MAX(v) FROM applied_log WHERE model = 'ItemB' GROUP BY item_id")
			if err != nil {
				continue
			}
			for rs.Next() {
				var id, v int
				rs.Scan(&id, &v)
				applied[id] = v
			}
			rs.Close()
			checks++
			for _, wr := range below {
				if applied[wr.id] >= wr.v {
					continue
				}
				what := fmt.Sprintf("position at seq %d, but row %d's version %d (seq %d) not applied (applied: %d)",
					seq, wr.id, wr.v, wr.seq, applied[wr.id])
				// A failure stored for retry is handled (acknowledged),
				// by design: a deadlock in the ordering is one. Its row
				// goes once the retry applied the change, so read the
				// stored failures, then the row again.
				var failures, now int
				w.db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs").Scan(&failures)
				w.db.QueryRow("SELECT COALESCE(MAX(v), 0) FROM applied_log WHERE model = 'ItemB' AND item_id = ?", wr.id).Scan(&now)
				switch {
				case now >= wr.v:
				case failures > 0:
					stored++
					if firstStored == "" {
						firstStored = what
					}
				default:
					violations++
					if firstViolation == "" {
						firstViolation = what
					}
				}
				break
			}
		}
	}()

	third := func(n int) {
		testenv.Progressing(t, 120*time.Second, fmt.Sprintf("%d/3 of the writes", n), func() (int64, bool) {
			d := done.Load()
			return d, d >= int64(total*n/3)
		})
	}
	third(1)
	before := w.b.b.Stats()
	w.g.Kill()
	killedAt := time.Now()
	// gearmand stays away for a while under the writes: the scenario's
	// downtime, not a wait for a condition.
	time.Sleep(6 * time.Second)
	w.g.Start()
	t.Logf("gearmand killed with %d events in flight (%d published, %d handled), restarted after %s",
		before.InFlight, before.Published, before.Handled, time.Since(killedAt).Round(time.Millisecond))
	third(2)
	running := w.b.b.Stats().InFlight
	a.Process.Kill()
	a.Wait()
	w.spawn()
	t.Logf("a worker killed with %d events in flight", running)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Every row's last version applied.
	last := map[int]int{}
	maxSeq := int64(0)
	for _, wr := range writes {
		last[wr.id] = max(last[wr.id], wr.v)
		maxSeq = max(maxSeq, wr.seq)
	}
	testenv.Progressing(t, 180*time.Second, "every row's last version applied", func() (int64, bool) {
		applied := w.count("SELECT COUNT(*) FROM applied_log WHERE model = 'ItemB'")
		ok := w.count(`SELECT COUNT(*) FROM items_b b JOIN (SELECT item_id, MAX(v) m FROM applied_log WHERE model = 'ItemB' GROUP BY item_id) a
			ON a.item_id = b.id AND a.m = b.v`)
		return int64(applied), ok == rows
	})
	testenv.Eventually(t, 120*time.Second, "the saved position past the last write", func() bool { return w.savedSeq() >= maxSeq })
	close(stopMon)
	<-monDone

	// Per row, versions applied in commit order; no event twice.
	rs, err := w.db.Query("SELECT item_id, v FROM applied_log WHERE model = 'ItemB' ORDER BY n")
	if err != nil {
		t.Fatal(err)
	}
	prev := map[int]int{}
	appliedN := 0
	for rs.Next() {
		var id, v int
		rs.Scan(&id, &v)
		if v <= prev[id] && v != 0 {
			t.Errorf("row %d: version %d applied after %d", id, v, prev[id])
		}
		prev[id] = v
		appliedN++
	}
	rs.Close()
	for id, v := range last {
		if prev[id] != v {
			t.Errorf("row %d: last applied version %d, last written %d", id, prev[id], v)
		}
	}
	if n := w.count("SELECT COUNT(*) FROM (SELECT event_id FROM applied_log GROUP BY event_id HAVING COUNT(*) > 1) x"); n > 0 {
		t.Errorf("%d events applied more than once", n)
	}
	dead := w.count("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead'")
	if dead > 0 {
		t.Errorf("%d dead letters", dead)
	}
	if violations > 0 {
		t.Errorf("%d of %d checks found the bridge's position past an unapplied change, no failure stored; first: %s", violations, checks, firstViolation)
	}
	if stored > 0 {
		t.Logf("%d of %d checks found the position past an unapplied change while failures were stored for retry: %s", stored, checks, firstStored)
	}
	st := w.b.b.Stats()
	t.Logf("%d changes written, %d applied (the rest superseded by a newer one of their row), %d redeliveries stopped by Once; "+
		"bridge: %d published, %d handled, %d jobs resent; %d position checks, %d past an unapplied change without a stored failure",
		len(writes), appliedN, w.count("SELECT COUNT(*) FROM once_skipped"), st.Published, st.Handled, st.Resent, checks, violations)
}

// TestAckWaitsForTheWorker: with no worker for the model, the jobs reach
// gearmand (published) but the saved position stays before them; once a
// worker runs, they are handled and the position passes them.
func TestAckWaitsForTheWorker(t *testing.T) {
	e := newEnv(t, map[string]string{"Item": "items"})
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20))")
	r := e.startBridge()
	w := &ackWorld{t: t, db: e.db, posFile: e.posFile}
	conn, err := e.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 50
	var first, lastSeq int64
	for i := range n {
		if _, err := conn.ExecContext(context.Background(), "INSERT INTO items VALUES (?, 'x')", i); err != nil {
			t.Fatal(err)
		}
		var g string
		if err := conn.QueryRowContext(context.Background(), "SELECT @@last_gtid").Scan(&g); err != nil {
			t.Fatal(err)
		}
		lastSeq = gtidSeq(g)
		if i == 0 {
			first = lastSeq
		}
	}
	testenv.Eventually(t, 60*time.Second, "gearmand to accept every job", func() bool { return r.b.Stats().Published >= n })
	// Several save intervals (1 s) pass with every job in gearmand and no
	// worker: the position must not move past the first insert.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		st := r.b.Stats()
		if seq := gtidSeq(st.Position.GTID); seq >= first {
			t.Fatalf("with no worker, the position reached seq %d, past the first unhandled insert (seq %d)", seq, first)
		}
		if s := w.savedSeq(); s >= first {
			t.Fatalf("with no worker, the saved position reached seq %d, past the first unhandled insert (seq %d)", s, first)
		}
		if st.Handled != 0 {
			t.Fatalf("%d events handled with no worker", st.Handled)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := e.collect("Item")
	got.wait(t, n, 60*time.Second)
	testenv.Eventually(t, 60*time.Second, "the saved position past the last insert", func() bool { return w.savedSeq() >= lastSeq })
	if st := r.b.Stats(); st.Handled < n || st.InFlight != 0 {
		t.Errorf("after the worker: %d handled, %d in flight", st.Handled, st.InFlight)
	}
}
