package ordering

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
)

// The key of a primary key does not depend on how its JSON text escapes a
// string or spaces a number: the event's pk and the row read back are two
// texts of one value.
func TestRowKeyDecodes(t *testing.T) {
	s := &rowSource{pk: []sqlschema.Column{{Name: "a"}, {Name: "b"}}}
	same := []events.Row{
		{"a": []byte(`"x\"y/é"`), "b": []byte(`18446744073709551615`)},
		{"a": []byte(`"x\u0022y\/\u00e9"`), "b": []byte(`18446744073709551615`)},
	}
	if s.key(same[0]) != s.key(same[1]) {
		t.Errorf("keys differ: %q, %q", s.key(same[0]), s.key(same[1]))
	}
	for _, other := range []events.Row{
		{"a": []byte(`"x\"y/é"`), "b": []byte(`18446744073709551614`)},
		{"a": []byte(`"x\"y/e"`), "b": []byte(`18446744073709551615`)},
		{"a": []byte(`"x\"y/é"`), "b": []byte(`"18446744073709551615"`)},
	} {
		if s.key(other) == s.key(same[0]) {
			t.Errorf("%v has the key of %v", other, same[0])
		}
	}
}

// A row read back finds its event by the key, whether the row holds the
// key (the pk object is then not read: NULL in its place) or the model's
// columns leave it out.
func TestReadRowFindsItsEvent(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	var name string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE boxes (a INT, b VARCHAR(10), c INT, PRIMARY KEY (a, b))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO boxes VALUES (1, 'x', 10), (1, 'y', 20), (2, 'x', 30)"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		columns []string
		pkRead  bool
		want    string
	}{
		{nil, false, `{"a":1,"b":"y","c":20}`},
		{[]string{"c", "b", "a"}, false, `{"a":1,"b":"y","c":20}`},
		{[]string{"c"}, true, `{"c":20}`},
		{[]string{"a", "c"}, true, `{"a":1,"c":20}`},
	} {
		o, err := New(db)
		if err != nil {
			t.Fatal(err)
		}
		if c.columns != nil {
			o.columns["Box"] = c.columns
		}
		ev := &events.Envelope{Schema: name, Table: "boxes", Model: "Box", ReadRow: true,
			PK: events.Row{"a": []byte("1"), "b": []byte(`"y"`)}}
		gone := &events.Envelope{Schema: name, Table: "boxes", Model: "Box", ReadRow: true,
			PK: events.Row{"a": []byte("3"), "b": []byte(`"x"`)}}
		s, err := o.source(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := !strings.HasPrefix(s.sel, " AS "+readTag+", NULL,"); got != c.pkRead {
			t.Errorf("columns %v: pk object read %v, want %v (%s)", c.columns, got, c.pkRead, s.sel)
		}
		rr, err := s.read(ctx, db, []*events.Envelope{ev, gone})
		if err != nil {
			t.Fatalf("columns %v: %v", c.columns, err)
		}
		if !rr.complete(ev) {
			t.Fatalf("columns %v: the row of (1, y) not found among %v", c.columns, rr.rows)
		}
		if got, _ := json.Marshal(ev.Row); string(got) != c.want {
			t.Errorf("columns %v: row %s, want %s", c.columns, got, c.want)
		}
		if rr.complete(gone) {
			t.Errorf("columns %v: a row found for (3, x), which is not there", c.columns)
		}
	}
}
