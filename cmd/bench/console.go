package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/console"
	"github.com/rowgear/rowgear/internal/metrics"
	"github.com/rowgear/rowgear/internal/observe"
)

// consoleCost: section 9. The worker of section 4 (dispatch, retry guard,
// 4 at once) with its metrics served as --metrics-addr serves them,
// alternately alone and with an operator's console sampling those
// metrics every second (5× the console's default) while nobody has a page
// open: the console's only cost to a worker then. Runs alternate so that
// the machine's load drifts over both alike; the medians are compared.
func (b *bench) consoleCost(ctx context.Context) error {
	const sec = "9"
	const rounds = 5
	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	defer b.stopGearmand(g)
	rates := map[bool][]float64{}
	var perScrape, workerSide time.Duration
	for i := range 2 * rounds {
		withConsole := i%2 == 1
		ns := fmt.Sprintf("bench_c%d", i)
		cfg := b.modelConfig(ns, g.Addr, "items", "binlog")
		n, err := b.prequeue(ctx, g.Addr, events.FuncName(ns, "Item", "update"), b.rows, false)
		if err != nil {
			return err
		}
		ow, err := observe.NewWorker(cfg.Servers["default"], nil)
		if err != nil {
			return err
		}
		srv := httptest.NewServer(metrics.Handler(ow.Registry))
		r := newRecorder()
		w, cleanup, err := b.itemWorkerMW(ctx, cfg, 4, true, ow.Middleware)
		if err != nil {
			srv.Close()
			return err
		}
		cctx, stopConsole := context.WithCancel(ctx)
		if withConsole {
			if _, err := console.New(cctx, console.Options{Config: cfg, DB: b.db, SampleEvery: time.Second,
				Metrics: []console.Source{{Name: srv.URL, Gatherer: console.Scrape(srv.URL)}}}); err != nil {
				stopConsole()
				srv.Close()
				return err
			}
		}
		rate, got := b.drain(ctx, n, r.n.Load, func() func() { return runWorker(ctx, w) })
		stopConsole()
		cleanup()
		if got < int64(n) {
			b.log.Warn("console cost: time-capped", "got", got, "of", n)
		}
		rates[withConsole] = append(rates[withConsole], rate)
		if i == 0 { // what one scrape of a busy worker's metrics costs it
			const k = 50
			t0 := time.Now()
			for range k {
				if _, err := console.Scrape(srv.URL).Gather(); err != nil {
					return err
				}
			}
			perScrape = time.Since(t0) / k
			h := metrics.Handler(ow.Registry) // the worker's side alone
			t0 = time.Now()
			for range k {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			}
			workerSide = time.Since(t0) / k
		}
		srv.Close()
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	alone, with := median(rates[false]), median(rates[true])
	b.add(sec, "jobs/s, runner + dispatch + retryguard.Guard + metrics, 4 at once, no console (median of 5)", alone, "jobs/s")
	b.add(sec, "jobs/s, the same with a console sampling its metrics every 1 s, no page open (median of 5)", with, "jobs/s").vs("no console", alone)
	b.add(sec, "throughput the console costs the worker", (alone-with)/alone*100, "%").
		note(fmt.Sprintf("runs alone %.0f, with console %.0f jobs/s", rates[false], rates[true]))
	b.add(sec, "one scrape of the worker's metrics, both ends (sampler's default: one per 5 s)", float64(perScrape.Microseconds()), "µs").
		note(fmt.Sprintf("%.3f%% of one core at one scrape per 5 s", perScrape.Seconds()/5*100))
	b.add(sec, "the worker's side of one scrape (answering /metrics)", float64(workerSide.Microseconds()), "µs").
		note(fmt.Sprintf("%.3f%% of one core at one scrape per 5 s", workerSide.Seconds()/5*100))
	return nil
}
