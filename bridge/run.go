package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/charset"
	"github.com/rowgear/rowgear/internal/retryguard"
	"github.com/rowgear/rowgear/internal/sqlschema"
)

// Run streams until ctx ends, then stops reading, lets the workers handle
// what was read (up to the flush timeout), saves the position and returns
// nil. Lost MariaDB connections are retried forever; it returns an error
// only for what a retry cannot fix (the server's settings and the position
// store at start, a purged binlog). A row change it cannot publish is a dead
// letter, a table without a primary key is skipped (docs/binlog-bridge.md#bad-rows).
// With binlog.ha it first stands by until it holds the lease, and stands by
// again when it loses it (see High availability in the package
// documentation).
func (b *Bridge) Run(ctx context.Context) error {
	if b.ha {
		return b.runHA(ctx)
	}
	return b.runOnce(ctx)
}

// runOnce is Run without the lease: one active run.
func (b *Bridge) runOnce(ctx context.Context) error {
	b.pickHost(ctx)
	if err := b.checkServer(ctx); err != nil {
		return err
	}
	if err := b.db.QueryRowContext(ctx, "SELECT @@GLOBAL.server_id").Scan(&b.sourceID); err != nil {
		return fmt.Errorf("server_id: %w", err)
	}
	collations, err := charset.LoadCollations(ctx, b.db)
	if err != nil {
		return err
	}
	b.collations = collations
	if err := b.checkTables(ctx); err != nil {
		return err
	}
	start, err := b.startPosition(ctx)
	if err != nil {
		return err
	}
	b.history = start.History
	if start, err = b.resolveMode(ctx, start); err != nil {
		return err
	}
	if len(b.models) == 0 {
		b.log.Info("no model has source: binlog: the bridge publishes snapshots only")
	}
	b.log.Info("binlog bridge starting", "position", start.String(), "tables", b.Tables(),
		"gearman", b.servers, "concurrency", b.concurrency, "batch", b.batch)

	b.client = gearman.NewClient(b.servers, gearman.WithConnections(b.concurrency),
		gearman.WithClientLogger(b.log))
	defer b.client.Close()
	b.tracker = newTracker(start)
	b.handler = &handler{ctx: ctx, b: b, metas: map[string]*tableMeta{},
		cur: map[string]*sqlschema.Table{}, noKeyWarned: map[string]bool{}}
	b.subs = newSubmitters(b.client, b.concurrency, b.batch, b.log, b.verbose)
	b.subs.observer = b.observer
	b.subs.gate = b.submitGate()
	b.subs.deadLetter = func(ctx context.Context, fn, unique, reason string, payload []byte) error {
		return retryguard.NewStore(b.db).Quarantine(ctx, fn, unique, reason, payload)
	}
	// Submitters outlive ctx: after it ends they still drain what was read
	// (not the lease: see submitContext).
	subCtx, stopSubs := context.WithCancel(b.submitContext(ctx))
	defer stopSubs()
	b.subs.start(subCtx)

	saved := start
	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(ctx)
	b.obs.hbOn.Store(b.startHeartbeat(ctx))
	b.obs.running.Store(true)
	defer b.obs.running.Store(false)
	wg.Add(3)
	go func() { defer wg.Done(); saved = b.saveLoop(bg, saved) }()
	go func() { defer wg.Done(); b.statsLoop(bg) }()
	go func() { defer wg.Done(); b.observeLoop(bg) }()

	snapCtx, stopSnaps := context.WithCancel(ctx)
	b.snaps = newSnapshots(b)
	b.snaps.ctx = snapCtx
	go b.snaps.resume(snapCtx)
	runErr := b.stream(ctx, start)
	stopSnaps()
	b.snaps.wg.Wait()

	// Flush: no more jobs come; wait for the queues to drain.
	b.subs.close()
	drained := make(chan struct{})
	go func() { b.subs.wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-subCtx.Done(): // the lease is lost: nothing more may be published
		<-drained
	case <-time.After(b.flushTimeout):
		b.log.Warn("flush timed out; jobs not yet handled will be published again by the next run",
			"inflight", b.subs.inflight.Load())
		stopSubs()
		<-drained
	}
	stopBG()
	wg.Wait()
	final, _, _ := b.tracker.advance()
	if final != saved {
		saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := b.store.Save(saveCtx, final); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	b.log.Info("binlog bridge stopped", "position", final.String(), "published", b.subs.published.Load(),
		"handled", b.subs.handled.Load())
	return runErr
}

// startPosition is the saved position, else --start, else the current end
// of the binlog; a position not read from the store is saved at once, so
// a restart before the first checkpoint cannot skip what happened between.
func (b *Bridge) startPosition(ctx context.Context) (Position, error) {
	p, ok, err := b.store.Load(ctx)
	if err != nil {
		return Position{}, err
	}
	if ok {
		if b.start != nil {
			b.log.Info("a saved position exists; --start is ignored", "saved", p.String())
		}
		if p.History == "" {
			// Saved by a bridge before histories: its events had ids
			// without one, so any new history is distinct from them.
			p.History = newHistory()
			if err := b.store.Save(ctx, p); err != nil {
				return Position{}, err
			}
		}
		return p, nil
	}
	if b.start != nil {
		p = *b.start
	} else if p, err = b.currentPosition(ctx); err != nil {
		return Position{}, err
	}
	p.History = newHistory()
	if b.wantGTID() && b.flavor() == mysql.MariaDBFlavor {
		// A first start has nothing in flight: GTID positions at once,
		// when the binlog has a GTID there.
		if p.GTID, err = b.gtidAt(ctx, p); err != nil {
			return Position{}, err
		}
		if p.GTID != "" {
			p.History = newGTIDHistory("")
		}
	}
	if err := b.store.Save(ctx, p); err != nil {
		return Position{}, err
	}
	return p, nil
}

// historyStartLen is the length of a history's start time, the part of it
// that orders events (see eventSeq).
const historyStartLen = 11

// newHistory returns a fresh Position.History: when it starts, in tenths
// of a second since 1970 (11 digits: seq takes digits only, and 40 bytes
// at most), then 16 random bits in hex, so that two starts never share one.
func newHistory() string {
	var b [2]byte
	rand.Read(b[:])
	return fmt.Sprintf("%0*d%s", historyStartLen, time.Now().UnixMilli()/100, hex.EncodeToString(b[:]))
}

// currentPosition asks the server for the end of its binlog.
func (b *Bridge) currentPosition(ctx context.Context) (Position, error) {
	var p Position
	for _, q := range []string{"SHOW BINLOG STATUS", "SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"} {
		rows, err := b.db.QueryContext(ctx, q)
		if err != nil {
			continue
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		vals[0], vals[1] = &p.File, &p.Pos
		for i := 2; i < len(vals); i++ {
			vals[i] = new(any)
		}
		if rows.Next() {
			err = rows.Scan(vals...)
		}
		rows.Close()
		if err != nil {
			return Position{}, fmt.Errorf("%s: %w", q, err)
		}
		break
	}
	if p.File == "" {
		return Position{}, fmt.Errorf("%w: the server reports no binlog position: is log_bin on?", ErrConfig)
	}
	q := "SELECT @@GLOBAL.gtid_binlog_pos"
	if b.flavor() == mysql.MySQLFlavor {
		q = "SELECT @@GLOBAL.gtid_executed"
	}
	if err := b.db.QueryRowContext(ctx, q).Scan(&p.GTID); err != nil {
		return Position{}, fmt.Errorf("%s: %w", q, err)
	}
	return p, nil
}

// stream reads the binlog from start until ctx ends, restarting from the last
// transaction boundary read whenever it fails.
func (b *Bridge) stream(ctx context.Context, start Position) error {
	backoff := time.Second
	for pos := start; ; pos = b.tracker.readPos() {
		began := time.Now()
		err := b.runBinlog(ctx, pos)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errFatal) {
			return err
		}
		if errors.Is(err, errSwitchGTID) {
			if err = b.switchInStream(ctx); err == nil {
				continue // by GTID, from the position just saved
			}
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrBinlogGone) {
				return err
			}
		}
		if gone := binlogGone(err); gone != "" {
			if _, ok := b.gtidRecover(ctx, pos, gone); ok {
				continue // from where this server's history and the bridge's agree
			}
			return b.goneError(pos, gone)
		}
		if b.pickHost(ctx) {
			backoff = time.Second
			continue // another host is the primary now
		}
		if time.Since(began) > time.Minute {
			backoff = time.Second
		}
		b.log.Warn("binlog stream stopped; restarting", "error", err, "from", b.tracker.readPos().String(), "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// binlogGone returns the server's message when err is its ERROR 1236
// (ER_MASTER_FATAL_ERROR_READING_BINLOG): the binlog the position points
// into is purged, reset, or was never on this server.
func binlogGone(err error) string {
	var me *mysql.MyError
	if errors.As(err, &me) && me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG {
		return me.Message
	}
	return ""
}

// goneError is ErrBinlogGone as one line: what happened and how to recover.
func (b *Bridge) goneError(pos Position, msg string) error {
	where := "the position file"
	if ts, ok := b.store.(*TableStore); ok {
		where = fmt.Sprintf("its row: DELETE FROM %s WHERE server_id = %d", PositionTable, ts.serverID)
	} else if fs, ok := b.store.(FileStore); ok {
		where = "the file " + fs.Path
	}
	return fmt.Errorf("%w: the server answered ERROR 1236 (%s) for position %s. The changes between it and the "+
		"server's oldest binlog can no longer be read (binlog purged while the bridge was down, RESET MASTER, "+
		"or another server). To recover: delete the saved position (%s), restart the bridge with "+
		"--start=current (or a FILE:POS / gtid:SET the server still has, see SHOW BINARY LOGS), and "+
		"re-snapshot the binlog models' tables for the changes missed in between",
		ErrBinlogGone, strings.ReplaceAll(msg, "\n", " "), pos.String(), where)
}

// saveLoop saves the handled position every saveInterval while it
// moves. Advances caused only by other tables' transactions (and by our
// own position writes, which are in the binlog too) are saved at most once
// a minute, so an idle bridge does not write forever.
func (b *Bridge) saveLoop(ctx context.Context, saved Position) Position {
	t := time.NewTicker(b.saveInterval)
	defer t.Stop()
	lastSave, lastHandled := time.Now(), int64(0)
	for {
		select {
		case <-ctx.Done():
			return saved
		case <-t.C:
		}
		b.saveMu.Lock() // a switch to GTID positions saves in between, never under us
		p, _, _ := b.tracker.advance()
		done := b.subs.handled.Load()
		if p == saved || (done == lastHandled && time.Since(lastSave) < time.Minute) {
			b.saveMu.Unlock()
			continue
		}
		err := b.store.Save(ctx, p)
		b.saveMu.Unlock()
		if err != nil {
			b.log.Warn("saving the position failed; will retry", "error", err)
			continue
		}
		saved, lastSave, lastHandled = p, time.Now(), done
	}
}

// downServers names the servers marked down.
func downServers(st []gearman.ServerStatus) []string {
	var down []string
	for _, s := range st {
		if !s.Up {
			down = append(down, s.Addr)
		}
	}
	return down
}

// statsLoop logs position, lag and rate every stats interval.
func (b *Bridge) statsLoop(ctx context.Context) {
	if b.stats <= 0 {
		return
	}
	t := time.NewTicker(b.stats)
	defer t.Stop()
	last, lastRead, lastAt := b.subs.handled.Load(), int64(0), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			pos, _, oldest := b.tracker.advance()
			done := b.subs.handled.Load()
			read := b.handler.handled.Load()
			// Lag: the age of the oldest change not yet handled; with
			// nothing in flight, the age of the last event read if events
			// are still coming (the bridge catching up), else 0.
			var lag int64
			switch {
			case oldest != 0:
				lag = now.Unix() - int64(oldest)
			case read != lastRead:
				lag = now.Unix() - int64(b.handler.lastTS.Load())
			}
			rate := float64(done-last) / now.Sub(lastAt).Seconds()
			args := []any{"position", pos.String(), "lag_seconds", max(lag, 0),
				"events_per_second", int64(rate + 0.5), "published", b.subs.published.Load(), "handled", done,
				"inflight", b.subs.inflight.Load()}
			if n := b.subs.resent.Load(); n > 0 {
				args = append(args, "resent", n)
			}
			if down := downServers(b.client.Servers()); len(down) > 0 {
				args = append(args, "gearman_down", down)
			}
			b.log.Info("binlog bridge stats", args...)
			last, lastRead, lastAt = done, read, now
		}
	}
}
