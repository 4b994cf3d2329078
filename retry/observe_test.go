package retry_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/retry"
)

// TestObserverCountsAndReplayProgress: the observer sees each retry and
// dead letter; CountDead counts them by function; ReplayProgress reports
// its progress and replays them all.
func TestObserverCountsAndReplayProgress(t *testing.T) {
	f := setup(t)
	var mu sync.Mutex
	seen := map[retry.Outcome]int{}
	g := retry.NewGuard(retry.NewStore(f.db), f.c, policy(2, 10*time.Millisecond), retry.WithPollInterval(10*time.Millisecond),
		retry.WithObserver(func(fn string, o retry.Outcome) {
			mu.Lock()
			defer mu.Unlock()
			if fn == f.fn {
				seen[o]++
			}
		}))
	f.run(t, g, func(context.Context, *gearman.Job) (any, error) { return nil, errors.New("always fails") })
	for _, p := range []string{"a", "b", "c"} {
		f.submit(t, p)
	}
	testenv.Eventually(t, 20*time.Second, "3 dead letters", func() bool { return len(f.dead(t)) == 3 })
	mu.Lock()
	if seen[retry.Retried] != 3 || seen[retry.DeadLettered] != 3 {
		t.Errorf("observed %v, want 3 retried and 3 dead-lettered", seen)
	}
	mu.Unlock()
	counts, err := retry.NewStore(f.db).CountDead(context.Background())
	if err != nil || len(counts) != 1 || counts[f.fn] != 3 {
		t.Fatalf("CountDead = %v, %v; want %s: 3", counts, err, f.fn)
	}
	var out bytes.Buffer
	n, err := g.ReplayProgress(context.Background(), &out)
	if err != nil || n != 3 {
		t.Fatalf("ReplayProgress = %d, %v", n, err)
	}
	if !strings.HasPrefix(out.String(), "dead retry: 3/3 (100%), ") || !strings.Contains(out.String(), "done in") {
		t.Errorf("progress output %q", out.String())
	}
}
