// Package observe wires metrics, commit→handler latency and health checks
// into rowgear's two long-running programs, behind two opt-in flags:
//
//	--metrics-addr [HOST:]PORT   Prometheus metrics at /metrics (package metrics); env ROWGEAR_METRICS_ADDR
//	--health-addr  [HOST:]PORT   /healthz and /readyz (package health); env ROWGEAR_HEALTH_ADDR
//
// A bare port listens on 127.0.0.1 only; both may name the same address.
// Each program gets its own prometheus.Registry, never the global one.
//
// A worker mounts Worker.Middleware on its registry (outermost, so that it
// sees each run as gearmand does) and Worker.HandlerStart innermost (when
// the application's handler starts), and passes Worker.ConnObserver and
// Worker.RetryObserver to the gearman worker and the retry guard; the bridge
// passes Bridge.Metrics to bridge.WithObserver.
package observe

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/health"
	"github.com/rowgear/rowgear/internal/latency"
	"github.com/rowgear/rowgear/internal/metrics"
	"github.com/rowgear/rowgear/internal/retryguard"
)

// Flags are the two listen addresses; empty: off.
type Flags struct {
	MetricsAddr string
	HealthAddr  string
}

// Register adds --metrics-addr and --health-addr to fs; their defaults
// come from ROWGEAR_METRICS_ADDR and ROWGEAR_HEALTH_ADDR (a container sets
// them without changing its command).
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.MetricsAddr, "metrics-addr", os.Getenv("ROWGEAR_METRICS_ADDR"),
		"serve Prometheus metrics at http://ADDR/metrics; a bare PORT listens on 127.0.0.1; empty: off (env ROWGEAR_METRICS_ADDR)")
	fs.StringVar(&f.HealthAddr, "health-addr", os.Getenv("ROWGEAR_HEALTH_ADDR"),
		"serve /healthz (liveness) and /readyz (readiness) at ADDR; a bare PORT listens on 127.0.0.1; empty: off (env ROWGEAR_HEALTH_ADDR)")
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// start listens on the flags' addresses (an address taken is an error
// now), then serves until ctx ends, in goroutines of wg.
func start(ctx context.Context, wg *sync.WaitGroup, f Flags, reg *prometheus.Registry, checks map[string]health.Check, log *slog.Logger) error {
	handlers := map[string]*http.ServeMux{}
	mux := func(addr string) *http.ServeMux {
		if handlers[addr] == nil {
			handlers[addr] = http.NewServeMux()
		}
		return handlers[addr]
	}
	if f.MetricsAddr != "" {
		mux(f.MetricsAddr).Handle("GET /metrics", metrics.Handler(reg))
	}
	if f.HealthAddr != "" {
		h := health.Handler(checks, 0)
		mux(f.HealthAddr).Handle("GET /healthz", h)
		mux(f.HealthAddr).Handle("GET /readyz", h)
	}
	var servers []*health.Server
	for addr, m := range handlers {
		s, err := health.Listen(addr, m)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		log.Info("http listener", "addr", s.Addr())
		wg.Go(func() { s.Serve(ctx, log) })
	}
	return nil
}

// Worker is the observation of one worker process.
type Worker struct {
	Registry *prometheus.Registry
	Metrics  *metrics.Worker
	Latency  *latency.Tracker

	servers []string
	db      *sql.DB
	conns   health.Conns
	wg      sync.WaitGroup // what Start started
}

// NewWorker prepares the metrics of a worker of servers; db (may be nil: a
// plain worker set) is pinged for readiness and read for the bridge's
// heartbeats. opts go to the latency tracker.
func NewWorker(servers []string, db *sql.DB, opts ...latency.Option) (*Worker, error) {
	w := &Worker{Registry: newRegistry(), servers: servers, db: db}
	var err error
	if w.Metrics, err = metrics.NewWorker(w.Registry); err != nil {
		return nil, err
	}
	if w.Latency, err = latency.New(db, append([]latency.Option{latency.WithRegistry(w.Registry)}, opts...)...); err != nil {
		return nil, err
	}
	return w, nil
}

// Middleware counts and times each run and notes the commit → handler
// latency of row events; its signature is dispatch.Middleware's.
func (w *Worker) Middleware(next gearman.Handler) gearman.Handler {
	return w.Metrics.Middleware(w.Latency.Middleware(next))
}

// HandlerStart notes when a run reaches the application's handler (past the
// retry guard and ordering): mount it innermost, after every other
// middleware. Its signature is dispatch.Middleware's.
func (w *Worker) HandlerStart(next gearman.Handler) gearman.Handler {
	return w.Latency.HandlerStart(next)
}

// ConnObserver is for gearman.WithConnObserver.
func (w *Worker) ConnObserver(e gearman.ConnEvent) {
	w.Metrics.ConnObserver(e)
	w.conns.Observe(e)
}

// WorkerOptions are the gearman worker's options for this observation.
func (w *Worker) WorkerOptions() []gearman.WorkerOption {
	return []gearman.WorkerOption{gearman.WithConnObserver(w.ConnObserver)}
}

// RetryOptions are the retry guard's options for this observation.
func (w *Worker) RetryOptions() []retryguard.Option {
	return []retryguard.Option{retryguard.WithObserver(w.Metrics.RetryObserver)}
}

// Checks are the readiness checks: a connection to every gearmand, and the
// database answering.
func (w *Worker) Checks() map[string]health.Check {
	checks := map[string]health.Check{"gearmand": w.conns.Check(w.servers)}
	if w.db != nil {
		checks["database"] = w.db.PingContext
	}
	return checks
}

// Start serves the flags' endpoints and resolves binlog latencies until
// ctx ends. It returns at once; an error means a listener could not open.
func (w *Worker) Start(ctx context.Context, f Flags, log *slog.Logger) error {
	if err := start(ctx, &w.wg, f, w.Registry, w.Checks(), log); err != nil {
		return err
	}
	if w.db != nil {
		w.wg.Go(func() {
			if err := w.Latency.Run(ctx); err != nil {
				log.Warn("commit→handler latency stopped", "error", err)
			}
		})
	}
	return nil
}

// Wait returns once what Start started has stopped (after its ctx ended):
// a worker closes its database after it.
func (w *Worker) Wait() { w.wg.Wait() }

// Bridge is the observation of one bridge process.
type Bridge struct {
	Registry *prometheus.Registry
	Metrics  *metrics.Bridge
}

// NewBridge prepares the bridge's metrics; pass Metrics to
// bridge.WithObserver.
func NewBridge() (*Bridge, error) {
	b := &Bridge{Registry: newRegistry()}
	var err error
	if b.Metrics, err = metrics.NewBridge(b.Registry); err != nil {
		return nil, err
	}
	return b, nil
}

// Start serves the flags' endpoints for br until ctx ends; readiness is
// br.Health.
func (b *Bridge) Start(ctx context.Context, f Flags, br *bridge.Bridge, log *slog.Logger) error {
	if br == nil {
		return errors.New("observe: no bridge")
	}
	return start(ctx, new(sync.WaitGroup), f, b.Registry, map[string]health.Check{"bridge": br.Health}, log)
}
