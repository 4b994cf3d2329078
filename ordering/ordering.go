package ordering

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
	"github.com/rowgear/rowgear/internal/funcname"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/retry"
)

var (
	// ErrForged: a trigger event whose gate row exists but whose payload is
	// not the one the trigger hashed into it. It is a permanent error: the
	// retry guard keeps the job as a dead letter, for an operator to see.
	ErrForged = errors.New("ordering: trigger event does not match its commit gate (forged or altered)")
	// ErrNoSeq: a trigger event without seq, sent by a trigger generated
	// before the commit gate. Regenerate the triggers (`dbworker triggers
	// generate`, then migrate). Permanent too: the job is kept.
	ErrNoSeq = errors.New("ordering: trigger event has no seq (triggers generated before the commit gate: regenerate them)")
	// ErrGateGone: a trigger event whose commit-gate table no longer
	// exists: its schema was dropped (or rowgear's migrations rolled back)
	// while the event was in flight. Permanent: the job is kept as a dead
	// letter, to replay once the schema is back, or to purge.
	ErrGateGone = errors.New("ordering: the commit gate of this trigger event is gone (its schema was dropped while the event was in flight)")
	// ErrOption: New was given a bad option.
	ErrOption = errors.New("ordering: bad option")
)

// Orderer gates and orders row events; see the package documentation.
type Orderer struct {
	db        *sql.DB
	log       *slog.Logger
	unordered map[string]bool     // model → skips per-row ordering
	gateTable map[string]string   // model → qualified gate table, when not the default
	columns   map[string][]string // model → its configured columns (models.<Model>.columns)

	srcMu   sync.Mutex
	sources map[string]*rowSource // schema NUL table → how to read its rows (ReadRow)

	rcOnce sync.Once
	txOpts *sql.TxOptions // nil when the connections are READ COMMITTED already

	multiMu    sync.Mutex
	multiKnown bool // the probe had an answer
	multiOK    bool // db runs several statements, with placeholders, per round trip
}

// Option configures an Orderer.
type Option func(*Orderer) error

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *Orderer) error {
		if l == nil {
			return fmt.Errorf("%w: WithLogger(nil)", ErrOption)
		}
		o.log = l
		return nil
	}
}

// WithConfig takes from cfg's models section which models opted out of
// ordering (`ordered: false`), which live in another schema than the
// database's (their gate table is there, next to their triggers), and the
// columns of each model's row (`columns`: what an outbox trigger's event
// reads from the table; all when none).
func WithConfig(cfg *config.Config) Option {
	return func(o *Orderer) error {
		if cfg == nil {
			return fmt.Errorf("%w: WithConfig(nil)", ErrOption)
		}
		for name, m := range cfg.Models {
			if m.Unordered {
				o.unordered[name] = true
			}
			if m.Schema != "" {
				o.gateTable[name] = quote(m.Schema) + "." + sqlschema.GateTable
			}
			if len(m.Columns) > 0 {
				o.columns[name] = m.Columns
			}
		}
		return nil
	}
}

// WithUnordered opts models out of per-row ordering: their events run as
// they come, in parallel, still only after their commit (trigger source).
func WithUnordered(models ...string) Option {
	return func(o *Orderer) error {
		for _, m := range models {
			if m == "" {
				return fmt.Errorf("%w: WithUnordered: empty model name", ErrOption)
			}
			o.unordered[m] = true
		}
		return nil
	}
}

// New returns an Orderer keeping its state in db, the database where
// rowgear's migrations ran (rowgear_gate, rowgear_row_seq).
func New(db *sql.DB, opts ...Option) (*Orderer, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrOption)
	}
	o := &Orderer{db: db, log: slog.Default(), unordered: map[string]bool{}, gateTable: map[string]string{},
		columns: map[string][]string{}, sources: map[string]*rowSource{}}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Middleware returns the wrapper to install around every handler (for
// instance with the registry's Use). It acts on row events only
// (<namespace>.<Model>.insert|update|delete|snapshot); other jobs pass
// through.
func (o *Orderer) Middleware() func(next gearman.Handler) gearman.Handler {
	return o.Wrap
}

// Wrap returns next gated and ordered.
func (o *Orderer) Wrap(next gearman.Handler) gearman.Handler {
	return func(ctx context.Context, job *gearman.Job) (any, error) {
		if s, b := inBatch(ctx, job); s != nil {
			return s.run(ctx, next, job, b)
		}
		switch opOf(job.Function) {
		case events.OpInsert, events.OpUpdate, events.OpDelete, events.OpSnapshot:
			// a row event: gated and ordered below
		case events.OpBatch:
			return o.runBatch(ctx, next, job)
		default:
			return next(ctx, job)
		}
		ev, err := eventwire.DecodeContext(ctx, job.Workload)
		if err != nil {
			return next(ctx, job) // the dispatcher reports it, as a bad payload
		}
		ctx = eventwire.WithDecoded(ctx, [][]byte{job.Workload}, []*events.Envelope{ev})
		gated := ev.Source == events.SourceTrigger
		ordered := !o.unordered[ev.Model] && ev.Seq != ""
		if gated && ev.Seq == "" {
			return nil, retry.Permanent(fmt.Errorf("event %s (%s): %w", ev.ID, job.Function, ErrNoSeq))
		}
		if !gated && !ordered {
			return next(ctx, job)
		}
		if o.multi(ctx) {
			return o.runMulti(ctx, next, job, ev, gated, ordered)
		}
		return o.run(ctx, next, job, ev, gated, ordered)
	}
}

// opOf is the op (or job) part of a <namespace>.<Model>.<op> function
// name; "" for any other name.
func opOf(fn string) string {
	_, _, op, err := funcname.Parse(fn)
	if err != nil {
		return ""
	}
	return op
}

// run handles one event in a transaction that holds the gate row (shared)
// and the row's seq (exclusive) until the handler has returned.
func (o *Orderer) run(ctx context.Context, next gearman.Handler, job *gearman.Job, ev *events.Envelope, gated, ordered bool) (any, error) {
	tx, err := o.db.BeginTx(ctx, o.txOptions(ctx))
	if err != nil {
		return nil, fmt.Errorf("ordering: event %s: begin: %w", ev.ID, err)
	}
	defer tx.Rollback()
	if gated {
		if ok, err := o.verify(ctx, tx, job, ev); err != nil || !ok {
			return nil, err
		}
	}
	if ordered {
		newer, last, err := claim(ctx, tx, rowKey(ev), ev)
		if err != nil {
			return nil, fmt.Errorf("ordering: event %s: locking its row: %w", ev.ID, err)
		}
		if !newer {
			o.log.Debug("event skipped: a newer event of its row was applied", "event", ev.ID,
				"function", job.Function, "seq", ev.Seq, "applied", last)
			return nil, commit(tx, ev)
		}
	}
	if ev.ReadRow {
		if found, err := o.readRow(ctx, tx, ev); err != nil || !found {
			if err != nil {
				return nil, err
			}
			o.rowGone(job, ev)
			return nil, commit(tx, ev)
		}
	}
	out, err := runIn(ctx, tx, next, job)
	if err != nil {
		return out, err // rolled back: the gate row and the row's seq stay as they were
	}
	return out, commit(tx, ev)
}

// rowGone logs an outbox trigger's event dropped because its row is gone
// by the time it is handled: a delete or key change committed after it,
// and its event (with the before image) follows.
func (o *Orderer) rowGone(job *gearman.Job, ev *events.Envelope) {
	o.log.Debug("event skipped: its row is gone (a later delete's event follows)", "event", ev.ID,
		"function", job.Function, "seq", ev.Seq)
}

// runIn runs the handler with q as its event transaction (Tx). Its error
// is the handler's, or the transaction's when the handler ignored a
// statement that broke it: committing then would record the event as
// applied without its writes.
func runIn(ctx context.Context, q querier, next gearman.Handler, job *gearman.Job) (any, error) {
	et := &EventTx{q: q}
	out, err := next(withTx(ctx, et), job)
	if err == nil {
		err = et.broken
	}
	return out, err
}

// txOptions asks for READ COMMITTED, where gap locks cannot make two
// events of new rows deadlock, unless the connections are so already (a
// DSN with tx_isolation='READ-COMMITTED'), which saves a round trip per
// event.
func (o *Orderer) txOptions(ctx context.Context) *sql.TxOptions {
	o.rcOnce.Do(func() {
		o.txOpts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
		var level string
		if err := o.db.QueryRowContext(ctx, "SELECT @@SESSION.tx_isolation").Scan(&level); err == nil && level == "READ-COMMITTED" {
			o.txOpts = nil
		}
	})
	return o.txOpts
}

// verify waits for the writer's transaction to end (the shared lock on its
// gate row) and checks the payload against the gate's digest. ok is false
// when the event must not run: its writer rolled back (or it already ran).
func (o *Orderer) verify(ctx context.Context, tx *sql.Tx, job *gearman.Job, ev *events.Envelope) (ok bool, err error) {
	gate, err := gateID(ev)
	if err != nil {
		return false, err
	}
	// The DELETE waits for the writer's transaction like a shared-lock read
	// (a unique-key lookup never reads around a lock), and saves a round
	// trip: a failing handler rolls it back.
	var gr gateRow
	err = tx.QueryRowContext(ctx, "DELETE FROM "+o.gate(ev.Model)+" WHERE id = ? RETURNING digest, payload", gate).Scan(&gr.digest, &gr.payload)
	if errors.Is(err, sql.ErrNoRows) {
		return o.checkGate(job, ev, false, gr)
	}
	if gone := gateGone(ev, job, err); gone != nil {
		return false, gone
	}
	if err != nil {
		return false, fmt.Errorf("ordering: event %s: waiting for its commit: %w", ev.ID, err)
	}
	return o.checkGate(job, ev, true, gr)
}

// gateRow is what the gate's DELETE … RETURNING gives: the SHA-256 of the
// payload the trigger sent (strict and lenient triggers), or the payload
// itself (outbox triggers: the relay sent it).
type gateRow struct{ digest, payload []byte }

// Hold keeps the relay (triggers.mode: outbox) from sending a trigger
// event's outbox row again while the retry guard holds the event: for wait
// and then until resend, after a retry was scheduled; for good once it is a
// dead letter (park), until a replay of it runs, is handled and deletes
// the row, or Purge drops it. Other events, and the rows of strict and
// lenient triggers, are left alone.
func (o *Orderer) Hold(ctx context.Context, workload []byte, park bool, wait time.Duration) error {
	ev, err := eventwire.DecodeContext(ctx, workload)
	if err != nil || ev.Source != events.SourceTrigger || ev.Seq == "" {
		return nil
	}
	id, err := strconv.ParseUint(ev.Seq, 10, 64)
	body, ok := withoutSeq(workload, ev.Seq)
	if err != nil || !ok {
		return nil
	}
	// Only the row this very payload was written for: a job forged onto a
	// real row's id must not hold the real event back.
	if park {
		_, err = o.db.ExecContext(ctx, "UPDATE "+o.gate(ev.Model)+
			" SET relay_after = NULL WHERE id = ? AND digest IS NULL AND payload = ?", id, body)
	} else {
		_, err = o.db.ExecContext(ctx, "UPDATE "+o.gate(ev.Model)+
			" SET relay_after = GREATEST(relay_after, NOW(6) + INTERVAL ? MICROSECOND) WHERE id = ? AND relay_after IS NOT NULL AND payload = ?",
			wait.Microseconds(), id, body)
	}
	if err != nil {
		return fmt.Errorf("ordering: holding event %s's outbox row: %w", ev.ID, err)
	}
	return nil
}

// gateGone is ErrGateGone, permanent, when err says the gate table or its
// schema does not exist; else nil. Retrying cannot bring them back, and a
// retried event would only fail the same way until its attempts ran out.
func gateGone(ev *events.Envelope, job *gearman.Job, err error) error {
	var me *gomysql.MySQLError
	if !errors.As(err, &me) || !(me.Number == 1146 && strings.Contains(me.Message, sqlschema.GateTable) || me.Number == 1049) {
		return nil
	}
	return retry.Permanent(fmt.Errorf("event %s (%s): %w: %w", ev.ID, job.Function, ErrGateGone, err))
}

// gateID is the id of a trigger event's gate row: its seq.
func gateID(ev *events.Envelope) (uint64, error) {
	gate, err := strconv.ParseUint(ev.Seq, 10, 64)
	if err != nil {
		return 0, retry.Permanent(fmt.Errorf("event %s: seq %q: %w", ev.ID, ev.Seq, ErrForged))
	}
	return gate, nil
}

// checkGate judges what the gate's DELETE … RETURNING found: no row (the
// writer rolled back, or the event ran already: not to run), or a row
// whose digest or payload must be the job's.
func (o *Orderer) checkGate(job *gearman.Job, ev *events.Envelope, found bool, gr gateRow) (ok bool, err error) {
	if !found {
		o.log.Debug("event dropped: its transaction rolled back, or it was applied already", "event", ev.ID,
			"function", job.Function, "seq", ev.Seq)
		return false, nil
	}
	if !gr.matches(job.Workload, ev.Seq) {
		o.log.Warn("trigger event does not match its commit gate: not run", "event", ev.ID,
			"function", job.Function, "seq", ev.Seq)
		return false, retry.Permanent(fmt.Errorf("event %s (%s): %w", ev.ID, job.Function, ErrForged))
	}
	return true, nil
}

func commit(tx *sql.Tx, ev *events.Envelope) error {
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ordering: event %s: commit: %w", ev.ID, err)
	}
	return nil
}

func (o *Orderer) gate(model string) string {
	if t, ok := o.gateTable[model]; ok {
		return t
	}
	return sqlschema.GateTable
}

// claim sets the row's applied seq to ev's when ev is newer, holding the
// row's lock until the transaction ends: one event of a row at a time, in
// every worker process. last is the seq that was there.
func claim(ctx context.Context, tx execQuerier, key []byte, ev *events.Envelope) (newer bool, last string, err error) {
	// The common case, a row seen before, in one statement.
	res, err := tx.ExecContext(ctx, "UPDATE rowgear_row_seq SET seq = ? WHERE row_key = ? AND seq < ?", ev.Seq, key, ev.Seq)
	if err != nil {
		return false, "", err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, "", err
	}
	return claimNew(ctx, tx, key, ev)
}

// claimNew is claim after an UPDATE that changed nothing: the row is new
// (inserted with ev's seq), or it is there and was not older as far as the
// UPDATE could tell: read it under its lock, then decide.
func claimNew(ctx context.Context, tx execQuerier, key []byte, ev *events.Envelope) (newer bool, last string, err error) {
	res, err := tx.ExecContext(ctx, "INSERT IGNORE INTO rowgear_row_seq (row_key, model, seq) VALUES (?, ?, ?)", key, ev.Model, ev.Seq)
	if err != nil {
		return false, "", err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, "", err
	}
	if err := tx.QueryRowContext(ctx, "SELECT seq FROM rowgear_row_seq WHERE row_key = ? FOR UPDATE", key).Scan(&last); err != nil {
		return false, "", err
	}
	if ev.Seq <= last {
		return false, last, nil
	}
	_, err = tx.ExecContext(ctx, "UPDATE rowgear_row_seq SET seq = ? WHERE row_key = ?", ev.Seq, key)
	return err == nil, last, err
}

// rowKey identifies a row: model, source and primary key (sorted columns,
// compacted values, as both sources write them).
func rowKey(ev *events.Envelope) []byte {
	h := sha1.New()
	h.Write([]byte(ev.Model + "\x00" + ev.Source))
	cols := make([]string, 0, len(ev.PK))
	for c := range ev.PK {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	for _, c := range cols {
		h.Write([]byte("\x00" + c + "\x00"))
		h.Write(ev.PK[c])
	}
	return h.Sum(nil)
}

// matches reports whether the job's payload is the one the gate row was
// written for.
func (gr gateRow) matches(workload []byte, seq string) bool {
	body, ok := withoutSeq(workload, seq)
	if !ok {
		return false
	}
	if gr.digest == nil {
		// An outbox row: the payload as the trigger wrote it.
		return gr.payload != nil && bytes.Equal(body, gr.payload)
	}
	sum := sha256.Sum256(body)
	return bytes.Equal(gr.digest, sum[:])
}

// withoutSeq is the payload without the seq suffix the trigger or the
// relay appended (sqlschema.SeqSuffixLen bytes, `, "seq": "<20 digits>"}`),
// closed again with its brace.
func withoutSeq(payload []byte, seq string) ([]byte, bool) {
	n := len(payload) - sqlschema.SeqSuffixLen
	if n <= 0 || len(seq) != 20 || string(payload[n:]) != `, "seq": "`+seq+`"}` {
		return nil, false
	}
	return append(payload[:n:n], '}'), true
}

// Execer is a transaction Once writes in: a *sql.Tx, or an *EventTx.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Once records eventID as applied in tx, the transaction in which a
// handler makes its own writes, and reports whether this is the first
// time. (A handler writing through the event's own transaction, Tx, needs
// no Once: those writes are applied exactly once already.) When it returns
// false, the event's effects are already committed: commit nothing more
// (a redelivered event, a retry after a crash between the handler's commit
// and the job's end). A concurrent Once of the same event waits for tx to
// end.
//
//	tx, _ := db.BeginTx(ctx, nil)
//	defer tx.Rollback()
//	if first, err := ordering.Once(ctx, tx, a.Event().ID); err != nil || !first {
//		return err
//	}
//	… the handler's writes, in tx …
//	return tx.Commit()
func Once(ctx context.Context, tx Execer, eventID string) (first bool, err error) {
	if eventID == "" || len(eventID) > events.MaxIDLen {
		return false, fmt.Errorf("ordering: Once: event id %q: want 1 to %d bytes", eventID, events.MaxIDLen)
	}
	res, err := tx.ExecContext(ctx, "INSERT IGNORE INTO rowgear_applied (event_id) VALUES (?)", eventID)
	if err != nil {
		return false, fmt.Errorf("ordering: Once %s: %w", eventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("ordering: Once %s: %w", eventID, err)
	}
	return n == 1, nil
}

// Purge deletes what is older than olderThan: Once's records (an event
// redelivered after that would apply again) and gate rows whose job never
// came (a lenient trigger's failed submit, a gearmand that lost its memory
// queue; a trigger event still waiting in a queue or as a dead letter past
// that age is then dropped as rolled back). It returns the rows deleted.
func Purge(ctx context.Context, db *sql.DB, olderThan time.Duration) (int64, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("ordering: Purge: olderThan %v: want > 0", olderThan)
	}
	secs := int64(olderThan / time.Second)
	var total int64
	for _, q := range []string{
		"DELETE FROM rowgear_applied WHERE applied_at < NOW() - INTERVAL ? SECOND",
		// Outbox rows (relay_after set) are events still to deliver, never
		// purged: the relay sends them until they are handled.
		"DELETE FROM " + sqlschema.GateTable + " WHERE created_at < NOW() - INTERVAL ? SECOND AND relay_after IS NULL",
	} {
		res, err := db.ExecContext(ctx, q, secs)
		if err != nil {
			return total, fmt.Errorf("ordering: Purge: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

func quote(id string) string { return "`" + strings.ReplaceAll(id, "`", "``") + "`" }
