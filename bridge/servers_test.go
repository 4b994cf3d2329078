package bridge_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/internal/testenv"
)

// posLess orders two "file:offset" binlog positions.
func posLess(a, b string) bool {
	pa, err1 := bridge.ParseStart(a)
	pb, err2 := bridge.ParseStart(b)
	if err1 != nil || err2 != nil || pa == nil || pb == nil {
		return false
	}
	if pa.File != pb.File {
		return pa.File < pb.File
	}
	return pa.Pos < pb.Pos
}

// TestKillOneOfTwoGearmands runs the bridge against two gearmands, kills -9
// one of them (its SQLite queue keeps what it acknowledged) in the middle of
// publishing a 50,000-row write load, and restarts it once the other one
// carried 10,000 more events alone:
// every committed change reaches the collector (a worker on both servers)
// at least once, and the changes of one row arrive in binlog order except
// around the kill, which the log reports.
func TestKillOneOfTwoGearmands(t *testing.T) {
	// Only the server killed needs a durable queue; the other one keeps to
	// memory, which is faster.
	g1 := testenv.StartGearmand(t, "--queue-type=libsqlite3",
		"--libsqlite3-db="+filepath.Join(t.TempDir(), "queue.sqlite"))
	g2 := testenv.StartGearmand(t)
	e := newEnv(t, map[string]string{"Item": "items"})
	e.yml = strings.Replace(e.yml, "default: "+e.gearman, fmt.Sprintf("default: [%s, %s]", g1.Addr, g2.Addr), 1)
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20), n INT NOT NULL DEFAULT 0)")
	got := e.collectOnServers([]string{g1.Addr, g2.Addr}, "Item")
	r := e.startBridge(bridgeConcurrency(8))

	const inserts, updates = 40000, 10000
	writerDone := make(chan error, 1)
	go func() { writerDone <- writeLoad(e.db, inserts, updates) }()
	testenv.Eventually(t, 120*time.Second, "10,000 events before the kill", func() bool { return got.distinct() >= 10000 })
	g1.Kill()
	atKill := got.distinct()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	// Everything not acknowledged by g1 goes to g2; what g1 acknowledged
	// waits in its queue until it is back.
	testenv.Eventually(t, 60*time.Second, "the bridge to report "+g1.Addr+" down", func() bool {
		return !r.b.Stats().Servers[0].Up
	})
	// g2 alone carries the load for a while before g1 is back.
	testenv.Eventually(t, 120*time.Second, "10,000 more events on the other server", func() bool {
		return got.distinct() >= atKill+10000
	})
	g1.Start()
	evs := got.wait(t, inserts+updates, 300*time.Second)
	if n := got.distinct(); n != inserts+updates {
		t.Errorf("%d distinct event ids, want %d", n, inserts+updates)
	}
	// Per-row order, by the binlog position of each row's events in the
	// order they arrived.
	last := map[string]string{}
	inv := 0
	for _, ev := range evs {
		k := string(ev.PK["id"])
		if p, ok := last[k]; ok && posLess(ev.Pos, p) {
			inv++
		}
		last[k] = ev.Pos
	}
	t.Logf("g1 killed at %d distinct events; %d distinct, %d received (%d redelivered); %d rows whose events arrived out of binlog order",
		atKill, got.distinct(), got.received(), got.received()-got.distinct(), inv)
	if err := r.stop(); err != nil {
		t.Errorf("bridge stop: %v", err)
	}
}
