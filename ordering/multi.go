package ordering

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
)

// OpenDB opens a connection pool for the orderer alone on dsn (a
// go-sql-driver/mysql DSN, the application's): with multiStatements and
// interpolateParams, which let the orderer begin an event's transaction,
// wait for its commit gate and claim its row in one round trip (the
// handler's commit is the second), and keeping idle connections open, one
// per job the worker runs at once (fewer would open a connection per
// event). Do not hand this pool to other code: multiStatements lets one
// string run several statements.
func OpenDB(dsn string, idle int) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("ordering: OpenDB: dsn: %w", err)
	}
	if idle < 1 {
		return nil, fmt.Errorf("%w: OpenDB: idle %d: want 1 or more", ErrOption, idle)
	}
	cfg.MultiStatements = true
	cfg.InterpolateParams = true
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("ordering: OpenDB: dsn: %w", err)
	}
	db := sql.OpenDB(c)
	db.SetMaxIdleConns(idle)
	return db, nil
}

// multi reports whether the orderer's database runs several statements
// with placeholders in one round trip (a pool from OpenDB). Asked once; a
// failure to connect is not an answer, and is asked again next time.
func (o *Orderer) multi(ctx context.Context) bool {
	o.multiMu.Lock()
	defer o.multiMu.Unlock()
	if o.multiKnown {
		return o.multiOK
	}
	rows, err := o.db.QueryContext(ctx, "SELECT ?; SELECT ?", 1, 2)
	if err == nil {
		for rows.Next() {
		}
		o.multiOK = rows.NextResultSet()
		err = rows.Close()
	}
	var me *mysql.MySQLError
	if err == nil || errors.As(err, &me) {
		o.multiKnown = true
		o.multiOK = o.multiOK && err == nil
		if !o.multiOK {
			o.log.Info("ordering: one round trip per statement (open the orderer's database with ordering.OpenDB for the faster path)")
		}
	}
	return o.multiOK
}

// The statements of runMulti's first round trip. SET TRANSACTION applies
// to the transaction it starts: READ COMMITTED, where gap locks cannot make
// two events of new rows deadlock.
const (
	beginSQL = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION"
	// The UPDATE claims a row seen before, the common case, and tells
	// whether it did (0 or 1). The INSERT IGNORE of a new row waits for
	// the next round trip: tacked on here it would cost every event
	// ≈100 µs of server time (measured) for the few that need it.
	claimSQL = "; UPDATE rowgear_row_seq SET seq = ? WHERE row_key = ? AND seq < ?; SELECT ROW_COUNT()"
)

// runMulti is run in two round trips: begin, gate and claim in one, the
// handler, then commit (or rollback). Same transaction, same statements,
// same guarantees as run.
func (o *Orderer) runMulti(ctx context.Context, next gearman.Handler, job *gearman.Job, ev *events.Envelope, gated, ordered bool) (out any, err error) {
	q := beginSQL
	var args []any
	if gated {
		gate, err := gateID(ev)
		if err != nil {
			return nil, err
		}
		q += "; DELETE FROM " + o.gate(ev.Model) + " WHERE id = ? RETURNING digest, payload"
		args = append(args, gate)
	}
	var key []byte
	if ordered {
		key = rowKey(ev)
		q += claimSQL
		args = append(args, ev.Seq, key, ev.Seq)
	}
	// The row of an outbox event with ReadRow, read in the same trip once
	// the claim holds its row's seq record; used only if the gate matches.
	var read *rowsRead
	var readSQL string
	var readArgs []any
	if gated && ordered && ev.ReadRow {
		src, err := o.source(ctx, ev)
		if err != nil {
			return nil, fmt.Errorf("ordering: event %s: reading its row from %s.%s: %w", ev.ID, ev.Schema, ev.Table, err)
		}
		if readSQL, readArgs, err = src.query([]*events.Envelope{ev}, 0); err != nil {
			return nil, err
		}
		q += "; " + readSQL
		args = append(args, readArgs...)
		read = &rowsRead{src: src, rows: map[string]events.Row{}}
	}
	tc, err := o.txConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("ordering: event %s: begin: %w", ev.ID, err)
	}
	defer tc.close()
	conn := tc.Conn
	fctx, cancel := context.WithTimeout(ctx, firstTripCap)
	found, gr, updated, err := readFirst(fctx, conn, q, args, gated, ordered, read)
	cancel()
	if isUnknownColumn(err) && read != nil {
		o.forget(ev) // the table changed: the next attempt reads it anew
	}
	if gone := gateGone(ev, job, err); gated && gone != nil {
		return nil, gone
	}
	if err != nil {
		return nil, fmt.Errorf("ordering: event %s: waiting for its commit, locking its row: %w", ev.ID, err)
	}
	if gated {
		if ok, err := o.checkGate(job, ev, found, gr); err != nil || !ok {
			return nil, err
		}
	}
	fresh := read != nil && updated // the row read after the claim
	if ordered && !updated {
		var newer bool
		var last string
		if read != nil {
			newer, last, fresh, err = claimNewReading(ctx, conn, key, ev, read, readSQL, readArgs)
		} else {
			newer, last, err = claimNew(ctx, conn, key, ev)
		}
		if err != nil {
			return nil, fmt.Errorf("ordering: event %s: locking its row: %w", ev.ID, err)
		}
		if !newer {
			o.log.Debug("event skipped: a newer event of its row was applied", "event", ev.ID,
				"function", job.Function, "seq", ev.Seq, "applied", last)
			tc.ended = true
			return nil, commitConn(conn, ev)
		}
	}
	if ev.ReadRow {
		var ok bool
		if fresh {
			ok = read.complete(ev)
		} else if ok, err = o.readRow(ctx, conn, ev); err != nil {
			return nil, err
		}
		if !ok {
			o.rowGone(job, ev)
			tc.ended = true
			return nil, commitConn(conn, ev)
		}
	}
	out, err = runIn(ctx, conn, next, job)
	if err != nil {
		return out, err // rolled back: the gate row and the row's seq stay as they were
	}
	tc.ended = true
	return out, commitConn(conn, ev)
}

// claimNewReading is claimNew for an event with ReadRow whose row is new
// to rowgear_row_seq (its first event): the INSERT that claims it and the
// row's read (sel, args) go in one round trip, the read after the claim,
// into read (emptied first). fresh says the read counts; when the INSERT
// found the record there (another event of the row got there first),
// claimNew decides under the record's lock and fresh is false.
func claimNewReading(ctx context.Context, conn *sql.Conn, key []byte, ev *events.Envelope, read *rowsRead, sel string, args []any) (newer bool, last string, fresh bool, err error) {
	rows, err := conn.QueryContext(ctx, "INSERT IGNORE INTO rowgear_row_seq (row_key, model, seq) VALUES (?, ?, ?); SELECT ROW_COUNT(); "+sel,
		append([]any{key, ev.Model, ev.Seq}, args...)...)
	if err != nil {
		return false, "", false, err
	}
	defer rows.Close()
	n, err := count(rows)
	if err != nil {
		return false, "", false, err
	}
	clear(read.rows)
	for rows.NextResultSet() {
		for rows.Next() {
			if err := scanRead(rows, read); err != nil {
				return false, "", false, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return false, "", false, err
	}
	if err := rows.Close(); err != nil {
		return false, "", false, err
	}
	if n == 1 {
		return true, "", true, nil
	}
	newer, last, err = claimNew(ctx, conn, key, ev)
	return newer, last, false, err
}

// txConn is a connection of the pool holding one transaction: close rolls
// it back unless it ended (committed) already, and returns the connection.
type txConn struct {
	*sql.Conn
	ended bool
}

func (o *Orderer) txConn(ctx context.Context) (*txConn, error) {
	c, err := o.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &txConn{Conn: c}, nil
}

func (c *txConn) close() {
	if !c.ended {
		endTx(c.Conn, "ROLLBACK")
	}
	c.Conn.Close()
}

// firstTripCap bounds the first round trip of an event or a batch. The
// server ends its own waits (innodb_lock_wait_timeout, 50 s by default);
// this ends the client's: a worker once sat 4 minutes reading the results
// of a multi-statement whose later statement had failed, its slot lost.
// The context's end closes the connection, and the event is retried.
const firstTripCap = 2 * time.Minute

// readFirst sends runMulti's first round trip and reads its answers: the
// gate row (found false when there is none), whether the UPDATE claimed
// the row, and the event's row into read (when not nil).
func readFirst(ctx context.Context, conn *sql.Conn, q string, args []any, gated, ordered bool, read *rowsRead) (found bool, gr gateRow, updated bool, err error) {
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return false, gr, false, err
	}
	defer rows.Close()
	if gated {
		if rows.Next() {
			found = true
			if err := rows.Scan(&gr.digest, &gr.payload); err != nil {
				return false, gr, false, err
			}
		}
		if ordered && !rows.NextResultSet() {
			return false, gr, false, errOr(rows.Err(), "no claim result")
		}
	}
	if ordered {
		n, err := count(rows)
		if err != nil {
			return false, gr, false, err
		}
		updated = n == 1
	}
	for rows.NextResultSet() {
		for read != nil && rows.Next() {
			if err := scanRead(rows, read); err != nil {
				return false, gr, false, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return false, gr, false, err
	}
	return found, gr, updated, rows.Close()
}

func count(rows *sql.Rows) (int64, error) {
	var n int64
	if !rows.Next() {
		return 0, errOr(rows.Err(), "no ROW_COUNT()")
	}
	err := rows.Scan(&n)
	return n, err
}

func errOr(err error, what string) error {
	if err != nil {
		return err
	}
	return errors.New(what)
}

// execQuerier is a transaction: a *sql.Tx, or a *sql.Conn in one.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func commitConn(conn *sql.Conn, ev *events.Envelope) error {
	if err := endTx(conn, "COMMIT"); err != nil {
		return fmt.Errorf("ordering: event %s: commit: %w", ev.ID, err)
	}
	return nil
}

// endTx commits or rolls back conn's transaction, whatever became of the
// job's context; a connection where that failed is closed rather than
// returned to the pool with a transaction open.
func endTx(conn *sql.Conn, stmt string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := conn.ExecContext(ctx, stmt, args...)
	if err != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}
