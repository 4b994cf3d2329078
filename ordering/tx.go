package ordering

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/internal/eventtx"
)

func init() {
	eventtx.With = func(ctx context.Context, tx *sql.Tx) context.Context { return withTx(ctx, &EventTx{q: tx}) }
}

// ErrTxBroken: a statement of the event's transaction failed in a way that
// ended the transaction on the server (a deadlock, ERROR 1213, rolls all of
// it back). Every later statement in it fails with this error, so that
// nothing the handler writes next commits on its own; the event fails and
// is retried.
var ErrTxBroken = errors.New("ordering: the event's transaction was rolled back by the server")

// EventTx is the transaction an ordered or gated event runs in: the one
// that holds its row's lock, records its seq and, for a trigger event,
// deletes its outbox row. What a handler writes through it commits with
// the event or not at all:
//
//   - applied exactly once: an event whose writes committed is never
//     applied again (its seq, or its gone outbox row, says so), and a
//     worker killed before the commit leaves nothing of them;
//   - in the row's commit order, even around a worker killed with -9: a
//     statement still in flight when the worker died belongs to the
//     transaction the server rolls back. A write through another
//     connection (the model's DB()) may, in that moment, land after a newer
//     event's writes.
//
// It runs at READ COMMITTED, on the orderer's own pool, whose connections
// take several statements per string (multiStatements): pass values as
// arguments, never concatenated into the query. Do not Commit or Rollback
// through it (the orderer does), nor keep it past the handler's return.
type EventTx struct {
	q      querier
	before func(context.Context) error // once, before the first statement (a batch's savepoint)
	broken error
}

type querier interface {
	execQuerier
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type txKey struct{}

// Tx returns the transaction of the event ctx belongs to: ctx as a handler
// receives it, for a row event of an ordered model (either source) or a
// trigger event. ok is false for other jobs and for unordered binlog
// models, which run in no transaction of rowgear's.
//
//	func (a *Article) TriggerUpdate(ctx context.Context, _ []string) error {
//		tx, ok := ordering.Tx(ctx)
//		if !ok {
//			return errors.New("article: not an ordered event")
//		}
//		_, err := tx.ExecContext(ctx, "UPDATE article_stats SET edits = edits + 1 WHERE article_id = ?", a.ID)
//		return err
//	}
func Tx(ctx context.Context) (tx *EventTx, ok bool) {
	tx, ok = ctx.Value(txKey{}).(*EventTx)
	return tx, ok
}

func withTx(ctx context.Context, tx *EventTx) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

// ExecContext runs a statement in the event's transaction.
func (t *EventTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	res, err := t.q.ExecContext(ctx, query, args...)
	return res, t.check(err)
}

// QueryContext runs a query in the event's transaction.
func (t *EventTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := t.q.QueryContext(ctx, query, args...)
	return rows, t.check(err)
}

// QueryRowContext runs a query expected to return at most one row, in the
// event's transaction. A broken transaction's error comes from Scan.
func (t *EventTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if err := t.ready(ctx); err != nil {
		// A *sql.Row carrying err: a canceled context makes QueryRowContext
		// return one without touching the connection.
		cctx, cancel := context.WithCancelCause(ctx)
		cancel(err)
		return t.q.QueryRowContext(cctx, query, args...)
	}
	return t.q.QueryRowContext(ctx, query, args...)
}

func (t *EventTx) ready(ctx context.Context) error {
	if t.broken != nil {
		return t.broken
	}
	if t.before != nil {
		before := t.before
		t.before = nil
		if err := before(ctx); err != nil {
			t.broken = fmt.Errorf("%w: %w", ErrTxBroken, err)
			return t.broken
		}
	}
	return nil
}

// check notes the errors after which the server has rolled the
// transaction back: a deadlock (1213) or a lost connection. Later
// statements would otherwise run outside any transaction, and commit on
// their own.
func (t *EventTx) check(err error) error {
	if err == nil {
		return nil
	}
	var me *gomysql.MySQLError
	if errors.As(err, &me) && me.Number != 1213 {
		return err // the statement failed; the transaction goes on
	}
	if t.broken == nil {
		t.broken = fmt.Errorf("%w: %w", ErrTxBroken, err)
	}
	return err
}
