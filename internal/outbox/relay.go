// Package outbox relays the trigger source's outbox (triggers.mode: outbox)
// to gearmand.
//
// The generated trigger writes each event into a commit-gate row
// (rowgear_gate: fn, payload, relay_after) in the writer's transaction and
// rings the doorbell, a background job of <namespace>.outbox that the UDF
// sends without waiting for gearmand. A Relay runs in every worker process:
// woken by the doorbell, or by its poll when a ring was lost, it claims due
// rows, publishes them as the jobs the strict triggers used to submit (the
// payload with the row's id appended as seq), and moves each row's
// relay_after to when it is to be sent again. The worker deletes the row in
// the transaction that applies the event (package ordering), so a row that
// is still there when its time comes was lost on the way (a gearmand that
// died with its memory queue, a worker killed mid-job) or is still queued:
// it goes again, and the gate's check makes a second copy a no-op.
//
// # Claims
//
// One statement in READ COMMITTED, FOR UPDATE SKIP LOCKED, in the order of
// the relay_after index: the rows due at once (written by a trigger) in id
// order, then the rows whose resend time passed. A row whose writer has not
// committed is locked by it and skipped; its writer's doorbell, or the
// poll, finds it after the commit. Several relays (one per worker process)
// never claim the same row at once, and none needs a lease of its own: the
// claim is the lease. READ COMMITTED keeps the claim's locks off the gaps,
// so application inserts never wait for it.
//
// A doorbell rings inside the writer's statement, before its commit, so the
// claim it wakes may find nothing yet: the relay then looks again shortly
// (after 2, 10, 50 and 250 ms), before waiting for the next ring or poll.
//
// # MySQL 8
//
// The claim (SELECT … FOR UPDATE SKIP LOCKED, then UPDATE … WHERE id IN)
// runs on MySQL 8.0 as on MariaDB 10.6+. The worker's gate check uses
// MariaDB's DELETE … RETURNING (package ordering).
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strconv"
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
	// connection's database; default: sqlschema.GateTable.
	Tables []string
	// Namespace limits the relay to the events of this namespace's
	// functions: applications that share a database but not their gearmand
	// each relay their own. Empty: every row.
	Namespace string
	// ResendAfter is how long a published row waits for its handler before
	// it is sent again; default 30 s. Longer than the worst queue wait you
	// expect, or rows are sent twice (harmless, but work).
	ResendAfter time.Duration
	// Poll is how often the relay looks without a ring; default 1 s.
	Poll time.Duration
	// Batch is the most rows one claim takes; default 100 (a claim and its
	// publishing hold back the next: smaller claims keep latency down).
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
		o.Batch = 100
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
	return &Relay{db: db, pub: pub, o: o, ring: make(chan struct{}, 1), next: make(chan struct{})}, nil
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
var retryAfterRing = []time.Duration{2 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond}

// Run relays until ctx ends. While rows keep coming it drains again at
// once; once a look finds nothing it looks again after 2, 10, 50 and
// 250 ms (a ring comes before its writer's commit), then waits for a ring
// or the poll.
func (r *Relay) Run(ctx context.Context) {
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
			r.o.Logger.Warn("outbox relay: claiming rows failed; trying again at the next poll", "err", err)
		case n > 0:
			again, step = time.After(time.Millisecond), 0
		case step < len(retryAfterRing):
			again = time.After(retryAfterRing[step])
			step++
		}
	}
}

// Drain claims and publishes due rows of every table until a claim comes
// back short, and returns how many rows it published.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	total := 0
	for _, t := range r.o.Tables {
		for {
			rows, err := r.claim(ctx, t)
			if err != nil {
				return total, fmt.Errorf("outbox %s: %w", t, err)
			}
			total += r.publish(ctx, t, rows)
			if len(rows) < r.o.Batch || ctx.Err() != nil {
				break
			}
		}
	}
	return total, nil
}

type row struct {
	id      uint64
	fn      string
	payload []byte
}

// claim takes up to Batch due rows of table t and sets when they are due
// again.
func (r *Relay) claim(ctx context.Context, t string) ([]row, error) {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	where, args := "relay_after <= NOW(6)", []any{}
	if r.o.Namespace != "" {
		p := r.o.Namespace + "."
		where += " AND LEFT(fn, ?) = ?"
		args = append(args, len(p), p)
	}
	rs, err := tx.QueryContext(ctx, "SELECT id, fn, payload FROM "+t+
		" WHERE "+where+" ORDER BY relay_after, id LIMIT ? FOR UPDATE SKIP LOCKED", append(args, r.o.Batch)...)
	if err != nil {
		return nil, err
	}
	var rows []row
	for rs.Next() {
		var x row
		var fn sql.NullString
		if err := rs.Scan(&x.id, &fn, &x.payload); err != nil {
			rs.Close()
			return nil, err
		}
		x.fn = fn.String
		rows = append(rows, x)
	}
	if err := rs.Close(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
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
	ids := make([]string, len(rows))
	for i, x := range rows {
		ids[i] = strconv.FormatUint(x.id, 10)
	}
	_, err := ex.ExecContext(ctx, "UPDATE "+t+" SET relay_after = NOW(6) + INTERVAL ? MICROSECOND WHERE id IN ("+
		strings.Join(ids, ",")+")", after.Microseconds())
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
// rows went out. A row whose submit failed is due again in a second
// (gearmand may be back by then).
func (r *Relay) publish(ctx context.Context, t string, rows []row) int {
	var (
		mu     sync.Mutex
		failed []row
		wg     sync.WaitGroup
		sem    = make(chan struct{}, r.o.Concurrency)
		sent   atomic.Int64
	)
	for _, j := range r.jobs(t, rows) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			payload, unique := j.envs[0], j.unique
			if r.o.GroupBy > 1 {
				payload, unique = eventwire.EncodeBatch(j.envs), fmt.Sprintf("%s+%d", unique, len(j.rows))
			}
			if _, err := r.pub.Background(ctx, j.fn, payload, gearman.Normal, gearman.Unique(unique)); err != nil {
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
		r.o.Logger.Warn("outbox relay: submitting to gearmand failed; sending again in 1 s", "table", t, "rows", len(failed))
		if err := setDue(context.WithoutCancel(ctx), r.db, t, failed, time.Second); err != nil {
			r.o.Logger.Warn("outbox relay: could not make the rows due again; they go at their resend time", "err", err)
		}
	}
	return int(sent.Load())
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
