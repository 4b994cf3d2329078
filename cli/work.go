package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear"
	"github.com/rowgear/rowgear/internal/observe"
	"github.com/rowgear/rowgear/internal/wiring"
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
	// sfGearmanPlugin's worker flags
	model       string
	methods     string
	connection  string
	application string
	debug       bool
	queue       string
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.pluginNotices(cmd)
			return a.work(cmd.Context(), c, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.set, "config", "", "worker set to run: a worker:, doctrine: or dbworker: set of gearman.yml; empty: every model and every event")
	fl.IntVar(&f.count, "count", 100, "exit after this many jobs; 0: never")
	fl.IntVar(&f.timeout, "timeout", 20, "exit after this many seconds without a job; 0: once gearmand has no job queued for it; negative: never")
	fl.BoolVar(&f.verbose, "verbose", false, "log every job with its workload")
	fl.IntVar(&f.concurrency, "concurrency", 1, "jobs run at once")
	fl.StringVar(&f.server, "server", "default", "gearman connection name from the server: section")
	fl.DurationVar(&f.jobTimeout, "job-timeout", 0, "cancel a handler's context after this long; 0: no limit (per-function timeouts: retry: in gearman.yml)")
	fl.StringVar(&f.stateDir, "state-dir", cmp.Or(os.Getenv("ROWGEAR_STATE_DIR"), filepath.Join(os.TempDir(), "rowgear-dbworker")),
		"directory of the crash journals, shared by the workers of one host (env ROWGEAR_STATE_DIR); each application (database and namespace) has its own sub-directory")
	fl.BoolVar(&f.noRetry, "no-retry", false, "report failures to gearmand only: no retries, no dead letters")
	f.obs.Register(fl)
	fl.StringVar(&f.model, "model", "", "register only this model's functions of the set (sfGearmanPlugin's --model)")
	fl.StringVar(&f.methods, "methods", "", "with --model: only these, comma-separated: insert, update, delete, snapshot, batch, triggerInsert..., job names")
	fl.StringVar(&f.connection, "connection", "", "sfGearmanPlugin's Doctrine connection: ignored, rowgear uses database.dsn or --dsn")
	fl.StringVar(&f.application, "application", "", "sfGearmanPlugin's symfony application: ignored, rowgear has none")
	fl.BoolVar(&f.debug, "debug", false, "sfGearmanPlugin's debug environment: ignored, use --verbose")
	fl.StringVar(&f.queue, "queue", "", "sfGearmanPlugin's worker-trigger queue: ignored, rowgear's triggers need no relay worker")
	return cmd
}

// pluginNotices says once, on stderr, which of sfGearmanPlugin's flags
// given rowgear accepts without an equivalent, and what to use instead.
func (a *App) pluginNotices(cmd *cobra.Command) {
	notes := []struct{ flag, say string }{
		{"connection", "--connection: ignored; rowgear has one database, database.dsn of gearman.yml or --dsn"},
		{"application", "--application: ignored; rowgear has no symfony application: --config picks the worker set, --env the gearman.yml section"},
		{"debug", "--debug: ignored; use --verbose (every job with its workload)"},
		{"queue", "--queue: ignored; rowgear's triggers submit rowgear.<Model>.<op> jobs that this worker handles directly"},
	}
	for _, n := range notes {
		if cmd.Flags().Changed(n.flag) {
			fmt.Fprintln(cmd.ErrOrStderr(), a.name+": notice: "+n.say)
		}
	}
}

func (a *App) work(ctx context.Context, c *common, f *workFlags) error {
	if f.concurrency < 1 {
		return usageErr("--concurrency %d: want 1 or more", f.concurrency)
	}
	if f.methods != "" && f.model == "" {
		return usageErr("--methods=%s needs --model", f.methods)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	if err := wiring.CheckSet(cfg, f.set, "--config="+f.set); err != nil {
		return err
	}
	log := a.log()
	opts := []rowgear.WorkerOption{rowgear.WithServer(f.server), rowgear.WithLogger(log), rowgear.WithName(a.name),
		rowgear.WithConcurrency(f.concurrency), rowgear.WithStateDir(f.stateDir), rowgear.WithMiddleware(a.mws...)}
	if f.set != "" {
		opts = append(opts, rowgear.WithSet(f.set))
	}
	if _, err := cfg.ServerAddrs(f.server); err != nil {
		return err
	}
	reg, err := a.registry(log)
	if err != nil {
		return err
	}
	// A plain worker set (the seed's gearman:worker) runs without the
	// database; the others need it.
	if _, plain := cfg.Workers[f.set]; !plain || f.set == "" {
		dsn, err := c.dsnOf(cfg)
		if err != nil {
			return fmt.Errorf("set %s needs the database: %w", cmp.Or(f.set, "(every model)"), err)
		}
		opts = append(opts, rowgear.WithDSN(dsn))
	}
	opts = append(opts, f.options()...)
	w, err := rowgear.NewWorker(ctx, cfg, reg, opts...)
	if errors.Is(err, rowgear.ErrNotInSet) {
		return fmt.Errorf("%w: --model/--methods: %w", ErrUsage, err)
	}
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// options are the worker options of the flags that have no default in
// rowgear.Worker's terms (0 and negative: never, no limit).
func (f *workFlags) options() []rowgear.WorkerOption {
	var opts []rowgear.WorkerOption
	if f.count > 0 {
		opts = append(opts, rowgear.WithMaxJobs(f.count))
	}
	switch {
	case f.timeout > 0:
		opts = append(opts, rowgear.WithIdleTimeout(time.Duration(f.timeout)*time.Second))
	case f.timeout == 0: // the plugin's GearmanWorker timeout 0: no waiting for a job
		opts = append(opts, rowgear.WithDrain())
	}
	if f.model != "" {
		var methods []string
		if f.methods != "" {
			methods = strings.Split(f.methods, ",")
		}
		opts = append(opts, rowgear.WithModel(f.model, methods...))
	}
	if f.jobTimeout > 0 {
		opts = append(opts, rowgear.WithJobTimeout(f.jobTimeout))
	}
	if f.noRetry {
		opts = append(opts, rowgear.WithoutRetry())
	}
	if f.verbose {
		opts = append(opts, rowgear.WithVerbose())
	}
	if f.obs.MetricsAddr != "" || f.obs.HealthAddr != "" {
		opts = append(opts, rowgear.WithListeners(f.obs.MetricsAddr, f.obs.HealthAddr))
	}
	return opts
}
