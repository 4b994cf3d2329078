package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/metrics"
)

// The middleware counts every run of a handler by outcome; the registry is
// the caller's, never the global one.
func ExampleWorker_Middleware() {
	reg := prometheus.NewRegistry()
	m, err := metrics.NewWorker(reg)
	if err != nil {
		panic(err)
	}
	h := m.Middleware(func(_ context.Context, job *gearman.Job) (any, error) {
		if string(job.Workload) == "bad" {
			return nil, errors.New("cannot resize")
		}
		return nil, nil
	})
	for _, w := range []string{"a.png", "b.png", "bad"} {
		h(context.Background(), &gearman.Job{Function: "resize", Workload: []byte(w)})
	}
	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP rowgear_worker_jobs_total Job runs by function and outcome (done, failed, requeued, retried, dead_lettered).
# TYPE rowgear_worker_jobs_total counter
rowgear_worker_jobs_total{function="resize",outcome="done"} 2
rowgear_worker_jobs_total{function="resize",outcome="failed"} 1
`), "rowgear_worker_jobs_total")
	fmt.Println("counts as expected:", err == nil)
	// Output: counts as expected: true
}
