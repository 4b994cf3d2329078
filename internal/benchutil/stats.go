package benchutil

import (
	"context"
	"slices"
	"time"
)

// Latency summarises latencies in microseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_us"`
	P95 float64 `json:"p95_us"`
	P99 float64 `json:"p99_us"`
	Max float64 `json:"max_us"`
}

// Percentiles returns the nearest-rank percentiles of d (sorted in place).
func Percentiles(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := int(p*float64(len(d))+0.5) - 1
		i = min(max(i, 0), len(d)-1)
		return float64(d[i].Nanoseconds()) / 1e3
	}
	return Latency{N: len(d), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: at(1)}
}

// Pace calls write with how many rows to write now, every tick, so that
// rate rows per second are offered, until total rows are written, dur
// passes or ctx ends. It returns the rows written and the first error.
func Pace(ctx context.Context, rate, total int, dur, tick time.Duration, write func(n int) error) (int, error) {
	start := time.Now()
	t := time.NewTicker(tick)
	defer t.Stop()
	done := 0
	for done < total {
		due := min(total, int(time.Since(start).Seconds()*float64(rate))+1)
		if n := due - done; n > 0 {
			if err := write(n); err != nil {
				return done, err
			}
			done += n
		}
		if time.Since(start) >= dur {
			break
		}
		select {
		case <-ctx.Done():
			return done, ctx.Err()
		case <-t.C:
		}
	}
	return done, nil
}
