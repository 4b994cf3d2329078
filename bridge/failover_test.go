package bridge_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

// gtidOf parses the GTID out of a GTID-mode event id "d-s-n:row@history".
func gtidOf(t *testing.T, id string) (server, seq uint64) {
	g, _, ok := strings.Cut(id, ":")
	parts := strings.Split(g, "-")
	if !ok || len(parts) != 3 {
		t.Fatalf("event id %q is not a GTID-mode id", id)
	}
	server, _ = strconv.ParseUint(parts[1], 10, 64)
	seq, _ = strconv.ParseUint(parts[2], 10, 64)
	return server, seq
}

// TestGTIDFailoverToReplica: a MariaDB primary and a GTID replica, 4
// writers on the primary, the bridge (binlog.position: gtid, a DSN listing
// both hosts) publishing. Replication is stopped, the primary writes on
// (transactions the replica never gets), the primary is killed, the
// replica promoted and the writers moved to it. The bridge moves to the
// replica by itself and resumes without a snapshot: every change of the
// replica's history arrives once under one id, in commit order by seq;
// the old primary's transactions the replica lacks are reported lost, and
// no event outside the reported range is from them.
func TestGTIDFailoverToReplica(t *testing.T) {
	ctx := context.Background()
	gtidArgs := []string{"--gtid-strict-mode=1", "--log-slave-updates"}
	p := testenv.StartMariaDB(t, testenv.WithArgs(append(gtidArgs, "--server-id=1")...))
	r := testenv.StartMariaDB(t, testenv.WithArgs(append(gtidArgs, "--server-id=2")...))
	g := testenv.StartGearmand(t)
	rroot := r.DB("")
	if _, err := rroot.Exec(fmt.Sprintf("CHANGE MASTER TO master_host='127.0.0.1', master_port=%d, master_user='root', "+
		"master_password='', master_use_gtid=slave_pos", p.Port)); err != nil {
		t.Fatal(err)
	}
	if _, err := rroot.Exec("START SLAVE"); err != nil {
		t.Fatal(err)
	}
	pdb := p.DB("app")
	if err := migrations.UpTo(ctx, pdb, migrations.Rowgear(), 20); err != nil {
		t.Fatal(err)
	}
	const writers, rows = 4, 50
	if _, err := pdb.Exec("CREATE TABLE items (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)"); err != nil {
		t.Fatal(err)
	}
	rdb := r.DB("")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if rdb.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='app' AND TABLE_NAME='items'").Scan(&n) == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica has no table items after 60 s: %v", slaveStatus(t, rroot))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Not r.DB("app"): its CREATE DATABASE IF NOT EXISTS would write a
	// transaction of the replica's own, and break strict-mode replication.
	rdb, err := sql.Open("mysql", r.DSN+"app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })

	e := newEnvOn(t, pdb, p.DSN+"app", g.Addr, map[string]string{"Item": "items"})
	hosts := fmt.Sprintf("root@tcp(%s,%s)/app", p.Addr, r.Addr)
	e.yml = fmt.Sprintf("all:\n  namespace: %s\n  server:\n    default: %s\n  models:\n    Item: {table: items, source: binlog}\n"+
		"  database:\n    dsn: '%s'\n  binlog:\n    server_id: %d\n    position: gtid\n    stats_interval: 5s\n",
		e.ns, g.Addr, hosts, 1000+rand.IntN(1<<20))
	got := e.collectOn(g.Addr, "Item")
	bctx, cancel := context.WithCancel(ctx)
	b, err := bridge.New(bctx, e.config(), bridge.WithLogger(testLogger(t)), bridge.WithConcurrency(4))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := b.Run(bctx)
		if bctx.Err() == nil {
			t.Errorf("bridge stopped: %v", err)
		}
		done <- err
	}()
	var once sync.Once
	stopBridge := func() { once.Do(func() { cancel(); <-done; b.Close() }) }
	t.Cleanup(stopBridge)
	testenv.Eventually(t, 30*time.Second, "the start position", func() bool {
		var n int
		return pdb.QueryRow("SELECT COUNT(*) FROM "+bridge.PositionTable).Scan(&n) == nil && n == 1
	})

	// 4 writers: each inserts its rows, then updates one of them per
	// transaction, on whichever server is the primary.
	var cur atomic.Pointer[sql.DB]
	cur.Store(pdb)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := "INSERT INTO items (id) VALUES "
			for i := range rows {
				q += fmt.Sprintf("(%d),", w*rows+i)
			}
			if _, err := pdb.Exec(strings.TrimSuffix(q, ",")); err != nil {
				t.Error(err)
				return
			}
			for !stop.Load() {
				// An error is the primary dying: the writer waits for the next.
				cur.Load().Exec("UPDATE items SET n = n + 1 WHERE id = ?", w*rows+rand.IntN(rows))
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	testenv.Eventually(t, 60*time.Second, "2,000 events", func() bool { return got.distinct() >= 2000 })

	// The replica stops receiving; the primary goes on.
	st := slaveStatus(t, rroot)
	if st["Slave_SQL_Running"] != "Yes" || st["Slave_IO_Running"] != "Yes" {
		t.Fatalf("replication is not running: %v", st)
	}
	if _, err := rroot.Exec("STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
	var slavePos string
	if err := rroot.QueryRow("SELECT @@GLOBAL.gtid_slave_pos").Scan(&slavePos); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(slavePos, "-")
	common, _ := strconv.ParseUint(parts[len(parts)-1], 10, 64)
	testenv.Eventually(t, 60*time.Second, "events of transactions the replica never got", func() bool {
		for _, ev := range got.events() {
			if s, q := gtidOf(t, ev.ID); s == 1 && q > common+20 {
				return true
			}
		}
		return false
	})
	p.Kill()
	if _, err := rroot.Exec("RESET SLAVE ALL"); err != nil {
		t.Fatal(err)
	}
	cur.Store(rdb)
	killedAt := got.distinct()
	testenv.Eventually(t, 60*time.Second, "events from the promoted replica", func() bool {
		for _, ev := range got.events() {
			if s, _ := gtidOf(t, ev.ID); s == 2 {
				return true
			}
		}
		return false
	})
	resumed := got.distinct()
	// A position the bridge saved on the new primary, rewound to below:
	// as if the bridge had crashed long after saving it.
	var old [4]string
	testenv.Eventually(t, 30*time.Second, "a position saved on the new primary", func() bool {
		return rdb.QueryRow("SELECT binlog_file, binlog_pos, gtid_set, history FROM "+bridge.PositionTable).
			Scan(&old[0], &old[1], &old[2], &old[3]) == nil && strings.Contains(old[2], "0-2-")
	})
	testenv.Eventually(t, 60*time.Second, "1,500 more events", func() bool { return got.distinct() >= resumed+1500 })

	// The operator's way: the bridge restarted, re-pointed at the new
	// primary alone. It resumes from the position saved there (rewound, as
	// after a crash): what it publishes again keeps its ids.
	lost := b.Lost()
	stopBridge()
	if _, err := rdb.Exec("UPDATE "+bridge.PositionTable+" SET binlog_file = ?, binlog_pos = ?, gtid_set = ?, history = ?",
		old[0], old[1], old[2], old[3]); err != nil {
		t.Fatal(err)
	}
	b2, err := bridge.New(ctx, e.config(), bridge.WithLogger(testLogger(t)), bridge.WithConcurrency(4), bridge.WithDSN(r.DSN+"app"))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- b2.Run(ctx2) }()
	t.Cleanup(func() { cancel2(); <-done2; b2.Close() })
	restarted := got.distinct()
	testenv.Eventually(t, 60*time.Second, "1,000 events after the restart", func() bool { return got.distinct() >= restarted+1000 })
	stop.Store(true)
	wg.Wait()
	if l := b2.Lost(); len(l) != 0 {
		t.Errorf("the restarted bridge reports %v lost", l)
	}
	if got.received() == got.distinct() {
		t.Errorf("the restarted bridge published nothing again: the rewind did not take")
	}

	// The replica's history: its rows' final n.
	final := map[string]int{}
	rs, err := rdb.Query("SELECT id, n FROM items")
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for rs.Next() {
		var id, n int
		rs.Scan(&id, &n)
		final[strconv.Itoa(id)] = n
		want += 1 + n
	}
	rs.Close()
	if len(final) != writers*rows {
		t.Fatalf("%d rows on the replica, want %d", len(final), writers*rows)
	}
	if len(lost) != 1 {
		t.Fatalf("lost ranges %v, want one", lost)
	}
	var lo, hi uint64
	if _, err := fmt.Sscanf(lost[0], "0-1-%d to 0-1-%d", &lo, &hi); err != nil || lo != common+1 {
		t.Fatalf("lost range %q, want 0-1-%d to 0-1-N", lost[0], common+1)
	}
	// Every event of the replica's history, once per id.
	inHistory := func(ev string) bool {
		s, q := gtidOf(t, ev)
		return s == 2 || (s == 1 && q <= common)
	}
	testenv.Eventually(t, 2*time.Minute, fmt.Sprintf("the %d events of the replica's history", want), func() bool {
		n := 0
		seen := map[string]bool{}
		for _, ev := range got.events() {
			if !seen[ev.ID] && inHistory(ev.ID) {
				n++
			}
			seen[ev.ID] = true
		}
		return n >= want
	})
	perRow := map[string][]string{}
	nOf := map[string]int{}
	seen := map[string]bool{}
	lostEvents := 0
	for _, ev := range got.events() {
		if seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		if !inHistory(ev.ID) {
			_, q := gtidOf(t, ev.ID)
			if q < lo || q > hi {
				t.Errorf("event %s is from the old primary, not in the replica's history, outside the reported loss %s", ev.ID, lost[0])
			}
			lostEvents++
			continue
		}
		id := string(ev.PK["id"])
		perRow[id] = append(perRow[id], ev.Seq)
		n, _ := strconv.Atoi(string(ev.Row["n"]))
		nOf[id+"/"+ev.Seq] = n
	}
	for id, n := range final {
		seqs := perRow[id]
		sort.Strings(seqs)
		if len(seqs) != 1+n {
			t.Fatalf("row %s: %d events of the replica's history, want %d", id, len(seqs), 1+n)
		}
		for k, s := range seqs {
			if nOf[id+"/"+s] != k {
				t.Fatalf("row %s: event %d by seq has n=%d, want %d", id, k, nOf[id+"/"+s], k)
			}
		}
	}
	t.Logf("replica's history: %d changes, all handled once per id, in commit order; %d events received (%d again); "+
		"killed at %d distinct; lost in the failover: %s (%d events published from it)",
		want, got.received(), got.received()-len(seen), killedAt, lost[0], lostEvents)
}

// slaveStatus is SHOW SLAVE STATUS's one row, by column.
func slaveStatus(t *testing.T, db *sql.DB) map[string]string {
	rows, err := db.Query("SHOW SLAVE STATUS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[string]string{}
	if !rows.Next() {
		return out
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		if vals[i].String != "" {
			out[c] = vals[i].String
		}
	}
	return out
}
