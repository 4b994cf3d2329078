// Command dbworker runs rowgear's gearman workers: the seed's gearman:worker
// (a `worker:` set of gearman.yml) and gearman:worker-doctrine (a
// `doctrine:`/`dbworker:` set of models). The `migrate` and `triggers`
// sub-commands manage the database side.
package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/models"
	"github.com/rowgear/rowgear/retry"
)

const usage = `Usage:
  dbworker [flags]                      run a worker (the seed's gearman:worker)
  dbworker migrate [flags] up|down|status
  dbworker triggers generate|check [flags]
  dbworker dead list|retry|purge [flags]  the dead-letter table

Worker flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	args := os.Args[1:]
	switch {
	case len(args) > 0 && args[0] == "migrate":
		err = migrateCmd(ctx, args[1:], os.Stdout)
	case len(args) > 0 && args[0] == "triggers":
		err = triggersCmd(ctx, args[1:], os.Stdout)
	case len(args) > 0 && args[0] == "dead":
		err = deadCmd(ctx, args[1:], os.Stdout)
	default:
		err = workerCmd(ctx, args, os.Stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbworker:", err)
		os.Exit(1)
	}
}

func workerCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("dbworker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf config.Flags
	cf.Register(fs)
	set := fs.String("config", "", "worker set to run: a worker:, doctrine: or dbworker: set of gearman.yml; empty: every model and every event")
	count := fs.Int("count", 100, "exit after this many jobs; 0: never")
	timeout := fs.Int("timeout", 20, "exit after this many seconds without a job; negative: never")
	verbose := fs.Bool("verbose", false, "log every job with its workload")
	concurrency := fs.Int("concurrency", 1, "jobs run at once")
	server := fs.String("server", "default", "gearman connection name from the server: section")
	jobTimeout := fs.Duration("job-timeout", 0, "cancel a handler's context after this long; 0: no limit (per-function timeouts: retry: in gearman.yml)")
	stateDir := fs.String("state-dir", cmp.Or(os.Getenv("ROWGEAR_STATE_DIR"), filepath.Join(os.TempDir(), "rowgear-dbworker")),
		"directory of the crash journals, shared by the workers of one host (env ROWGEAR_STATE_DIR)")
	noRetry := fs.Bool("no-retry", false, "report failures to gearmand only: no retries, no dead letters")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see dbworker -h)", fs.Arg(0))
	}
	cfg, err := cf.Load()
	if err != nil {
		return err
	}
	servers, err := cfg.ServerAddrs(*server)
	if err != nil {
		return err
	}
	reg := dispatch.NewRegistry()
	if err := models.Register(reg); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	models.Log = log
	idle := time.Duration(*timeout) * time.Second
	w := gearman.NewWorker(servers, gearman.WithConcurrency(*concurrency), gearman.WithMaxJobs(*count),
		gearman.WithIdleTimeout(idle), gearman.WithVerbose(*verbose), gearman.WithLogger(log),
		gearman.WithJobTimeout(*jobTimeout), gearman.WithClientID("dbworker"))

	// Models (row events, record and table jobs) need the database, for
	// their records and for the retries that keep their jobs from being
	// lost. A plain worker set (the seed's gearman:worker) runs without it.
	var db *sql.DB
	if _, plain := cfg.Workers[*set]; !plain || *set == "" {
		if cfg.Database.DSN == "" {
			return fmt.Errorf("%s: database.dsn is needed to run models", cfg.File)
		}
		if db, err = dispatch.OpenDB(cfg.Database.DSN); err != nil {
			return err
		}
		defer db.Close()
	}
	var mountOn dispatch.Worker = w
	var guard *retry.Guard
	if db != nil && !*noRetry {
		if guard, err = newGuard(ctx, cfg, db, servers, *stateDir, log); err != nil {
			return err
		}
		mountOn = guarded{w, guard}
	} else if db != nil {
		log.Warn("retries and dead letters are off (--no-retry): a failed job is reported to gearmand only")
	}
	fns, err := reg.Mount(mountOn, cfg, *set, db)
	if err != nil {
		return err
	}
	log.Info("dbworker starting", "set", *set, "servers", servers, "functions", fns,
		"count", *count, "timeout", idle, "concurrency", *concurrency)
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
	log.Info("dbworker stopped", "jobs", w.Done())
	return nil
}

// guarded mounts handlers wrapped by the retry guard.
type guarded struct {
	w *gearman.Worker
	g *retry.Guard
}

func (x guarded) Register(fn string, h gearman.Handler) { x.w.Register(fn, x.g.Wrap(fn, h)) }

// newGuard opens the crash journal, records what dead workers left in it,
// and returns the guard of this worker's jobs.
func newGuard(ctx context.Context, cfg *config.Config, db *sql.DB, servers []string, stateDir string, log *slog.Logger) (*retry.Guard, error) {
	j, err := retry.OpenJournal(stateDir)
	if err != nil {
		return nil, err
	}
	g := retry.NewGuard(retry.NewStore(db), gearman.NewClient(servers, gearman.WithClientLogger(log)), cfg.RetryFor,
		retry.WithJournal(j), retry.WithLogger(log),
		retry.WithPermanentErrors(dispatch.ErrPayload, dispatch.ErrNotFound, gearman.ErrUnknownFunction))
	if err := g.Recover(ctx); err != nil {
		return nil, fmt.Errorf("recovering crashed jobs (did `dbworker migrate up` run?): %w", err)
	}
	return g, nil
}
