package gearman_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestNoFunctionStarves: gearmand hands a worker the jobs of the function
// it registered last whenever that one has any, so a function whose queue
// never empties starved the others (a bridge snapshot's jobs waited
// behind a steady stream of updates, and its position stood still). The
// worker turns its functions' order, so a lone job of another function
// runs while the busy queue is still long.
func TestNoFunctionStarves(t *testing.T) {
	g := testenv.StartGearmand(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := gearman.NewClient([]string{g.Addr})
	defer c.Close()
	const busy = 3000
	ns := testenv.Name(t, "fair")
	// The worker's first connection starts with the first function (the
	// busy one) registered last: the lone job waits for a turn.
	b, a := ns+".a", ns+".b"
	for i := range busy {
		if _, err := c.Background(ctx, b, fmt.Sprint(i), gearman.Normal); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Background(ctx, a, "lone", gearman.Normal); err != nil {
		t.Fatal(err)
	}
	var bDone, bWhenA atomic.Int64
	bWhenA.Store(-1)
	w := gearman.NewWorker([]string{g.Addr}, gearman.WithConcurrency(1), gearman.WithDrain())
	w.Register(a, func(context.Context, *gearman.Job) (any, error) { bWhenA.Store(bDone.Load()); return nil, nil })
	w.Register(b, func(context.Context, *gearman.Job) (any, error) {
		time.Sleep(time.Millisecond) // ≥ 3 s of b jobs in all
		bDone.Add(1)
		return nil, nil
	})
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := bWhenA.Load(); got < 0 || got > busy/2 {
		t.Errorf("the lone job ran after %d of %d jobs of the busy function, want it before half of them", got, busy)
	}
}
