package ordering_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/ordering"
	"github.com/rowgear/rowgear/retry"
)

// TestGateGoneIsPermanent: a trigger event whose gate table is gone (its
// schema dropped while the event was in flight) fails with ErrGateGone,
// permanent, so the retry guard keeps it as a dead letter at once; on both
// of the Orderer's paths (one statement per round trip, and several).
func TestGateGoneIsPermanent(t *testing.T) {
	_, dsn := testenv.DB(t) // not migrated: no rowgear_gate
	plain, err := sql.Open("mysql", strings.Replace(dsn, "multiStatements=true", "multiStatements=false", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	db, err := ordering.OpenDB(dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	payload := `{"v": 1, "id": "ev-1", "source": "trigger", "schema": "gone", "table": "items", "model": "Item", "op": "delete", ` +
		`"pk": {"id": 1}, "row": {"id": 1}, "ts": "2026-11-28T00:00:00.000000Z", "seq": "00000000000000000007"}`
	for name, d := range map[string]*sql.DB{"multi": db, "plain": plain} {
		o, err := ordering.New(d)
		if err != nil {
			t.Fatal(err)
		}
		ran := false
		h := o.Wrap(func(context.Context, *gearman.Job) (any, error) { ran = true; return nil, nil })
		_, err = h(context.Background(), &gearman.Job{Function: "ns.Item.delete", Unique: "ev-1", Workload: []byte(payload)})
		if !errors.Is(err, ordering.ErrGateGone) || !errors.Is(err, retry.ErrPermanent) || ran {
			t.Errorf("%s: got %v (handler ran: %v), want a permanent ErrGateGone", name, err, ran)
		}
	}
}
