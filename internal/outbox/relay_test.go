package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/outbox"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

func TestMain(m *testing.M) { testenv.RunWithoutLeaks(m, nil) }

// published records what the relay submits.
type published struct {
	mu  sync.Mutex
	fns []string
}

func (p *published) Background(_ context.Context, fn string, _ any, _ gearman.Priority, _ ...gearman.SubmitOption) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fns = append(p.fns, fn)
	return "H:test", nil
}

func (p *published) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.fns)
}

// TestRingJobLastsThroughADrain: the doorbell's job ends only after a
// drain that began after the ring, so every row committed before a ring
// is published when its job ends (what lets gearmand merge the rings of
// that time into the one job).
func TestRingJobLastsThroughADrain(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	if _, err := migrations.Up(ctx, db, migrations.Rowgear().WithoutUDF()); err != nil {
		t.Fatal(err)
	}
	pub := &published{}
	// An hour's poll: only the rings wake the relay.
	r, err := outbox.New(db, pub, outbox.Options{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	for i := 1; i <= 20; i++ {
		if _, err := db.Exec("INSERT INTO rowgear_gate (digest, fn, payload, relay_after) VALUES (REPEAT('x', 32), 'ns.Box.update', '{}', '1000-01-01')"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Handler(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if got := pub.count(); got != i {
			t.Fatalf("ring %d's job ended with %d rows published, want %d", i, got, i)
		}
	}
}

// TestRingJobEndsWithoutARelay: a ring with no relay running ends after
// its cap, never holding a worker's slot for good.
func TestRingJobEndsWithoutARelay(t *testing.T) {
	db, _ := testenv.DB(t)
	r, err := outbox.New(db, &published{}, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.Handler(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the ring's job waited for its context's end, want its cap")
	}
}
