package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestBatches: with binlog.batch: 10, the events waiting in a submit queue
// go out as <Model>.batch jobs of at most 10 consecutive events, in binlog
// order; each event is in exactly one job.
func TestBatches(t *testing.T) {
	e := newEnv(t, map[string]string{"Item": "items"})
	e.yml += "    batch: 10\n"
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v INT NOT NULL)")
	var mu sync.Mutex
	seen := map[string]int{}
	var sizes []int
	record := func(envs [][]byte, unique string) error {
		var ids []string
		for _, data := range envs {
			ev, err := events.Decode(data)
			if err != nil {
				return err
			}
			ids = append(ids, ev.ID)
		}
		if !slices.IsSortedFunc(ids, compareIDs) {
			t.Errorf("batch %s: events out of binlog order: %v", unique, ids)
		}
		if len(envs) > 1 && unique != fmt.Sprintf("%s+%d", ids[0], len(ids)) {
			t.Errorf("batch unique key %q, want its first event's id + its size", unique)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			seen[id]++
		}
		sizes = append(sizes, len(envs))
		return nil
	}
	w := gearman.NewWorker([]string{e.gearman}, gearman.WithLogger(slog.New(slog.DiscardHandler)))
	w.Register(events.FuncName(e.ns, "Item", "insert"), func(_ context.Context, j *gearman.Job) (any, error) {
		return nil, record([][]byte{j.Workload}, j.Unique)
	})
	w.Register(events.FuncName(e.ns, "Item", events.OpBatch), func(_ context.Context, j *gearman.Job) (any, error) {
		envs, err := eventwire.SplitBatch(j.Workload)
		if err != nil {
			t.Errorf("batch %s: %v", j.Unique, err)
			return nil, err
		}
		return nil, record(envs, j.Unique)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e.startBridge(bridgeConcurrency(1)) // one queue: all 1,000 events behind each other
	e.exec("INSERT INTO items (id, v) SELECT seq, 0 FROM seq_1_to_1000")
	testenv.Eventually(t, 60*time.Second, "1,000 events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 1000
	})
	mu.Lock()
	defer mu.Unlock()
	var twice []string
	for id, n := range seen {
		if n != 1 {
			twice = append(twice, id)
		}
	}
	if len(seen) != 1000 || len(twice) > 0 {
		t.Fatalf("%d distinct events, %d more than once: %s", len(seen), len(twice), strings.Join(twice, " "))
	}
	if slices.Max(sizes) > 10 || slices.Max(sizes) < 2 {
		t.Fatalf("job sizes %v: want batches, of at most 10", sizes)
	}
	t.Logf("1,000 events in %d jobs", len(sizes))
}
