package dispatch_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
)

// Memo is Note with a TriggerSnapshot.
type Memo struct {
	Note
}

var memoSnaps = make(chan *Memo, 10)

func (m *Memo) TriggerSnapshot(ctx context.Context) error { memoSnaps <- m; return nil }

// TestSnapshotEventsReachTriggerSnapshot: `~` mounts <Model>.snapshot for a
// model with TriggerSnapshot, and its jobs call it with the row decoded.
func TestSnapshotEventsReachTriggerSnapshot(t *testing.T) {
	e := setup(t, "  doctrine:\n    all:\n      Memo: ~\n    named:\n      Memo: [snapshot]\n    plain:\n      Note: ~\n")
	e.cfg.Models["Memo"] = config.Model{Table: "notes", Events: []string{"update"}, Source: "binlog"}
	if err := dispatch.Register[Memo](e.reg, "Memo"); err != nil {
		t.Fatal(err)
	}
	for set, want := range map[string][]string{
		"all":   {e.ns + ".Memo.batch", e.ns + ".Memo.snapshot", e.ns + ".Memo.update"},
		"named": {e.ns + ".Memo.batch", e.ns + ".Memo.snapshot"},
		"plain": {e.ns + ".Note.batch", e.ns + ".Note.update"}, // no TriggerSnapshot: nothing to mount
	} {
		got, err := e.reg.Mount(gearman.NewWorker(nil), e.cfg, set, e.db)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("set %s: mounted %v, %v; want %v", set, got, err, want)
		}
	}
	e.run("all")
	e.send("Memo", events.OpSnapshot, &Memo{Note: Note{Owner: "ann", Num: 7, Text: "as read"}}, nil)
	m := <-memoSnaps
	if m.Owner != "ann" || m.Num != 7 || m.Text != "as read" || m.Event().Op != events.OpSnapshot {
		t.Errorf("TriggerSnapshot got %+v (op %s)", m.Note, m.Event().Op)
	}
	if h, err := e.reg.SnapshotHandler(e.cfg, "Memo"); err != nil || h != "TriggerSnapshot" {
		t.Errorf("SnapshotHandler(Memo) = %q, %v", h, err)
	}
}

// TestSnapshotCrossCheck: how gearman.yml sends a model's snapshot rows and
// the handlers of its Go type must agree, at Mount and at request time.
func TestSnapshotCrossCheck(t *testing.T) {
	e := setup(t, "")
	if err := dispatch.Register[Memo](e.reg, "Memo"); err != nil {
		t.Fatal(err)
	}
	parse := func(models string) *config.Config {
		cfg, err := config.Parse("x.yml", []byte("all:\n  models:\n"+models), "")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// No TriggerSnapshot, no snapshot: insert: Mount is fine (the model may
	// never be snapshotted), a request is refused.
	cfg := parse("    Note: {table: notes, events: [update]}\n")
	if _, err := e.reg.SnapshotHandler(cfg, "Note"); !errors.Is(err, dispatch.ErrMismatch) || !strings.Contains(err.Error(), "no TriggerSnapshot") {
		t.Errorf("Note: %v", err)
	}
	// snapshot: insert without TriggerInsert: refused at Mount and at request.
	cfg = parse("    Note: {table: notes, events: [update], snapshot: insert}\n")
	if _, err := e.reg.Mount(gearman.NewWorker(nil), cfg, "", e.db); !errors.Is(err, dispatch.ErrMismatch) || !strings.Contains(err.Error(), "TriggerInsert") {
		t.Errorf("Mount, snapshot: insert without TriggerInsert: %v", err)
	}
	if _, err := e.reg.SnapshotHandler(cfg, "Note"); !errors.Is(err, dispatch.ErrMismatch) {
		t.Errorf("SnapshotHandler, snapshot: insert without TriggerInsert: %v", err)
	}
	// snapshot: insert beside a TriggerSnapshot that would never run: refused.
	cfg = parse("    Memo: {table: notes, events: [update], snapshot: insert}\n")
	if _, err := e.reg.Mount(gearman.NewWorker(nil), cfg, "", e.db); !errors.Is(err, dispatch.ErrMismatch) || !strings.Contains(err.Error(), "has TriggerSnapshot") {
		t.Errorf("Mount, snapshot: insert with TriggerSnapshot: %v", err)
	}
	// snapshot: insert with TriggerInsert, the model emitting no inserts of
	// its own: its insert function is mounted for the snapshot's rows.
	cfg = parse("    Article: {table: articles, events: [update, delete], snapshot: insert}\n")
	got, err := e.reg.Mount(gearman.NewWorker(nil), cfg, "", e.db)
	if err != nil || !slices.Contains(got, "rowgear.Article.insert") {
		t.Errorf("Mount, snapshot: insert: %v, %v", got, err)
	}
	if h, err := e.reg.SnapshotHandler(cfg, "Article"); err != nil || h != "TriggerInsert" {
		t.Errorf("SnapshotHandler(Article) = %q, %v", h, err)
	}
}
