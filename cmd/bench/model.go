package main

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowgear/rowgear"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/retryguard"
)

// itemDDL is the bench table: written_at is set with NOW(6) by every write.
const itemDDL = "(id BIGINT PRIMARY KEY, n INT NOT NULL, body VARCHAR(100) NOT NULL, written_at DATETIME(6) NOT NULL)"

// Item is the bench model. Its handlers only note the receipt.
type Item struct {
	dispatch.Record

	ID        int64  `db:"id,pk"`
	N         int64  `db:"n"`
	Body      string `db:"body"`
	WrittenAt string `db:"written_at"`
}

func (it *Item) TriggerInsert(ctx context.Context) error { rec.Load().note(it.WrittenAt); return nil }

func (it *Item) TriggerUpdate(ctx context.Context, _ []string) error {
	rec.Load().note(it.WrittenAt)
	return nil
}

// rec is where the handlers note receipts; a fresh recorder per measurement.
var rec atomic.Pointer[recorder]

func init() { rec.Store(&recorder{}) }

type recorder struct {
	n    atomic.Int64
	mu   sync.Mutex
	lat  []time.Duration // from package latency (measureLatency)
	stmt []time.Duration // from the row's written_at (NOW(6) at statement start): a cross-check
	last atomic.Int64    // unix nanos of the last receipt
}

func newRecorder() *recorder {
	r := &recorder{}
	rec.Store(r)
	return r
}

func (r *recorder) note(writtenAt string) {
	now := time.Now()
	r.n.Add(1)
	r.last.Store(now.UnixNano())
	if t, err := time.ParseInLocation("2006-01-02 15:04:05.999999", writtenAt, time.UTC); err == nil {
		r.mu.Lock()
		r.stmt = append(r.stmt, now.Sub(t))
		r.mu.Unlock()
	}
}

// sample records one latency measured by package latency.
func (r *recorder) sample(d time.Duration) {
	r.mu.Lock()
	r.lat = append(r.lat, d)
	r.mu.Unlock()
}

func (r *recorder) samples() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lat)
}

// latencies returns the commit → handler samples and, for a cross-check,
// the statement start → handler ones (which can only be longer).
func (r *recorder) latencies() (commit, stmt []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.lat...), append([]time.Duration(nil), r.stmt...)
}

// modelConfig is a gearman.yml with the Item model on table, for worker set
// "" (every model, every event).
func (b *bench) modelConfig(ns, gearmand, table, source string) *config.Config {
	return &config.Config{
		File: "bench", Namespace: ns,
		Servers:  map[string][]string{"default": {gearmand}},
		Models:   map[string]config.Model{"Item": {Table: table, Schema: b.dbName, Events: []string{"insert", "update"}, Source: source}},
		Database: config.Database{DSN: b.dsn},
		Binlog:   config.Binlog{Flavor: "mariadb"},
	}
}

// itemWorker returns a worker running the Item model as dbworker mounts it
// (with the retry guard and its crash journal when guard is set). With
// b.latency set, the latency middleware notes each handler start.
func (b *bench) itemWorker(ctx context.Context, cfg *config.Config, concurrency int, guard bool) (*gearman.Worker, func(), error) {
	return b.itemWorkerMW(ctx, cfg, concurrency, guard, nil)
}

// itemWorkerMW is itemWorker with mw (nil: none) inside the retry guard.
func (b *bench) itemWorkerMW(ctx context.Context, cfg *config.Config, concurrency int, guard bool, mw func(gearman.Handler) gearman.Handler) (*gearman.Worker, func(), error) {
	return b.modelWorker(ctx, cfg, concurrency, guard, mw, func(reg *dispatch.Registry) error {
		return dispatch.Register[Item](reg, "Item")
	})
}

// modelWorker is itemWorkerMW with the models register registers.
func (b *bench) modelWorker(ctx context.Context, cfg *config.Config, concurrency int, guard bool, mw func(gearman.Handler) gearman.Handler,
	register func(*dispatch.Registry) error) (*gearman.Worker, func(), error) {
	reg := dispatch.NewRegistry()
	if err := register(reg); err != nil {
		return nil, nil, err
	}
	addrs := cfg.Servers["default"]
	w := gearman.NewWorker(addrs, gearman.WithConcurrency(concurrency), gearman.WithLogger(b.log),
		gearman.WithClientID("bench"))
	// As the worker command wires them: the commit → handler latency
	// (outer, when set) around the retry guard (when set) around mw (when
	// set) around the latency's handler start.
	if b.latency != nil {
		reg.Use(b.latency.Middleware)
	}
	cleanup := func() {}
	if guard {
		j, err := retryguard.OpenJournal(filepath.Join(b.dir, "journal"))
		if err != nil {
			return nil, nil, err
		}
		client := gearman.NewClient(addrs, gearman.WithClientLogger(b.log))
		g := retryguard.NewGuard(retryguard.NewStore(b.db), client, cfg.RetryFor, retryguard.WithJournal(j), retryguard.WithLogger(b.log),
			retryguard.WithPermanentErrors(dispatch.ErrPayload, dispatch.ErrNotFound, gearman.ErrUnknownFunction))
		if err := g.Recover(ctx); err != nil {
			return nil, nil, err
		}
		reg.Use(g.Middleware)
		cleanup = func() { j.Close(); client.Close() }
	}
	if mw != nil {
		reg.Use(mw)
	}
	if b.latency != nil {
		reg.Use(b.latency.HandlerStart)
	}
	if _, err := reg.Mount(w, cfg, "", b.db); err != nil {
		return nil, nil, err
	}
	return w, cleanup, nil
}

// dbworker returns a worker of the Item model as the worker command builds
// it: rowgear.Worker, with the observation, the retry guard (its crash
// journal in the bench's directory) and the ordering on a pool of its own.
func (b *bench) dbworker(ctx context.Context, cfg *config.Config, concurrency int) (*rowgear.Worker, error) {
	reg := dispatch.NewRegistry(dispatch.WithLogger(b.log))
	if err := dispatch.Register[Item](reg, "Item"); err != nil {
		return nil, err
	}
	return rowgear.NewWorker(ctx, cfg, reg, rowgear.WithConcurrency(concurrency), rowgear.WithLogger(b.log),
		rowgear.WithStateDir(filepath.Join(b.dir, "state")), rowgear.WithName("bench"))
}

// runDBWorker runs w in the background until the returned stop is called.
func runDBWorker(ctx context.Context, w *rowgear.Worker) (stop func()) {
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	return func() { w.Shutdown(context.Background()); <-done }
}

// runWorker runs w in the background until the returned stop is called.
func runWorker(ctx context.Context, w *gearman.Worker) (stop func()) {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	return func() { cancel(); <-done }
}

type configBinlog = config.Binlog
