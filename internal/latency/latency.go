// Package latency measures the time from a row change's commit to the start
// of its handler, to the millisecond, and exports its distribution as the
// Prometheus histogram rowgear_commit_to_handler_seconds{source}.
//
// Where the commit time comes from:
//
//   - Trigger events carry ts = UTC_TIMESTAMP(6), taken by the trigger at
//     the row change, inside the writing transaction: for an autocommit
//     statement that is its commit to within the statement's own run time.
//     Observed when the handler starts.
//   - Binlog events carry the binlog header's time: whole seconds, at the
//     statement's start. binlogbridge therefore writes a heartbeat row
//     every 250 ms (--heartbeat) with the database's clock to the
//     microsecond, and records where and when it read it back in the
//     binlog and when its INSERT returned (table rowgear_heartbeat,
//     migration 00030): a heartbeat's commit lies between its timestamp
//     and the earlier of those two. An event's commit time is interpolated
//     by binlog position between the heartbeats before and after it in the
//     same binlog file, never earlier than its header second, and bounded
//     by when the bridge read it (the envelope's read_at) less the shortest
//     stream delay measured on recent heartbeats (read minus commit).
//     While the bridge keeps up, that bound is the commit time to within the
//     stream delay's jitter (sub-millisecond on one host), bursts included.
//     While it catches up on a backlog, the interpolation applies: it
//     assumes a steady write rate between two heartbeats, so a burst can be
//     placed up to one heartbeat interval off. The handler start is kept
//     until the heartbeat after the event has been read back (well under a
//     second), then observed. Events before the first heartbeat of a binlog
//     file, or not resolved within a minute, are counted in
//     rowgear_commit_to_handler_unresolved_total instead.
//
// The database's and the worker's clocks must agree (NTP): the measure
// includes their offset. Retried runs are not measured (their wait is the
// retry policy's, not the pipeline's).
package latency

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
)

// Tracker measures commit → handler latency; see the package doc.
type Tracker struct {
	db         *sql.DB
	hist       *prometheus.HistogramVec
	unresolved prometheus.Counter
	sample     func(source string, d time.Duration)
	interval   time.Duration
	giveUp     time.Duration

	inner atomic.Bool // HandlerStart is mounted

	mu      sync.Mutex
	pending []pending
}

type pending struct {
	file   string
	pos    uint64
	header time.Time // the event's header second: commit is not earlier
	readAt time.Time // when the bridge read it (zero: unknown)
	start  time.Time // handler start
}

// Option configures a Tracker.
type Option func(*Tracker) error

// WithRegistry registers the histogram and the unresolved counter on reg.
func WithRegistry(reg prometheus.Registerer) Option {
	return func(t *Tracker) error {
		if err := reg.Register(t.hist); err != nil {
			return err
		}
		return reg.Register(t.unresolved)
	}
}

// WithSample calls f with every measured latency as well (benchmarks keep
// the exact distribution through it).
func WithSample(f func(source string, d time.Duration)) Option {
	return func(t *Tracker) error { t.sample = f; return nil }
}

// WithResolveInterval sets how often binlog events are resolved against
// the heartbeats (default 250 ms).
func WithResolveInterval(d time.Duration) Option {
	return func(t *Tracker) error {
		if d <= 0 {
			return fmt.Errorf("latency: resolve interval %s: want > 0", d)
		}
		t.interval = d
		return nil
	}
}

// New returns a tracker reading heartbeats from db (the database the bridge
// writes them to; nil: binlog events are not measured).
func New(db *sql.DB, opts ...Option) (*Tracker, error) {
	t := &Tracker{db: db, interval: 250 * time.Millisecond, giveUp: time.Minute,
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rowgear_commit_to_handler_seconds",
			Help:    "From a row change's commit (µs heartbeats for the binlog, the trigger's UTC_TIMESTAMP(6)) to its handler's start, by source.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18), // 0.5 ms … 65 s
		}, []string{"source"}),
		unresolved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rowgear_commit_to_handler_unresolved_total",
			Help: "Binlog events whose commit time could not be placed between two heartbeats.",
		}),
	}
	for _, o := range opts {
		if err := o(t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Middleware measures each first run of a row event: mount it outermost,
// before the retry guard, so that it sees the payload as gearmand delivered
// it (a retried run carries the guard's header and is not measured) and the
// run's outcome (a run left to gearmand is not measured: its next run is).
// The handler's start is when HandlerStart, mounted innermost, saw the run
// through; without it, when this middleware did. Its signature is
// dispatch.Middleware's.
func (t *Tracker) Middleware(next gearman.Handler) gearman.Handler {
	return func(ctx context.Context, job *gearman.Job) (any, error) {
		entered := time.Now()
		w := job.Workload
		if len(w) == 0 || w[0] != '{' { // not a first-run envelope (a retry, a plain job)
			return next(ctx, job)
		}
		s := &slot{}
		out, err := next(context.WithValue(ctx, slotKey{}, s), job)
		if errors.Is(err, gearman.ErrRequeue) {
			return out, err
		}
		start := s.start
		if !s.reached {
			if t.inner.Load() { // mounted, and not reached: no handler ran (an event skipped)
				return out, err
			}
			start = entered
		}
		t.note(w, start)
		return out, err
	}
}

// HandlerStart notes when a run reaches the application's handler, past
// the retry guard and ordering's wait for the writer's commit: mount it
// innermost. Its signature is dispatch.Middleware's.
func (t *Tracker) HandlerStart(next gearman.Handler) gearman.Handler {
	t.inner.Store(true)
	return func(ctx context.Context, job *gearman.Job) (any, error) {
		if s, ok := ctx.Value(slotKey{}).(*slot); ok && !s.reached {
			s.start, s.reached = time.Now(), true
		}
		return next(ctx, job)
	}
}

// slot carries a run's handler start from HandlerStart out to Middleware.
type slot struct {
	start   time.Time
	reached bool
}

type slotKey struct{}

func (t *Tracker) note(w []byte, start time.Time) {
	env, err := events.Decode(w)
	if err != nil {
		return // the handler reports it
	}
	switch env.Source {
	case events.SourceTrigger:
		t.observe(env.Source, start.Sub(env.TS))
	case events.SourceBinlog:
		file, pos, ok := parsePos(env.Pos)
		if !ok || t.db == nil {
			t.unresolved.Inc()
			return
		}
		t.mu.Lock()
		t.pending = append(t.pending, pending{file: file, pos: pos, header: env.TS, readAt: env.ReadAt, start: start})
		t.mu.Unlock()
	}
}

func parsePos(s string) (string, uint64, bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseUint(s[i+1:], 10, 64)
	return s[:i], p, err == nil
}

func (t *Tracker) observe(source string, d time.Duration) {
	t.hist.WithLabelValues(source).Observe(d.Seconds())
	if t.sample != nil {
		t.sample(source, d)
	}
}

// Run resolves binlog events against the heartbeats until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	tk := time.NewTicker(t.interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		if err := t.Resolve(ctx); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

type beat struct {
	pos    uint64
	ts     time.Time // the INSERT's start, by the database's clock
	commit time.Time // the closest bound above the commit: min(acked, read) by the bridge's clock
	readAt time.Time // read by the bridge, by its clock
}

// Resolve observes every noted binlog event that now lies between two
// heartbeats read back by the bridge.
func (t *Tracker) Resolve(ctx context.Context) error {
	t.mu.Lock()
	ps := t.pending
	t.pending = nil
	t.mu.Unlock()
	if len(ps) == 0 {
		return nil
	}
	oldest := ps[0].header
	for _, p := range ps {
		if p.header.Before(oldest) {
			oldest = p.header
		}
	}
	beats, err := t.heartbeats(ctx, oldest.Add(-time.Minute))
	if err != nil {
		t.mu.Lock()
		t.pending = append(ps, t.pending...)
		t.mu.Unlock()
		return err
	}
	delay, known := minDelay(beats)
	var keep []pending
	for _, p := range ps {
		bound := time.Time{}
		if known && !p.readAt.IsZero() {
			bound = p.readAt.Add(-delay)
		}
		at, ok := commitTime(beats[p.file], p.pos, bound)
		switch {
		case ok:
			if at.Before(p.header) {
				at = p.header
			}
			t.observe(events.SourceBinlog, p.start.Sub(at))
		case time.Since(p.start) > t.giveUp:
			t.unresolved.Inc()
		default:
			keep = append(keep, p)
		}
	}
	t.mu.Lock()
	t.pending = append(keep, t.pending...)
	t.mu.Unlock()
	return nil
}

// heartbeats returns the heartbeats read back since from, by binlog file,
// in position order.
func (t *Tracker) heartbeats(ctx context.Context, from time.Time) (map[string][]beat, error) {
	rows, err := t.db.QueryContext(ctx, "SELECT binlog_file, binlog_pos, DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f'), "+
		"DATE_FORMAT(read_at, '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(acked_at, '%Y-%m-%d %H:%i:%s.%f') FROM rowgear_heartbeat "+
		"WHERE binlog_file IS NOT NULL AND ts >= ? ORDER BY binlog_file, binlog_pos", from.UTC().Format("2006-01-02 15:04:05.999999"))
	if err != nil {
		return nil, fmt.Errorf("latency: heartbeats: %w", err)
	}
	defer rows.Close()
	out := map[string][]beat{}
	for rows.Next() {
		var f, ts string
		var readAt, acked sql.NullString
		var b beat
		if err := rows.Scan(&f, &b.pos, &ts, &readAt, &acked); err != nil {
			return nil, fmt.Errorf("latency: heartbeats: %w", err)
		}
		if b.ts, err = time.ParseInLocation(dbTime, ts, time.UTC); err != nil {
			return nil, fmt.Errorf("latency: heartbeat time %q: %w", ts, err)
		}
		if readAt.Valid {
			b.readAt, _ = time.ParseInLocation(dbTime, readAt.String, time.UTC)
		}
		// ts is the INSERT's start; its commit came before the bridge had
		// the INSERT's answer and before it read the row: the earlier of
		// the two is the closer to the commit (under load an INSERT's
		// commit can take milliseconds).
		for _, s := range []sql.NullString{acked, readAt} {
			if t, err := time.ParseInLocation(dbTime, s.String, time.UTC); s.Valid && err == nil && t.After(b.ts) {
				if b.commit.IsZero() || t.Before(b.commit) {
					b.commit = t
				}
			}
		}
		if b.commit.IsZero() {
			b.commit = b.ts
		}
		out[f] = append(out[f], b)
	}
	return out, rows.Err()
}

const dbTime = "2006-01-02 15:04:05.999999"

// minDelay is the shortest stream delay (read by the bridge minus
// written) of the heartbeats: the transport's own delay, without the
// queueing of a bridge that fell behind.
func minDelay(beats map[string][]beat) (time.Duration, bool) {
	var d time.Duration
	known := false
	for _, bs := range beats {
		for _, b := range bs {
			if b.readAt.IsZero() {
				continue
			}
			if x := b.readAt.Sub(b.commit); !known || x < d {
				d, known = x, true
			}
		}
	}
	return d, known
}

// commitTime places position pos between the heartbeats (sorted by
// position) around it: interpolated by position, but not later than bound
// (when the bridge read it less the transport's delay; zero: none), nor
// earlier than the heartbeat before it. The interpolation is what a bridge
// catching up on a backlog gives; the read bound is what a bridge keeping
// up gives, exact for a burst between two heartbeats where interpolation
// is not.
func commitTime(beats []beat, pos uint64, bound time.Time) (time.Time, bool) {
	i := sort.Search(len(beats), func(i int) bool { return beats[i].pos > pos })
	if i == 0 || i == len(beats) {
		return time.Time{}, false
	}
	lo, hi := beats[i-1], beats[i]
	if pos == lo.pos {
		return lo.commit, true
	}
	frac := float64(pos-lo.pos) / float64(hi.pos-lo.pos)
	at := lo.commit.Add(time.Duration(frac * float64(hi.commit.Sub(lo.commit))))
	if !bound.IsZero() && bound.Before(at) {
		at = bound
		if at.Before(lo.commit) {
			at = lo.commit
		}
	}
	return at, true
}
