package ordering

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
	"github.com/rowgear/rowgear/internal/sqlschema"
)

// A batch job (events.OpBatch) carries consecutive binlog events of one
// model. Its events still reach Wrap one by one, through the dispatcher's
// batch handler and each event's own chain, but share one transaction: the
// batch's first round trip locks the rows of all its events and reads
// their applied seqs; each event then runs or is skipped against those;
// the second round trip records the seqs of the events whose handler
// succeeded and commits. Two round trips and a few statements per batch
// instead of two round trips and a commit per event.
//
// Same guarantees as one event at a time: the rows are locked before any
// handler runs and until the commit, an event not newer than its row's
// applied seq is skipped, and a failed event's seq is not recorded (the
// retry guard retries it alone; it runs unless a newer event of its row
// was applied meanwhile, as with any retry).

type sessionKey struct{}

// session is one batch's transaction, for the Wrap calls of its events.
type session struct {
	o      *Orderer
	events map[string]*batchEvent // by event id (the sub-job's unique key)
	seq    map[string]string      // row key → applied seq, as this transaction sees it
	dirty  map[string]bool        // rows whose seq this batch advanced
	model  string
	gates  map[uint64]gateRow // trigger events' gate rows found, by id (locked)
	done   []uint64           // gate rows to delete at the commit: applied or superseded
	rows   []*rowsRead        // the rows of its outbox events with ReadRow, one per table
	conn   *sql.Conn          // the transaction's
	broken error              // the transaction ended on the server: the batch fails whole
}

type batchEvent struct {
	ev      *events.Envelope
	key     string
	payload []byte
	gate    uint64 // a trigger event's gate row; 0: a binlog event
}

// batchable reports whether ev can be ordered inside a batch's
// transaction: an event with seq of an ordered model, from the binlog or
// from the trigger outbox (the relay sends a row only once committed, so
// its gate row is locked and checked in the batch's first round trip, and
// deleted at its commit). Anything else in a batch takes the one-event
// path.
func (o *Orderer) batchable(ev *events.Envelope) bool {
	return (ev.Source == events.SourceBinlog || ev.Source == events.SourceTrigger) && ev.Seq != "" && !o.unordered[ev.Model]
}

// runBatch opens the batch's transaction, runs next (the dispatcher's batch
// handler, which calls Wrap for each event) and commits.
func (o *Orderer) runBatch(ctx context.Context, next gearman.Handler, job *gearman.Job) (any, error) {
	envs, err := eventwire.SplitBatch(job.Workload)
	if err != nil || !o.multi(ctx) {
		return next(ctx, job) // the dispatcher reports a bad batch; each event runs alone
	}
	ctx = eventwire.WithSplit(ctx, job.Workload, envs)
	s := &session{o: o, events: map[string]*batchEvent{}, seq: map[string]string{}, dirty: map[string]bool{}, gates: map[uint64]gateRow{}}
	evs := make([]*events.Envelope, len(envs))
	for i, e := range envs {
		ev, err := events.Decode(e)
		if err != nil {
			return next(ctx, job) // the dispatcher reports it
		}
		evs[i] = ev
		if !o.batchable(ev) {
			continue
		}
		key := string(rowKey(ev))
		s.model = ev.Model
		b := &batchEvent{ev: ev, key: key, payload: e}
		if ev.Source == events.SourceTrigger {
			if b.gate, err = gateID(ev); err != nil {
				continue // the one-event path fails it
			}
		}
		s.events[ev.ID] = b
		s.seq[key] = ""
	}
	if len(s.events) == 0 {
		return next(eventwire.WithDecoded(ctx, envs, evs), job)
	}
	tc, err := o.txConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("ordering: batch %s: begin: %w", job.Unique, err)
	}
	defer tc.close()
	// Batches that share rows, or insert the seq records of new rows
	// side by side, can deadlock while they lock (gap locks of INSERT … ON
	// DUPLICATE KEY UPDATE): InnoDB rolls one back before any handler ran,
	// so it simply locks again.
	for attempt := 1; ; attempt++ {
		lctx, cancel := context.WithTimeout(ctx, firstTripCap)
		err := s.lock(lctx, tc.Conn)
		cancel()
		if err == nil {
			break
		}
		if isUnknownColumn(err) && attempt < 5 {
			s.forgetReads() // a table changed since its reads were built
			clear(s.gates)
			continue
		}
		if !isDeadlock(err) || attempt == 5 {
			return nil, fmt.Errorf("ordering: batch %s: locking its rows: %w", job.Unique, err)
		}
		clear(s.gates)
		time.Sleep(time.Duration(attempt) * time.Duration(rand.IntN(10)+1) * time.Millisecond)
	}
	s.conn = tc.Conn
	out, err := next(eventwire.WithDecoded(context.WithValue(ctx, sessionKey{}, s), envs, evs), job)
	if err == nil && s.broken != nil {
		err = fmt.Errorf("ordering: batch %s: %w", job.Unique, s.broken)
	}
	if err != nil {
		return out, err // rolled back: the handlers that ran will run again
	}
	tc.ended = true
	if err := s.commit(tc.Conn); err != nil {
		return nil, fmt.Errorf("ordering: batch %s: commit: %w", job.Unique, err)
	}
	return out, nil
}

// lock creates the rows' seq records that do not exist yet, locks them all
// (in key order, so batches sharing rows wait for each other rather than
// deadlock) and reads their applied seqs, in the first round trip.
func (s *session) lock(ctx context.Context, conn *sql.Conn) error {
	keys := make([]string, 0, len(s.seq))
	for k := range s.seq {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	marks := strings.TrimSuffix(strings.Repeat("?,", len(keys)), ",")
	args := make([]any, 0, 3*len(keys))
	for _, k := range keys {
		args = append(args, []byte(k), s.model)
	}
	for _, k := range keys {
		args = append(args, []byte(k))
	}
	// ON DUPLICATE KEY UPDATE locks an existing record exclusively, where
	// INSERT IGNORE would share-lock it: two batches sharing a row would
	// then both hold it shared and deadlock on their way to exclusive.
	// The trigger events' gate rows are read, not locked: the relay sends
	// only committed rows, so there is no writer to wait for, and a copy
	// of the batch running at once waits for the rows' seq records below,
	// then finds its events applied. One plain read for all of them.
	q := beginSQL
	if ids := s.gateIDs(); len(ids) > 0 {
		q += "; SELECT id, digest, payload FROM " + s.o.gate(s.model) + " WHERE id IN (" + sqlschema.IDList(ids) + ")"
	}
	q += "; INSERT INTO rowgear_row_seq (row_key, model, seq) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?, ?, ''),", len(keys)), ",") +
		" ON DUPLICATE KEY UPDATE seq = seq; SELECT row_key, seq FROM rowgear_row_seq WHERE row_key IN (" + marks + ")"
	// The rows of outbox events with ReadRow, read once their rows' seq
	// records are locked: no earlier event of them is still running.
	reads, readArgs, err := s.reads(ctx)
	if err != nil {
		return err
	}
	rows, err := conn.QueryContext(ctx, q+reads, append(args, readArgs...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for more := true; more; more = rows.NextResultSet() {
		cols, _ := rows.Columns()
		for rows.Next() {
			if cols[0] == readTag {
				if err := scanRead(rows, s.rows...); err != nil {
					return err
				}
				continue
			}
			if len(cols) == 3 { // the gate rows
				var id uint64
				var g gateRow
				if err := rows.Scan(&id, &g.digest, &g.payload); err != nil {
					return err
				}
				s.gates[id] = g
				continue
			}
			var key, seq []byte
			if err := rows.Scan(&key, &seq); err != nil {
				return err
			}
			s.seq[string(key)] = string(seq)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// reads prepares the row reads of the batch's outbox events with
// ReadRow, one SELECT per table, for lock's round trip. Only the events
// whose gate row matches are completed from them (run): the reads of a
// forged event are read and dropped.
func (s *session) reads(ctx context.Context) (string, []any, error) {
	byTable := map[string][]*events.Envelope{}
	var order []string
	for _, b := range s.events {
		if !b.ev.ReadRow {
			continue
		}
		k := b.ev.Schema + "\x00" + b.ev.Table
		if byTable[k] == nil {
			order = append(order, k)
		}
		byTable[k] = append(byTable[k], b.ev)
	}
	s.rows = s.rows[:0]
	var q strings.Builder
	var args []any
	for i, k := range order {
		evs := byTable[k]
		src, err := s.o.source(ctx, evs[0])
		if err != nil {
			return "", nil, fmt.Errorf("event %s: reading its row from %s.%s: %w", evs[0].ID, evs[0].Schema, evs[0].Table, err)
		}
		sel, a, err := src.query(evs, i)
		if err != nil {
			return "", nil, err
		}
		q.WriteString("; " + sel)
		args = append(args, a...)
		s.rows = append(s.rows, &rowsRead{src: src, table: k, rows: map[string]events.Row{}})
	}
	return q.String(), args, nil
}

// forgetReads drops the rowSources of the batch's reads: a table changed.
func (s *session) forgetReads() {
	for _, b := range s.events {
		if b.ev.ReadRow {
			s.o.forget(b.ev)
		}
	}
}

// complete gives ev its row read by readRows; false when it is gone.
func (s *session) complete(ev *events.Envelope) bool {
	for _, r := range s.rows {
		if r.table != ev.Schema+"\x00"+ev.Table {
			continue
		}
		return r.complete(ev)
	}
	return false
}

// gateIDs lists the batch's gate rows, in id order.
func (s *session) gateIDs() []uint64 {
	var ids []uint64
	for _, b := range s.events {
		if b.gate != 0 {
			ids = append(ids, b.gate)
		}
	}
	slices.Sort(ids)
	return ids
}

// run is Wrap for one event of the batch: a trigger event whose gate row
// is gone is dropped (applied already), one whose row does not match is a
// forgery; an event not newer than its row's applied seq is skipped, else
// its handler runs; a success advances the seq. An applied or skipped
// trigger event's gate row goes at the commit; a failed one's stays.
func (s *session) run(ctx context.Context, next gearman.Handler, job *gearman.Job, b *batchEvent) (any, error) {
	if b.gate != 0 {
		g, found := s.gates[b.gate]
		if ok, err := s.o.checkGate(job, b.ev, found, g); err != nil || !ok {
			return nil, err
		}
	}
	if b.ev.Seq <= s.seq[b.key] {
		s.o.log.Debug("event skipped: a newer event of its row was applied", "event", b.ev.ID,
			"function", job.Function, "seq", b.ev.Seq, "applied", s.seq[b.key])
		s.applied(b)
		return nil, nil
	}
	if b.ev.ReadRow && !s.complete(b.ev) {
		s.o.rowGone(job, b.ev)
		s.applied(b)
		return nil, nil
	}
	if s.broken != nil {
		return nil, s.broken
	}
	saved := false
	et := &EventTx{q: s.conn, before: func(ctx context.Context) error {
		// The event's writes are undone alone when its handler fails;
		// a handler that writes nothing through the transaction pays no
		// round trip for it.
		_, err := s.conn.ExecContext(ctx, "SAVEPOINT rowgear_event")
		saved = err == nil
		return err
	}}
	out, err := next(withTx(ctx, et), job)
	if et.broken != nil {
		s.broken = et.broken
		return out, s.broken
	}
	if err != nil && saved {
		if _, rerr := s.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO SAVEPOINT rowgear_event"); rerr != nil {
			s.broken = fmt.Errorf("%w: undoing event %s's writes: %w", ErrTxBroken, b.ev.ID, rerr)
		}
	}
	if err == nil {
		s.seq[b.key], s.dirty[b.key] = b.ev.Seq, true
		s.applied(b)
	}
	return out, err
}

func (s *session) applied(b *batchEvent) {
	if b.gate != 0 {
		s.done = append(s.done, b.gate)
	}
}

// isUnknownColumn reports ERROR 1054: a table changed under a read.
func isUnknownColumn(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == 1054
}

// isDeadlock reports InnoDB's ERROR 1213.
func isDeadlock(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == 1213
}

// commit deletes the gate rows of the trigger events it applied or
// skipped, records the advanced seqs and commits, in one round trip.
func (s *session) commit(conn *sql.Conn) error {
	q := ""
	// One DELETE of an IN list: InnoDB looks each id up as a point of the
	// primary key (it locks no row past them), in ascending order, so two
	// batches never lock the same gate rows in opposite orders; a
	// statement per id cost the drain a third of its rate.
	if len(s.done) > 0 {
		q += "DELETE FROM " + s.o.gate(s.model) + " WHERE id IN (" + sqlschema.IDList(s.done) + "); "
	}
	if len(s.dirty) == 0 {
		return endTx(conn, q+"COMMIT")
	}
	// An UPDATE by key of records lock locked (and created): it takes no
	// lock it does not hold, so the commit cannot deadlock after the
	// handlers ran (which would run them again).
	var cases strings.Builder
	args := make([]any, 0, 3*len(s.dirty))
	keys := make([]any, 0, len(s.dirty))
	for k := range s.dirty {
		cases.WriteString(" WHEN ? THEN ?")
		args = append(args, []byte(k), s.seq[k])
		keys = append(keys, []byte(k))
	}
	q += "UPDATE rowgear_row_seq SET seq = CASE row_key" + cases.String() + " END WHERE row_key IN (" +
		strings.TrimSuffix(strings.Repeat("?,", len(keys)), ",") + "); COMMIT"
	return endTx(conn, q, append(args, keys...)...)
}

// inBatch returns the batch event job is, when it runs inside a batch's
// transaction.
func inBatch(ctx context.Context, job *gearman.Job) (*session, *batchEvent) {
	s, ok := ctx.Value(sessionKey{}).(*session)
	if !ok {
		return nil, nil
	}
	b := s.events[job.Unique]
	if b == nil || !bytes.Equal(b.payload, job.Workload) {
		return nil, nil
	}
	return s, b
}
