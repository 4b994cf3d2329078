package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/outbox"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

func TestMain(m *testing.M) { testenv.RunWithoutLeaks(m, nil) }

// published records what the relay submits.
type published struct {
	mu  sync.Mutex
	fns []string
}

func (p *published) Background(_ context.Context, fn string, _ any, _ gearman.Priority, _ ...gearman.SubmitOption) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fns = append(p.fns, fn)
	return "H:test", nil
}

func (p *published) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.fns)
}

// TestRingJobLastsThroughADrain: the doorbell's job ends only after a
// drain that began after the ring, so every row committed before a ring
// is published when its job ends (what lets gearmand merge the rings of
// that time into the one job).
func TestRingJobLastsThroughADrain(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	if _, err := migrations.Up(ctx, db, migrations.Rowgear().WithoutUDF()); err != nil {
		t.Fatal(err)
	}
	pub := &published{}
	// An hour's poll: only the rings wake the relay.
	r, err := outbox.New(db, pub, outbox.Options{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	for i := 1; i <= 20; i++ {
		if _, err := db.Exec("INSERT INTO rowgear_gate (digest, fn, payload, relay_after) VALUES (REPEAT('x', 32), 'ns.Box.update', '{}', '1000-01-01')"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Handler(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if got := pub.count(); got != i {
			t.Fatalf("ring %d's job ended with %d rows published, want %d", i, got, i)
		}
	}
}

// TestRingJobEndsWithoutARelay: a ring with no relay running ends after
// its cap, never holding a worker's slot for good.
func TestRingJobEndsWithoutARelay(t *testing.T) {
	db, _ := testenv.DB(t)
	r, err := outbox.New(db, &published{}, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.Handler(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the ring's job waited for its context's end, want its cap")
	}
}

// gateRow writes an outbox row of function fn as a trigger would and
// returns its id.
func gateRow(t *testing.T, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, fn string) uint64 {
	t.Helper()
	res, err := ex.ExecContext(context.Background(), "INSERT INTO rowgear_gate (fn, payload, relay_after) VALUES (?, '{\"v\": 1}', '1000-01-01')", fn)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	return uint64(id)
}

// ids records the rows the relay submits, by the seq of their envelope.
type ids struct {
	mu   sync.Mutex
	seen map[uint64]int
}

func (p *ids) Background(_ context.Context, _ string, w any, _ gearman.Priority, _ ...gearman.SubmitOption) (string, error) {
	var env struct {
		Seq string `json:"seq"`
	}
	if err := json.Unmarshal(w.([]byte), &env); err != nil {
		return "", err
	}
	id, _ := strconv.ParseUint(env.Seq, 10, 64)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[uint64]int{}
	}
	p.seen[id]++
	return "H:test", nil
}

func (p *ids) times(id uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[id]
}

func migrated(t *testing.T) *sql.DB {
	t.Helper()
	db, _ := testenv.DB(t)
	if _, err := migrations.Up(context.Background(), db, migrations.Rowgear().WithoutUDF()); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestSweepSendsAgainWhatWasNotHandled: a row still there a while after
// the cursor sent it (its job lost) goes again, once per resend time; one
// the retry guard holds, or a dead letter's, does not.
func TestSweepSendsAgainWhatWasNotHandled(t *testing.T) {
	db := migrated(t)
	ctx := context.Background()
	const resend = 200 * time.Millisecond
	pub := &ids{}
	r, err := outbox.New(db, pub, outbox.Options{Poll: time.Hour, ResendAfter: resend})
	if err != nil {
		t.Fatal(err)
	}
	lost, held, parked := gateRow(t, db, "ns.Box.update"), gateRow(t, db, "ns.Box.update"), gateRow(t, db, "ns.Box.update")
	if n, err := r.Drain(ctx); err != nil || n != 3 {
		t.Fatalf("drain: %d rows, %v; want 3", n, err)
	}
	if _, err := db.Exec("UPDATE rowgear_gate SET relay_after = NOW(6) + INTERVAL 1 HOUR WHERE id = ?", held); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE rowgear_gate SET relay_after = NULL WHERE id = ?", parked); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep at once: %d rows, %v; want none (sent just now)", n, err)
	}
	testenv.Eventually(t, time.Minute, "the lost row sent again", func() bool {
		_, err := r.Sweep(ctx)
		return err == nil && pub.times(lost) == 2
	})
	if pub.times(held) != 1 || pub.times(parked) != 1 {
		t.Errorf("held row sent %d times, dead letter's %d; want 1 each", pub.times(held), pub.times(parked))
	}
	// Sent again means due again only after another resend time.
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("sweep right after the resend: %d rows, %v; want none", n, err)
	}
}

// TestSkippedRowIsSentOnceCommitted: the cursor passes a row whose writer
// has not committed (a later writer's row is there); the relay that
// passed it sends it once its writer commits.
func TestSkippedRowIsSentOnceCommitted(t *testing.T) {
	db := migrated(t)
	ctx := context.Background()
	pub := &ids{}
	r, err := outbox.New(db, pub, outbox.Options{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	first := gateRow(t, db, "ns.Box.update")
	if n, err := r.Drain(ctx); err != nil || n != 1 {
		t.Fatalf("drain: %d rows, %v; want 1", n, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	slow := gateRow(t, tx, "ns.Box.update")
	later := gateRow(t, db, "ns.Box.update")
	if n, err := r.Drain(ctx); err != nil || n != 1 || pub.times(later) != 1 || pub.times(slow) != 0 {
		t.Fatalf("drain past an uncommitted row: %d rows, %v; want the later one only", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the row sent after its commit", func() bool {
		_, err := r.Drain(ctx)
		return err == nil && pub.times(slow) == 1
	})
	if pub.times(first) != 1 || pub.times(later) != 1 {
		t.Errorf("rows sent %d and %d times, want once each", pub.times(first), pub.times(later))
	}
}

// TestRelaysShareTheCursor: relays of several worker processes drain one
// outbox at once, each claiming before it publishes (as a relay does
// while it finds the cursor moved by others); each row goes out once.
func TestRelaysShareTheCursor(t *testing.T) {
	db := migrated(t)
	ctx := context.Background()
	const rows = 3000
	for i := 0; i < rows; i += 500 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO rowgear_gate (fn, payload, relay_after) VALUES ")
		for j := range 500 {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("('ns.Box.update', '{\"v\": 1}', '1000-01-01')")
		}
		if _, err := db.Exec(sb.String()); err != nil {
			t.Fatal(err)
		}
	}
	pub := &ids{}
	var wg sync.WaitGroup
	for range 3 {
		r, err := outbox.New(db, pub, outbox.Options{Poll: time.Hour, Batch: 100})
		if err != nil {
			t.Fatal(err)
		}
		outbox.AloneFor(r, time.Hour, false)
		wg.Go(func() {
			if _, err := r.Drain(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	pub.mu.Lock()
	defer pub.mu.Unlock()
	twice := 0
	for _, n := range pub.seen {
		if n > 1 {
			twice++
		}
	}
	if len(pub.seen) != rows || twice > 0 {
		t.Errorf("%d of %d rows sent, %d more than once", len(pub.seen), rows, twice)
	}
}

// TestLoneRelayPublishesWhileItClaims: a relay that has had the cursor to
// itself publishes as it moves the cursor. When another relay moved the
// cursor under it, the rows both read go out twice (the worker drops the
// second copy), and the lone relay claims before it publishes again.
func TestLoneRelayPublishesWhileItClaims(t *testing.T) {
	db := migrated(t)
	ctx := context.Background()
	lonePub, otherPub := &ids{}, &ids{}
	lone, err := outbox.New(db, lonePub, outbox.Options{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other, err := outbox.New(db, otherPub, outbox.Options{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	outbox.AloneFor(lone, time.Hour, true)
	outbox.AloneFor(other, time.Hour, false)
	rows := func(n int) []uint64 {
		var out []uint64
		for range n {
			out = append(out, gateRow(t, db, "ns.Box.update"))
		}
		return out
	}
	sentTo := func() uint64 {
		t.Helper()
		var at uint64
		if err := db.QueryRow("SELECT sent_to FROM rowgear_relay WHERE name = ''").Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	first := rows(5)
	if n, err := lone.Drain(ctx); err != nil || n != 5 {
		t.Fatalf("the lone relay's drain: %d rows, %v; want 5", n, err)
	}
	if at := sentTo(); at != first[4] {
		t.Fatalf("cursor at %d after the lone relay's drain, want %d", at, first[4])
	}
	// The other relay moves the cursor past rows the lone one has not
	// read: the lone one reads them from where it last saw the cursor.
	second := rows(5)
	if n, err := other.Drain(ctx); err != nil || n != 5 {
		t.Fatalf("the other relay's drain: %d rows, %v; want 5", n, err)
	}
	if n, err := lone.Drain(ctx); err != nil || n != 5 {
		t.Fatalf("the lone relay's drain behind the other: %d rows, %v; want the 5 it had read", n, err)
	}
	if outbox.Alone(lone, "rowgear_gate") {
		t.Error("the relay still publishes while it claims after another moved the cursor under it")
	}
	if at := sentTo(); at != second[4] {
		t.Errorf("cursor at %d after both drains, want %d", at, second[4])
	}
	third := rows(5)
	if n, err := lone.Drain(ctx); err != nil || n != 5 {
		t.Fatalf("drain after the collision: %d rows, %v; want 5", n, err)
	}
	if n, err := other.Drain(ctx); err != nil || n != 0 {
		t.Fatalf("the other relay's drain after that: %d rows, %v; want none", n, err)
	}
	for _, c := range []struct {
		what         string
		ids          []uint64
		lone, others int
	}{
		{"rows only the lone relay read", first, 1, 0},
		{"rows both read", second, 1, 1},
		{"rows after the collision", third, 1, 0},
	} {
		for _, id := range c.ids {
			if l, o := lonePub.times(id), otherPub.times(id); l != c.lone || o != c.others {
				t.Errorf("%s: row %d sent %d times by the lone relay and %d by the other; want %d and %d", c.what, id, l, o, c.lone, c.others)
			}
		}
	}
}

// TestTableNamedTwiceIsRelayedOnce: a worker lists the gate table of the
// connection's database unqualified and again qualified by a model's
// schema. The relay drains it once, so it never finds its own cursor
// moved under it: each row goes out once and it stays alone.
func TestTableNamedTwiceIsRelayedOnce(t *testing.T) {
	db := migrated(t)
	ctx := context.Background()
	var name string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	pub := &ids{}
	r, err := outbox.New(db, pub, outbox.Options{Poll: time.Hour, Tables: []string{"rowgear_gate", sqlschema.QuoteIdent(name) + ".rowgear_gate"}})
	if err != nil {
		t.Fatal(err)
	}
	outbox.AloneFor(r, time.Hour, true)
	var sent []uint64
	for round := range 3 {
		for range 5 {
			sent = append(sent, gateRow(t, db, "ns.Box.update"))
		}
		if n, err := r.Drain(ctx); err != nil || n != 5 {
			t.Fatalf("drain %d: %d rows, %v; want 5", round, n, err)
		}
	}
	for _, id := range sent {
		if n := pub.times(id); n != 1 {
			t.Errorf("row %d sent %d times, want once", id, n)
		}
	}
	if !outbox.Alone(r, "rowgear_gate") {
		t.Error("the relay found its own cursor moved: it drained the table under both names")
	}
}
