package console

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one point of the overview's charts.
type Sample struct {
	At         time.Time
	WorkerRate float64 // job runs a second (done, failed, requeued); NaN: unknown
	BridgeRate float64 // events published a second; NaN: unknown
	P50, P99   float64 // commit → handler latency in seconds over the interval; NaN: none measured
	Lag        float64 // bridge lag in seconds (its newest heartbeat's age); NaN: unknown
}

// totals are the counters of one gather, summed over a source's series.
type totals struct {
	ok             bool
	worker, bridge float64
	hasWorker      bool
	hasBridge      bool
	buckets        map[float64]float64 // upper bound → cumulative count
	lag            float64
	hasLag         bool
	err            error
	gatheredAt     time.Time
}

// sampler keeps a ring of samples taken from the metrics sources: the
// charts read what Prometheus would scrape, no counters of its own.
type sampler struct {
	sources []Source
	every   time.Duration

	mu   sync.Mutex
	ring []Sample
	next int
	full bool
	prev []totals
	last []totals // the newest gather of each source, for the overview
}

// Source is a metrics source: a name shown on the overview and a gatherer
// (an in-process registry, or Scrape of a /metrics URL).
type Source struct {
	Name     string
	Gatherer prometheus.Gatherer
}

func newSampler(sources []Source, every, window time.Duration) *sampler {
	n := max(int(window/every), 2)
	return &sampler{sources: sources, every: every, ring: make([]Sample, n), prev: make([]totals, len(sources)), last: make([]totals, len(sources))}
}

// run samples every s.every until ctx ends.
func (s *sampler) run(ctx context.Context) {
	if len(s.sources) == 0 {
		return
	}
	t := time.NewTicker(s.every)
	defer t.Stop()
	s.sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.sample(now)
		}
	}
}

func (s *sampler) sample(now time.Time) {
	cur := make([]totals, len(s.sources))
	for i, src := range s.sources {
		cur[i] = gather(src.Gatherer, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sm := Sample{At: now, WorkerRate: math.NaN(), BridgeRate: math.NaN(), P50: math.NaN(), P99: math.NaN(), Lag: math.NaN()}
	var wDelta, bDelta, dt float64
	var wKnown, bKnown bool
	hist := map[float64]float64{}
	for i, c := range cur {
		s.last[i] = c
		p := s.prev[i]
		if c.hasLag {
			sm.Lag = nanMax(sm.Lag, c.lag)
		}
		if !c.ok || !p.ok {
			continue
		}
		dt = max(dt, c.gatheredAt.Sub(p.gatheredAt).Seconds())
		if c.hasWorker {
			wDelta += delta(p.worker, c.worker)
			wKnown = true
		}
		if c.hasBridge {
			bDelta += delta(p.bridge, c.bridge)
			bKnown = true
		}
		for le, n := range c.buckets {
			hist[le] += delta(p.buckets[le], n)
		}
	}
	if dt > 0 {
		if wKnown {
			sm.WorkerRate = wDelta / dt
		}
		if bKnown {
			sm.BridgeRate = bDelta / dt
		}
		sm.P50, sm.P99 = quantile(hist, 0.5), quantile(hist, 0.99)
	}
	for i, c := range cur {
		if c.ok {
			s.prev[i] = c
		}
	}
	s.ring[s.next] = sm
	s.next = (s.next + 1) % len(s.ring)
	if s.next == 0 {
		s.full = true
	}
}

// delta of a counter; a smaller value means the process restarted.
func delta(prev, cur float64) float64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

func nanMax(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	return max(a, b)
}

// samples returns the ring oldest first.
func (s *sampler) samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.full {
		return append([]Sample(nil), s.ring[:s.next]...)
	}
	return append(append([]Sample(nil), s.ring[s.next:]...), s.ring[:s.next]...)
}

// sourceState is what the overview says of each metrics source.
type sourceState struct {
	Name  string
	Up    bool
	Error string
	At    time.Time
}

func (s *sampler) states() []sourceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sourceState, len(s.sources))
	for i, src := range s.sources {
		out[i] = sourceState{Name: src.Name, Up: s.last[i].ok, At: s.last[i].gatheredAt}
		if err := s.last[i].err; err != nil {
			out[i].Error = err.Error()
		}
	}
	return out
}

// Metric names the sampler reads (packages metrics and latency).
const (
	mWorkerJobs    = "rowgear_worker_jobs_total"
	mBridgeEvents  = "rowgear_bridge_events_published_total"
	mCommitLatency = "rowgear_commit_to_handler_seconds"
	mBridgeLag     = "rowgear_bridge_lag_seconds"
)

func gather(g prometheus.Gatherer, now time.Time) totals {
	t := totals{gatheredAt: now, buckets: map[float64]float64{}}
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		t.err = err
		return t
	}
	t.ok = true
	for _, mf := range mfs {
		switch mf.GetName() {
		case mWorkerJobs:
			t.hasWorker = true
			for _, m := range mf.GetMetric() {
				switch label(m, "outcome") {
				case "done", "failed", "requeued": // a run each; retried and dead_lettered follow a failed one
					t.worker += m.GetCounter().GetValue()
				}
			}
		case mBridgeEvents:
			t.hasBridge = true
			for _, m := range mf.GetMetric() {
				t.bridge += m.GetCounter().GetValue()
			}
		case mCommitLatency:
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				inf := false
				for _, b := range h.GetBucket() {
					t.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
					inf = inf || math.IsInf(b.GetUpperBound(), 1)
				}
				if !inf { // a registry leaves +Inf implicit; the text format has it
					t.buckets[math.Inf(1)] += float64(h.GetSampleCount())
				}
			}
		case mBridgeLag:
			for _, m := range mf.GetMetric() {
				if v := m.GetGauge().GetValue(); v >= 0 { // -1: unknown
					t.lag, t.hasLag = v, true
				}
			}
		}
	}
	return t
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// quantile estimates the q-quantile of a cumulative histogram as
// Prometheus's histogram_quantile does: linear within the bucket.
func quantile(buckets map[float64]float64, q float64) float64 {
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	if len(les) == 0 {
		return math.NaN()
	}
	total := buckets[les[len(les)-1]]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, le := range les {
		n := buckets[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				return lower // beyond the last bound: the last bound is what is known
			}
			if n == below {
				return le
			}
			return lower + (le-lower)*(rank-below)/(n-below)
		}
		lower, below = le, n
	}
	return lower
}

// Scrape is a Gatherer reading a /metrics URL (a worker's or bridge's
// --metrics-addr) in the Prometheus text format.
func Scrape(url string) prometheus.Gatherer {
	return scraper{url: url, client: &http.Client{Timeout: 3 * time.Second}}
}

type scraper struct {
	url    string
	client *http.Client
}

func (s scraper) Gather() ([]*dto.MetricFamily, error) {
	req, err := http.NewRequest(http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("%s: %s", s.url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.url, err)
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	return out, nil
}
