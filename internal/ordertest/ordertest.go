// Package ordertest is the application the ordering tests run: two models
// on one table shape (ItemT fed by triggers, ItemB by the binlog) whose
// handlers log each applied version in the event's transaction
// (ordering.Tx, with ordering.Once), and the worker wiring (retry guard
// around the ordering middleware around dispatch) used both in the test
// process and by the worker program the fault test kills.
package ordertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
	"github.com/rowgear/rowgear/internal/funcname"
	"github.com/rowgear/rowgear/internal/retryguard"
	"github.com/rowgear/rowgear/ordering"
)

// Schema creates the models' tables and the log of applied versions.
const Schema = `
CREATE TABLE items_t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(64) NOT NULL DEFAULT '');
CREATE TABLE items_b (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(64) NOT NULL DEFAULT '');
CREATE TABLE applied_log (
  n BIGINT AUTO_INCREMENT PRIMARY KEY,
  model VARCHAR(16) NOT NULL, item_id INT NOT NULL, op VARCHAR(8) NOT NULL, v INT NOT NULL,
  event_id VARBINARY(64) NOT NULL, refreshed_v INT NULL,
  KEY (model, item_id, n));
CREATE TABLE once_skipped (event_id VARBINARY(64) NOT NULL);
CREATE TABLE batch_log (n BIGINT AUTO_INCREMENT PRIMARY KEY, events INT NOT NULL);
`

// Config is the gearman.yml of the ordertest application: namespace ns,
// its gearmand servers, the database, the bridge's position file, its
// binlog.batch and (when above 0) binlog.concurrency.
func Config(ns string, servers []string, dsn, posFile string, batch, concurrency int) string {
	conc := ""
	if concurrency > 0 {
		conc = fmt.Sprintf("\n    concurrency: %d", concurrency)
	}
	return fmt.Sprintf(`all:
  namespace: %s
  server:
    default: [%s]
  models:
    ItemT: {table: items_t}
    ItemB: {table: items_b, source: binlog}
  database:
    dsn: '%s'
  binlog:
    server_id: %d
    position: file:%s
    stats_interval: 1s
    batch: %d%s
  retry:
    default: {attempts: 10, backoff: 20ms, max_backoff: 200ms}
`, ns, strings.Join(servers, ", "), dsn, 100000+rand.IntN(1<<30), posFile, batch, conc)
}

// ItemT is items_t, source trigger.
type ItemT struct {
	dispatch.Record
	ID int64  `db:"id,pk"`
	V  int64  `db:"v"`
	N  string `db:"note"`
}

// ItemB is items_b, source binlog.
type ItemB struct {
	dispatch.Record
	ID int64  `db:"id,pk"`
	V  int64  `db:"v"`
	N  string `db:"note"`
}

// Handlers: each logs the version it applies.
func (i *ItemT) TriggerInsert(ctx context.Context) error {
	return apply(ctx, &i.Record, i.ID, &i.V, true)
}
func (i *ItemT) TriggerUpdate(ctx context.Context, _ []string) error {
	return apply(ctx, &i.Record, i.ID, &i.V, true)
}
func (i *ItemT) TriggerDelete(ctx context.Context) error {
	return apply(ctx, &i.Record, i.ID, &i.V, false)
}
func (i *ItemB) TriggerInsert(ctx context.Context) error {
	return apply(ctx, &i.Record, i.ID, &i.V, true)
}
func (i *ItemB) TriggerUpdate(ctx context.Context, _ []string) error {
	return apply(ctx, &i.Record, i.ID, &i.V, true)
}
func (i *ItemB) TriggerDelete(ctx context.Context) error {
	return apply(ctx, &i.Record, i.ID, &i.V, false)
}

// FailRate is the share of handler runs that fail at random.
var FailRate float64

// ErrRandom is the random failure.
var ErrRandom = errors.New("ordertest: random failure")

// apply logs the event's version, exactly once per event id. Inserts and
// updates Refresh first: the row must be there, committed.
func apply(ctx context.Context, r *dispatch.Record, id int64, v *int64, refresh bool) error {
	// Half the failures come before the handler's writes, half after:
	// those must be undone with the event.
	failAfter := false
	if FailRate > 0 && rand.Float64() < FailRate {
		if rand.IntN(2) == 0 {
			return ErrRandom
		}
		failAfter = true
	}
	ev := r.Event()
	applied := *v
	var refreshed sql.NullInt64
	if refresh {
		if err := r.Refresh(ctx); err != nil {
			return err
		}
		refreshed = sql.NullInt64{Int64: *v, Valid: true}
	}
	// The log is written in the event's own transaction: committed with
	// its seq, or not at all, whatever becomes of the worker. Once stays,
	// to count what it would catch (nothing, then).
	var tx ordering.Execer
	etx, ok := ordering.Tx(ctx)
	if ok {
		tx = etx
	} else {
		own, err := r.DB().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer own.Rollback()
		tx = own
	}
	first, err := ordering.Once(ctx, tx, ev.ID)
	if err != nil {
		return err
	}
	if !first { // a redelivery after this event's effects committed
		_, err := r.DB().ExecContext(ctx, "INSERT INTO once_skipped VALUES (?)", ev.ID)
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO applied_log (model, item_id, op, v, event_id, refreshed_v) VALUES (?, ?, ?, ?, ?, ?)",
		ev.Model, id, ev.Op, applied, ev.ID, refreshed); err != nil {
		return err
	}
	if failAfter {
		return ErrRandom
	}
	if own, ok := tx.(*sql.Tx); ok {
		return own.Commit()
	}
	return nil
}

// Register registers both models.
func Register(reg *dispatch.Registry) error {
	if err := dispatch.Register[ItemT](reg, "ItemT"); err != nil {
		return err
	}
	return dispatch.Register[ItemB](reg, "ItemB")
}

// Run runs a worker of every model of cfg until ctx ends: gearman worker →
// retry guard → ordering → dispatch, as dbworker wires them (the orderer on
// its own pool, from ordering.OpenDB).
func Run(ctx context.Context, cfg *config.Config, concurrency int, stateDir string, log *slog.Logger) error {
	return RunPool(ctx, cfg, concurrency, stateDir, log, false)
}

// RunPool is Run; with plain, the orderer shares the application's pool,
// where each of its statements is a round trip of its own.
func RunPool(ctx context.Context, cfg *config.Config, concurrency int, stateDir string, log *slog.Logger, plain bool) error {
	servers, err := cfg.ServerAddrs("default")
	if err != nil {
		return err
	}
	db, err := dispatch.OpenDB(cfg.Database.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	reg := dispatch.NewRegistry()
	if err := Register(reg); err != nil {
		return err
	}
	odb := db
	if !plain {
		if odb, err = ordering.OpenDB(cfg.Database.DSN, concurrency); err != nil {
			return err
		}
		defer odb.Close()
	}
	ord, err := ordering.New(odb, ordering.WithConfig(cfg), ordering.WithLogger(log))
	if err != nil {
		return err
	}
	j, err := retryguard.OpenJournal(stateDir)
	if err != nil {
		return err
	}
	client := gearman.NewClient(servers, gearman.WithClientLogger(log))
	defer client.Close()
	guard := retryguard.NewGuard(retryguard.NewStore(db), client, cfg.RetryFor, retryguard.WithJournal(j), retryguard.WithLogger(log),
		retryguard.WithPollInterval(50e6),
		retryguard.WithPermanentErrors(dispatch.ErrPayload, dispatch.ErrNotFound, gearman.ErrUnknownFunction))
	if err := guard.Recover(ctx); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	w := gearman.NewWorker(servers, gearman.WithConcurrency(concurrency), gearman.WithMaxJobs(0),
		gearman.WithIdleTimeout(-1), gearman.WithLogger(log))
	reg.Use(logBatches(db), guard.Middleware, ord.Middleware()) // as the rowgear worker wires them
	if _, err := reg.Mount(w, cfg, "", db); err != nil {
		return err
	}
	gctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); guard.Run(gctx) }()
	err = w.Run(ctx)
	stop()
	<-done
	return err
}

// logBatches notes in batch_log each batch job that ran to its end, with
// its number of events: the tests check that batches formed.
func logBatches(db *sql.DB) dispatch.Middleware {
	return func(next gearman.Handler) gearman.Handler {
		return func(ctx context.Context, job *gearman.Job) (any, error) {
			out, err := next(ctx, job)
			if _, _, op, _ := funcname.Parse(job.Function); op == events.OpBatch && err == nil {
				if envs, serr := eventwire.SplitBatch(job.Workload); serr == nil {
					db.ExecContext(context.WithoutCancel(ctx), "INSERT INTO batch_log (events) VALUES (?)", len(envs))
				}
			}
			return out, err
		}
	}
}
