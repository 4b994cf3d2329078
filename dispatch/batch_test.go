package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
)

// TestBatchRunsEachEventThroughItsChain: a batch job's events each pass
// the whole middleware chain under their own function and unique key, in
// order, and call their handler once; a failing event fails alone.
func TestBatchRunsEachEventThroughItsChain(t *testing.T) {
	e := setup(t, "  dbworker:\n    notes:\n      Note: ~\n")
	var mu sync.Mutex
	var seen []string
	e.reg.Use(func(next gearman.Handler) gearman.Handler {
		return func(ctx context.Context, j *gearman.Job) (any, error) {
			out, err := next(ctx, j)
			mu.Lock()
			unique := j.Unique
			if strings.HasSuffix(j.Function, ".batch") {
				unique = "(its own)"
			}
			seen = append(seen, fmt.Sprintf("%s %s err=%v", j.Function[len(e.ns)+1:], unique, err != nil))
			mu.Unlock()
			return out, err
		}
	})
	e.run("notes")
	var envs [][]byte
	var ids []string
	for i, text := range []string{"first", "fail", "third"} {
		data := mustEnvelope(t, &Note{Owner: "batch", Num: int64(i), Text: text})
		ev, _ := events.Decode(data)
		envs, ids = append(envs, data), append(ids, ev.ID)
	}
	batch := events.FuncName(e.ns, "Note", events.OpBatch)
	if _, err := e.client.Task(e.ctx(), batch, eventwire.EncodeBatch(envs), gearman.Normal); err != nil {
		t.Fatalf("batch with one failing event: %v, want the batch done", err)
	}
	for _, want := range []string{"first", "third"} {
		if n := <-noteCalls; n.Text != want {
			t.Fatalf("handler got %q, want %q (in batch order)", n.Text, want)
		}
	}
	mu.Lock()
	got := strings.Join(seen, "\n")
	mu.Unlock()
	want := strings.Join([]string{
		"Note.update " + ids[0] + " err=false",
		"Note.update " + ids[1] + " err=true",
		"Note.update " + ids[2] + " err=false",
		"Note.batch (its own) err=false",
	}, "\n")
	if got != want {
		t.Fatalf("middleware saw\n%s\nwant\n%s", got, want)
	}
	select {
	case n := <-noteCalls:
		t.Fatalf("an extra handler call: %+v", n)
	default:
	}

	// A batch that is not one, or holds another model's event, fails as a
	// whole with a bad payload naming what is wrong; no handler runs.
	other, _ := events.Decode(envs[0])
	other.Model, other.ID = "Article", "misrouted-1"
	misrouted, _ := events.Encode(other)
	for _, tc := range []struct {
		payload []byte
		want    string
	}{
		{[]byte(`not json`), "malformed"},
		{[]byte(`[]`), "no events"},
		{eventwire.EncodeBatch([][]byte{envs[0], []byte(`{"v":2}`)}), "event 1"},
		{eventwire.EncodeBatch([][]byte{misrouted}), "misrouted-1 is of model Article"},
	} {
		_, err := e.client.Task(e.ctx(), batch, tc.payload, gearman.Normal)
		var je *gearman.JobError
		if !errors.As(err, &je) || !strings.Contains(je.Msg, "bad payload") || !strings.Contains(je.Msg, tc.want) {
			t.Fatalf("batch %.30q: %v, want a bad payload mentioning %q", tc.payload, err, tc.want)
		}
	}
	select {
	case n := <-noteCalls:
		t.Fatalf("a bad batch ran a handler: %+v", n)
	default:
	}
}
