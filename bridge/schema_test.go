package bridge_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestRowsKeepTheirSchema: rows written while the bridge is stopped, around
// a DROP of a middle column, a reorder and a rename, come out with the
// columns and values they had when written.
func TestRowsKeepTheirSchema(t *testing.T) {
	e := newEnv(t, map[string]string{"Item": "items"})
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, a VARCHAR(20), b INT, c VARCHAR(20), d INT UNSIGNED, j JSON)")
	got := e.collect("Item")
	if err := e.startBridge().stop(); err != nil { // fixes the start position, then stops
		t.Fatal(err)
	}

	e.exec(`INSERT INTO items VALUES (1, 'a1', -10, 'c1', 4294967295, '{"k": 1}')`)
	e.exec("UPDATE items SET b = 11 WHERE id = 1")
	e.exec("ALTER TABLE items DROP COLUMN b")
	e.exec(`INSERT INTO items VALUES (2, 'a2', 'c2', 200, '[2]')`)
	e.exec("ALTER TABLE items MODIFY d INT UNSIGNED AFTER a") // id, a, d, c, j
	e.exec(`INSERT INTO items VALUES (3, 'a3', 300, 'c3', '"3"')`)
	e.exec("ALTER TABLE items RENAME COLUMN a TO title")
	e.exec(`INSERT INTO items VALUES (4, 't4', 400, 'c4', NULL)`)
	e.exec("DELETE FROM items WHERE id = 1")
	e.startBridge()

	type want struct {
		op, row, old string
		modified     []string
	}
	wants := []want{
		{"insert", `a="a1" b=-10 c="c1" d=4294967295 id=1 j={"k":1}`, "", []string{"id", "a", "b", "c", "d", "j"}},
		{"update", `a="a1" b=11 c="c1" d=4294967295 id=1 j={"k":1}`, `a="a1" b=-10 c="c1" d=4294967295 id=1 j={"k":1}`, []string{"b"}},
		{"insert", `a="a2" c="c2" d=200 id=2 j=[2]`, "", []string{"id", "a", "c", "d", "j"}},
		{"insert", `a="a3" c="c3" d=300 id=3 j="3"`, "", []string{"id", "a", "d", "c", "j"}},
		{"insert", `c="c4" d=400 id=4 j=null title="t4"`, "", []string{"id", "title", "d", "c", "j"}},
		{"delete", `c="c1" d=4294967295 id=1 j={"k":1} title="a1"`, "", nil},
	}
	evs := got.wait(t, len(wants), 30*time.Second)
	slices.SortFunc(evs, func(a, b *events.Envelope) int { return compareIDs(a.ID, b.ID) })
	for i, w := range wants {
		ev := evs[i]
		old := ""
		if ev.Old != nil {
			old = rowString(ev.Old)
		}
		if ev.Op != w.op || rowString(ev.Row) != w.row || old != w.old || !slices.Equal(ev.Modified, w.modified) {
			t.Errorf("event %d (%s):\n got %s row %s old %s modified %v\nwant %s row %s old %s modified %v",
				i, ev.Pos, ev.Op, rowString(ev.Row), old, ev.Modified, w.op, w.row, w.old, w.modified)
		}
	}
}

// TestRowMetadataRequired: without binlog_row_metadata=FULL the bridge
// refuses to start and says how to turn it on; rows logged without column
// names (before it was turned on) are decoded with the current schema only
// when it matches them column for column, and otherwise stop the bridge.
func TestRowMetadataRequired(t *testing.T) {
	m := testenv.StartMariaDB(t)
	db := m.DB("app")
	e := newEnvOn(t, db, m.DSN+"app", testenv.Gearman(t), map[string]string{"Item": "items"})
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, a VARCHAR(20), b INT)")
	got := e.collect("Item")
	if err := e.startBridge().stop(); err != nil {
		t.Fatal(err)
	}

	e.exec("SET GLOBAL binlog_row_metadata = MINIMAL")
	ctx := t.Context()
	b, err := bridge.New(ctx, e.config(), bridge.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	err = b.Run(ctx)
	b.Close()
	if !errors.Is(err, bridge.ErrConfig) || !strings.Contains(err.Error(), "binlog_row_metadata = FULL") {
		t.Fatalf("Run with binlog_row_metadata=MINIMAL: got %v, want ErrConfig saying how to set it", err)
	}

	// Rows without names, same schema now: decoded with it.
	e.exec("INSERT INTO items VALUES (1, 'x', 1)")
	e.exec("SET GLOBAL binlog_row_metadata = FULL")
	r := e.startBridge()
	ev := got.wait(t, 1, 30*time.Second)[0]
	if g := rowString(ev.Row); g != `a="x" b=1 id=1` {
		t.Errorf("row without names, unchanged schema: got %s", g)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// Rows without names, and a column dropped since: the row cannot be
	// labelled; it becomes a dead letter and the bridge goes on.
	e.exec("SET GLOBAL binlog_row_metadata = MINIMAL")
	e.exec("INSERT INTO items VALUES (2, 'y', 2)")
	e.exec("ALTER TABLE items DROP COLUMN a")
	e.exec("SET GLOBAL binlog_row_metadata = FULL")
	r = e.startBridge()
	e.exec("INSERT INTO items VALUES (3, 3)")
	evs := got.wait(t, 2, 30*time.Second)
	if g := rowString(evs[1].Row); g != `b=3 id=3` {
		t.Errorf("the row after the dead letter: got %s", g)
	}
	var fn, errs string
	var payload []byte
	if err := e.db.QueryRow("SELECT function, errors, payload FROM rowgear_failed_jobs WHERE state = 'dead'").Scan(&fn, &errs, &payload); err != nil {
		t.Fatal(err)
	}
	if fn != e.ns+".Item.insert" || !strings.Contains(errs, "cannot be labelled safely") || !strings.Contains(string(payload), `"b64:eQ=="`) {
		t.Errorf("dead letter: %s %s %s", fn, errs, payload)
	}
	if st := r.b.Stats(); st.DeadLettered != 1 {
		t.Errorf("Stats().DeadLettered = %d, want 1", st.DeadLettered)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if n := got.distinct(); n != 2 {
		t.Errorf("%d events published, want 2", n)
	}
}
