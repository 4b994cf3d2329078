package dispatch_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
)

// benchItem is a small model whose update handler does nothing.
type benchItem struct {
	dispatch.Record

	ID        int64     `db:"id,pk"`
	N         int64     `db:"n"`
	Body      string    `db:"body"`
	WrittenAt time.Time `db:"written_at"`
}

func (*benchItem) TriggerUpdate(context.Context, []string) error { return nil }

// handlers captures what Mount registers.
type handlers map[string]gearman.Handler

func (h handlers) Register(fn string, x gearman.Handler) { h[fn] = x }

// BenchmarkRunEvent measures the dispatch of one update event to a model
// handler: envelope decode, row Scan into the struct, the call. No
// gearmand, no database. Run: go test ./dispatch -run '^$' -bench RunEvent
func BenchmarkRunEvent(b *testing.B) {
	reg := dispatch.NewRegistry()
	if err := dispatch.Register[benchItem](reg, "Item"); err != nil {
		b.Fatal(err)
	}
	cfg := &config.Config{Namespace: "bench", Servers: map[string][]string{"default": {"127.0.0.1:1"}},
		Models: map[string]config.Model{"Item": {Table: "items", Schema: "app", Events: []string{"update"}}}}
	hs := handlers{}
	if _, err := reg.Mount(hs, cfg, "", nil); err != nil {
		b.Fatal(err)
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	payload, err := events.Encode(&events.Envelope{V: events.Version, ID: "binlog.000001:1000:0",
		Source: events.SourceBinlog, Schema: "app", Table: "items", Model: "Item", Op: events.OpUpdate,
		PK:       events.Row{"id": raw("42")},
		Row:      events.Row{"id": raw("42"), "n": raw("2"), "body": raw(`"a body of some length for row 42"`), "written_at": raw(`"2026-11-26 23:36:37.123456"`)},
		Old:      events.Row{"id": raw("42"), "n": raw("1"), "body": raw(`"a body of some length for row 42"`), "written_at": raw(`"2026-11-26 23:36:36.654321"`)},
		Modified: []string{"n", "written_at"},
		TS:       time.Date(2026, 11, 26, 23, 36, 37, 0, time.UTC), Pos: "binlog.000001:1000"})
	if err != nil {
		b.Fatal(err)
	}
	h := hs["bench.Item.update"]
	job := &gearman.Job{Function: "bench.Item.update", Handle: "H:x:1", Unique: "binlog.000001:1000:0", Workload: payload}
	ctx := context.Background()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h(ctx, job); err != nil {
			b.Fatal(err)
		}
	}
}
