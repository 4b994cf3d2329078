package rowgear

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/health"
	"github.com/rowgear/rowgear/internal/metrics"
	"github.com/rowgear/rowgear/internal/observe"
	"github.com/rowgear/rowgear/internal/outbox"
	"github.com/rowgear/rowgear/internal/retryguard"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/wiring"
	"github.com/rowgear/rowgear/ordering"
)

// ErrNotMigrated: rowgear's own migrations are not (all) applied.
var ErrNotMigrated = errors.New("rowgear's migrations are not applied")

// ErrNotInSet: WithModel names a model or a method that the worker set does
// not serve.
var ErrNotInSet = errors.New("rowgear: not in the worker set")

// ErrWorkerStopped: Run was called on a worker that ran or was shut down.
var ErrWorkerStopped = errors.New("rowgear: the worker has run already or was shut down")

// Worker runs the application's handlers for the jobs of one worker set.
type Worker struct {
	s       settings
	cfg     *config.Config
	log     *slog.Logger
	servers []string
	fns     []string

	db      *sql.DB // nil: a plain worker set
	closers []func() error
	obs     *observe.Worker
	guard   *retryguard.Guard // nil: retries off, or no database
	relay   *outbox.Relay     // nil: triggers.mode is not outbox
	ord     *ordering.Orderer
	holds   sync.WaitGroup // holdOutboxRow's updates in flight
	gw      *gearman.Worker

	mu      sync.Mutex
	started bool
	stop    context.CancelFunc // Run's; nil before it
	runCtx  context.Context    // Run's, for the hooks
	done    chan struct{}      // closed when Run has returned, or by Shutdown before Run
}

// NewWorker prepares a worker of cfg's functions and the handlers reg holds.
// It checks what can be checked before a job arrives: the options, the set,
// the gearman connection's name, the database (pinged), rowgear's
// migrations (ErrNotMigrated), and that gearman.yml and the registrations
// agree (dispatch.ErrMismatch). It wraps the application's middleware (the
// registry's own, then WithMiddleware) in rowgear's: from the outermost,
// the observation (metrics, commit → handler latency), the retry guard
// (retries, dead letters, crash journal), the ordering (commit gate, per-row
// order), the application's middleware, the latency's handler start. reg is
// not changed.
func NewWorker(ctx context.Context, cfg *config.Config, reg *dispatch.Registry, opts ...WorkerOption) (*Worker, error) {
	if cfg == nil || reg == nil {
		return nil, errors.New("rowgear: NewWorker: nil config or registry")
	}
	w := &Worker{s: defaults(), cfg: cfg, done: make(chan struct{})}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("rowgear: nil WorkerOption")
		}
		if err := o.apply(&w.s); err != nil {
			return nil, fmt.Errorf("rowgear: %w", err)
		}
	}
	w.log = cmp.Or(w.s.log, slog.Default())
	if err := w.init(ctx, reg); err != nil {
		w.release()
		return nil, err
	}
	return w, nil
}

// init opens and checks what the worker needs, and mounts reg's handlers
// in rowgear's chain; the caller releases what it opened when it fails.
func (w *Worker) init(ctx context.Context, reg *dispatch.Registry) error {
	cfg := w.cfg
	var err error
	if err := wiring.CheckSet(cfg, w.s.set, fmt.Sprintf("WithSet(%q)", w.s.set)); err != nil {
		return err
	}
	if w.servers, err = cfg.ServerAddrs(w.s.server); err != nil {
		return err
	}
	if err := w.openDB(ctx); err != nil {
		return err
	}
	outer, err := w.outer(ctx)
	if err != nil {
		return err
	}
	w.gw = gearman.NewWorker(w.servers, append(w.obs.WorkerOptions(), gearman.WithConcurrency(w.s.concurrency),
		gearman.WithMaxJobs(w.s.maxJobs), gearman.WithIdleTimeout(w.s.idle), gearman.WithVerbose(w.s.verbose),
		gearman.WithLogger(w.log), gearman.WithJobTimeout(w.s.jobTimeout), gearman.WithClientID(cmp.Or(w.s.name, "rowgear")),
		gearman.WithWorkerCodecFor(dispatch.Codecs(cfg, w.s.server, w.s.set)), gearman.WithDrainIf(w.s.drain),
		gearman.WithIdleStop(w.idleHook))...)
	// Where rowgear reads gearman.yml differently from sfGearmanPlugin: said
	// once at start, naming the line, so a migrating team sees it.
	for _, n := range cfg.Notes {
		w.log.Warn("gearman.yml read differently from sfGearmanPlugin", "note", n.String())
	}
	inner := slices.Concat(w.s.mws, []dispatch.Middleware{w.obs.HandlerStart}) // innermost: commit → handler latency ends here
	col := collector{}
	if _, err = reg.Chained(outer, inner).Mount(col, cfg, w.s.set, w.db); err != nil {
		return err
	}
	keep, err := w.selected(col)
	if err != nil {
		return err
	}
	for _, fn := range keep {
		w.gw.Register(fn, w.timeoutHook(fn, col[fn]))
	}
	if err := w.newRelay(); err != nil {
		return err
	}
	if w.relay != nil {
		// The doorbell, outside rowgear's chain: it only wakes the relay.
		bell := outbox.Doorbell(cfg.Namespace)
		w.gw.Register(bell, w.relay.Handler)
		keep = append(keep, bell)
		slices.Sort(keep)
	}
	w.fns = keep
	return nil
}

// newRelay prepares the outbox relay when the triggers write an outbox
// (triggers.mode: outbox): every worker process with the database relays,
// so a dead one leaves the others relaying.
func (w *Worker) newRelay() error {
	if w.db == nil || w.cfg.Triggers.Mode != "outbox" {
		return nil
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(w.cfg.Models)), func(m config.Model) bool {
		return m.Source == "" || m.Source == "trigger"
	}) {
		return nil // no trigger writes an outbox
	}
	tables := []string{sqlschema.GateTable}
	for _, name := range slices.Sorted(maps.Keys(w.cfg.Models)) {
		if s := w.cfg.Models[name].Schema; s != "" {
			t := sqlschema.QuoteIdent(s) + "." + sqlschema.GateTable
			if !slices.Contains(tables, t) {
				tables = append(tables, t)
			}
		}
	}
	gc := gearman.NewClient(w.servers, gearman.WithClientLogger(w.log))
	w.closers = append(w.closers, gc.Close)
	// A pool of its own that sends parameters inline: one round trip a
	// statement, where a prepared one takes three (the relay's rounds are
	// small and frequent under a steady load). With WithDB, that pool.
	db := w.db
	if w.s.dsn != "" {
		var err error
		if db, err = ordering.OpenDB(w.s.dsn, 2); err != nil {
			return err
		}
		w.closers = append(w.closers, db.Close)
	}
	var err error
	w.relay, err = outbox.New(db, gc, outbox.Options{Tables: tables, Namespace: w.cfg.Namespace, ResendAfter: w.cfg.Triggers.ResendAfter,
		Poll: w.cfg.Triggers.Poll, Concurrency: w.s.concurrency, GroupBy: w.cfg.Triggers.Batch, Logger: w.log})
	return err
}

// collector takes what Mount registers, for WithModel to choose from.
type collector map[string]gearman.Handler

func (c collector) Register(fn string, h gearman.Handler) { c[fn] = h }

// selected are the functions of fns that WithModel keeps, sorted.
func (w *Worker) selected(fns collector) ([]string, error) {
	all := slices.Sorted(maps.Keys(fns))
	if w.s.model == "" {
		return all, nil
	}
	where := "set " + cmp.Or(w.s.set, "(every model)")
	if _, plain := w.cfg.Workers[w.s.set]; plain && w.s.set != "" {
		if _, both := w.cfg.DBWorkers[w.s.set]; !both {
			return nil, fmt.Errorf("%w: %s is a worker: set of plain functions, it has no model %s", ErrNotInSet, where, w.s.model)
		}
	}
	byMethod := map[string][]string{} // method → functions of the model
	var models []string
	for _, fn := range all {
		model, method, ok := w.modelMethod(fn)
		if !ok {
			continue
		}
		if !slices.Contains(models, model) {
			models = append(models, model)
		}
		if model == w.s.model {
			byMethod[method] = append(byMethod[method], fn)
		}
	}
	if len(byMethod) == 0 {
		return nil, fmt.Errorf("%w: %s has no model %s (models: %s)", ErrNotInSet, where, w.s.model, strings.Join(models, ", "))
	}
	if len(w.s.methods) == 0 {
		var keep []string
		for _, f := range byMethod {
			keep = append(keep, f...)
		}
		slices.Sort(keep)
		return keep, nil
	}
	var keep []string
	for _, m := range w.s.methods {
		m = strings.TrimSpace(m)
		// The plugin's special methods: insert means triggerInsert.
		if t, ok := strings.CutPrefix(m, "trigger"); ok && t != "" {
			m = strings.ToLower(t)
		}
		f, ok := byMethod[m]
		if !ok {
			return nil, fmt.Errorf("%w: %s: model %s has no method %s (methods: %s)", ErrNotInSet, where, w.s.model, m,
				strings.Join(slices.Sorted(maps.Keys(byMethod)), ", "))
		}
		keep = append(keep, f...)
	}
	slices.Sort(keep)
	return slices.Compact(keep), nil
}

// modelMethod splits a function name into its model and its event or job.
func (w *Worker) modelMethod(fn string) (model, method string, ok bool) {
	rest, ok := strings.CutPrefix(fn, w.cfg.Namespace+".")
	if !ok && w.cfg.Naming == config.NamingPlugin {
		rest, ok = strings.CutSuffix(fn, w.cfg.FunctionSuffix)
	}
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ".")
}

// timeoutHook calls Hooks.OnJobTimeout when fn's handler returns after its
// deadline.
func (w *Worker) timeoutHook(fn string, h gearman.Handler) gearman.Handler {
	hook := w.s.hooks.OnJobTimeout
	if hook == nil {
		return h
	}
	return func(ctx context.Context, job *gearman.Job) (any, error) {
		out, err := h(ctx, job)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			hook(ctx, fn)
		}
		return out, err
	}
}

// idleHook is gearman's idle stop, passed on to Hooks.OnIdle.
func (w *Worker) idleHook() {
	if w.s.hooks.OnIdle != nil {
		w.s.hooks.OnIdle(w.runCtx)
	}
}

// openDB opens the database a model set needs, for its records and for the
// retries that keep its jobs from being lost. A plain worker set (the
// seed's gearman:worker) runs without it.
func (w *Worker) openDB(ctx context.Context) error {
	if _, plain := w.cfg.Workers[w.s.set]; plain && w.s.set != "" {
		return nil
	}
	if w.s.db != nil {
		w.db = w.s.db
		return nil
	}
	dsn := cmp.Or(w.s.dsn, w.cfg.Database.DSN)
	if dsn == "" {
		return fmt.Errorf("set %s needs the database: %s has no database.dsn (env %s); set it, or give WithDSN or WithDB",
			cmp.Or(w.s.set, "(every model)"), w.cfg.File, w.cfg.Env)
	}
	db, err := wiring.Open(ctx, dsn)
	if err != nil {
		return err
	}
	w.db, w.s.dsn = db, dsn
	w.closers = append(w.closers, db.Close)
	return nil
}

// outer builds rowgear's middleware around the application's, outermost
// first, and the resources they hold.
func (w *Worker) outer(ctx context.Context) ([]dispatch.Middleware, error) {
	var err error
	// The observation is the outermost, so that it sees each run as
	// gearmand does.
	if w.obs, err = observe.NewWorker(w.servers, w.db); err != nil {
		return nil, err
	}
	mws := []dispatch.Middleware{w.obs.Middleware}
	if w.db == nil {
		return mws, nil
	}
	if w.s.noRetry {
		w.log.Warn("retries and dead letters are off (WithoutRetry, --no-retry): a failed job is reported to gearmand only")
	} else {
		if err := w.checkMigrated(ctx, 1); err != nil {
			return nil, err
		}
		if err := w.newGuard(); err != nil {
			return nil, err
		}
		// Outermost but for the observation: a retried job runs the
		// application's middleware again.
		mws = append(mws, w.guard.Middleware)
	}
	// Row events run after their commit only, in commit order per row;
	// inside the guard, so that a failed event is retried.
	if err := w.checkMigrated(ctx, 110); err != nil {
		return nil, err
	}
	odb := w.db
	if w.s.dsn != "" {
		// A pool of its own: one round trip begins an event's transaction,
		// waits for its commit gate and claims its row.
		if odb, err = ordering.OpenDB(w.s.dsn, w.s.concurrency); err != nil {
			return nil, err
		}
		w.closers = append(w.closers, odb.Close)
	}
	if w.ord, err = ordering.New(odb, ordering.WithConfig(w.cfg), ordering.WithLogger(w.log)); err != nil {
		return nil, err
	}
	return append(mws, w.ord.Middleware()), nil
}

// checkMigrated asks for `migrate up` when rowgear's migrations up to
// version need (the tables the worker uses) are not applied.
func (w *Worker) checkMigrated(ctx context.Context, need int64) error {
	pending, err := wiring.Pending(ctx, w.db, need)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		return nil
	}
	hint := "apply them (the migrate up command, or migrations.Up)"
	if w.s.name != "" {
		hint = fmt.Sprintf("run `%s migrate up`", w.s.name)
	}
	return fmt.Errorf("%w (pending: %v): %s", ErrNotMigrated, pending, hint)
}

// newGuard opens this application's crash journal and prepares the guard
// of this worker's jobs; Run recovers what dead workers left in the
// journal.
func (w *Worker) newGuard() error {
	j, err := retryguard.OpenJournal(filepath.Join(w.s.stateDir, journalKey(w.cfg)))
	if err != nil {
		return err
	}
	gc := gearman.NewClient(w.servers, gearman.WithClientLogger(w.log))
	w.closers = append(w.closers, gc.Close)
	w.guard = retryguard.NewGuard(retryguard.NewStore(w.db), gc, w.cfg.RetryFor,
		append([]retryguard.Option{retryguard.WithJournal(j), retryguard.WithLogger(w.log),
			retryguard.WithPermanentErrors(dispatch.ErrPayload, dispatch.ErrNotFound, gearman.ErrUnknownFunction),
			retryguard.WithStoredHook(w.holdOutboxRow)},
			w.obs.RetryOptions()...)...)
	// Last closed: a worker that stopped has no job in its journal.
	w.closers = append([]func() error{func() error {
		if err := w.guard.Close(); err != nil {
			return fmt.Errorf("removing the crash journal: %w", err)
		}
		return nil
	}}, w.closers...)
	return nil
}

// holdOutboxRow keeps the relay from sending a trigger event again while
// the retry guard holds it: a retry's own run comes after wait, and a dead
// letter is sent again only by a replay.
func (w *Worker) holdOutboxRow(ctx context.Context, fn string, payload []byte, o retryguard.Outcome, wait time.Duration) {
	if w.ord == nil || w.cfg.Triggers.Mode != "outbox" {
		return
	}
	resend := cmp.Or(w.cfg.Triggers.ResendAfter, outbox.DefaultResendAfter)
	// Not waited for: inside a batch job, the batch's transaction holds
	// the row's lock until its other events have run.
	w.holds.Go(func() {
		if err := w.ord.Hold(ctx, payload, o == retryguard.DeadLettered, wait+resend); err != nil {
			w.log.Warn("the relay may send the event again beside its retry", "function", fn, "err", err)
		}
	})
}

// Functions lists the gearman functions the worker registers, sorted.
func (w *Worker) Functions() []string { return w.fns }

// MetricsHandler serves the worker's Prometheus metrics (a registry of its
// own, not the global one), for an application's own HTTP server.
func (w *Worker) MetricsHandler() http.Handler { return metrics.Handler(w.obs.Registry) }

// ReadyHandler answers readiness as /readyz does: 200 while the worker's
// gearmand connections and its database are up, 503 with the failing checks
// otherwise.
func (w *Worker) ReadyHandler() http.Handler { return health.Handler(w.obs.Checks(), 0) }

// Done returns how many jobs the worker has finished.
func (w *Worker) Done() int64 { return w.gw.Done() }

// Run works until ctx ends, Shutdown is called, or WithMaxJobs or
// WithIdleTimeout says to stop; it then stops taking jobs, lets the running
// ones finish, releases the worker's pools and returns nil. A worker runs
// once.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return ErrWorkerStopped
	}
	w.started = true
	ctx, w.stop = context.WithCancel(ctx)
	w.runCtx = ctx
	w.mu.Unlock()
	defer close(w.done)
	defer w.release()
	defer w.stop()
	return w.run(ctx)
}

func (w *Worker) run(ctx context.Context) error {
	if w.guard != nil {
		if err := w.guard.Recover(ctx); err != nil {
			return fmt.Errorf("recovering crashed jobs: %w", err)
		}
	}
	if err := w.obs.Start(ctx, w.s.listen, w.log); err != nil {
		return err
	}
	defer w.obs.Wait()
	w.log.Info("worker starting", "set", w.s.set, "servers", w.servers, "functions", w.fns,
		"count", w.s.maxJobs, "timeout", w.s.idle, "concurrency", w.s.concurrency)
	gctx, stopGuard := context.WithCancel(ctx)
	var guardDone sync.WaitGroup
	if w.guard != nil {
		guardDone.Go(func() { w.guard.Run(gctx) })
	}
	if w.relay != nil {
		guardDone.Go(func() { w.relay.Run(gctx) })
	}
	if w.s.hooks.OnStart != nil {
		w.s.hooks.OnStart(ctx)
	}
	err := w.gw.Run(ctx)
	stopGuard()
	guardDone.Wait()
	w.holds.Wait()
	w.stop() // the observation's listeners and latency resolver
	if w.s.hooks.OnStop != nil {
		w.s.hooks.OnStop(context.WithoutCancel(ctx), err)
	}
	if err != nil {
		return err
	}
	w.log.Info("worker stopped", "jobs", w.gw.Done())
	return nil
}

// Shutdown stops the worker taking jobs and waits until the running ones
// have finished and Run has returned, or until ctx ends (its error then).
// Shutdown before Run releases the worker.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	if !w.started {
		w.started = true
		w.mu.Unlock()
		w.release()
		close(w.done)
		return nil
	}
	stop := w.stop
	w.mu.Unlock()
	stop()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release closes the worker's own pools and clients, the last opened
// first.
func (w *Worker) release() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		if err := w.closers[i](); err != nil {
			w.log.Warn("closing", "err", err)
		}
	}
	w.closers = nil
}

// journalKey names an application's crash-journal directory: its database
// and namespace, so two applications sharing a host (or the default state
// dir) never take each other's crashed jobs.
func journalKey(cfg *config.Config) string {
	db := "nodb"
	if mc, err := mysql.ParseDSN(cfg.Database.DSN); err == nil && mc.DBName != "" {
		db = mc.Addr + "-" + mc.DBName
	}
	key := db + "-" + cfg.Namespace
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			return r
		}
		return '_'
	}, key)
}
