package outbox

import (
	"slices"
	"testing"
)

func TestDistinctTables(t *testing.T) {
	for _, c := range []struct {
		ts   []string
		db   string
		want []string
	}{
		{[]string{"rowgear_gate", "`app`.rowgear_gate"}, "app", []string{"rowgear_gate"}},
		{[]string{"rowgear_gate", "`app`.rowgear_gate"}, "other", []string{"rowgear_gate", "`app`.rowgear_gate"}},
		{[]string{"rowgear_gate", "app.rowgear_gate", "`app`.`rowgear_gate`"}, "app", []string{"rowgear_gate"}},
		{[]string{"`a.b`.rowgear_gate", "`a`.`b.rowgear_gate`"}, "", []string{"`a.b`.rowgear_gate", "`a`.`b.rowgear_gate`"}},
		{[]string{"`we``ird`.rowgear_gate", "rowgear_gate"}, "we`ird", []string{"`we``ird`.rowgear_gate"}},
		{[]string{"rowgear_gate", "`app`.rowgear_gate"}, "", []string{"rowgear_gate", "`app`.rowgear_gate"}},
	} {
		if got := distinctTables(c.ts, c.db); !slices.Equal(got, c.want) {
			t.Errorf("distinctTables(%q, %q) = %q, want %q", c.ts, c.db, got, c.want)
		}
	}
}

func TestSplitQualified(t *testing.T) {
	for _, c := range []struct{ t, schema, name string }{
		{"`a.b`.`c``d`", "a.b", "c`d"},
		{"app.rowgear_gate", "app", "rowgear_gate"},
		{"`x```.t", "x`", "t"},
	} {
		s, n, ok := splitQualified(c.t)
		if !ok || s != c.schema || n != c.name {
			t.Errorf("splitQualified(%q) = %q, %q, %v; want %q, %q", c.t, s, n, ok, c.schema, c.name)
		}
	}
	if _, _, ok := splitQualified("`a.b`"); ok {
		t.Error("a quoted dot split the name")
	}
}
