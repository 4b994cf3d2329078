package bridge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/events"
)

// HeartbeatTable is where the bridge writes its heartbeats (migration
// 00030): a row every heartbeat interval with the database's clock to the
// microsecond, and, once the bridge read it back from the binlog, where.
// Package latency interpolates binlog events' commit times between them.
const HeartbeatTable = "rowgear_heartbeat"

// Observer receives what a running bridge does: package metrics
// implements it. Calls must be quick; they come from the bridge's
// goroutines.
type Observer interface {
	// Published: gearmand accepted (JOB_CREATED) one event of table and
	// op, d after the bridge read it from the binlog; counted once, however
	// often it is resent. Its handling is HandledObserver's.
	Published(table, op string, d time.Duration)
	// Progress, about every second.
	Progress(p Progress)
}

// Progress is where a running bridge stands.
type Progress struct {
	Acked    Position // handled: what a restart resumes from
	Read     Position // last transaction boundary read
	End      Position // the server's end of binlog (zero if it could not be asked)
	Behind   int64    // binlog bytes from Read to End; -1: unknown
	Lag      time.Duration
	LagKnown bool  // Lag is the age of the newest heartbeat read (heartbeats on, one read)
	InFlight int64 // events read, not yet handled
}

// WithObserver reports publications and progress to o.
func WithObserver(o Observer) Option {
	return check("WithObserver", o, o != nil, "an observer", func(b *Bridge) { b.observer = o })
}

// WithHeartbeat sets the heartbeat interval (default 250 ms; 0 turns
// heartbeats off). Package latency interpolates between heartbeats while the
// bridge catches up, so the interval bounds that estimate's error then. Heartbeats need HeartbeatTable (migration 00030); without
// it the bridge warns and runs without them.
func WithHeartbeat(d time.Duration) Option {
	return check("WithHeartbeat", d, d >= 0, "0 (off) or more", func(b *Bridge) { b.heartbeat, b.heartbeatSet = d, true })
}

// WithStallAfter sets how long the bridge may read nothing while the
// server's binlog is ahead, or fail to submit, before Health reports it
// stalled (default 30 s).
func WithStallAfter(d time.Duration) Option {
	return check("WithStallAfter", d, d > 0, "a positive duration", func(b *Bridge) { b.stallAfter = d })
}

// ErrStalled: Health found the bridge not moving.
var ErrStalled = errors.New("bridge: stalled")

// obs is the observation state of a Run.
type obs struct {
	hbOn    atomic.Bool
	mu      sync.Mutex
	pending []hbRead             // heartbeats read, their position not yet stored
	acked   map[uint64]time.Time // heartbeat id → when its INSERT returned
	newest  time.Time
	last    Progress
	moved   time.Time // when Read last changed, or End was caught up
	running atomic.Bool
}

type hbRead struct {
	id     uint64
	ts     time.Time
	file   string
	pos    uint32
	readAt time.Time
}

// onHeartbeat is called by the handler for rows of HeartbeatTable.
func (h *handler) onHeartbeat(header *replication.EventHeader, e *replication.RowsEvent) {
	if act, _ := action(header.EventType); act != events.OpInsert {
		return
	}
	read := time.Now()
	names := e.Table.ColumnNameString()
	idc, sc, tc := slices.Index(names, "id"), slices.Index(names, "server_id"), slices.Index(names, "ts")
	if idc < 0 || sc < 0 || tc < 0 {
		return
	}
	for _, r := range e.Rows {
		if len(r) <= max(idc, sc, tc) || fmt.Sprint(r[sc]) != fmt.Sprint(h.b.serverID()) {
			continue
		}
		ts, err := time.ParseInLocation("2006-01-02 15:04:05.999999", fmt.Sprint(r[tc]), time.UTC)
		if err != nil {
			continue
		}
		var id uint64
		fmt.Sscan(fmt.Sprint(r[idc]), &id)
		o := &h.b.obs
		o.mu.Lock()
		o.pending = append(o.pending, hbRead{id: id, ts: ts, file: h.file, pos: header.LogPos, readAt: read})
		if ts.After(o.newest) {
			o.newest = ts
		}
		o.mu.Unlock()
	}
}

// startHeartbeat checks the table; false (with a warning) if it is missing.
func (b *Bridge) startHeartbeat(ctx context.Context) bool {
	if b.heartbeat <= 0 || b.dsn.DBName == "" {
		return false
	}
	_, err := b.db.ExecContext(ctx, "SELECT 1 FROM `"+HeartbeatTable+"` LIMIT 0")
	var me *gomysql.MySQLError
	if errors.As(err, &me) && me.Number == 1146 {
		b.log.Warn("no heartbeat table (run the migrations, 00030): lag and commit→handler latency of binlog events are not measured",
			"table", HeartbeatTable)
		return false
	}
	if err != nil {
		b.log.Warn("heartbeats off", "error", err)
		return false
	}
	return true
}

// observeLoop writes heartbeats, stores where earlier ones were read,
// trims old ones, and reports progress, every interval until ctx ends.
func (b *Bridge) observeLoop(ctx context.Context) {
	every := b.heartbeat
	if !b.obs.hbOn.Load() {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var reported time.Time
	for beat := 0; ; beat++ {
		if b.obs.hbOn.Load() {
			b.beat(ctx, beat)
		}
		if time.Since(reported) >= time.Second-every/2 { // at most about once a second
			reported = time.Now()
			b.progress(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// trimEvery is how many beats pass between two trims of old heartbeats.
const trimEvery = 240

func (b *Bridge) beat(ctx context.Context, beat int) {
	res, err := b.db.ExecContext(ctx, "INSERT INTO `"+HeartbeatTable+"` (server_id, ts) VALUES (?, UTC_TIMESTAMP(6))",
		b.serverID())
	acked := time.Now()
	var id int64
	if err == nil {
		id, err = res.LastInsertId()
	}
	if err != nil && ctx.Err() == nil {
		b.log.Warn("writing a heartbeat", "error", err)
	}
	b.obs.mu.Lock()
	if b.obs.acked == nil {
		b.obs.acked = map[uint64]time.Time{}
	}
	if err == nil {
		b.obs.acked[uint64(id)] = acked
	}
	reads := b.obs.pending
	b.obs.pending = nil
	b.obs.mu.Unlock()
	if len(reads) > 0 {
		b.storeReads(ctx, reads)
	}
	if beat%trimEvery == trimEvery-1 {
		b.obs.mu.Lock()
		for id, at := range b.obs.acked { // never read back (a restart, a filter)
			if time.Since(at) > 10*time.Minute {
				delete(b.obs.acked, id)
			}
		}
		b.obs.mu.Unlock()
		b.db.ExecContext(ctx, "DELETE FROM `"+HeartbeatTable+"` WHERE server_id = ? AND ts < UTC_TIMESTAMP(6) - INTERVAL 10 MINUTE",
			b.serverID())
	}
}

// storeReads records where and when heartbeats were read back, and when
// their INSERT returned, in one statement; on failure they are kept for
// the next beat.
func (b *Bridge) storeReads(ctx context.Context, reads []hbRead) {
	const dbTime = "2006-01-02 15:04:05.999999"
	var q strings.Builder
	q.WriteString("INSERT INTO `" + HeartbeatTable + "` (id, server_id, ts, binlog_file, binlog_pos, read_at, acked_at) VALUES ")
	args := make([]any, 0, 7*len(reads))
	b.obs.mu.Lock()
	for i, r := range reads {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		var ack any // NULL when this run did not write it
		if at, ok := b.obs.acked[r.id]; ok {
			ack = at.UTC().Format(dbTime)
		}
		args = append(args, r.id, b.serverID(), r.ts.Format(dbTime), r.file, r.pos, r.readAt.UTC().Format(dbTime), ack)
	}
	b.obs.mu.Unlock()
	q.WriteString(" ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), binlog_pos = VALUES(binlog_pos), " +
		"read_at = VALUES(read_at), acked_at = VALUES(acked_at)")
	if _, err := b.db.ExecContext(ctx, q.String(), args...); err != nil {
		if ctx.Err() == nil {
			b.log.Warn("storing heartbeat positions; will retry", "error", err)
		}
		b.obs.mu.Lock()
		b.obs.pending = append(reads, b.obs.pending...)
		b.obs.mu.Unlock()
		return
	}
	b.obs.mu.Lock()
	for _, r := range reads {
		delete(b.obs.acked, r.id)
	}
	b.obs.mu.Unlock()
}

// progress computes where the bridge stands and reports it.
func (b *Bridge) progress(ctx context.Context) {
	p := Progress{Read: b.tracker.readPos(), Behind: -1, InFlight: b.subs.inflight.Load()}
	p.Acked, _, _ = b.tracker.advance()
	end, err := b.endPosition(ctx)
	if err == nil {
		p.End = end
		p.Behind = b.behind(ctx, p.Read, end)
	}
	o := &b.obs
	o.mu.Lock()
	if o.hbOn.Load() && !o.newest.IsZero() {
		p.Lag, p.LagKnown = max(time.Since(o.newest), 0), true
	}
	if p.Read != o.last.Read || p.Behind == 0 || o.moved.IsZero() {
		o.moved = time.Now()
	}
	o.last = p
	o.mu.Unlock()
	if b.observer != nil {
		b.observer.Progress(p)
	}
}

func (b *Bridge) endPosition(ctx context.Context) (Position, error) {
	var p Position
	var rest [2]sql.NullString
	err := b.db.QueryRowContext(ctx, "SHOW BINLOG STATUS").Scan(&p.File, &p.Pos, &rest[0], &rest[1])
	return p, err
}

// behind is the number of binlog bytes from read to end.
func (b *Bridge) behind(ctx context.Context, read, end Position) int64 {
	if read.File == "" {
		return -1
	}
	if read.File == end.File {
		return max(int64(end.Pos)-int64(read.Pos), 0)
	}
	rows, err := b.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return -1
	}
	defer rows.Close()
	var n int64
	in := false
	for rows.Next() {
		var name string
		var size int64
		cols, _ := rows.Columns()
		vals := []any{&name, &size}
		for len(vals) < len(cols) {
			vals = append(vals, new(sql.RawBytes))
		}
		if rows.Scan(vals...) != nil {
			return -1
		}
		switch {
		case name == read.File:
			in, n = true, size-int64(read.Pos)
		case name == end.File:
			return n + int64(end.Pos)
		case in:
			n += size
		}
	}
	return -1
}

// Health reports why the running bridge is not ready: the database does
// not answer, gearmand refuses jobs, or the bridge read nothing for the
// stall time while the server's binlog is ahead. nil when it is ready.
func (b *Bridge) Health(ctx context.Context) error {
	if !b.obs.running.Load() {
		if b.standing.Load() { // a standby (binlog.ha) is ready when it can reach the lease
			return b.db.PingContext(ctx)
		}
		return errors.New("bridge: not streaming")
	}
	var errs []error
	if err := b.db.PingContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("database: %w", err))
	}
	if b.subs.failing.Load() {
		errs = append(errs, errors.New("gearmand: submits are failing"))
	}
	b.obs.mu.Lock()
	since, last := time.Since(b.obs.moved), b.obs.last
	b.obs.mu.Unlock()
	if since > b.stallAfter {
		errs = append(errs, fmt.Errorf("%w: read position %s has not moved for %s, %d bytes behind the server",
			ErrStalled, last.Read, since.Round(time.Second), last.Behind))
	}
	return errors.Join(errs...)
}
