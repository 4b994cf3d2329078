// Package outbox relays the trigger source's outbox (triggers.mode: outbox)
// to gearmand.
//
// The generated trigger writes each event into a commit-gate row
// (rowgear_gate: fn, payload, relay_after) in the writer's transaction and
// rings the doorbell, a background job of <namespace>.outbox that the UDF
// sends without waiting for gearmand. A Relay runs in every worker process:
// woken by the doorbell, or by its poll when a ring was lost, it reads the
// committed rows past its cursor and publishes them as the jobs the strict
// triggers used to submit (the payload with the row's id appended as seq).
// The worker deletes the row in the transaction that applies the event
// (package ordering), so a row that is still there long after it was sent
// was lost on the way (a gearmand that died with its memory queue, a worker
// killed mid-job) or is still queued: the sweep sends it again, and the
// gate's check makes a second copy a no-op.
//
// # The cursor
//
// Each namespace has a cursor row in rowgear_relay beside the gate table
// (migration 00120): sent_to, the id up to which every committed row was
// read. A relay reads the next Batch rows past it by primary key (a plain
// read: it locks no outbox row and never waits for a writer), then moves
// sent_to to the last id read with a compare-and-set (UPDATE … WHERE
// sent_to = the value it read from). The compare-and-set is the claim:
// relays of several worker processes take turns, a relay whose set found
// the cursor moved drops its read and reads again from the new place, and
// no relay writes to the rows it sends (a claim that moved each row's
// relay_after took 19 µs of the database per row; the cursor's read,
// 1 µs). Two statements per run, neither waiting on a lock.
//
// A relay that found the cursor where it left it for a second (the usual
// case: one worker process, or one busy relay) publishes while its
// compare-and-set runs, not after it: on a loaded machine that round trip
// waited for a core, 1–4 ms at 2,000 writes/s on two cores, and every
// event paid it (end to end the rest of the path took it back on that
// saturated machine: docs/benchmarks.md, 2026-12-08). If the set then
// finds the cursor moved, the rows it read went out twice (the worker
// drops the second copy: its gate row is gone or its seq applied), and
// for a second the relay claims first again. So relays that take turns
// send each run of rows once; the copies are the rows of one read per
// relay when they start to take turns.
//
// An id the read skipped, below a row it found, belongs to a writer that
// had not committed (or rolled back, or to a row already deleted). The
// relay that skipped it looks for it again (in its first second at most
// every 5 ms, then at each poll) for ResendAfter, and publishes it once it
// is there; after that the sweep covers it.
//
// # The sweep
//
// Every Poll, beside its drains, a relay sweeps: a plain read finds the
// rows up to due_to (the cursor as it was one to two ResendAfter ago)
// that are still there and due (relay_after <= NOW(6)); those are claimed
// (FOR UPDATE SKIP LOCKED), published again and made due again
// ResendAfter later. The retry guard moves a held event's
// relay_after past its retry, and a dead letter's to NULL (never sent
// again but by a replay): the sweep leaves both alone.
//
// A doorbell rings inside the writer's statement, before its commit, so the
// read it wakes may find nothing yet: the relay then looks again shortly
// (after 1, 2, 3, 5, 8, … 233 ms: the gaps grow as the Fibonacci numbers),
// before waiting for the next ring or poll.
//
// # MySQL 8
//
// The cursor (a plain read, UPDATE … WHERE sent_to = ?) and the sweep
// (SELECT … FOR UPDATE SKIP LOCKED, then UPDATE … WHERE id IN) run on
// MySQL 8.0 as on MariaDB 10.6+. The worker's gate check uses MariaDB's
// DELETE … RETURNING (package ordering).
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
	"github.com/rowgear/rowgear/internal/funcname"
	"github.com/rowgear/rowgear/internal/sqlschema"
)

// Doorbell is the gearman function the triggers of namespace ns ring.
func Doorbell(ns string) string { return ns + ".outbox" }

// DefaultResendAfter is Options.ResendAfter's default.
const DefaultResendAfter = 30 * time.Second

// Publisher submits background jobs; *gearman.Client is one.
type Publisher interface {
	Background(ctx context.Context, fn string, workload any, p gearman.Priority, opts ...gearman.SubmitOption) (string, error)
}

// Options tune a Relay; zero values take the defaults.
type Options struct {
	// Tables are the gate tables to relay, qualified when not in the
	// connection's database; default: sqlschema.GateTable. A table named
	// twice (unqualified, and qualified by the connection's database) is
	// relayed once, under its first name.
	Tables []string
	// Namespace limits the relay to the events of this namespace's
	// functions: applications that share a database but not their gearmand
	// each relay their own. Empty: every row.
	Namespace string
	// ResendAfter is how long a published row waits for its handler before
	// the sweep sends it again: between one and two ResendAfter; default
	// 30 s. Longer than the worst queue wait you expect, or rows are sent
	// twice (harmless, but work).
	ResendAfter time.Duration
	// Poll is how often the relay looks without a ring; default 1 s.
	Poll time.Duration
	// Batch is the most rows one read of the cursor (or one claim of the
	// sweep) takes; default 1000.
	Batch int
	// Concurrency is how many jobs are submitted at once; default 8.
	Concurrency int
	// GroupBy sends up to this many consecutive rows of one model as one
	// <namespace>.<Model>.batch job (as binlogbridge's binlog.batch);
	// default 1, one job per event (what a PHP worker takes).
	GroupBy int
	Logger  *slog.Logger
}

// Relay publishes committed outbox rows; see the package documentation.
type Relay struct {
	db   *sql.DB
	pub  Publisher
	o    Options
	ring chan struct{}

	mu   sync.Mutex
	next chan struct{} // closed when the next drain to start has ended

	skips map[string]*skips // by table

	tmu      sync.Mutex
	distinct []string // Options.Tables, each table once; see tables

	cmu      sync.Mutex
	cursors  map[string]uint64    // by table: sent_to as this relay last saw it
	taken    map[string]time.Time // by table: when another relay last moved the cursor first
	started  time.Time
	aloneFor time.Duration // the const aloneFor; tests change it
}

// New returns a relay of db's gate tables to pub.
func New(db *sql.DB, pub Publisher, o Options) (*Relay, error) {
	if db == nil || pub == nil {
		return nil, errors.New("outbox: New: nil database or publisher")
	}
	if o.ResendAfter < 0 || o.Poll < 0 || o.Batch < 0 || o.Concurrency < 0 {
		return nil, fmt.Errorf("outbox: negative option in %+v", o)
	}
	if len(o.Tables) == 0 {
		o.Tables = []string{sqlschema.GateTable}
	}
	if o.ResendAfter == 0 {
		o.ResendAfter = DefaultResendAfter
	}
	if o.Poll == 0 {
		o.Poll = time.Second
	}
	if o.Batch == 0 {
		o.Batch = 1000
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.GroupBy == 0 {
		o.GroupBy = 1
	}
	if o.GroupBy > events.MaxBatch {
		return nil, fmt.Errorf("outbox: GroupBy %d: at most %d", o.GroupBy, events.MaxBatch)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Relay{db: db, pub: pub, o: o, ring: make(chan struct{}, 1), next: make(chan struct{}),
		skips: skipsOf(o.Tables), cursors: map[string]uint64{}, taken: map[string]time.Time{}, started: time.Now(), aloneFor: aloneFor}, nil
}

// Ring wakes the relay; rings that come while it works count as one.
func (r *Relay) Ring() {
	select {
	case r.ring <- struct{}{}:
	default:
	}
}

// ringHold caps how long Handler holds a ring job.
const ringHold = time.Second

// Handler is the doorbell's gearman handler: it wakes the relay and
// returns when a drain that started after the ring has ended (or after
// ringHold). Rings are background jobs with one unique key, which
// gearmand merges into the job while it is queued or running: holding the
// job through the drain makes every ring of that time one job, where
// returning at once made nearly every write a job for gearmand and the
// worker (8,536 ring jobs for 11,800 UPDATEs in cmd/bench's section 2).
// A ring merged into a drain that had already claimed is covered by the
// looks Run takes after each drain.
func (r *Relay) Handler(ctx context.Context, _ *gearman.Job) (any, error) {
	r.Ring()
	r.mu.Lock()
	done := r.next
	r.mu.Unlock()
	t := time.NewTimer(ringHold)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, nil
}

// drainRound is one drain of Run: it ends the rings' wait for it.
func (r *Relay) drainRound(ctx context.Context) (int, error) {
	r.mu.Lock()
	cur := r.next
	r.next = make(chan struct{})
	r.mu.Unlock()
	defer close(cur)
	return r.Drain(ctx)
}

// retryAfterRing is when the relay looks again after a ring that found
// nothing: the ring's writer may not have committed yet.
// The gaps grow slowly: a writer that commits a few ms after its ring (a
// loaded machine) is found a few ms later, where 2, 10, 50, 250 ms made
// the p99 of commit → handler 21 ms at 2,000 writes/s.
var retryAfterRing = []time.Duration{1 * ms, 2 * ms, 3 * ms, 5 * ms, 8 * ms, 13 * ms, 21 * ms, 34 * ms, 55 * ms, 89 * ms, 144 * ms, 233 * ms}

const ms = time.Millisecond

// Run relays until ctx ends. While rows keep coming it drains again at
// once; once a look finds nothing it looks again after 1, 2, 3, 5, 8, …
// 233 ms (a ring comes before its writer's commit), then waits for a ring
// or the poll. Beside it, every poll, it sweeps: apart, so a sweep that
// reads many rows never holds back the drains.
func (r *Relay) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { r.sweepEvery(ctx) })
	poll := time.NewTicker(r.o.Poll)
	defer poll.Stop()
	var again <-chan time.Time
	step := len(retryAfterRing)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.ring:
			step = 0
		case <-again:
		case <-poll.C:
		}
		again = nil
		n, err := r.drainRound(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			if !errors.Is(err, errGearmanDown) {
				r.o.Logger.Warn("outbox relay: reading rows failed; trying again at the next poll", "err", err)
			}
		case n > 0:
			again, step = time.After(time.Millisecond), 0
		case step < len(retryAfterRing):
			again = time.After(retryAfterRing[step])
			step++
		}
	}
}

// sweepEvery runs Sweep every poll until ctx ends.
func (r *Relay) sweepEvery(ctx context.Context) {
	t := time.NewTicker(r.o.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, errGearmanDown) {
			r.o.Logger.Warn("outbox relay: sweeping failed; trying again at the next poll", "err", err)
		}
	}
}

// Drain publishes the committed rows past each table's cursor, and the
// skipped ids that have come since, and returns how many rows it
// published. The sweep is Run's, at its poll.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	ts, err := r.tables(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range ts {
		for {
			n, read, err := r.drainOnce(ctx, t)
			total += n
			if err != nil {
				return total, err
			}
			if read < r.o.Batch || ctx.Err() != nil {
				break
			}
		}
		n, err := r.recheck(ctx, t, true)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// aloneFor is how long a relay must have moved its cursor without
// finding it moved by another relay before it publishes while it moves it.
const aloneFor = time.Second

// drainOnce reads a run of rows past t's cursor, moves the cursor past
// them and publishes them: while it moves it when the relay is alone (see
// the package documentation), after it otherwise. It reports a full read
// when the cursor had moved, so Drain reads again from the new place.
func (r *Relay) drainOnce(ctx context.Context, t string) (n, read int, _ error) {
	from, all, err := r.read(ctx, t)
	if err != nil || len(all) == 0 {
		return 0, 0, err
	}
	rows := make([]row, 0, len(all))
	for _, x := range all {
		if x.mine {
			rows = append(rows, x)
		}
	}
	var (
		claimed bool
		cerr    error
		ok      = true
	)
	if r.alone(t) {
		done := make(chan struct{})
		go func() { defer close(done); claimed, cerr = r.claim(ctx, t, from, all) }()
		n, ok = r.publishRead(ctx, t, rows)
		<-done
	} else if claimed, cerr = r.claim(ctx, t, from, all); claimed && cerr == nil {
		n, ok = r.publishRead(ctx, t, rows)
	}
	switch {
	case cerr != nil:
		return n, 0, fmt.Errorf("outbox %s: %w", t, cerr)
	case !ok:
		return n, 0, errGearmanDown
	case !claimed:
		return n, r.o.Batch, nil
	}
	return n, len(all), nil
}

type row struct {
	id      uint64
	fn      string
	payload []byte
	mine    bool // fn not NULL: the cursor's read gives other rows without it
}

// relayTable is the cursor table beside gate table t.
func relayTable(t string) string {
	return strings.TrimSuffix(t, sqlschema.GateTable) + "rowgear_relay"
}

// mine is the SQL condition of a row this relay sends: due (not held by
// the retry guard, not a dead letter, not a strict trigger's) and, with a
// namespace, one of its functions.
func (r *Relay) mine() (string, []any) {
	cond, args := "relay_after <= NOW(6)", []any{}
	if r.o.Namespace != "" {
		p := r.o.Namespace + "."
		cond += " AND LEFT(fn, ?) = ?"
		args = append(args, len(p), p)
	}
	return cond, args
}

// cursorAt is t's sent_to: the one this relay last saw, or read (and
// the cursor row created the first time).
func (r *Relay) cursorAt(ctx context.Context, t string) (uint64, error) {
	r.cmu.Lock()
	at, ok := r.cursors[t]
	r.cmu.Unlock()
	if ok {
		return at, nil
	}
	err := r.db.QueryRowContext(ctx, "SELECT sent_to FROM "+relayTable(t)+" WHERE name = ?", r.o.Namespace).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = r.db.ExecContext(ctx, "INSERT IGNORE INTO "+relayTable(t)+" (name) VALUES (?)", r.o.Namespace)
		at = 0
	}
	if err != nil {
		return 0, err
	}
	r.cmu.Lock()
	r.cursors[t] = at
	r.cmu.Unlock()
	return at, nil
}

// promoteSQL moves the mark once ResendAfter has passed since it was
// set: the mark becomes due_to and sent_to the new mark, so due_to is the
// cursor as it was between one and two ResendAfter ago. Right whether
// MariaDB assigns left to right or all at once (SIMULTANEOUS_ASSIGNMENT):
// every condition reads mark_at before it changes, and mark the sent_to
// before it does.
const promoteSQL = "due_to = IF(mark_at <= NOW(6) - INTERVAL ? MICROSECOND, mark, due_to), " +
	"mark = IF(mark_at <= NOW(6) - INTERVAL ? MICROSECOND, sent_to, mark), " +
	"mark_at = IF(mark_at <= NOW(6) - INTERVAL ? MICROSECOND, NOW(6), mark_at)"

func (r *Relay) promoteArgs() []any {
	us := r.o.ResendAfter.Microseconds()
	return []any{us, us, us}
}

// moveCursor moves t's sent_to from from to to, unless another relay
// moved it first (ok false): one statement, compare-and-set.
func (r *Relay) moveCursor(ctx context.Context, t string, from, to uint64) (ok bool, err error) {
	res, err := r.db.ExecContext(ctx, "UPDATE "+relayTable(t)+" SET "+promoteSQL+", sent_to = ? WHERE name = ? AND sent_to = ?",
		append(r.promoteArgs(), to, r.o.Namespace, from)...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// read reads up to Batch rows past t's cursor, the cursor's place first
// (a plain read: it waits for no writer). Every row past the cursor, so
// an id missing from the run is one its writer has not committed; the
// ones not to send come without their payload.
func (r *Relay) read(ctx context.Context, t string) (from uint64, _ []row, _ error) {
	from, err := r.cursorAt(ctx, t)
	if err != nil {
		return 0, nil, err
	}
	cond, cargs := r.mine()
	args := append(append(append([]any{}, cargs...), cargs...), from, r.o.Batch)
	all, err := r.query(ctx, r.db, "SELECT id, IF("+cond+", fn, NULL), IF("+cond+", payload, NULL) FROM "+t+
		" WHERE id > ? ORDER BY id LIMIT ?", args...)
	return from, all, err
}

// claim moves t's cursor from from past the rows read (all, not empty)
// and notes the ids they skipped for recheck; false when another relay
// moved the cursor meanwhile (that relay sends those rows).
func (r *Relay) claim(ctx context.Context, t string, from uint64, all []row) (bool, error) {
	now := time.Now()
	last := all[len(all)-1].id
	ok, err := r.moveCursor(ctx, t, from, last)
	if err != nil {
		return false, err
	}
	r.cmu.Lock()
	defer r.cmu.Unlock()
	if !ok {
		delete(r.cursors, t)
		r.taken[t] = now
		return false, nil
	}
	r.cursors[t] = last
	if from > 0 { // a first read starts at the oldest row
		prev := from
		for _, x := range all {
			r.skips[t].add(prev, x.id, now)
			prev = x.id
		}
	}
	return true, nil
}

// alone reports whether t's cursor has moved only by this relay's hand
// for aloneFor (counting from the relay's start).
func (r *Relay) alone(t string) bool {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	at, ok := r.taken[t]
	if !ok {
		at = r.started
	}
	return time.Since(at) >= r.aloneFor
}

func skipsOf(tables []string) map[string]*skips {
	m := make(map[string]*skips, len(tables))
	for _, t := range tables {
		m[t] = &skips{}
	}
	return m
}

// recheck publishes the ids of t the cursor skipped that are there now:
// the young ones (Drain) or all (the poll's Sweep); see skips.
func (r *Relay) recheck(ctx context.Context, t string, young bool) (int, error) {
	ids := r.skips[t].due(time.Now(), young, r.o.ResendAfter)
	total := 0
	cond, args := r.mine()
	for len(ids) > 0 && ctx.Err() == nil {
		part := ids[:min(len(ids), lookMax)]
		ids = ids[len(part):]
		rows, err := r.query(ctx, r.db, "SELECT id, fn, payload FROM "+t+" WHERE id IN ("+sqlschema.IDList(part)+") AND "+cond+" ORDER BY id", args...)
		if err != nil {
			return total, fmt.Errorf("outbox %s: looking for skipped rows: %w", t, err)
		}
		got := make(map[uint64]bool, len(rows))
		for _, x := range rows {
			got[x.id] = true
		}
		r.skips[t].found(got)
		n, ok := r.publishRead(ctx, t, rows)
		total += n
		if !ok {
			return total, errGearmanDown
		}
	}
	return total, nil
}

// query reads rows of (id, fn, payload).
func (r *Relay) query(ctx context.Context, q querier, stmt string, args ...any) ([]row, error) {
	rs, err := q.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var rows []row
	for rs.Next() {
		var x row
		var fn sql.NullString
		if err := rs.Scan(&x.id, &fn, &x.payload); err != nil {
			return nil, err
		}
		x.fn, x.mine = fn.String, fn.Valid
		rows = append(rows, x)
	}
	return rows, rs.Err()
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// Sweep sends again the rows of every table that were sent at least
// ResendAfter ago and are still there and due, and the skipped ids that
// have come since, and returns how many rows it published.
func (r *Relay) Sweep(ctx context.Context) (int, error) {
	ts, err := r.tables(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range ts {
		n, err := r.recheck(ctx, t, false)
		total += n
		if err != nil {
			return total, err
		}
		for {
			rows, err := r.sweep(ctx, t)
			if err != nil {
				return total, fmt.Errorf("outbox %s: sweeping: %w", t, err)
			}
			n, failed := r.publish(ctx, t, rows)
			total += n
			if len(failed) > 0 {
				if err := setDue(context.WithoutCancel(ctx), r.db, t, failed, time.Second); err != nil {
					r.o.Logger.Warn("outbox relay: could not make the rows due again; they go at their resend time", "err", err)
				}
				return total, errGearmanDown
			}
			if len(rows) < r.o.Batch || ctx.Err() != nil {
				break
			}
		}
	}
	return total, nil
}

// errGearmanDown ends a drain or sweep whose submit failed.
var errGearmanDown = errors.New("submitting to gearmand failed")

// sweep claims up to Batch rows of t up to its due_to that are still
// due, and makes them due again ResendAfter later.
func (r *Relay) sweep(ctx context.Context, t string) ([]row, error) {
	if _, err := r.cursorAt(ctx, t); err != nil { // the row, the first time
		return nil, err
	}
	if _, err := r.db.ExecContext(ctx, "UPDATE "+relayTable(t)+" SET "+promoteSQL+" WHERE name = ?",
		append(r.promoteArgs(), r.o.Namespace)...); err != nil {
		return nil, err
	}
	var dueTo uint64
	if err := r.db.QueryRowContext(ctx, "SELECT due_to FROM "+relayTable(t)+" WHERE name = ?", r.o.Namespace).Scan(&dueTo); err != nil {
		return nil, err
	}
	if dueTo == 0 {
		return nil, nil
	}
	// A plain read first: most sweeps find nothing, and a locking read
	// would lock (and wait on) every row it passes.
	cond, args := r.mine()
	rs, err := r.db.QueryContext(ctx, "SELECT id FROM "+t+" WHERE id <= ? AND "+cond+" ORDER BY id LIMIT ?",
		append(append([]any{dueTo}, args...), r.o.Batch)...)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for rs.Next() {
		var id uint64
		if err := rs.Scan(&id); err != nil {
			rs.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rs.Close(); err != nil || len(ids) == 0 {
		return nil, err
	}
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := r.query(ctx, tx, "SELECT id, fn, payload FROM "+t+" WHERE id IN ("+sqlschema.IDList(ids)+") AND "+cond+
		" ORDER BY id FOR UPDATE SKIP LOCKED", args...)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	if err := setDue(ctx, tx, t, rows, r.o.ResendAfter); err != nil {
		return nil, err
	}
	return rows, tx.Commit()
}

// setDue moves the rows' relay_after to after from now.
func setDue(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, t string, rows []row, after time.Duration) error {
	ids := make([]uint64, len(rows))
	for i, x := range rows {
		ids[i] = x.id
	}
	_, err := ex.ExecContext(ctx, "UPDATE "+t+" SET relay_after = NOW(6) + INTERVAL ? MICROSECOND WHERE id IN ("+
		sqlschema.IDList(ids)+")", after.Microseconds())
	return err
}

// Envelope is the job a row becomes: its payload with the row's id
// appended as seq, as the strict triggers send it (package ordering checks
// the rest against the row). ok is false when the payload is not a JSON
// object.
func Envelope(payload []byte, id uint64) ([]byte, bool) {
	n := len(payload)
	if n < 2 || payload[0] != '{' || payload[n-1] != '}' {
		return nil, false
	}
	out := make([]byte, 0, n+sqlschema.SeqSuffixLen)
	out = append(out, payload[:n-1]...)
	out = fmt.Appendf(out, `, "seq": "%020d"}`, id)
	return out, true
}

// job is what one submit carries: one row's event, or a batch of
// consecutive rows of one model.
type job struct {
	fn, unique string
	rows       []row
	envs       [][]byte // the rows' events, as published
}

// jobs turns the claimed rows of table t into jobs, in id order: runs of
// one model's rows become batch jobs of up to GroupBy events. A row that
// cannot be an event is logged and left for an operator (it stays until
// its resend time, and is logged again then).
func (r *Relay) jobs(t string, rows []row) []job {
	var out []job
	for _, x := range rows {
		env, ok := Envelope(x.payload, x.id)
		ns, model, _, err := funcname.Parse(x.fn)
		if !ok || err != nil {
			r.o.Logger.Error("outbox row is not an event: left for an operator", "table", t, "id", x.id, "function", x.fn)
			continue
		}
		// The table's checksum keeps the key short (gearmand takes at most
		// 63 bytes) and apart from another schema's row of the same id.
		unique := fmt.Sprintf("%08x#%d", crc32.ChecksumIEEE([]byte(t)), x.id)
		if n := len(out); r.o.GroupBy > 1 && n > 0 && out[n-1].fn == events.FuncName(ns, model, events.OpBatch) &&
			len(out[n-1].rows) < r.o.GroupBy {
			out[n-1].rows = append(out[n-1].rows, x)
			out[n-1].envs = append(out[n-1].envs, env)
			continue
		}
		fn := x.fn
		if r.o.GroupBy > 1 {
			fn = events.FuncName(ns, model, events.OpBatch)
		}
		out = append(out, job{fn: fn, unique: unique, rows: []row{x}, envs: [][]byte{env}})
	}
	return out
}

// publish submits rows' jobs, Concurrency at a time, and returns how many
// rows went out and the rows it could not submit. After a failed submit it
// submits no more (gearmand is likely away): the rest fail with it.
func (r *Relay) publish(ctx context.Context, t string, rows []row) (int, []row) {
	var (
		mu     sync.Mutex
		failed []row
		wg     sync.WaitGroup
		sem    = make(chan struct{}, r.o.Concurrency)
		sent   atomic.Int64
		down   atomic.Bool
	)
	for _, j := range r.jobs(t, rows) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			payload, unique := j.envs[0], j.unique
			if r.o.GroupBy > 1 {
				payload, unique = eventwire.EncodeBatch(j.envs), fmt.Sprintf("%s+%d", unique, len(j.rows))
			}
			if down.Load() {
				mu.Lock()
				failed = append(failed, j.rows...)
				mu.Unlock()
				return
			}
			if _, err := r.pub.Background(ctx, j.fn, payload, gearman.Normal, gearman.Unique(unique)); err != nil {
				down.Store(true)
				mu.Lock()
				failed = append(failed, j.rows...)
				mu.Unlock()
				return
			}
			sent.Add(int64(len(j.rows)))
		})
	}
	wg.Wait()
	if len(failed) > 0 && ctx.Err() == nil {
		r.o.Logger.Warn("outbox relay: submitting to gearmand failed; trying again at the next poll", "table", t, "rows", len(failed))
	}
	return int(sent.Load()), failed
}

// publishRead publishes rows the cursor (or a recheck) read: the ones it
// could not submit are looked for again like skipped ids, at each poll
// until ResendAfter, then by the sweep. ok is false when a submit failed.
func (r *Relay) publishRead(ctx context.Context, t string, rows []row) (n int, ok bool) {
	n, failed := r.publish(ctx, t, rows)
	if len(failed) == 0 {
		return n, true
	}
	ids := make([]uint64, len(failed))
	for i, x := range failed {
		ids[i] = x.id
	}
	r.skips[t].retry(ids, time.Now())
	return n, false
}

// Backlog counts the outbox rows of db's tables that wait for their
// handler (due, or published and not yet handled).
func Backlog(ctx context.Context, db *sql.DB, tables ...string) (int64, error) {
	if len(tables) == 0 {
		tables = []string{sqlschema.GateTable}
	}
	var total int64
	for _, t := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t+" WHERE relay_after IS NOT NULL").Scan(&n); err != nil {
			return total, fmt.Errorf("outbox %s: %w", t, err)
		}
		total += n
	}
	return total, nil
}
