package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowgear/rowgear/bridge"
)

// contention: section 6. Strict trigger writes while binlogbridge publishes
// a backlog, on SQLite-queue gearmands (the compose stack's queue): first
// with the bridge on the triggers' gearmand, then on a gearmand of its own
// (the compose stack's layout). A SQLite queue writes jobs one at a time,
// so a busy bridge can hold a trigger's submit past the UDF timeout, which
// fails the write. Figures: failed strict writes, and the slowest write.
func (b *bench) contention(ctx context.Context) error {
	const sec = "6"
	dur := 2 * b.maxTime
	for i, layout := range []string{"one gearmand for both", "the bridge on its own gearmand"} {
		gTrig, err := b.gearmand("sqlite")
		if err != nil {
			return err
		}
		gBridge := gTrig
		if i == 1 {
			if gBridge, err = b.gearmand("sqlite"); err != nil {
				return err
			}
		}
		ns := fmt.Sprintf("bench_cont%d", i)
		trig, bl := fmt.Sprintf("items_cw%d", i), fmt.Sprintf("items_cb%d", i)
		if err := b.createItems(ctx, trig, 4); err != nil {
			return err
		}
		if err := b.createItems(ctx, bl, 0); err != nil {
			return err
		}
		if err := b.installTrigger(ctx, ns, trig, gTrig.Addr); err != nil {
			return err
		}
		// Its backlog need not be flushed at the end: a short flush timeout.
		_, stopBridge, err := b.startBridge(ctx, ns, gBridge.Addr, bl, nil, bridge.WithFlushTimeout(time.Second))
		if err != nil {
			return err
		}
		end := time.Now().Add(dur)
		var wg sync.WaitGroup
		var ok, failed atomic.Int64
		var slowest atomic.Int64
		var otherErr atomic.Value
		wg.Add(1)
		go func() { // the binlog backlog: 50-row inserts as fast as they go
			defer wg.Done()
			for id := 0; time.Now().Before(end) && ctx.Err() == nil; id += 50 {
				if err := insertItems(ctx, b.db, bl, id, 50); err != nil {
					otherErr.Store(err)
					return
				}
			}
		}()
		for w := range 4 { // strict writers, one row each, 50 writes/s each at most
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) && ctx.Err() == nil {
					t0 := time.Now()
					_, err := b.db.ExecContext(ctx, "UPDATE "+trig+" SET n = n + 1, written_at = NOW(6) WHERE id = ?", w)
					took := time.Since(t0)
					for {
						s := slowest.Load()
						if int64(took) <= s || slowest.CompareAndSwap(s, int64(took)) {
							break
						}
					}
					switch {
					case err == nil:
						ok.Add(1)
					case strings.Contains(err.Error(), "rowgear: submitting"):
						failed.Add(1)
					default:
						otherErr.Store(err)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		if err := stopBridge(); err != nil {
			return err
		}
		if e, _ := otherErr.Load().(error); e != nil {
			return e
		}
		total := ok.Load() + failed.Load()
		b.add(sec, fmt.Sprintf("strict writes failed while the bridge catches up, SQLite queue, %s", layout),
			float64(failed.Load()), "writes").
			vs("strict writes", float64(total)).
			note(fmt.Sprintf("%d of %d in %s; slowest write %s", failed.Load(), total, dur,
				time.Duration(slowest.Load()).Round(time.Millisecond)))
		b.stopGearmand(gTrig)
		if gBridge != gTrig {
			b.stopGearmand(gBridge)
		}
	}
	return nil
}
