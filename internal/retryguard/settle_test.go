package retryguard_test

import (
	"context"
	"testing"
	"time"

	"github.com/rowgear/rowgear/internal/retryguard"
)

// TestSettleWaitsForTheReplay: a replayed dead letter's job can run, and
// succeed, before the replay commits the row's move to a retry (it commits
// after gearmand took the job). Its Settle must still delete the row: on a
// loaded machine a plain read found no retry and left the row, which ran
// again five minutes later.
func TestSettleWaitsForTheReplay(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if _, err := f.db.Exec(`INSERT INTO rowgear_failed_jobs (state, function, job_key, attempts, errors, payload, due_at)
		VALUES ('dead', 'ns.Ticket.update', 'k', 2, '[]', '{}', NOW(6))`); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := f.db.QueryRow("SELECT id FROM rowgear_failed_jobs").Scan(&id); err != nil {
		t.Fatal(err)
	}
	s := retryguard.NewStore(f.db)
	settled := make(chan error, 1)
	replayed := make(chan error, 1)
	go func() {
		_, err := s.TakeDead(ctx, []int64{id}, 5*time.Minute, func(retryguard.Entry) error {
			// gearmand took the job and a worker ran it: it settles now,
			// before this replay commits.
			go func() { settled <- s.Settle(ctx, "ns.Ticket.update", "k") }()
			select {
			case err := <-settled:
				settled <- err // it did not wait for the replay
			case <-time.After(time.Second):
			}
			return nil
		})
		replayed <- err
	}()
	if err := <-replayed; err != nil {
		t.Fatal(err)
	}
	if err := <-settled; err != nil {
		t.Fatal(err)
	}
	var n int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows left after the replayed job settled, want 0", n)
	}
}
