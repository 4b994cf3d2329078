// Package rowgear is the runtime of a rowgear application: a Worker runs the
// application's handlers for the gearman jobs of its row changes, record
// jobs and table jobs. An application's own binary usually gets it through
// package cli (cli.Main: the worker command and every other one); this
// package is for running a worker inside an application's own program,
// beside its HTTP server, or from its tests.
//
//	reg := dispatch.NewRegistry(dispatch.WithLogger(log))
//	if err := models.Register(reg); err != nil { … }
//	cfg, err := config.Load("config/gearman.yml", "prod")
//	…
//	w, err := rowgear.NewWorker(ctx, cfg, reg, rowgear.WithSet("example2"), rowgear.WithLogger(log))
//	if err != nil { … } // a bad option, set or DSN; ErrNotMigrated; dispatch.ErrMismatch
//	go func() { errc <- w.Run(ctx) }() // until ctx ends or Shutdown
//	…
//	err = w.Shutdown(shutdownCtx) // stop taking jobs, let the running ones finish
//
// # What NewWorker checks
//
// Before a job arrives: the options; that the set exists in gearman.yml
// (config.ErrUnknownSet); the gearman connection name; the database
// (database.dsn, WithDSN or WithDB; pinged), which every set but a plain
// worker: set needs; that rowgear's migrations ran (ErrNotMigrated: run
// `migrate up`, or migrations.Up); that gearman.yml and the registrations
// agree (dispatch.ErrMismatch: a model without a Go type, an event without a
// handler, a job nobody registered).
//
// # The middleware, from the outermost
//
//  1. the observation: metrics, the commit → handler latency, readiness;
//     served by WithListeners, or by the application's own server from
//     MetricsHandler and ReadyHandler;
//  2. the retry guard (package retry): retries with backoff, the dead-letter
//     table, the crash journal in WithStateDir keyed by the application's
//     database and namespace (off: WithoutRetry);
//  3. the ordering (package ordering): a row event runs only after its
//     commit, in commit order per row;
//  4. the application's middleware: the registry's own (Registry.Use), then
//     WithMiddleware's;
//  5. the latency's handler start, then the handler.
//
// The registry the application passes is not changed: the worker mounts a
// copy with this chain (dispatch.Registry.Chained).
//
// # Stopping
//
// Run returns when its ctx ends, on Shutdown, after WithMaxJobs jobs or
// WithIdleTimeout without one: it stops taking jobs, lets the running ones
// finish (their contexts are not cancelled; WithJobTimeout bounds them),
// stops the guard and the observation, closes the pools it opened and
// removes its crash journal. A worker runs once; signals are the caller's
// business (cli.Main stops on SIGINT and SIGTERM).
//
// Package rowgeartest runs the same handlers in plain `go test`, without
// gearmand.
package rowgear
