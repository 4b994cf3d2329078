package outbox

import (
	"context"
	"testing"
	"time"

	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

// TestMarkMovesUnderEitherAssignment: the cursor's UPDATE makes the old
// mark due_to and the old sent_to the mark once the mark is ResendAfter
// old, and leaves them while it is younger, whether MariaDB assigns left
// to right or all at once (sql_mode SIMULTANEOUS_ASSIGNMENT).
func TestMarkMovesUnderEitherAssignment(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	if _, err := migrations.Up(ctx, db, migrations.Rowgear().WithoutUDF()); err != nil {
		t.Fatal(err)
	}
	r := &Relay{o: Options{ResendAfter: time.Minute}}
	for _, mode := range []string{"", "SIMULTANEOUS_ASSIGNMENT"} {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = ?", mode); err != nil {
			t.Fatal(err)
		}
		step := func(age string, sentTo uint64) (mark, dueTo uint64) {
			t.Helper()
			if _, err := conn.ExecContext(ctx, "UPDATE rowgear_relay SET mark_at = NOW(6) - INTERVAL "+age+" WHERE name = 'n'"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, "UPDATE rowgear_relay SET "+promoteSQL+", sent_to = ? WHERE name = 'n'",
				append(r.promoteArgs(), sentTo)...); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRowContext(ctx, "SELECT mark, due_to FROM rowgear_relay WHERE name = 'n'").Scan(&mark, &dueTo); err != nil {
				t.Fatal(err)
			}
			return mark, dueTo
		}
		if _, err := conn.ExecContext(ctx, "REPLACE INTO rowgear_relay (name, sent_to, mark, due_to) VALUES ('n', 10, 5, 1)"); err != nil {
			t.Fatal(err)
		}
		if mark, dueTo := step("10 SECOND", 20); mark != 5 || dueTo != 1 {
			t.Errorf("sql_mode %q, a young mark: mark %d, due_to %d; want 5 and 1 left alone", mode, mark, dueTo)
		}
		if mark, dueTo := step("2 MINUTE", 30); mark != 20 || dueTo != 5 {
			t.Errorf("sql_mode %q, an old mark: mark %d, due_to %d; want 20 (the sent_to before) and 5 (the mark before)", mode, mark, dueTo)
		}
	}
}
