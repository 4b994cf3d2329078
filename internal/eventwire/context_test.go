package eventwire

import (
	"context"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
)

// TestDecodeContext: the envelope handed down is returned for the very
// payload it was decoded from, never for equal bytes elsewhere or a part.
func TestDecodeContext(t *testing.T) {
	data, err := events.Encode(&events.Envelope{V: events.Version, ID: "e1", Source: events.SourceTrigger,
		Schema: "app", Table: "articles", Model: "Article", Op: events.OpInsert,
		PK: events.Row{"id": []byte(`42`)}, Row: events.Row{"id": []byte(`42`)}, TS: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithDecoded(context.Background(), [][]byte{data}, []*events.Envelope{ev})
	if got, err := DecodeContext(ctx, data); err != nil || got != ev {
		t.Fatalf("same payload: %p, %v; want the envelope handed down (%p)", got, err, ev)
	}
	if got, err := DecodeContext(ctx, append([]byte(nil), data...)); err != nil || got == ev || got.ID != ev.ID {
		t.Fatalf("a copy of the payload: %p, %v; want a fresh decoding", got, err)
	}
	if _, err := DecodeContext(ctx, data[:len(data)-1]); err == nil {
		t.Fatal("a truncated payload decoded: it was taken for the whole")
	}
	if got, err := DecodeContext(context.Background(), data); err != nil || got == ev {
		t.Fatalf("no envelope handed down: %p, %v", got, err)
	}
}

// TestSplitBatchContext: the split handed down is returned for the very
// workload it was made from only.
func TestSplitBatchContext(t *testing.T) {
	data := EncodeBatch([][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)})
	envs, err := SplitBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithSplit(context.Background(), data, envs)
	if got, err := SplitBatchContext(ctx, data); err != nil || &got[0] != &envs[0] {
		t.Fatalf("same workload: %q, %v; want the split handed down", got, err)
	}
	if got, err := SplitBatchContext(ctx, append([]byte(nil), data...)); err != nil || &got[0] == &envs[0] || len(got) != 2 {
		t.Fatalf("a copy: %q, %v; want a fresh split", got, err)
	}
	if _, err := SplitBatchContext(ctx, data[:len(data)-1]); err == nil {
		t.Fatal("a truncated workload was taken for the whole")
	}
}
