package ordering

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
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
}

type batchEvent struct {
	ev      *events.Envelope
	key     string
	payload []byte
}

// batchable reports whether ev can be ordered inside a batch's
// transaction: a binlog event with seq of an ordered model. Anything else
// in a batch takes the one-event path.
func (o *Orderer) batchable(ev *events.Envelope) bool {
	return ev.Source == events.SourceBinlog && ev.Seq != "" && !o.unordered[ev.Model]
}

// runBatch opens the batch's transaction, runs next (the dispatcher's batch
// handler, which calls Wrap for each event) and commits.
func (o *Orderer) runBatch(ctx context.Context, next gearman.Handler, job *gearman.Job) (any, error) {
	envs, err := eventwire.SplitBatch(job.Workload)
	if err != nil || !o.multi(ctx) {
		return next(ctx, job) // the dispatcher reports a bad batch; each event runs alone
	}
	ctx = eventwire.WithSplit(ctx, job.Workload, envs)
	s := &session{o: o, events: map[string]*batchEvent{}, seq: map[string]string{}, dirty: map[string]bool{}}
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
		s.events[ev.ID] = &batchEvent{ev: ev, key: key, payload: e}
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
	if err := s.lock(ctx, tc.Conn); err != nil {
		return nil, fmt.Errorf("ordering: batch %s: locking its rows: %w", job.Unique, err)
	}
	out, err := next(eventwire.WithDecoded(context.WithValue(ctx, sessionKey{}, s), envs, evs), job)
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
	q := beginSQL + "; INSERT INTO rowgear_row_seq (row_key, model, seq) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?, ?, ''),", len(keys)), ",") +
		" ON DUPLICATE KEY UPDATE seq = seq; SELECT row_key, seq FROM rowgear_row_seq WHERE row_key IN (" + marks + ")"
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for more := true; more; more = rows.NextResultSet() {
		for rows.Next() {
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

// run is Wrap for one event of the batch: skipped when not newer than its
// row's applied seq, else its handler runs; a success advances the seq.
func (s *session) run(ctx context.Context, next gearman.Handler, job *gearman.Job, b *batchEvent) (any, error) {
	if b.ev.Seq <= s.seq[b.key] {
		s.o.log.Debug("event skipped: a newer event of its row was applied", "event", b.ev.ID,
			"function", job.Function, "seq", b.ev.Seq, "applied", s.seq[b.key])
		return nil, nil
	}
	out, err := next(ctx, job)
	if err == nil {
		s.seq[b.key], s.dirty[b.key] = b.ev.Seq, true
	}
	return out, err
}

// commit records the advanced seqs and commits, in one round trip.
func (s *session) commit(conn *sql.Conn) error {
	if len(s.dirty) == 0 {
		return endTx(conn, "COMMIT")
	}
	q := "INSERT INTO rowgear_row_seq (row_key, model, seq) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?),", len(s.dirty)), ",") +
		" ON DUPLICATE KEY UPDATE seq = VALUES(seq); COMMIT"
	args := make([]any, 0, 3*len(s.dirty))
	for k := range s.dirty {
		args = append(args, []byte(k), s.model, s.seq[k])
	}
	return endTx(conn, q, args...)
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
