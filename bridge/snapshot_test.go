package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/testenv"
)

// snapshotTable creates SnapshotTable from its migration.
func (e *env) snapshotTable() {
	e.t.Helper()
	if err := bridge.CreateSnapshotTable(e.db); err != nil {
		e.t.Fatal(err)
	}
}

// writer changes random rows of items (id < n) until stopped: updates of a
// few rows, deletes and inserts, one statement per transaction.
func (e *env) writer(n int) (stop func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var count int
	sid := e.config().Binlog.ServerID
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(7, 8))
		// ≤ 100 statements/s (each changes up to 6 rows), and none while
		// the bridge's saved position is more than writerLead bytes behind
		// the binlog: the snapshot's chunks wait for the stream, and with a
		// load of 40 on 2 cores the pipeline handled 100-400 events/s, less
		// than even 100 statements/s make; the stream fell behind further
		// each second and the snapshot stood still for a minute.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			if count%20 == 0 {
				for ctx.Err() == nil && e.bridgeBehind(sid) > writerLead {
					time.Sleep(100 * time.Millisecond)
				}
			}
			id := r.IntN(n + n/10)
			var err error
			switch r.IntN(10) {
			case 0:
				_, err = e.db.Exec("DELETE FROM items WHERE id = ?", id)
			case 1:
				_, err = e.db.Exec("INSERT IGNORE INTO items VALUES (?, ?, 'inserted')", id, r.IntN(1000))
			default: // a range: more rows change while a chunk is between its watermarks
				_, err = e.db.Exec("UPDATE items SET v = v + 1, note = 'updated' WHERE id BETWEEN ? AND ?", id, id+5)
			}
			if err != nil {
				e.t.Errorf("writer: %v", err)
				return
			}
			count++
		}
	}()
	return func() int { cancel(); wg.Wait(); return count }
}

// replica applies the events received, per primary key in binlog order
// (snapshot events sit at their high watermark), as an upserting handler
// would, and returns the rows as rowString gives them.
func replica(evs []*events.Envelope) map[string]string {
	slices.SortFunc(evs, func(a, b *events.Envelope) int { return compareIDs(a.ID, b.ID) })
	out := map[string]string{}
	for _, ev := range evs {
		k := string(ev.PK["id"])
		if ev.Op == events.OpDelete {
			delete(out, k)
			continue
		}
		out[k] = rowString(ev.Row)
	}
	return out
}

// writerLead is how far (binlog bytes, ≈700 per row event here) the
// writer lets the bridge's saved position fall behind.
const writerLead = 256 << 10

// bridgeBehind is how many bytes of the current binlog file lie past the
// bridge's saved position; 0 when it cannot tell (no position saved yet,
// another file).
func (e *env) bridgeBehind(serverID uint32) int64 {
	var file, doDB, ignoreDB string
	var pos int64
	if err := e.db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		return 0
	}
	var savedFile string
	var saved int64
	if err := e.db.QueryRow("SELECT binlog_file, binlog_pos FROM "+bridge.PositionTable+" WHERE server_id = ?",
		serverID).Scan(&savedFile, &saved); err != nil || savedFile != file {
		return 0
	}
	return pos - saved
}

// source returns the table's rows as rowString gives them.
func (e *env) source() map[string]string {
	e.t.Helper()
	rows, err := e.db.Query("SELECT id, v, note FROM items")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, v int
		var note string
		if err := rows.Scan(&id, &v, &note); err != nil {
			e.t.Fatal(err)
		}
		out[fmt.Sprint(id)] = fmt.Sprintf(`id=%d note=%q v=%d`, id, note, v)
	}
	return out
}

func diffRows(got, want map[string]string) []string {
	var out []string
	for k, w := range want {
		if got[k] != w {
			out = append(out, fmt.Sprintf("id %s: replica %q, source %q", k, got[k], w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("id %s: replica %q, not in source", k, g))
		}
	}
	slices.Sort(out)
	return out
}

func (e *env) snapshotDone(id int64, stall time.Duration) bridge.SnapshotProgress {
	e.t.Helper()
	var p bridge.SnapshotProgress
	// For as long as rows keep being read: a loaded machine snapshots
	// slowly, a stuck snapshot stops reading.
	testenv.Progressing(e.t, stall, fmt.Sprintf("snapshot %d to finish", id), func() (int64, bool) {
		all, err := bridge.Snapshots(context.Background(), e.db)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, s := range all {
			if s.ID == id {
				p = s
			}
		}
		if p.Status == "failed" {
			e.t.Fatalf("snapshot failed: %s", p.Error)
		}
		return p.RowsDone, p.Status == "done"
	})
	return p
}

// TestSnapshotWhileWriting: a table snapshotted while a writer updates,
// deletes and inserts rows, the bridge stopped and restarted in the middle:
// a replica that applies every event (live and snapshot) per key in binlog
// order ends equal to the table.
func TestSnapshotWhileWriting(t *testing.T) {
	const n = 3000
	e := newEnv(t, map[string]string{"Item": "items"})
	e.snapshotTable()
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20) NOT NULL)")
	for i := 0; i < n; i += 500 {
		var vals []string
		for j := i; j < i+500; j++ {
			vals = append(vals, fmt.Sprintf("(%d, %d, 'initial')", j, j))
		}
		e.exec("INSERT INTO items VALUES " + strings.Join(vals, ","))
	}
	got := e.collect("Item")
	r := e.startBridge()
	stopWriter := e.writer(n)
	id, err := bridge.RequestSnapshot(context.Background(), e.db, "Item", 50)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the snapshot to be under way", func() bool {
		all, _ := bridge.Snapshots(context.Background(), e.db)
		return len(all) == 1 && all[0].RowsDone >= 500
	})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	e.startBridge()
	p := e.snapshotDone(id, 60*time.Second)
	writes := stopWriter()
	e.exec("UPDATE items SET note = 'last' WHERE id = 0") // a marker: every earlier event is in once it arrives
	testenv.Eventually(t, 60*time.Second, "the replica to match the table", func() bool {
		return len(diffRows(replica(got.events()), e.source())) == 0
	})
	snaps := 0
	for _, ev := range got.events() {
		if ev.Op == events.OpSnapshot {
			snaps++
			if ev.Modified != nil || ev.Old != nil || ev.Source != events.SourceBinlog || ev.Seq == "" {
				t.Errorf("snapshot event %s: %+v", ev.ID, ev)
			}
		}
	}
	t.Logf("%d writes during the snapshot; %d rows read, %d snapshot events", writes, p.RowsDone, snaps)
	// The replica's equality is the check: rows the writer never touched
	// reach it through the snapshot alone. How many rows the chunks read
	// depends on how many the writer deleted first, so only its presence
	// is asserted.
	if snaps == 0 || p.RowsDone == 0 {
		t.Errorf("snapshot read %d rows, published %d", p.RowsDone, snaps)
	}
}

// TestSnapshotRefusesTableWithoutKey: the request fails, saying why.
func TestSnapshotRefusesTableWithoutKey(t *testing.T) {
	e := newEnv(t, map[string]string{"Item": "items", "Log": "logs"})
	e.snapshotTable()
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20) NOT NULL)")
	e.exec("CREATE TABLE logs (line TEXT)")
	e.startBridge()
	id, err := bridge.RequestSnapshot(context.Background(), e.db, "Log", 0)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the request to fail", func() bool {
		all, _ := bridge.Snapshots(context.Background(), e.db)
		return len(all) == 1 && all[0].ID == id && all[0].Status == "failed"
	})
	all, _ := bridge.Snapshots(context.Background(), e.db)
	if !strings.Contains(all[0].Error, "no primary key") {
		t.Errorf("error: %q", all[0].Error)
	}
	if _, err := bridge.RequestSnapshot(context.Background(), e.db, "", 0); !errors.Is(err, bridge.ErrSnapshot) {
		t.Errorf("empty model: %v", err)
	}
}

// TestSnapshotKill9: the binlogbridge process is killed (SIGKILL) twice in
// the middle of a 20,000-row snapshot while a writer changes the table; each
// restart resumes from the last chunk gearmand acknowledged, and the replica
// a real worker writes (TriggerSnapshot and the live changes, through the
// ordering middleware) ends equal to the table.
func TestSnapshotKill9(t *testing.T) {
	const n = 20000
	e, g, start := procEnv(t)
	db := e.db
	e.snapshotTable()
	e.replicaTables(n)
	c := e.replicaWorker(g.Addr)
	progress := func() bridge.SnapshotProgress {
		all, err := bridge.Snapshots(context.Background(), db)
		if err != nil || len(all) != 1 {
			t.Fatalf("snapshots: %v %v", all, err)
		}
		if all[0].Status == "failed" {
			t.Fatalf("snapshot failed: %s", all[0].Error)
		}
		return all[0]
	}
	cmd := start()
	testenv.Eventually(t, 60*time.Second, "the bridge to save its start position", func() bool {
		var c int
		return db.QueryRow("SELECT COUNT(*) FROM "+bridge.PositionTable).Scan(&c) == nil && c == 1
	})
	stopWriter := e.writer(n)
	id, err := bridge.RequestSnapshot(context.Background(), db, "Item", 200)
	if err != nil {
		t.Fatal(err)
	}
	var kills []int64
	for _, at := range []int64{4000, 12000} {
		testenv.Progressing(t, 60*time.Second, fmt.Sprintf("%d rows snapshotted", at), func() (int64, bool) {
			done := progress().RowsDone
			return done, done >= at
		})
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		kills = append(kills, progress().RowsDone)
		cmd = start()
	}
	p := e.snapshotDone(id, 120*time.Second)
	writes := stopWriter()
	sum := e.replicaEqual(300 * time.Second) // two suites on 2 cores took over 120 s
	if c.Snapshot.Load() < int64(n)/10 {
		t.Errorf("TriggerSnapshot ran %d times for %d rows", c.Snapshot.Load(), n)
	}
	t.Logf("killed at %v rows; %d writes during the snapshot; %d rows read; TriggerSnapshot %d, Insert %d, Update %d, Delete %d; replica %s",
		kills, writes, p.RowsDone, c.Snapshot.Load(), c.Insert.Load(), c.Update.Load(), c.Delete.Load(), sum)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("bridge exit after SIGTERM: %v", err)
	}
}

// TestSnapshotOfTriggerModel: a model whose live changes the triggers
// publish is snapshotted through the bridge, which publishes none of its
// changes.
func TestSnapshotOfTriggerModel(t *testing.T) {
	e := newEnv(t, nil)
	e.yml = strings.Replace(e.yml, "  models:\n", "  models:\n    Note: {table: notes, source: trigger}\n", 1)
	e.snapshotTable()
	e.exec("CREATE TABLE notes (owner VARCHAR(20), num INT, text VARCHAR(50) NOT NULL, PRIMARY KEY (owner, num))")
	e.exec("INSERT INTO notes VALUES ('ann', 1, 'a'), ('ann', 2, 'b'), ('bob', 1, 'c'), ('Bob', 3, 'd')")
	got := e.collect("Note")
	e.startBridge()
	e.exec("UPDATE notes SET text = 'changed' WHERE owner = 'ann' AND num = 1") // not published: source trigger
	id, err := bridge.RequestSnapshot(context.Background(), e.db, "Note", 2)    // composite key, several chunks
	if err != nil {
		t.Fatal(err)
	}
	e.snapshotDone(id, 30*time.Second)
	var rows []string
	for _, ev := range got.wait(t, 4, 30*time.Second) {
		if ev.Op != events.OpSnapshot {
			t.Errorf("the bridge published a %s of a trigger-sourced model", ev.Op)
		}
		rows = append(rows, rowString(ev.Row))
	}
	slices.Sort(rows)
	if len(rows) != 4 || !strings.Contains(strings.Join(rows, "|"), `owner="Bob" text="d"`) {
		t.Errorf("snapshot rows %v", rows)
	}
}

// TestSnapshotAsInsert: with models.<Model>.snapshot: insert the rows read
// come as inserts, every column modified, for TriggerInsert.
func TestSnapshotAsInsert(t *testing.T) {
	e := newEnv(t, nil)
	e.yml = strings.Replace(e.yml, "  models:\n", "  models:\n    Item: {table: items, source: binlog, snapshot: insert, columns: [id, note]}\n", 1)
	e.snapshotTable()
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20) NOT NULL)")
	e.exec("INSERT INTO items VALUES (1, 10, 'a'), (2, 20, 'b')")
	got := e.collect("Item")
	obs := &snapObserver{}
	e.startBridge(bridge.WithObserver(obs))
	id, err := bridge.RequestSnapshot(context.Background(), e.db, "Item", 0)
	if err != nil {
		t.Fatal(err)
	}
	e.snapshotDone(id, 30*time.Second)
	for _, ev := range got.wait(t, 2, 30*time.Second) {
		if ev.Op != events.OpInsert || !slices.Equal(ev.Modified, []string{"id", "note"}) || len(ev.Row) != 2 {
			t.Errorf("snapshot as insert: op %s modified %v row %s", ev.Op, ev.Modified, rowString(ev.Row))
		}
	}
	// The bridge marks the snapshot done in the database, then reports.
	testenv.Eventually(t, 60*time.Second, "SnapshotRows to report 2 rows", func() bool { return obs.rows.Load() == 2 })
}

// snapObserver keeps what SnapshotRows reports.
type snapObserver struct{ rows atomic.Int64 }

func (*snapObserver) Published(string, string, time.Duration) {}
func (*snapObserver) Progress(bridge.Progress)                {}
func (o *snapObserver) SnapshotRows(table string, n int64) {
	if table == "items" {
		o.rows.Store(n)
	}
}

// TestSnapshotRate: a paced snapshot reads no faster than its rate (the
// bridge waits before each chunk until the rows read are within it), in
// chunks of at most a quarter of it, and still publishes every row. Only a
// lower bound on the time is asserted: a slow machine takes longer, never
// shorter.
func TestSnapshotRate(t *testing.T) {
	const n, rate = 60, 20
	e := newEnv(t, map[string]string{"Item": "items"})
	e.snapshotTable()
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v INT NOT NULL)")
	e.exec("INSERT INTO items SELECT seq, seq FROM seq_1_to_60")
	got := e.collect("Item")
	e.startBridge()
	if _, err := bridge.RequestSnapshot(context.Background(), e.db, "Item", 0, bridge.SnapshotRate(-1)); !errors.Is(err, bridge.ErrSnapshot) {
		t.Errorf("a negative rate: err %v, want ErrSnapshot", err)
	}
	began := time.Now()
	// Chunks of 1,000 asked, 5 read (rate/4): 12 chunks, each after the
	// first waiting for the rows before it, 55 rows at 20/s. Chunks of
	// 1,000 would be one chunk and no wait.
	id, err := bridge.RequestSnapshot(context.Background(), e.db, "Item", 1000, bridge.SnapshotRate(rate))
	if err != nil {
		t.Fatal(err)
	}
	p := e.snapshotDone(id, 30*time.Second)
	took := time.Since(began)
	if floor := time.Duration(n-rate/4) * time.Second / rate; took < floor {
		t.Errorf("%d rows at ≤ %d rows/s took %s, want ≥ %s", n, rate, took, floor)
	}
	if p.RowsDone != n || p.RowsPerSecond != rate {
		t.Errorf("progress %+v, want %d rows at %d rows/s", p, n, rate)
	}
	testenv.Eventually(t, 60*time.Second, "every row's snapshot event", func() bool { return len(got.events()) == n })
}
