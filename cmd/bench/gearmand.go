package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gc "github.com/mikespook/gearman-go/client"

	"github.com/rowgear/rowgear/events"
)

// samplePayload is an Item update envelope as the binlog source sends it,
// the payload of the ceiling and worker measurements.
func (b *bench) samplePayload(ns string, id int) []byte {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	env := &events.Envelope{V: events.Version, ID: fmt.Sprintf("binlog.000001:%d:0", 1000+id), Source: events.SourceBinlog,
		Schema: b.dbName, Table: "items", Model: "Item", Op: events.OpUpdate,
		PK:       events.Row{"id": raw(strconv.Itoa(id))},
		Row:      events.Row{"id": raw(strconv.Itoa(id)), "n": raw("2"), "body": raw(`"a body of some length for row ` + strconv.Itoa(id) + `"`), "written_at": raw(`"2026-11-26 23:36:37.123456"`)},
		Old:      events.Row{"id": raw(strconv.Itoa(id)), "n": raw("1"), "body": raw(`"a body of some length for row ` + strconv.Itoa(id) + `"`), "written_at": raw(`"2026-11-26 23:36:36.654321"`)},
		Modified: []string{"n", "written_at"},
		TS:       time.Date(2026, 11, 26, 23, 36, 37, 0, time.UTC), Pos: "binlog.000001:1000"}
	data, err := events.Encode(env)
	if err != nil {
		panic(err)
	}
	return data
}

// submitBare submits up to n background jobs of fn with the bare gearman-go
// client over conns connections, for at most d, and returns jobs/s. Job i
// (from 1) carries payload(i).
func submitBare(ctx context.Context, addr, fn string, payload func(i int64) []byte, n, conns int, d time.Duration) (float64, int, error) {
	clients := make([]*gc.Client, conns)
	for i := range clients {
		c, err := gc.New("tcp", addr)
		if err != nil {
			return 0, 0, err
		}
		c.ErrorHandler = func(error) {}
		c.ResponseTimeout = 10 * time.Second
		defer c.Close()
		clients[i] = c
	}
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n) && time.Now().Before(deadline) && ctx.Err() == nil; i = next.Add(1) {
				if _, err := c.DoBg(fn, payload(i), gc.JobNormal); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		return 0, int(done.Load()), fmt.Errorf("DoBg: %w", firstErr)
	}
	return float64(done.Load()) / el.Seconds(), int(done.Load()), nil
}

// ceilingKey names a section 1 figure for later sections.
func ceilingKey(queue string, conns int) string { return fmt.Sprintf("%s/%d", queue, conns) }

// gearmandCeiling: section 1.
func (b *bench) gearmandCeiling(ctx context.Context) error {
	payload := b.samplePayload("bench", 1)
	const sec = "1"
	for _, queue := range []string{"memory", "sqlite", "mysql", "redis"} {
		conns := []int{1, 4, 8}
		if queue == "mysql" || queue == "redis" {
			conns = []int{4} // the bridge's default; the alternatives to sqlite
		}
		g, err := b.gearmand(queue)
		if err != nil {
			b.add(sec, fmt.Sprintf("gearmand %s queue", queue), 0, "").note("not available: " + firstLine(err.Error()))
			continue
		}
		for _, n := range conns {
			fn := fmt.Sprintf("bench.ceiling.%s%d", queue, n)
			rate, done, err := submitBare(ctx, g.Addr, fn, func(int64) []byte { return payload }, b.rows, n, b.maxTime)
			if err != nil {
				b.add(sec, fmt.Sprintf("gearmand %s queue, %d conn", queue, n), 0, "").note(firstLine(err.Error()))
				break
			}
			b.ceilings[ceilingKey(queue, n)] = rate
			f := b.add(sec, fmt.Sprintf("DoBg %s queue, %d conn", queue, n), rate, "jobs/s")
			if queue != "memory" {
				f.vs("memory queue", b.ceilings[ceilingKey("memory", n)])
			} else if n > 1 {
				f.vs("1 conn", b.ceilings[ceilingKey("memory", 1)])
			}
			if done < b.rows {
				f.note(fmt.Sprintf("%d jobs, time-capped", done))
			}
		}
		b.stopGearmand(g)
	}
	b.payload = payload
	return nil
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			s = s[:i]
			break
		}
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}
