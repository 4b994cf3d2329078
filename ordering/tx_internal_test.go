package ordering

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/gearman"
)

// fakeConn answers each statement with the next error of errs.
type fakeConn struct {
	errs  []error
	calls int
}

func (f *fakeConn) next() error {
	f.calls++
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func (f *fakeConn) ExecContext(context.Context, string, ...any) (sql.Result, error) {
	return nil, f.next()
}

func (f *fakeConn) QueryContext(context.Context, string, ...any) (*sql.Rows, error) {
	return nil, f.next()
}

func (f *fakeConn) QueryRowContext(context.Context, string, ...any) *sql.Row { return nil }

// A deadlock or a lost connection ends the transaction on the server: the
// statements after it must not run (they would commit on their own). A
// failed statement of another kind leaves the transaction going.
func TestEventTxStopsAfterTheServerEndedIt(t *testing.T) {
	ctx := context.Background()
	dup := &gomysql.MySQLError{Number: 1062, Message: "Duplicate entry"}
	for _, c := range []struct {
		name   string
		first  error
		broken bool
	}{
		{"duplicate key", dup, false},
		{"deadlock", &gomysql.MySQLError{Number: 1213, Message: "Deadlock found"}, true},
		{"connection lost", errors.New("invalid connection"), true},
	} {
		f := &fakeConn{errs: []error{c.first}}
		// A handler that ignores its statements' errors.
		handler := func(ctx context.Context, _ *gearman.Job) (any, error) {
			tx, ok := Tx(ctx)
			if !ok {
				t.Fatalf("%s: the handler got no event transaction", c.name)
			}
			if _, err := tx.ExecContext(ctx, "INSERT …"); !errors.Is(err, c.first) {
				t.Errorf("%s: first statement: %v; want its own error", c.name, err)
			}
			_, err := tx.QueryContext(ctx, "SELECT …")
			if got := errors.Is(err, ErrTxBroken); got != c.broken {
				t.Errorf("%s: second statement: %v; want ErrTxBroken %v", c.name, err, c.broken)
			}
			return nil, nil
		}
		_, err := runIn(ctx, f, handler, &gearman.Job{})
		if want := map[bool]int{true: 1, false: 2}[c.broken]; f.calls != want {
			t.Errorf("%s: %d statements reached the server; want %d", c.name, f.calls, want)
		}
		if got := err != nil; got != c.broken {
			t.Errorf("%s: a handler ignoring the error: event fails %v (%v); want %v", c.name, got, err, c.broken)
		}
	}
	// A batch event's savepoint comes before its first statement, once; a
	// failed savepoint breaks the transaction.
	saves := 0
	f := &fakeConn{}
	tx := &EventTx{q: f, before: func(context.Context) error { saves++; return nil }}
	tx.ExecContext(ctx, "a")
	tx.ExecContext(ctx, "b")
	if saves != 1 || f.calls != 2 {
		t.Errorf("savepoints %d, statements %d; want 1 and 2", saves, f.calls)
	}
	tx = &EventTx{q: f, before: func(context.Context) error { return errors.New("no savepoint") }}
	if _, err := tx.ExecContext(ctx, "a"); !errors.Is(err, ErrTxBroken) {
		t.Errorf("after a failed savepoint: %v; want ErrTxBroken", err)
	}
}
