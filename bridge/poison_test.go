package bridge_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/internal/metrics"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestPoisonedRow: among 10,000 good rows across three tables, one row the
// bridge cannot publish (a ucs2 surrogate unit, which the server converts
// to bytes that are not UTF-8) becomes a dead letter with its raw row,
// position and reason; the 10,000 are delivered and the bridge never
// stops. A published table without a primary key is named at start-up and
// its changes are skipped, counted.
func TestPoisonedRow(t *testing.T) {
	const good = 10000
	e := newEnv(t, map[string]string{"A": "ta", "B": "tb", "C": "tc", "K": "keyless"})
	for _, tab := range []string{"ta", "tb", "tc"} {
		e.exec("CREATE TABLE " + tab + " (id INT PRIMARY KEY, name VARCHAR(40), w VARCHAR(10) CHARACTER SET ucs2)")
	}
	e.exec("CREATE TABLE keyless (a INT, b VARCHAR(10))")
	got := e.collect("A", "B", "C", "K")
	reg := prometheus.NewRegistry()
	m, err := metrics.NewBridge(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := e.startBridge(bridge.WithObserver(m))
	// The stream may still be starting (a saved position is written
	// before it runs): wait for the table, named from start-up on.
	testenv.Eventually(t, time.Minute, "Stats().Keyless to name the keyless table", func() bool {
		return slices.Equal(r.b.Stats().Keyless, []string{e.dbName() + ".keyless"})
	})
	tables := []string{"ta", "tb", "tc"}
	next := map[string]int{}
	for written := 0; written < good; {
		var qs []string
		for _, tab := range tables {
			var vals []string
			for range 100 {
				if written == good {
					break
				}
				vals = append(vals, fmt.Sprintf("(%d, 'row %d', 'ok')", next[tab], written))
				next[tab]++
				written++
				if written == good/2 && tab == "tb" { // the poisoned row, in the middle of a rows event
					vals = append(vals, "(1000000, 'poison', X'D83DDE00')")
				}
			}
			if len(vals) > 0 {
				qs = append(qs, "INSERT INTO "+tab+" VALUES "+strings.Join(vals, ","))
			}
		}
		e.exec("BEGIN; " + strings.Join(qs, "; ") + "; COMMIT")
	}
	e.exec("INSERT INTO keyless VALUES (1, 'x'), (2, 'y')")
	evs := got.wait(t, good, 3*time.Minute)
	testenv.Eventually(t, 30*time.Second, "the rejected rows counted", func() bool {
		st := r.b.Stats()
		return st.DeadLettered == 1 && st.SkippedNoKey == 2
	})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP rowgear_bridge_events_rejected_total Row changes not published, by table, op and outcome: dead_lettered (stored in rowgear_failed_jobs) or skipped_no_primary_key.
# TYPE rowgear_bridge_events_rejected_total counter
rowgear_bridge_events_rejected_total{op="insert",outcome="dead_lettered",table="tb"} 1
rowgear_bridge_events_rejected_total{op="insert",outcome="skipped_no_primary_key",table="keyless"} 2
`), "rowgear_bridge_events_rejected_total"); err != nil {
		t.Error(err)
	}
	for _, ev := range evs {
		if string(ev.PK["id"]) == "1000000" || ev.Table == "keyless" {
			t.Errorf("published %s %s", ev.Table, ev.ID)
		}
	}
	var fn, key, errs string
	var payload []byte
	if err := e.db.QueryRow("SELECT function, job_key, errors, payload FROM rowgear_failed_jobs WHERE state = 'dead'").Scan(&fn, &key, &errs, &payload); err != nil {
		t.Fatal(err)
	}
	var q bridge.Quarantined
	if err := json.Unmarshal(payload, &q); err != nil {
		t.Fatal(err)
	}
	if fn != e.ns+".B.insert" || q.ID != key || q.Table != "tb" || q.Op != "insert" || !strings.Contains(q.Pos, ":") ||
		!slices.Equal(q.Columns, []string{"id", "name", "w"}) || len(q.After) != 3 || q.After[2] != "b64:2D3eAA==" ||
		!strings.Contains(errs, "surrogate") || !strings.Contains(q.Reason, "surrogate") {
		t.Errorf("dead letter %s %s %s: %+v", fn, key, errs, q)
	}
	// Still running: a row written now is published.
	e.exec("INSERT INTO ta VALUES (2000000, 'after', 'ok')")
	got.wait(t, good+1, time.Minute)
	if err := r.stop(); err != nil {
		t.Fatalf("the bridge stopped with %v", err)
	}
}

// TestPoisonedSnapshotRow: a snapshot row that does not encode becomes a
// dead letter; the snapshot publishes the others and ends.
func TestPoisonedSnapshotRow(t *testing.T) {
	e := newEnv(t, map[string]string{"W": "wide"})
	e.snapshotTable()
	e.exec("CREATE TABLE wide (id INT PRIMARY KEY, w VARCHAR(10) CHARACTER SET ucs2)")
	e.exec("INSERT INTO wide VALUES (1, 'a'), (2, X'D83DDE00'), (3, 'c')")
	got := e.collect("W")
	r := e.startBridge()
	id, err := bridge.RequestSnapshot(t.Context(), e.db, "W", 0)
	if err != nil {
		t.Fatal(err)
	}
	e.snapshotDone(id, time.Minute)
	evs := got.wait(t, 2, 30*time.Second)
	for _, ev := range evs {
		if string(ev.PK["id"]) == "2" {
			t.Errorf("published the poisoned row: %s", ev.ID)
		}
	}
	var fn, payload string
	if err := e.db.QueryRow("SELECT function, payload FROM rowgear_failed_jobs WHERE state = 'dead'").Scan(&fn, &payload); err != nil {
		t.Fatal(err)
	}
	if fn != e.ns+".W.snapshot" || !strings.Contains(payload, `"quarantined":"snapshot"`) {
		t.Errorf("dead letter %s: %s", fn, payload)
	}
	if st := r.b.Stats(); st.DeadLettered != 1 {
		t.Errorf("DeadLettered %d, want 1", st.DeadLettered)
	}
}
