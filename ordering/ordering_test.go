package ordering_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/ordering"
	"github.com/rowgear/rowgear/triggers"
)

// A rolled-back insert, update or delete runs no handler, whichever the
// source; the committed changes around them run theirs once. With the
// orderer on its own pool (one round trip to begin, gate and claim) and on
// the application's (a round trip per statement).
func TestRollbackRunsNoHandler(t *testing.T) {
	t.Parallel()
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.workPool(4, plain)
			w.exec("INSERT INTO items_t (id, v) VALUES (2, 1)")
			w.exec("INSERT INTO items_b (id, v) VALUES (2, 1)")
			c := w.session()
			for _, tab := range []string{"items_t", "items_b"} {
				run(t, c,
					"BEGIN", "INSERT INTO "+tab+" (id, v) VALUES (1, 100)", "ROLLBACK",
					"BEGIN", "UPDATE "+tab+" SET v = 101 WHERE id = 2", "ROLLBACK",
					"BEGIN", "DELETE FROM "+tab+" WHERE id = 2", "ROLLBACK")
			}
			w.marker(2, 7)
			testenv.Eventually(t, 60*time.Second, "every job done", w.settled)
			// The committed insert may be skipped: when the marker's update ran
			// first, it is older (last-writer-wins).
			for _, m := range models {
				got := w.applied(m)
				ok := len(got) > 0 && got[len(got)-1].op == "update" && got[len(got)-1].v == 7
				for i, a := range got[:max(len(got)-1, 0)] {
					ok = ok && i == 0 && a.op == "insert" && a.v == 1
				}
				if !ok {
					t.Errorf("%s applied %+v; want [insert v=1,] update v=7 only", m, got)
				}
			}
			w.zero("SELECT COUNT(*) FROM rowgear_gate", "gate rows left")
			w.zero("SELECT COUNT(*) FROM rowgear_failed_jobs", "failed jobs")
		})
	}
}

// A transaction that commits long after its write: its handler runs after
// the commit, and Refresh finds the row. The trigger's job arrives at once
// and the worker waits on the gate row; the binlog's arrives at the commit.
func TestLateCommitRunsAfterCommit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.work(4)
	w.exec("INSERT INTO items_t (id, v) VALUES (9, 0)")
	w.exec("INSERT INTO items_b (id, v) VALUES (9, 0)")
	c := w.session()
	run(t, c, "BEGIN", "INSERT INTO items_t (id, v) VALUES (1, 5)", "INSERT INTO items_b (id, v) VALUES (1, 5)")
	testenv.Eventually(t, 60*time.Second, "a worker waiting on the trigger event's gate row", func() bool {
		return w.count("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DELETE FROM rowgear_gate%' AND DB = DATABASE()") > 0
	})
	w.marker(9, 1) // the pipeline runs meanwhile: later commits are handled
	if got := w.count("SELECT COUNT(*) FROM applied_log WHERE item_id = 1"); got != 0 {
		t.Fatalf("%d handlers ran before the commit", got)
	}
	run(t, c, "COMMIT")
	testenv.Eventually(t, 60*time.Second, "both inserts handled", func() bool {
		return w.count("SELECT COUNT(*) FROM applied_log WHERE item_id = 1") == 2
	})
	for _, m := range models {
		for _, a := range w.applied(m) {
			if a.id == 1 && (!a.refreshed.Valid || a.refreshed.Int64 != 5) {
				t.Errorf("%s: Refresh in the insert handler gave %v, want v=5", m, a.refreshed)
			}
		}
	}
	w.zero("SELECT COUNT(*) FROM rowgear_failed_jobs", "failed jobs")
}

// 200 autocommit inserts per source, handlers that Refresh: none ends as a
// dead letter (before the commit gate, some did: ErrNotFound).
func TestAutocommitInsertsRefresh(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.work(4)
	for i := 1; i <= 200; i++ {
		w.exec("INSERT INTO items_t (id, v) VALUES (?, ?)", i, i)
		w.exec("INSERT INTO items_b (id, v) VALUES (?, ?)", i, i)
	}
	testenv.Eventually(t, 60*time.Second, "400 inserts handled", func() bool {
		return w.count("SELECT COUNT(*) FROM applied_log") >= 400
	})
	testenv.Eventually(t, 60*time.Second, "every job done", w.settled)
	w.zero("SELECT COUNT(*) FROM applied_log WHERE refreshed_v IS NULL OR refreshed_v <> v", "handlers did not Refresh the committed row")
	if n := w.count("SELECT COUNT(*) FROM applied_log"); n != 400 {
		t.Errorf("%d handlers ran, want 400", n)
	}
	w.zero("SELECT COUNT(*) FROM rowgear_failed_jobs", "failed jobs (dead letters or retries)")
}

// An SQL account can call the UDF with any payload. A made-up trigger
// event never runs: with a made-up seq its gate row is missing (dropped as
// rolled back); with the seq of a real, committed gate row its digest does
// not match (dead-lettered with ErrForged).
func TestForgedTriggerEventsDoNotRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// A committed gate row whose job nobody takes (a namespace without a
	// worker): a forger can read its id.
	w.exec("CREATE TABLE other (id INT PRIMARY KEY, v INT NOT NULL)")
	tab, err := sqlschema.LoadTable(context.Background(), w.db, "", "other")
	if err != nil {
		t.Fatal(err)
	}
	trs, err := triggers.Generate(triggers.Spec{Namespace: w.ns + "_idle", Model: "Other", Table: "other", Events: []string{"insert"}}, tab)
	if err != nil {
		t.Fatal(err)
	}
	w.exec(trs[0].Create)
	w.exec("INSERT INTO other VALUES (1, 1)")
	t.Cleanup(func() { drain(t, events.FuncName(w.ns+"_idle", "Other", "insert")) })
	var gate uint64
	if err := w.db.QueryRow("SELECT MAX(id) FROM rowgear_gate").Scan(&gate); err != nil {
		t.Fatal(err)
	}
	w.exec("INSERT INTO items_t (id, v) VALUES (1, 1)")
	forged := func(id string, seq uint64, v int) string {
		return fmt.Sprintf(`{"v": 1, "id": "%s", "source": "trigger", "schema": "x", "table": "items_t", "model": "ItemT", "op": "delete", "pk": {"id": 1}, "row": {"id": 1, "v": %d, "note": ""}, "modified": [], "ts": "2026-11-28T00:00:00.000000Z", "seq": "%020d"}`, id, v, seq)
	}
	w.forge(fn(w, "ItemT", "delete"), forged("forged-real-gate", gate, 666), "forged-real-gate")
	w.forge(fn(w, "ItemT", "delete"), forged("forged-no-gate", gate+1000, 667), "forged-no-gate")
	noSeq := strings.Replace(forged("forged-no-seq", 0, 668), `, "seq": "00000000000000000000"`, "", 1)
	w.forge(fn(w, "ItemT", "delete"), noSeq, "forged-no-seq")
	w.work(2)
	testenv.Eventually(t, 60*time.Second, "the real insert handled", func() bool { return len(w.applied("ItemT")) == 1 })
	testenv.Eventually(t, 60*time.Second, "every job of the namespace done", w.settled)
	if got := w.applied("ItemT"); len(got) != 1 || got[0].op != "insert" {
		t.Errorf("applied %+v; want the real insert only", got)
	}
	var errs string
	w.db.QueryRow("SELECT COALESCE(GROUP_CONCAT(job_key, ': ', errors), '') FROM rowgear_failed_jobs WHERE state = 'dead'").Scan(&errs)
	if !strings.Contains(errs, "forged-real-gate: ") || !strings.Contains(errs, "does not match its commit gate") ||
		!strings.Contains(errs, "forged-no-seq: ") || !strings.Contains(errs, "has no seq") || strings.Contains(errs, "forged-no-gate") {
		t.Errorf("dead letters: %q; want forged-real-gate's with ErrForged and forged-no-seq's with ErrNoSeq", errs)
	}
	if n := w.count("SELECT COUNT(*) FROM rowgear_gate WHERE id = ?", gate); n != 1 {
		t.Errorf("the real gate row the forgery named is gone")
	}
}

// drain takes the jobs of fn off gearmand.
func drain(t *testing.T, fn string) {
	gw := gearman.NewWorker([]string{testenv.Gearman(t)}, gearman.WithLogger(slog.New(slog.DiscardHandler)))
	gw.Register(fn, func(context.Context, *gearman.Job) (any, error) { return nil, nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); gw.Run(ctx) }()
	testenv.Eventually(t, 60*time.Second, "the idle job drained", func() bool { return gw.Done() > 0 })
	cancel()
	<-done
}

// Once records an event id in the caller's transaction: true the first
// time, false once committed, and nothing if rolled back.
func TestOnce(t *testing.T) {
	t.Parallel()
	w, _ := testenv.DB(t)
	ctx := context.Background()
	if err := migrations.UpRowgear(ctx, w); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		first, err := ordering.Once(ctx, tx, "ev-1")
		if err != nil || first != want {
			t.Fatalf("run %d: Once = %v, %v; want %v", i, first, err, want)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	tx, _ := w.BeginTx(ctx, nil)
	if first, err := ordering.Once(ctx, tx, "ev-2"); !first || err != nil {
		t.Fatalf("ev-2: %v %v", first, err)
	}
	tx.Rollback()
	tx, _ = w.BeginTx(ctx, nil)
	defer tx.Rollback()
	if first, err := ordering.Once(ctx, tx, "ev-2"); !first || err != nil {
		t.Fatalf("ev-2 after a rollback: %v %v; want true", first, err)
	}
	if _, err := ordering.Once(ctx, tx, strings.Repeat("x", 65)); err == nil {
		t.Error("a 65-byte id was taken")
	}
}

// Purge deletes Once records and gate rows older than its age, no others.
func TestPurge(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	ctx := context.Background()
	if err := migrations.UpRowgear(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO rowgear_applied (event_id, applied_at) VALUES ('old', NOW() - INTERVAL 2 DAY), ('new', NOW())",
		"INSERT INTO rowgear_gate (digest, created_at) VALUES (REPEAT('a', 32), NOW() - INTERVAL 2 DAY), (REPEAT('b', 32), NOW())",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	n, err := ordering.Purge(ctx, db, 24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2", n, err)
	}
	var left int
	db.QueryRow("SELECT (SELECT COUNT(*) FROM rowgear_applied WHERE event_id = 'new') + (SELECT COUNT(*) FROM rowgear_gate WHERE digest = REPEAT('b', 32))").Scan(&left)
	if left != 2 {
		t.Errorf("%d of the 2 recent rows left", left)
	}
	if _, err := ordering.Purge(ctx, db, 0); err == nil {
		t.Error("Purge(0) was taken")
	}
}

// A primary-key change is a delete of the old key and an insert of the new
// one, in both sources; each key keeps its own order afterwards.
func TestPrimaryKeyChangeIsDeleteAndInsert(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.work(2)
	for _, tab := range []string{"items_t", "items_b"} {
		w.exec("INSERT INTO " + tab + " (id, v) VALUES (5, 1)")
		w.exec("UPDATE " + tab + " SET id = 1000, v = 2 WHERE id = 5")
		w.exec("UPDATE " + tab + " SET v = 3 WHERE id = 1000")
	}
	testenv.Eventually(t, 60*time.Second, "the last updates handled", func() bool {
		return w.count("SELECT COUNT(*) FROM applied_log WHERE item_id = 1000 AND v = 3") == 2
	})
	testenv.Eventually(t, 60*time.Second, "every job done", w.settled)
	for _, m := range models {
		var old, moved []string
		for _, a := range w.applied(m) {
			s := fmt.Sprintf("%s v=%d", a.op, a.v)
			if a.id == 5 {
				old = append(old, s)
			} else {
				moved = append(moved, s)
			}
		}
		// Key 5: its insert may be overtaken by its delete (then skipped).
		if got := strings.Join(old, ", "); got != "insert v=1, delete v=1" && got != "delete v=1" {
			t.Errorf("%s key 5: %s; want [insert v=1,] delete v=1", m, got)
		}
		// Key 1000: the insert of the moved row, or only the later update.
		if got := strings.Join(moved, ", "); got != "insert v=2, update v=3" && got != "update v=3" {
			t.Errorf("%s key 1000: %s; want [insert v=2,] update v=3", m, got)
		}
	}
}

// The orderer takes its one-round-trip path on a pool from OpenDB, and
// the statement-per-round-trip one on a plain pool.
func TestOpenDBPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plain, dsn := testenv.DB(t)
	own, err := ordering.OpenDB(dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	for _, c := range []struct {
		name string
		db   *sql.DB
		want bool
	}{{"OpenDB", own, true}, {"plain", plain, false}} {
		o, err := ordering.New(c.db)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Multi(ctx); got != c.want {
			t.Errorf("%s pool: one round trip = %v; want %v", c.name, got, c.want)
		}
	}
	if _, err := ordering.OpenDB(dsn, 0); !errors.Is(err, ordering.ErrOption) {
		t.Errorf("OpenDB(idle 0) = %v; want ErrOption", err)
	}
	if _, err := ordering.OpenDB("not a dsn", 1); err == nil {
		t.Error("OpenDB(bad dsn): no error")
	}
}
