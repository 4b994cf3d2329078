package ordering

import (
	"testing"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/sqlschema"
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
