package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/retryguard"
)

// Job outcomes counted by rowgear_worker_jobs_total.
const (
	OutcomeDone     = "done"
	OutcomeFailed   = "failed"
	OutcomeRequeued = "requeued"
)

// Worker holds the worker-side metrics.
type Worker struct {
	jobs       *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inFlight   *prometheus.GaugeVec
	conns      *prometheus.GaugeVec
	reconnects *prometheus.CounterVec
}

// NewWorker registers the worker metrics on reg.
func NewWorker(reg prometheus.Registerer) (*Worker, error) {
	m := &Worker{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowgear_worker_jobs_total",
			Help: "Job runs by function and outcome (done, failed, requeued, retried, dead_lettered).",
		}, []string{"function", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rowgear_worker_handler_duration_seconds",
			Help:    "Handler run time by function.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14), // 100µs … ≈15 min
		}, []string{"function"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rowgear_worker_jobs_in_flight",
			Help: "Jobs running now, by function.",
		}, []string{"function"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rowgear_worker_gearmand_connections",
			Help: "Worker connections up, by gearmand server.",
		}, []string{"server"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowgear_worker_gearmand_reconnects_total",
			Help: "Worker connections made again after a loss, by gearmand server.",
		}, []string{"server"}),
	}
	if err := register(reg, m.jobs, m.duration, m.inFlight, m.conns, m.reconnects); err != nil {
		return nil, err
	}
	return m, nil
}

// Middleware counts each run of next by outcome, times it and tracks it in
// flight; job.Function names the function. Its signature is
// dispatch.Middleware's.
func (m *Worker) Middleware(next gearman.Handler) gearman.Handler {
	return func(ctx context.Context, job *gearman.Job) (any, error) {
		fn := job.Function
		g := m.inFlight.WithLabelValues(fn)
		g.Inc()
		start := time.Now()
		out, err := next(ctx, job)
		m.duration.WithLabelValues(fn).Observe(time.Since(start).Seconds())
		g.Dec()
		outcome := OutcomeDone
		switch {
		case errors.Is(err, gearman.ErrRequeue):
			outcome = OutcomeRequeued
		case err != nil:
			outcome = OutcomeFailed
		}
		m.jobs.WithLabelValues(fn, outcome).Inc()
		return out, err
	}
}

// RetryObserver counts what the retry guard did with a failed run; pass it
// to retryguard.WithObserver.
func (m *Worker) RetryObserver(fn string, o retryguard.Outcome) {
	m.jobs.WithLabelValues(fn, string(o)).Inc()
}

// ConnObserver follows the worker's gearmand connections; pass it to
// gearman.WithConnObserver.
func (m *Worker) ConnObserver(e gearman.ConnEvent) {
	g := m.conns.WithLabelValues(e.Server)
	if !e.Up {
		g.Dec()
		return
	}
	g.Inc()
	if e.Reconnect {
		m.reconnects.WithLabelValues(e.Server).Inc()
	}
}
