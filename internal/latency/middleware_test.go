package latency_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/latency"
)

func triggerEvent(t *testing.T, ts time.Time) []byte {
	t.Helper()
	b, err := events.Encode(&events.Envelope{V: 1, ID: "e1", Source: events.SourceTrigger, Schema: "s", Table: "t",
		Model: "M", Op: events.OpInsert, PK: events.Row{"id": []byte("1")}, Row: events.Row{"id": []byte("1")},
		Modified: []string{"id"}, TS: ts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMiddlewareMeasuresToTheHandler: the latency ends where HandlerStart
// sees the run; a run left to gearmand, a run that never reaches the
// handler and a retried run (guard header) are not measured.
func TestMiddlewareMeasuresToTheHandler(t *testing.T) {
	var got []time.Duration
	tr, err := latency.New(nil, latency.WithSample(func(source string, d time.Duration) {
		if source != events.SourceTrigger {
			t.Errorf("source %q", source)
		}
		got = append(got, d)
	}))
	if err != nil {
		t.Fatal(err)
	}
	const wait = 30 * time.Millisecond
	var outcome error
	reach := true
	inner := tr.HandlerStart(func(context.Context, *gearman.Job) (any, error) { return nil, outcome })
	// Between the two: what ordering's wait for the writer's commit does.
	h := tr.Middleware(func(ctx context.Context, job *gearman.Job) (any, error) {
		time.Sleep(wait)
		if !reach {
			return nil, nil
		}
		return inner(ctx, job)
	})
	committed := time.Now().Add(-time.Second)
	run := func(w []byte) { h(context.Background(), &gearman.Job{Function: "f", Workload: w}) }

	run(triggerEvent(t, committed))
	if len(got) != 1 || got[0] < time.Second+wait {
		t.Fatalf("samples %v: want one ≥ %v (measured at the handler, after the wait)", got, time.Second+wait)
	}
	outcome = fmt.Errorf("lock wait: %w", gearman.ErrRequeue)
	run(triggerEvent(t, committed))
	outcome, reach = nil, false
	run(triggerEvent(t, committed))
	reach = true
	run(append([]byte("\x00RGR1{}\n"), triggerEvent(t, committed)...))
	if len(got) != 1 {
		t.Errorf("samples %v: a requeued, a skipped and a retried run were measured", got)
	}
	outcome = errors.New("handler failed")
	run(triggerEvent(t, committed))
	if len(got) != 2 {
		t.Errorf("samples %v: a first run that failed is measured too", got)
	}
}
