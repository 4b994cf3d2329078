package bridge_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/testenv"
)

// insertRows inserts rows [from, to) into t(id, v), per transactions of
// per rows.
func (e *env) insertRows(table string, from, to, per int) {
	e.t.Helper()
	for i := from; i < to; i += per {
		var vals []string
		for j := i; j < min(i+per, to); j++ {
			vals = append(vals, fmt.Sprintf("(%d, 'v%d')", j, j))
		}
		e.exec("INSERT INTO " + table + " (id, v) VALUES " + strings.Join(vals, ","))
	}
}

func TestDDLMidStream(t *testing.T) {
	e := newEnv(t, map[string]string{"Item": "items"})
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20))")
	got := e.collect("Item")
	r := e.startBridge()

	e.exec("INSERT INTO items VALUES (1, 'a')")
	e.exec("ALTER TABLE items ADD COLUMN extra VARCHAR(10) NOT NULL DEFAULT 'd'")
	e.exec("INSERT INTO items VALUES (2, 'b', 'x')")
	e.exec("UPDATE items SET extra = 'y' WHERE id = 1")
	evs := got.wait(t, 3, 30*time.Second)
	byKey := map[string]string{}
	for _, ev := range evs {
		byKey[ev.Op+string(ev.PK["id"])] = fmt.Sprintf("%s %v", rowString(ev.Row), ev.Modified)
	}
	wants := map[string]string{
		"insert1": `id=1 v="a" [id v]`,
		"insert2": `extra="x" id=2 v="b" [id v extra]`,
		"update1": `extra="y" id=1 v="a" [extra]`,
	}
	for k, w := range wants {
		if byKey[k] != w {
			t.Errorf("%s: got %s, want %s", k, byKey[k], w)
		}
	}

	// Behind a DDL: the bridge is stopped while rows are written, a column
	// added, more rows written. Canal decodes the older rows with the new
	// schema; they must keep their own columns and values.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	e.exec("INSERT INTO items VALUES (3, 'c', 'e')")
	e.exec("ALTER TABLE items ADD COLUMN z INT NULL")
	e.exec("INSERT INTO items VALUES (4, 'd', 'f', 7)")
	e.startBridge()
	evs = got.wait(t, 5, 30*time.Second)
	for _, ev := range evs[3:] {
		byKey[ev.Op+string(ev.PK["id"])] = rowString(ev.Row)
	}
	if w := `extra="e" id=3 v="c"`; byKey["insert3"] != w {
		t.Errorf("row written before the DDL: got %s, want %s", byKey["insert3"], w)
	}
	if w := `extra="f" id=4 v="d" z=7`; byKey["insert4"] != w {
		t.Errorf("row written after the DDL: got %s, want %s", byKey["insert4"], w)
	}
}

func rowString(r events.Row) string {
	var parts []string
	for k, v := range r {
		parts = append(parts, k+"="+string(v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// TestGearmandDown: gearmand stops under load; the bridge waits, retries,
// and nothing is lost once it is back. gearmand keeps its queue in SQLite
// so that jobs acknowledged before the stop survive it.
func TestGearmandDown(t *testing.T) {
	g := testenv.StartGearmand(t, "--queue-type=libsqlite3", "--libsqlite3-db="+t.TempDir()+"/queue.db")
	db, dsn := testenv.DB(t)
	e := newEnvOn(t, db, dsn, g.Addr, map[string]string{"Item": "items"})
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20))")
	got := e.collectOn(g.Addr, "Item")
	r := e.startBridge(bridgeConcurrency(4))

	const n = 2000
	e.insertRows("items", 0, n/2, 10)
	testenv.Eventually(t, 60*time.Second, "some events before the stop", func() bool { return got.distinct() > 100 })
	g.Stop()
	e.insertRows("items", n/2, n, 10) // while gearmand is down
	testenv.Eventually(t, 60*time.Second, "the bridge to hold jobs it cannot submit", func() bool {
		return r.b.Stats().InFlight > 0
	})
	before := r.b.Stats().Position
	g.Start()
	got.wait(t, n, 90*time.Second)
	if p := r.b.Stats().Position; p == before {
		t.Errorf("position did not advance after gearmand came back: %s", p)
	}
}

// TestMariaDBRestart: the source restarts; the bridge reconnects and goes on
// from where it was.
func TestMariaDBRestart(t *testing.T) {
	m := testenv.StartMariaDB(t)
	db := m.DB("app")
	e := newEnvOn(t, db, m.DSN+"app", testenv.Gearman(t), map[string]string{"Item": "items"})
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20))")
	got := e.collect("Item")
	e.startBridge()

	e.insertRows("items", 0, 500, 50)
	got.wait(t, 500, 30*time.Second)
	m.Stop()
	m.Start()
	e.insertRows("items", 500, 1000, 50)
	got.wait(t, 1000, 60*time.Second)
	// And once more with SIGKILL, mid-stream.
	e.insertRows("items", 1000, 1500, 50)
	m.Kill()
	m.Start()
	e.insertRows("items", 1500, 2000, 50)
	got.wait(t, 2000, 60*time.Second)
}
