package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowgear/rowgear/bridge"
)

// Bridge holds the bridge-side metrics; it is a bridge.Observer.
type Bridge struct {
	published *prometheus.CounterVec
	publish   prometheus.Histogram
	handled   *prometheus.CounterVec
	handle    prometheus.Histogram
	position  *prometheus.GaugeVec
	behind    prometheus.Gauge
	lag       prometheus.Gauge
	inflight  prometheus.Gauge
	snapshot  *prometheus.GaugeVec
	rejected  *prometheus.CounterVec
	active    prometheus.Gauge
	epoch     prometheus.Gauge

	mu       sync.Mutex
	lastFile string
}

var _ bridge.Observer = (*Bridge)(nil)

// NewBridge registers the bridge metrics on reg.
func NewBridge(reg prometheus.Registerer) (*Bridge, error) {
	m := &Bridge{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowgear_bridge_events_published_total",
			Help: "Events accepted by gearmand (JOB_CREATED), by table and op; each counted once, however often it was resent.",
		}, []string{"table", "op"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rowgear_bridge_publish_duration_seconds",
			Help:    "From reading an event in the binlog to gearmand's acceptance.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowgear_bridge_events_handled_total",
			Help: "Events whose job a worker answered (completed, or failed with its message), by table and op: the saved position follows these.",
		}, []string{"table", "op"}),
		handle: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rowgear_bridge_handle_duration_seconds",
			Help:    "From reading an event in the binlog to a worker's answer to its job.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 16),
		}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rowgear_bridge_position",
			Help: "Handled binlog offset (what a restart resumes from), labelled by binlog file.",
		}, []string{"file"}),
		behind: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rowgear_bridge_behind_bytes",
			Help: "Binlog bytes between the server's end and the last position read; -1 unknown.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rowgear_bridge_lag_seconds",
			Help: "Age of the newest heartbeat the bridge read back from the binlog; -1 unknown (no heartbeats).",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rowgear_bridge_inflight_events",
			Help: "Events read, not yet handled by a worker.",
		}),
		snapshot: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rowgear_bridge_snapshot_rows_total",
			Help: "Rows published by the initial snapshot, by table.",
		}, []string{"table"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rowgear_bridge_events_rejected_total",
			Help: "Row changes not published, by table, op and outcome: dead_lettered (stored in rowgear_failed_jobs) or skipped_no_primary_key.",
		}, []string{"table", "op", "outcome"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rowgear_bridge_active",
			Help: "1 while this bridge publishes (binlog.ha: holds the lease), 0 while it stands by; -1 before it ran.",
		}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rowgear_bridge_lease_epoch",
			Help: "The lease election this bridge won last (binlog.ha); 0 without HA.",
		}),
	}
	m.lag.Set(-1)
	m.behind.Set(-1)
	m.active.Set(-1)
	if err := register(reg, m.published, m.publish, m.handled, m.handle, m.position, m.behind, m.lag, m.inflight, m.snapshot, m.rejected, m.active, m.epoch); err != nil {
		return nil, err
	}
	return m, nil
}

// Published implements bridge.Observer.
func (m *Bridge) Published(table, op string, d time.Duration) {
	m.published.WithLabelValues(table, op).Inc()
	m.publish.Observe(d.Seconds())
}

// The bridge reports workers' answers to observers that take them.
var _ bridge.HandledObserver = (*Bridge)(nil)

// Handled counts an event whose job a worker answered.
func (m *Bridge) Handled(table, op string, d time.Duration) {
	m.handled.WithLabelValues(table, op).Inc()
	m.handle.Observe(d.Seconds())
}

// Progress implements bridge.Observer.
func (m *Bridge) Progress(p bridge.Progress) {
	m.mu.Lock()
	if m.lastFile != p.Acked.File && m.lastFile != "" {
		m.position.DeleteLabelValues(m.lastFile) // one series: the current file
	}
	m.lastFile = p.Acked.File
	m.mu.Unlock()
	if p.Acked.File != "" {
		m.position.WithLabelValues(p.Acked.File).Set(float64(p.Acked.Pos))
	}
	m.behind.Set(float64(p.Behind))
	if p.LagKnown {
		m.lag.Set(p.Lag.Seconds())
	} else {
		m.lag.Set(-1)
	}
	m.inflight.Set(float64(p.InFlight))
}

// The bridge reports snapshot progress to observers that take it.
var _ bridge.SnapshotObserver = (*Bridge)(nil)

// SnapshotRows sets the rows a snapshot of table has published.
func (m *Bridge) SnapshotRows(table string, n int64) {
	m.snapshot.WithLabelValues(table).Set(float64(n))
}

// The bridge reports the row changes it did not publish to observers that
// take them.
var _ bridge.RejectObserver = (*Bridge)(nil)

// Rejected counts a row change of table the bridge did not publish.
func (m *Bridge) Rejected(table, op, outcome string) {
	m.rejected.WithLabelValues(table, op, outcome).Inc()
}

// The bridge reports its HA role to observers that take it.
var _ bridge.LeaseObserver = (*Bridge)(nil)

// Lease sets rowgear_bridge_active and rowgear_bridge_lease_epoch.
func (m *Bridge) Lease(role bridge.Role, epoch int64) {
	if role == bridge.Active {
		m.active.Set(1)
		m.epoch.Set(float64(epoch))
		return
	}
	m.active.Set(0)
}
