// Command dbworker runs rowgear's gearman workers: the seed's gearman:worker
// (a `worker:` set of gearman.yml) and gearman:worker-doctrine (a
// `doctrine:`/`dbworker:` set of models). The `migrate` and `triggers`
// sub-commands manage the database side.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/models"
)

const usage = `Usage:
  dbworker [flags]                      run a worker (the seed's gearman:worker)
  dbworker migrate [flags] up|down|status
  dbworker triggers generate|check [flags]

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

// configFlags are the flags every sub-command shares to find gearman.yml.
type configFlags struct {
	file, env string
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "file", envOr("ROWGEAR_CONFIG", "config/gearman.yml"), "path of gearman.yml (env ROWGEAR_CONFIG)")
	fs.StringVar(&c.env, "env", envOr("ROWGEAR_ENV", "prod"), "environment section merged over all: (env ROWGEAR_ENV)")
}

func (c *configFlags) load() (*config.Config, error) { return config.Load(c.file, c.env) }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func workerCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("dbworker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	set := fs.String("config", "", "worker set to run: a worker:, doctrine: or dbworker: set of gearman.yml; empty: every model and every event")
	count := fs.Int("count", 100, "exit after this many jobs; 0: never")
	timeout := fs.Int("timeout", 20, "exit after this many seconds without a job; negative: never")
	verbose := fs.Bool("verbose", false, "log every job with its workload")
	concurrency := fs.Int("concurrency", 1, "jobs run at once")
	server := fs.String("server", "default", "gearman connection name from the server: section")
	jobTimeout := fs.Duration("job-timeout", 0, "cancel a handler's context after this long; 0: no limit")
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
	cfg, err := cf.load()
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

	var db *sql.DB // models need it; plain worker sets do not
	if _, plain := cfg.Workers[*set]; !plain || *set == "" {
		if cfg.Database.DSN == "" {
			return fmt.Errorf("%s: database.dsn is needed to run models", cfg.File)
		}
		if db, err = dispatch.OpenDB(cfg.Database.DSN); err != nil {
			return err
		}
		defer db.Close()
	}
	fns, err := reg.Mount(w, cfg, *set, db)
	if err != nil {
		return err
	}
	log.Info("dbworker starting", "set", *set, "servers", servers, "functions", fns,
		"count", *count, "timeout", idle, "concurrency", *concurrency)
	if err := w.Run(ctx); err != nil {
		return err
	}
	log.Info("dbworker stopped", "jobs", w.Done())
	return nil
}
