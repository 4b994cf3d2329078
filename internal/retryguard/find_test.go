package retryguard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rowgear/rowgear/internal/retryguard"
)

// TestFind: each filter selects what it names; pages, ids and deletes.
func TestFind(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	for _, r := range []struct {
		fn, err string
		age     string
	}{
		{"ns.Ticket.update", `help desk is down`, "1 HOUR"},
		{"ns.Ticket.insert", `deadlock found`, "10 MINUTE"},
		{"ns.Task.update", `help desk is down`, "1 MINUTE"},
		{"ns.Task_x.update", `50% off`, "1 MINUTE"},
	} {
		if _, err := f.db.Exec(`INSERT INTO rowgear_failed_jobs (state, function, job_key, attempts, errors, payload, due_at, updated_at)
			VALUES ('dead', ?, 'k', 2, JSON_ARRAY(JSON_OBJECT('attempt', 2, 'error', ?)), '{}', NOW(6), UTC_TIMESTAMP(6) - INTERVAL `+r.age+`)`, r.fn, r.err); err != nil {
			t.Fatal(err)
		}
	}
	f.db.Exec(`INSERT INTO rowgear_failed_jobs (state, function, job_key, attempts, errors, payload, due_at) VALUES ('retry', 'ns.Ticket.update', 'r', 1, '[]', '{}', NOW(6))`)
	s := retryguard.NewStore(f.db)
	for name, c := range map[string]struct {
		f    retryguard.Filter
		want []string
	}{
		"all":             {retryguard.Filter{}, []string{"ns.Task_x.update", "ns.Task.update", "ns.Ticket.insert", "ns.Ticket.update"}},
		"function":        {retryguard.Filter{Function: "ns.Ticket.update"}, []string{"ns.Ticket.update"}},
		"model":           {retryguard.Filter{Model: "Task"}, []string{"ns.Task.update"}}, // not Task_x: _ is no wildcard
		"error":           {retryguard.Filter{Error: "HELP DESK"}, []string{"ns.Task.update", "ns.Ticket.update"}},
		"error with %":    {retryguard.Filter{Error: "50%"}, []string{"ns.Task_x.update"}},
		"since":           {retryguard.Filter{Since: time.Now().Add(-30 * time.Minute)}, []string{"ns.Task_x.update", "ns.Task.update", "ns.Ticket.insert"}},
		"until and model": {retryguard.Filter{Until: time.Now().Add(-5 * time.Minute), Model: "Ticket"}, []string{"ns.Ticket.insert", "ns.Ticket.update"}},
	} {
		es, total, err := s.Find(ctx, c.f, 0, 10)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Function)
		}
		if total != len(c.want) || len(got) != len(c.want) {
			t.Errorf("%s: %v (total %d), want %v", name, got, total, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: %v, want %v (newest first)", name, got, c.want)
				break
			}
		}
	}
	if es, total, _ := s.Find(ctx, retryguard.Filter{}, 3, 2); total != 4 || len(es) != 1 || es[0].Function != "ns.Ticket.update" {
		t.Errorf("the last page: %d of %d", len(es), total)
	}
	ids, err := s.FindIDs(ctx, retryguard.Filter{Error: "help desk"})
	if err != nil || len(ids) != 2 {
		t.Fatalf("FindIDs: %v %v", ids, err)
	}
	if e, err := s.Get(ctx, ids[0]); err != nil || e.Function != "ns.Ticket.update" || e.LastError() != "help desk is down" {
		t.Errorf("Get: %+v %v", e, err)
	}
	if n, err := s.Delete(ctx, ids...); n != 2 || err != nil {
		t.Errorf("Delete: %d %v", n, err)
	}
	if _, err := s.Get(ctx, ids[0]); !errors.Is(err, retryguard.ErrNoEntry) {
		t.Errorf("Get of a deleted one: %v", err)
	}
	var left int
	f.db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs").Scan(&left)
	if left != 3 { // two dead, and the retry Delete never touches
		t.Errorf("%d rows left, want 3", left)
	}
}
