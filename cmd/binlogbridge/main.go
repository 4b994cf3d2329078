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
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/health"
	"github.com/rowgear/rowgear/observe"
)

func main() {
	os.Exit(run())
}

func run() int {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		return probe(os.Args[2:])
	}
	fs := flag.NewFlagSet("binlogbridge", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: binlogbridge [flags]

Publishes the committed row changes of the models with source: binlog (all
models with --all-models) as gearman jobs <namespace>.<Model>.<op>. The
position is saved (binlog.position: a table in the source database, or
file:PATH) only once gearmand has acknowledged every job before it; a
restart resumes from it. SIGINT/SIGTERM: stop reading, flush, save, exit 0.

binlogbridge probe URL exits 0 when URL answers 2xx (container healthchecks).

Flags:
`)
		fs.PrintDefaults()
	}
	var cf config.Flags
	cf.Register(fs)
	dsn := fs.String("dsn", "", "source database DSN, user:pass@tcp(host:port)/db (default: database.dsn)")
	start := fs.String("start", "current", "first start only, when no position is saved: current (end of the binlog), FILE:POS or gtid:SET")
	verbose := fs.Bool("verbose", false, "log every published event (and canal's own info lines)")
	concurrency := fs.Int("concurrency", 0, "gearman connections submitting in parallel (default: binlog.concurrency, 8)")
	allModels := fs.Bool("all-models", false, "publish every model in models:, whatever its source")
	// --- observation (issue 14): metrics, health, heartbeats ---
	var of observe.Flags
	of.Register(fs)
	heartbeat := fs.Duration("heartbeat", time.Second, "write a heartbeat row (rowgear_heartbeat) this often, for lag and commit→handler latency; 0: off")
	stallAfter := fs.Duration("stall-after", 30*time.Second, "/readyz fails when nothing was read for this long while the server's binlog is ahead")
	// --- end observation ---
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
	// --- observation (issue 14) ---
	ob, err := observe.NewBridge()
	if err != nil {
		log.Error("metrics", "error", err)
		return 1
	}
	opts = append(opts, bridge.WithObserver(ob.Metrics), bridge.WithHeartbeat(*heartbeat), bridge.WithStallAfter(*stallAfter))
	// --- end observation ---
	b, err := bridge.New(ctx, cfg, opts...)
	if err != nil {
		log.Error("starting the bridge failed", "error", err)
		return 1
	}
	defer b.Close()
	if err := ob.Start(ctx, of, b, log); err != nil { // observation (issue 14)
		log.Error("starting the http listeners failed", "error", err)
		return 1
	}
	if err := b.Run(ctx); err != nil {
		log.Error("binlog bridge failed", "error", err)
		return 1
	}
	return 0
}

// probe GETs a URL and exits 0 for a 2xx answer: the compose healthcheck,
// in an image without curl (`binlogbridge probe http://127.0.0.1:8081/readyz`).
func probe(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: binlogbridge probe URL")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := health.Probe(ctx, args[0]); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	return 0
}
