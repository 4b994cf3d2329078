package bridge_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
)

func TestInsertUpdateDelete(t *testing.T) {
	e := newEnv(t, map[string]string{"Article": "articles"})
	e.exec("CREATE TABLE articles (id INT PRIMARY KEY, title VARCHAR(50) NOT NULL, body TEXT NULL, n INT NOT NULL DEFAULT 0)")
	e.exec("CREATE TABLE articles_archive (id INT PRIMARY KEY)") // must not match: the regex is anchored
	got := e.collect("Article")
	e.startBridge()

	e.exec("INSERT INTO articles (id, title) VALUES (1, 'a')")
	e.exec("INSERT INTO articles_archive VALUES (1)")
	e.exec("UPDATE articles SET title = 'b' WHERE id = 1")
	e.exec("UPDATE articles SET body = NULL WHERE id = 1") // no change: not in the binlog
	e.exec("UPDATE articles SET body = 'x' WHERE id = 1")  // NULL → value
	e.exec("UPDATE articles SET body = NULL WHERE id = 1") // value → NULL
	// A rolled-back transaction produces nothing.
	tx, err := e.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO articles (id, title) VALUES (99, 'rolled back')"); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	// One statement, one RowsEvent, several rows.
	e.exec("INSERT INTO articles (id, title) VALUES (2, 'c'), (3, 'd')")
	e.exec("UPDATE articles SET n = n + 1")
	e.exec("DELETE FROM articles WHERE id = 1")

	evs := got.wait(t, 10, 30*time.Second)
	type want struct {
		op, pk   string
		modified []string
	}
	wants := []want{
		{"insert", "1", []string{"id", "title", "body", "n"}},
		{"update", "1", []string{"title"}},
		{"update", "1", []string{"body"}},
		{"update", "1", []string{"body"}},
		{"insert", "2", []string{"id", "title", "body", "n"}},
		{"insert", "3", []string{"id", "title", "body", "n"}},
		{"update", "1", []string{"n"}},
		{"update", "2", []string{"n"}},
		{"update", "3", []string{"n"}},
		{"delete", "1", nil},
	}
	// One worker runs jobs concurrently: compare as sets keyed by id order.
	slices.SortFunc(evs, func(a, b *events.Envelope) int { return compareIDs(a.ID, b.ID) })
	for i, w := range wants {
		ev := evs[i]
		if ev.Op != w.op || string(ev.PK["id"]) != w.pk || !slices.Equal(ev.Modified, w.modified) {
			t.Errorf("event %d: got %s pk=%s modified=%v, want %s pk=%s modified=%v", i, ev.Op, ev.PK["id"], ev.Modified, w.op, w.pk, w.modified)
		}
		if ev.Source != events.SourceBinlog || ev.Model != "Article" || ev.Table != "articles" || ev.Pos == "" {
			t.Errorf("event %d: envelope %+v", i, ev)
		}
		if time.Since(ev.TS) > time.Minute || time.Since(ev.TS) < -time.Minute {
			t.Errorf("event %d: ts %s is not the commit time", i, ev.TS)
		}
		if !strings.HasPrefix(ev.ID, ev.Pos+":") {
			t.Errorf("event %d: id %q is not pos %q + row index", i, ev.ID, ev.Pos)
		}
	}
	if u := evs[1]; string(u.Old["title"]) != `"a"` || string(u.Row["title"]) != `"b"` {
		t.Errorf("update images: old %s row %s", u.Old, u.Row)
	}
	if u := evs[2]; string(u.Old["body"]) != "null" && u.Old["body"] != nil {
		t.Errorf("update NULL→x: old body %s", u.Old["body"])
	}
	if d := evs[9]; string(d.Row["title"]) != `"b"` || d.Old != nil {
		t.Errorf("delete: row %s old %s", d.Row, d.Old)
	}
	// The multi-row update: one position, row indexes 0, 1, 2.
	if evs[6].Pos != evs[8].Pos || !strings.Contains(evs[8].ID, ":2@") {
		t.Errorf("multi-row update ids: %s %s %s", evs[6].ID, evs[7].ID, evs[8].ID)
	}
	// Nothing more: not the rolled-back row, not articles_archive. The
	// marker proves the stream went past them.
	e.exec("INSERT INTO articles (id, title) VALUES (100, 'marker')")
	got.wait(t, 11, 30*time.Second)
	for _, ev := range got.events() {
		if string(ev.PK["id"]) == "99" || ev.Table != "articles" {
			t.Errorf("unexpected event %+v", ev)
		}
	}
	if n := got.received(); n != 11 {
		t.Errorf("received %d jobs, want 11", n)
	}
}

// compareIDs orders "file:pos:row@server.history" ids by file, position, row.
func compareIDs(a, b string) int {
	a, _, _ = strings.Cut(a, "@")
	b, _, _ = strings.Cut(b, "@")
	pa, pb := strings.Split(a, ":"), strings.Split(b, ":")
	if c := strings.Compare(pa[0], pb[0]); c != 0 {
		return c
	}
	for i := 1; i < 3; i++ {
		na, nb := atoi(pa[i]), atoi(pb[i])
		if na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
	}
	return 0
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
