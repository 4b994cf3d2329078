package rowgear

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/observe"
	"github.com/rowgear/rowgear/ordering"
	"github.com/rowgear/rowgear/retry"
)

type workFlags struct {
	set         string
	count       int
	timeout     int
	verbose     bool
	concurrency int
	server      string
	jobTimeout  time.Duration
	stateDir    string
	noRetry     bool
	obs         observe.Flags
}

// workCmd is the root command: run a worker set.
func (a *App) workCmd(c *common) *cobra.Command {
	var f workFlags
	cmd := &cobra.Command{
		Use:   a.name + " [flags]",
		Short: "run a worker set: the functions of a worker:, doctrine: or dbworker: set of gearman.yml",
		Long: `Runs a worker set (the seed's gearman:worker and gearman:worker-doctrine):
a worker: set mounts plain functions; a doctrine:/dbworker: set mounts its
models' row events, record and table jobs; no --config mounts every model.
Model handlers get retries, dead letters and the crash journal (package retry).
SIGINT/SIGTERM: stop taking jobs, let running ones finish, exit 0.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErr("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return a.work(cmd.Context(), c, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.set, "config", "", "worker set to run: a worker:, doctrine: or dbworker: set of gearman.yml; empty: every model and every event")
	fl.IntVar(&f.count, "count", 100, "exit after this many jobs; 0: never")
	fl.IntVar(&f.timeout, "timeout", 20, "exit after this many seconds without a job; negative: never")
	fl.BoolVar(&f.verbose, "verbose", false, "log every job with its workload")
	fl.IntVar(&f.concurrency, "concurrency", 1, "jobs run at once")
	fl.StringVar(&f.server, "server", "default", "gearman connection name from the server: section")
	fl.DurationVar(&f.jobTimeout, "job-timeout", 0, "cancel a handler's context after this long; 0: no limit (per-function timeouts: retry: in gearman.yml)")
	fl.StringVar(&f.stateDir, "state-dir", cmp.Or(os.Getenv("ROWGEAR_STATE_DIR"), filepath.Join(os.TempDir(), "rowgear-dbworker")),
		"directory of the crash journals, shared by the workers of one host (env ROWGEAR_STATE_DIR); each application (database and namespace) has its own sub-directory")
	fl.BoolVar(&f.noRetry, "no-retry", false, "report failures to gearmand only: no retries, no dead letters")
	f.obs.Register(fl)
	return cmd
}

func (a *App) work(ctx context.Context, c *common, f *workFlags) error {
	if f.concurrency < 1 {
		return usageErr("--concurrency %d: want 1 or more", f.concurrency)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	if err := checkSet(cfg, f.set); err != nil {
		return err
	}
	servers, err := cfg.ServerAddrs(f.server)
	if err != nil {
		return err
	}
	log := a.log()
	reg, err := a.registry(log)
	if err != nil {
		return err
	}
	// Models (row events, record and table jobs) need the database, for
	// their records and for the retries that keep their jobs from being
	// lost. A plain worker set (the seed's gearman:worker) runs without it.
	var db *sql.DB
	if _, plain := cfg.Workers[f.set]; !plain || f.set == "" {
		dsn, err := c.dsnOf(cfg)
		if err != nil {
			return fmt.Errorf("set %s needs the database: %w", cmp.Or(f.set, "(every model)"), err)
		}
		if db, err = openDB(ctx, dsn); err != nil {
			return err
		}
		defer db.Close()
	}
	// Metrics, commit→handler latency and readiness (package observe): the
	// outermost middleware, so that it sees each run as gearmand does.
	ow, err := observe.NewWorker(servers, db)
	if err != nil {
		return err
	}
	reg.Use(ow.Middleware)
	w := gearman.NewWorker(servers, append(ow.WorkerOptions(), gearman.WithConcurrency(f.concurrency), gearman.WithMaxJobs(f.count),
		gearman.WithIdleTimeout(time.Duration(f.timeout)*time.Second), gearman.WithVerbose(f.verbose),
		gearman.WithLogger(log), gearman.WithJobTimeout(f.jobTimeout), gearman.WithClientID(a.name))...)
	var guard *retry.Guard
	if db != nil && !f.noRetry {
		if err := a.checkMigrated(ctx, db, 1); err != nil {
			return err
		}
		if guard, err = a.newGuard(ctx, cfg, db, servers, f.stateDir, log, ow.RetryOptions()...); err != nil {
			return err
		}
		// Outermost but for the observation: a retried job runs the
		// application's middleware again.
		reg.Use(guard.Middleware)
	} else if db != nil {
		log.Warn("retries and dead letters are off (--no-retry): a failed job is reported to gearmand only")
	}
	if db != nil {
		// Row events run after their commit only, in commit order per row
		// (package ordering); inside the guard, so a failed event is retried.
		if err := a.checkMigrated(ctx, db, 10); err != nil {
			return err
		}
		ord, err := ordering.New(db, ordering.WithConfig(cfg), ordering.WithLogger(log))
		if err != nil {
			return err
		}
		reg.Use(ord.Middleware())
	}
	reg.Use(a.mws...)
	reg.Use(ow.HandlerStart) // innermost: commit → handler latency ends here
	fns, err := reg.Mount(w, cfg, f.set, db)
	if err != nil {
		return err
	}
	if err := ow.Start(ctx, f.obs, log); err != nil {
		return err
	}
	log.Info("worker starting", "set", f.set, "servers", servers, "functions", fns,
		"count", f.count, "timeout", f.timeout, "concurrency", f.concurrency)
	gctx, stopGuard := context.WithCancel(ctx)
	guardDone := make(chan struct{})
	go func() {
		defer close(guardDone)
		if guard != nil {
			guard.Run(gctx)
		}
	}()
	err = w.Run(ctx)
	stopGuard()
	<-guardDone
	if err != nil {
		return err
	}
	if guard != nil {
		if err := guard.Close(); err != nil {
			log.Warn("removing the crash journal", "err", err)
		}
	}
	log.Info("worker stopped", "jobs", w.Done())
	return nil
}

// checkSet names the set and the environment when --config is not a set of
// the config, instead of a later error about what the set would need.
func checkSet(cfg *config.Config, set string) error {
	if set == "" {
		return nil
	}
	if _, ok := cfg.Workers[set]; ok {
		return nil
	}
	if _, ok := cfg.DBWorkers[set]; ok {
		return nil
	}
	var have []string
	for s := range cfg.Workers {
		have = append(have, s)
	}
	for s := range cfg.DBWorkers {
		have = append(have, s)
	}
	env := cfg.Env
	if env == "" {
		env = "(none)"
	}
	return fmt.Errorf("%w: --config=%s: %s defines no worker:, doctrine: or dbworker: set %q under all: or env %s (sets there: %s)",
		dispatch.ErrUnknownSet, set, cfg.File, set, env, cmp.Or(strings.Join(slices.Sorted(slices.Values(have)), ", "), "none"))
}

// newGuard opens this application's crash journal, records what dead
// workers left in it, and returns the guard of this worker's jobs.
func (a *App) newGuard(ctx context.Context, cfg *config.Config, db *sql.DB, servers []string, stateDir string, log *slog.Logger, opts ...retry.Option) (*retry.Guard, error) {
	j, err := retry.OpenJournal(filepath.Join(stateDir, journalKey(cfg)))
	if err != nil {
		return nil, err
	}
	g := retry.NewGuard(retry.NewStore(db), gearman.NewClient(servers, gearman.WithClientLogger(log)), cfg.RetryFor,
		append([]retry.Option{retry.WithJournal(j), retry.WithLogger(log),
			retry.WithPermanentErrors(dispatch.ErrPayload, dispatch.ErrNotFound, gearman.ErrUnknownFunction)}, opts...)...)
	if err := g.Recover(ctx); err != nil {
		return nil, fmt.Errorf("recovering crashed jobs: %w", err)
	}
	return g, nil
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
