// Package metrics exports what workers and binlogbridge do as Prometheus
// metrics, on a registry the caller owns (never the global one), so tests
// and two applications in one process do not clash.
//
// Worker side, from a middleware around every handler (Worker.Middleware),
// the retry guard's observer (Worker.RetryObserver) and the gearman
// worker's connection observer (Worker.ConnObserver):
//
//	rowgear_worker_jobs_total{function,outcome}   counter; outcome: done, failed,
//	                                              requeued (left to gearmand),
//	                                              retried, dead_lettered
//	rowgear_worker_handler_duration_seconds{function}  histogram
//	rowgear_worker_jobs_in_flight{function}       gauge
//	rowgear_worker_gearmand_connections{server}   gauge: connections up
//	rowgear_worker_gearmand_reconnects_total{server}   counter
//
// A failed run counts failed, and then retried or dead_lettered when the
// retry guard stored it: a job failing every run of a 3-attempt policy
// counts failed 3, retried 2, dead_lettered 1.
//
// Bridge side (Bridge, given to bridge.WithObserver):
//
//	rowgear_bridge_events_published_total{table,op}  counter: acknowledged by gearmand
//	rowgear_bridge_publish_duration_seconds         histogram: read → acknowledged
//	rowgear_bridge_position{file}                   gauge: acknowledged offset in file
//	rowgear_bridge_behind_bytes                     gauge: binlog bytes between the
//	                                                server's end and what the bridge read
//	rowgear_bridge_lag_seconds                      gauge: age of the newest heartbeat read
//	rowgear_bridge_inflight_events                  gauge: read, not yet acknowledged
//	rowgear_bridge_snapshot_rows_total{table}       gauge: rows the running snapshot has published
//	rowgear_bridge_events_rejected_total{table,op,outcome}  counter: row changes not published;
//	                                                outcome dead_lettered (an undecodable row,
//	                                                see `dead list`) or skipped_no_primary_key
//	rowgear_bridge_active                           gauge: 1 publishing (binlog.ha: holds the
//	                                                lease), 0 standing by, -1 not yet run
//	rowgear_bridge_lease_epoch                      gauge: the lease election it won last
//
// Commit → handler latency (package latency) registers
// rowgear_commit_to_handler_seconds{source} on the same registry.
//
// Serve the registry with Handler on the address of --metrics-addr (see
// package health for the listener).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the metrics of reg in the Prometheus text format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// register registers every collector, or returns the first error.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
