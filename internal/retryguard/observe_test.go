package retryguard_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/retryguard"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestObserverCountsAndReplayProgress: the observer sees each retry and
// dead letter; CountDead counts them by function; ReplayProgress reports
// its progress and replays them all.
func TestObserverCountsAndReplayProgress(t *testing.T) {
	f := setup(t)
	var mu sync.Mutex
	seen := map[retryguard.Outcome]int{}
	g := retryguard.NewGuard(retryguard.NewStore(f.db), f.c, policy(2, 10*time.Millisecond), retryguard.WithPollInterval(10*time.Millisecond),
		retryguard.WithObserver(func(fn string, o retryguard.Outcome) {
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
	testenv.Eventually(t, 60*time.Second, "3 dead letters", func() bool { return len(f.dead(t)) == 3 })
	// The guard calls the observer after it wrote the dead letter: wait for
	// the observer's count too, then check that it counted each job once.
	observed := func() map[retryguard.Outcome]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(seen)
	}
	testenv.Eventually(t, 60*time.Second, "the observer to see 3 dead-lettered", func() bool {
		return observed()[retryguard.DeadLettered] >= 3
	})
	if o := observed(); o[retryguard.Retried] != 3 || o[retryguard.DeadLettered] != 3 {
		t.Errorf("observed %v, want 3 retried and 3 dead-lettered", o)
	}
	counts, err := retryguard.NewStore(f.db).CountDead(context.Background())
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
