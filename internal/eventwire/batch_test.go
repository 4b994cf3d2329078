package eventwire_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/eventwire"
)

func TestBatchRoundTrip(t *testing.T) {
	in := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":[1,2,{"c":"]"}]}`), []byte(`{}`)}
	out, err := eventwire.SplitBatch(eventwire.EncodeBatch(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d elements, want %d", len(out), len(in))
	}
	for i := range in {
		if string(out[i]) != string(in[i]) {
			t.Errorf("element %d: %s, want %s", i, out[i], in[i])
		}
	}
	// Whitespace around elements is not part of them.
	out, err = eventwire.SplitBatch([]byte(" [ {\"a\":1} ,\n{\"b\":2} ] "))
	if err != nil || len(out) != 2 || string(out[0]) != `{"a":1}` || string(out[1]) != `{"b":2}` {
		t.Fatalf("spaced batch: %q, %v", out, err)
	}
}

func TestSplitBatchRefuses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":1}`, "want a JSON array"},
		{`[]`, "no events"},
		{`[{"a":1},2]`, "batch element 1: want an envelope"},
		{`[{"a":1}] x`, "after"},
		{`[{"a":1}`, "batch"},
		{`[{"a":1},]`, "batch element 1"},
		{`[` + strings.Repeat(`{},`, events.MaxBatch) + `{}]`, "more than 1000"},
	} {
		_, err := eventwire.SplitBatch([]byte(c.in))
		if err == nil || !errors.Is(err, events.ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SplitBatch(%.40s): %v, want ErrMalformed containing %q", c.in, err, c.want)
		}
	}
}
