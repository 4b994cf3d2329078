package rowgear_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rowgear/rowgear"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
)

// NewWorker checks the set, the registrations and (for a model set) the
// database before anything runs; a plain worker: set needs no database.
func ExampleNewWorker() {
	cfg, err := config.Parse("gearman.yml", []byte(`
all:
  server: {default: 127.0.0.1:4730}
  worker:
    example1:
      reverse: [Worker1, reverse]
`), "prod")
	if err != nil {
		log.Fatal(err)
	}
	reg := dispatch.NewRegistry()
	reg.HandleFunc("Worker1.reverse", func(_ context.Context, j *gearman.Job) (any, error) {
		return strings.ToUpper(string(j.Workload)), nil
	})
	ctx := context.Background()
	w, err := rowgear.NewWorker(ctx, cfg, reg, rowgear.WithSet("example1"), rowgear.WithConcurrency(4))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.Functions())
	// w.Run(ctx) would work until ctx ends; Shutdown before Run releases it.
	fmt.Println(w.Shutdown(ctx))

	_, err = rowgear.NewWorker(ctx, cfg, reg, rowgear.WithSet("example2"))
	fmt.Println(errors.Is(err, config.ErrUnknownSet))
	// Output:
	// [reverse]
	// <nil>
	// true
}

// An application's own main runs a worker beside its HTTP server, which
// also serves the worker's metrics and readiness; SIGINT or SIGTERM stops
// the server and lets the running jobs finish.
func Example_embedded() {
	log := slog.Default()
	cfg, err := config.Load("config/gearman.yml", "prod")
	if err != nil {
		log.Error("config", "err", err)
		os.Exit(1)
	}
	reg := dispatch.NewRegistry(dispatch.WithLogger(log))
	// models.Register(reg) …
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, err := rowgear.NewWorker(ctx, cfg, reg, rowgear.WithSet("example2"), rowgear.WithLogger(log))
	if err != nil {
		log.Error("worker", "err", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	// mux.Handle("/api/", api) …
	mux.Handle("GET /metrics", w.MetricsHandler())
	mux.Handle("GET /readyz", w.ReadyHandler())
	srv := &http.Server{Addr: ":8080", Handler: mux}
	go srv.ListenAndServe()

	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	select {
	case <-ctx.Done():
	case err := <-errc: // a listener that could not open, a worker stopped by WithMaxJobs …
		log.Error("worker stopped", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := w.Shutdown(sctx); err != nil {
		log.Error("jobs still running", "err", err)
	}
}
