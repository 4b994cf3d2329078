package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	replicate "github.com/rowgear/rowgear/internal/replica"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/ordering"
)

// replicaTables creates items and its replica, and fills items with n rows.
func (e *env) replicaTables(n int) {
	e.t.Helper()
	e.exec("CREATE TABLE items " + replicate.DDL)
	e.exec("CREATE TABLE " + replicate.Table + " " + replicate.DDL)
	for i := 0; i < n; i += 1000 {
		var vals []string
		for j := i; j < min(i+1000, n); j++ {
			vals = append(vals, fmt.Sprintf("(%d, %d, 'initial')", j, j))
		}
		e.exec("INSERT INTO items VALUES " + strings.Join(vals, ","))
	}
}

// replicaWorker runs, on gearmand addr, a worker as an application's would:
// model Item (replica.Item, which applies every event to the replica
// table) behind mws and the ordering middleware.
func (e *env) replicaWorker(addr string, mws ...dispatch.Middleware) *replicate.Counts {
	e.t.Helper()
	cfg := e.config()
	reg := dispatch.NewRegistry(dispatch.WithLogger(testLogger(e.t)))
	c := &replicate.Counts{}
	if err := replicate.Register(reg, "Item", c); err != nil {
		e.t.Fatal(err)
	}
	o, err := ordering.New(e.db, ordering.WithConfig(cfg), ordering.WithLogger(testLogger(e.t)))
	if err != nil {
		e.t.Fatal(err)
	}
	reg.Use(mws...)
	reg.Use(o.Middleware())
	w := gearman.NewWorker([]string{addr}, gearman.WithConcurrency(8), gearman.WithLogger(testLogger(e.t)))
	fns, err := reg.Mount(w, cfg, "", e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(strings.Join(fns, " "), ".Item.snapshot") {
		e.t.Fatalf("mounted %v: no snapshot function", fns)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return c
}

// replicaEqual waits until the replica's checksum is the table's.
func (e *env) replicaEqual(timeout time.Duration) string {
	e.t.Helper()
	var src, rep string
	testenv.Eventually(e.t, timeout, "the replica to match the table", func() bool {
		var err error
		if src, err = replicate.Checksum(context.Background(), e.db, "items"); err != nil {
			e.t.Fatal(err)
		}
		if rep, err = replicate.Checksum(context.Background(), e.db, replicate.Table); err != nil {
			e.t.Fatal(err)
		}
		return src == rep
	})
	return src
}

// TestSnapshotThroughWorker: snapshot events reach TriggerSnapshot through
// a real worker with the ordering middleware, and with live changes of the
// same rows interleaved (a writer updating, deleting and inserting all
// along), the replica the handlers write ends equal to the table: no
// snapshot event applied after a newer change of its row.
func TestSnapshotThroughWorker(t *testing.T) {
	const n = 3000
	e := newEnv(t, map[string]string{"Item": "items"})
	e.snapshotTable()
	e.replicaTables(n)
	c := e.replicaWorker(e.gearman)
	e.startBridge()
	stopWriter := e.writer(n)
	id, err := bridge.RequestSnapshot(context.Background(), e.db, "Item", 100)
	if err != nil {
		t.Fatal(err)
	}
	// Each chunk waits for the worker to handle the one before (the
	// position follows handled events): on a loaded machine that took
	// 19 s where accepted chunks took 7 s.
	p := e.snapshotDone(id, 180*time.Second)
	writes := stopWriter()
	sum := e.replicaEqual(60 * time.Second)
	if c.Snapshot.Load() == 0 || c.Update.Load() == 0 {
		t.Errorf("handler calls: snapshot %d, update %d: want both", c.Snapshot.Load(), c.Update.Load())
	}
	t.Logf("%d rows read, %d writes meanwhile; TriggerSnapshot %d, Insert %d, Update %d, Delete %d; replica %s",
		p.RowsDone, writes, c.Snapshot.Load(), c.Insert.Load(), c.Update.Load(), c.Delete.Load(), sum)
}
