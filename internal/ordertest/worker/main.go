// Command worker is the worker process of the ordering fault test: the
// ordertest models behind the retry guard and the ordering middleware.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/internal/ordertest"
)

func main() {
	file := flag.String("file", "", "gearman.yml")
	concurrency := flag.Int("concurrency", 4, "jobs at once")
	stateDir := flag.String("state-dir", "", "crash journal directory")
	fail := flag.Float64("fail", 0, "share of handler runs that fail")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(*file, "")
	if err == nil {
		ordertest.FailRate = *fail
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		err = ordertest.Run(ctx, cfg, *concurrency, *stateDir, log)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}
