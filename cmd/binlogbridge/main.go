// Command binlogbridge tails the row-based binlog of MySQL/MariaDB and
// publishes every committed change of the configured tables as a gearman
// background job <namespace>.<Model>.<op> carrying the event envelope
// (source "binlog"). See package bridge for position and ordering.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("binlogbridge", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: binlogbridge [flags]

Publishes the committed row changes of the models with source: binlog (all
models with --all-models) as gearman jobs <namespace>.<Model>.<op>. The
position is saved (binlog.position: a table in the source database, or
file:PATH) only once gearmand has acknowledged every job before it; a
restart resumes from it. SIGINT/SIGTERM: stop reading, flush, save, exit 0.

Flags:
`)
		fs.PrintDefaults()
	}
	var cf config.Flags
	cf.Register(fs)
	dsn := fs.String("dsn", "", "source database DSN, user:pass@tcp(host:port)/db (default: database.dsn)")
	start := fs.String("start", "current", "first start only, when no position is saved: current (end of the binlog), FILE:POS or gtid:SET")
	verbose := fs.Bool("verbose", false, "log every published event (and the binlog reader's own info lines)")
	concurrency := fs.Int("concurrency", 0, "gearman connections submitting in parallel (default: binlog.concurrency, 8)")
	allModels := fs.Bool("all-models", false, "publish every model in models:, whatever its source")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "binlogbridge: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	startPos, err := bridge.ParseStart(*start)
	if err != nil {
		log.Error("bad --start", "error", err)
		return 2
	}
	cfg, err := cf.Load()
	if err != nil {
		log.Error("loading the configuration failed", "error", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := []bridge.Option{bridge.WithLogger(log), bridge.WithVerbose(*verbose),
		bridge.WithAllModels(*allModels), bridge.WithStart(startPos)}
	if *dsn != "" {
		opts = append(opts, bridge.WithDSN(*dsn))
	}
	if *concurrency > 0 {
		opts = append(opts, bridge.WithConcurrency(*concurrency))
	}
	b, err := bridge.New(ctx, cfg, opts...)
	if err != nil {
		log.Error("starting the bridge failed", "error", err)
		return 1
	}
	defer b.Close()
	if err := b.Run(ctx); err != nil {
		log.Error("binlog bridge failed", "error", err)
		return 1
	}
	return 0
}
