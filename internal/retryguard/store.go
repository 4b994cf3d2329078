package retryguard

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Store keeps retries and dead letters in the table rowgear_failed_jobs, and
// crash counts in rowgear_job_crashes (both created by migration 00004).
type Store struct {
	db *sql.DB
}

// NewStore returns a store over db.
func NewStore(db *sql.DB) *Store { return &Store{db: db} }

// Entry is a row of rowgear_failed_jobs.
type Entry struct {
	ID        int64
	State     string // "retry" or "dead"
	Function  string
	Key       string // the first run's unique key: the event id for row events
	Attempts  int    // runs so far (dead) or the number of the next run (retry)
	Errors    []Failure
	Payload   []byte
	DueAt     time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// LastError returns the most recent failure's text.
func (e Entry) LastError() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[len(e.Errors)-1].Error
}

// insert stores a retry or a dead letter. When the failed run was itself
// a stored retry (resubmitted, or a replay), replace deletes that retry's
// row in the same transaction: the row stays until its run has ended, so a
// gearmand that lost the resubmitted job loses nothing (ResubmitDue sends
// it again once its resend time passed).
func (s *Store) insert(ctx context.Context, state, fn string, h header, payload []byte, wait time.Duration, replace bool) error {
	errs, err := json.Marshal(h.Errors)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}) // see settle
	if err != nil {
		return fmt.Errorf("retry: store %s job %s: %w", state, fn, err)
	}
	defer tx.Rollback()
	if replace {
		if err := settle(ctx, tx, fn, h.Key); err != nil {
			return fmt.Errorf("retry: store %s job %s: %w", state, fn, err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO rowgear_failed_jobs
		(state, function, job_key, attempts, errors, payload, due_at)
		VALUES (?, ?, ?, ?, ?, ?, NOW(6) + INTERVAL ? MICROSECOND)`,
		state, fn, h.Key, h.Attempt, errs, payload, wait.Microseconds())
	if err != nil {
		return fmt.Errorf("retry: store %s job %s: %w", state, fn, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("retry: store %s job %s: %w", state, fn, err)
	}
	return nil
}

type execQuerier interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// settle deletes the stored retries of fn's job key, in db, a READ
// COMMITTED transaction: found by a locking read, then deleted by primary
// key, one by one. The locking read waits for a replay (take) that is
// handing the row to gearmand right now and commits its move from dead to
// retry only after the submit: a plain read, by a worker that ran the job
// before that commit, found no retry and left the row to run again at its
// resend time. READ COMMITTED keeps the read's locks on the matching rows
// (REPEATABLE READ's next-key locks, or a DELETE by function and key,
// deadlocked with the other workers' claims).
func settle(ctx context.Context, db execQuerier, fn, key string) error {
	rows, err := db.QueryContext(ctx, "SELECT id FROM rowgear_failed_jobs WHERE state = 'retry' AND function = ? AND job_key = ? FOR UPDATE", fn, key)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := db.ExecContext(ctx, "DELETE FROM rowgear_failed_jobs WHERE id = ? AND state = 'retry'", id); err != nil {
			return err
		}
	}
	return nil
}

// Settle deletes the stored retry of fn's job key, once its run has
// succeeded. A deadlock (InnoDB chose this statement) is tried again.
func (s *Store) Settle(ctx context.Context, fn, key string) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.settleTx(ctx, fn, key); err == nil {
			return nil
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1213 {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return fmt.Errorf("retry: settle %s %s: %w", fn, key, err)
}

func (s *Store) settleTx(ctx context.Context, fn, key string) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := settle(ctx, tx, fn, key); err != nil {
		return err
	}
	return tx.Commit()
}

// Schedule stores a retry due after wait; h.Attempt is the next run's
// number; replace: see insert.
func (s *Store) Schedule(ctx context.Context, fn string, h header, payload []byte, wait time.Duration, replace bool) error {
	return s.insert(ctx, "retry", fn, h, payload, wait, replace)
}

// Dead stores a dead letter; h.Attempt is the number of runs made;
// replace: see insert.
func (s *Store) Dead(ctx context.Context, fn string, h header, payload []byte, replace bool) error {
	return s.insert(ctx, "dead", fn, h, payload, 0, replace)
}

// Quarantine stores a dead letter for an event that never ran: one its
// source could not publish (binlogbridge's undecodable row changes), with
// reason as its only error and no attempts.
func (s *Store) Quarantine(ctx context.Context, fn, key, reason string, payload []byte) error {
	h := header{Key: key, Errors: []Failure{{At: time.Now().UTC(), Error: reason}}}
	return s.insert(ctx, "dead", fn, h, payload, 0, false)
}

const entryCols = "id, state, function, job_key, attempts, errors, payload, due_at, created_at, updated_at"

func scanEntry(sc interface{ Scan(...any) error }) (Entry, error) {
	var e Entry
	var errs []byte
	//lint:ignore SA1019 sql.NullTime cannot scan the text a DSN without parseTime returns; these columns are UTC
	var due, created, updated mysql.NullTime // whatever the DSN's parseTime
	if err := sc.Scan(&e.ID, &e.State, &e.Function, &e.Key, &e.Attempts, &errs, &e.Payload,
		&due, &created, &updated); err != nil {
		return e, err
	}
	e.DueAt, e.CreatedAt, e.UpdatedAt = due.Time, created.Time, updated.Time
	if err := json.Unmarshal(errs, &e.Errors); err != nil {
		return e, fmt.Errorf("retry: errors of failed job %d: %w", e.ID, err)
	}
	return e, nil
}

// List returns the entries in state ("dead", "retry", or "" for both),
// oldest first.
func (s *Store) List(ctx context.Context, state string) ([]Entry, error) {
	q := "SELECT " + entryCols + " FROM rowgear_failed_jobs"
	var args []any
	if state != "" {
		q += " WHERE state = ?"
		args = append(args, state)
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("retry: list: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// take locks up to limit rows matching where, hands each to submit, and
// makes each row submit acknowledged a retry due again after resend, all in
// one transaction: a row stays until its job's run has ended (the run
// settles it, see insert and Settle), and comes due again if gearmand lost
// the job. SKIP LOCKED lets several workers share
// the table. READ COMMITTED: the scan locks the rows it takes and no
// neighbours (REPEATABLE READ's next-key lock on the first row past the
// retries would make a concurrent `dead retry` skip a dead letter).
//
// Dead letters named by id are waited for instead of skipped: another
// worker's scan of the retries may hold one for a moment (READ COMMITTED
// locks a scanned row before it checks the WHERE), and a replay by id
// must not report it missing.
func (s *Store) take(ctx context.Context, where string, args []any, limit int, resend time.Duration, submit func(Entry) error) (int, error) {
	return s.takeLocked(ctx, where, args, limit, " SKIP LOCKED", resend, submit)
}

func (s *Store) takeLocked(ctx context.Context, where string, args []any, limit int, skip string, resend time.Duration, submit func(Entry) error) (int, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return 0, fmt.Errorf("retry: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT "+entryCols+" FROM rowgear_failed_jobs WHERE "+where+
		fmt.Sprintf(" ORDER BY due_at, id LIMIT %d FOR UPDATE", limit)+skip, args...)
	if err != nil {
		return 0, fmt.Errorf("retry: select: %w", err)
	}
	var due []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		due = append(due, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	var subErr error
	for _, e := range due {
		// A replayed dead letter becomes a retry of attempt 1 (its run's
		// header says so), its history kept. Before the submit: the job may
		// run and settle before this commits, and settle's locking read
		// then waits for this retry row; a failed submit takes it back.
		if _, err := tx.ExecContext(ctx, "SAVEPOINT rowgear_take"); err != nil {
			return 0, fmt.Errorf("retry: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE rowgear_failed_jobs SET state = 'retry', "+
			"attempts = IF(state = 'dead', 1, attempts), due_at = NOW(6) + INTERVAL ? MICROSECOND WHERE id = ?",
			resend.Microseconds(), e.ID); err != nil {
			return 0, fmt.Errorf("retry: resend time of %d: %w", e.ID, err)
		}
		if subErr = submit(e); subErr != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT rowgear_take"); err != nil {
				return 0, fmt.Errorf("retry: %w (after %w)", err, subErr)
			}
			break
		}
		n++
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("retry: commit: %w", err)
	}
	return n, subErr
}

func (s *Store) takeDue(ctx context.Context, limit int, resend time.Duration, submit func(Entry) error) (int, error) {
	return s.take(ctx, "state = 'retry' AND due_at <= NOW(6)", nil, limit, resend, submit)
}

// ErrNoEntry: a dead letter named by id does not exist.
var ErrNoEntry = errors.New("retry: no such dead letter")

func (s *Store) takeDead(ctx context.Context, ids []int64, resend time.Duration, submit func(Entry) error) (int, error) {
	if len(ids) == 0 {
		// The dead letters there now: a replayed job that fails again while
		// this runs gets a row of its own, with a higher id, which is left
		// for the next replay instead of being replayed in a loop.
		var last int64
		if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM rowgear_failed_jobs WHERE state = 'dead'").Scan(&last); err != nil {
			return 0, fmt.Errorf("retry: %w", err)
		}
		total := 0
		for {
			n, err := s.take(ctx, "state = 'dead' AND id <= ?", []any{last}, 100, resend, submit)
			total += n
			if err != nil || n == 0 {
				return total, err
			}
		}
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	where := "state = 'dead' AND id IN (?" + strings.Repeat(", ?", len(ids)-1) + ")"
	n, err := s.takeLocked(ctx, where, args, len(ids), "", resend, submit)
	if err == nil && n < len(ids) {
		err = fmt.Errorf("%w: %d of the %d ids asked for", ErrNoEntry, len(ids)-n, len(ids))
	}
	return n, err
}

// Purge deletes dead letters last updated before olderThan ago.
func (s *Store) Purge(ctx context.Context, olderThan time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM rowgear_failed_jobs WHERE state = 'dead' AND updated_at < NOW(6) - INTERVAL ? MICROSECOND",
		olderThan.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("retry: purge: %w", err)
	}
	return res.RowsAffected()
}

// RecordCrash counts one worker death while running job unique of fn.
func (s *Store) RecordCrash(ctx context.Context, fn, unique string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO rowgear_job_crashes (function, job_key, crashes)
		VALUES (?, ?, 1) ON DUPLICATE KEY UPDATE crashes = crashes + 1`, fn, unique)
	if err != nil {
		return fmt.Errorf("retry: record crash: %w", err)
	}
	return nil
}

// ClearCrash forgets the crashes of a job once they were counted.
func (s *Store) ClearCrash(ctx context.Context, fn, unique string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM rowgear_job_crashes WHERE function = ? AND job_key = ?", fn, unique)
	return err
}

// Crashes returns every recorded crash count.
func (s *Store) Crashes(ctx context.Context) (map[crashKey]int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT function, job_key, crashes FROM rowgear_job_crashes")
	if err != nil {
		return nil, fmt.Errorf("retry: load crashes: %w", err)
	}
	defer rows.Close()
	m := map[crashKey]int{}
	for rows.Next() {
		var k crashKey
		var n int
		if err := rows.Scan(&k.function, &k.unique, &n); err != nil {
			return nil, err
		}
		m[k] = n
	}
	return m, rows.Err()
}
