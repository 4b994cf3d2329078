package rowgear_test

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/outbox"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/status"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/triggers"
)

// Box is the outbox tests' model: each handler records the row's n, which
// every update of the row raises by one.
type Box struct {
	dispatch.Record
	seen *seenBoxes

	ID int64 `db:"id,pk"`
	N  int64 `db:"n"`
}

func (b *Box) TriggerInsert(context.Context) error { return b.seen.add(b.ID, b.N, b.Event()) }

func (b *Box) TriggerUpdate(context.Context, []string) error { return b.seen.add(b.ID, b.N, b.Event()) }

// seenBoxes is, per row, the n each of its handlers saw, in the order they
// ran, and the events that ran.
type seenBoxes struct {
	mu     sync.Mutex
	runs   map[int64][]int64
	envs   map[int64][]*events.Envelope
	events map[string]int
	all    atomic.Int64
	poison int64 // a row with this n fails its handler, every time
	tries  atomic.Int64
}

func (s *seenBoxes) add(id, n int64, ev *events.Envelope) error {
	if s.poison != 0 && n == s.poison {
		s.tries.Add(1)
		return fmt.Errorf("box %d: n %d is poison", id, n)
	}
	s.mu.Lock()
	s.runs[id] = append(s.runs[id], n)
	s.envs[id] = append(s.envs[id], ev)
	s.events[ev.ID]++
	s.mu.Unlock()
	s.all.Add(1)
	return nil
}

// outboxEnv is a database with the outbox triggers on boxes, a gearmand of
// its own (memory queue) and a worker relaying and handling.
type outboxEnv struct {
	t    *testing.T
	db   *sql.DB
	dsn  string
	gm   *testenv.Gearmand
	cfg  *config.Config
	seen *seenBoxes
}

func newOutboxEnv(t *testing.T) *outboxEnv { return newOutboxEnvWith(t, "") }

// newOutboxEnvWith is newOutboxEnv with more keys of triggers: ("k: v, …").
func newOutboxEnvWith(t *testing.T, triggerKeys string) *outboxEnv {
	t.Helper()
	ctx := context.Background()
	db, dsn := testenv.DB(t)
	e := &outboxEnv{t: t, db: db, dsn: dsn, gm: testenv.StartGearmand(t), seen: &seenBoxes{runs: map[int64][]int64{}, envs: map[int64][]*events.Envelope{}, events: map[string]int{}}}
	if _, err := migrations.Up(ctx, db, migrations.Rowgear().WithoutUDF()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE boxes (id BIGINT AUTO_INCREMENT PRIMARY KEY, n BIGINT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "gearman.yml")
	yml := fmt.Sprintf(`all:
  namespace: %s
  server: {default: '%s'}
  models:
    Box: {table: boxes, events: [insert, update]}
  database: {dsn: '%s'}
  triggers: {mode: outbox, resend_after: 3s, poll: 200ms%s}
  retry:
    default: {attempts: 10, backoff: 100ms, max_backoff: 1s}
`, testenv.Name(t, "ob"), e.gm.Addr, dsn, cmp.Or(", "+triggerKeys, ""))
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.cfg, err = config.Load(file, ""); err != nil {
		t.Fatal(err)
	}
	specs, err := triggers.Specs(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := sqlschema.LoadTable(ctx, db, "", "boxes")
	if err != nil {
		t.Fatal(err)
	}
	trs, err := triggers.Generate(specs[0], tab)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trs {
		if _, err := db.Exec(tr.Create); err != nil {
			t.Fatalf("%s: %v", tr.Name, err)
		}
	}
	return e
}

// work runs a worker until the test ends.
func (e *outboxEnv) work() {
	e.t.Helper()
	reg := dispatch.NewRegistry()
	if err := dispatch.Register[Box](reg, "Box", dispatch.Constructor(func() *Box { return &Box{seen: e.seen} })); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := rowgear.NewWorker(ctx, e.cfg, reg, rowgear.WithDSN(e.dsn), rowgear.WithLogger(outboxLog),
		rowgear.WithStateDir(e.t.TempDir()), rowgear.WithConcurrency(8))
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("worker: %v", err)
		}
	})
}

// latest is each row's committed n.
func (e *outboxEnv) latest() map[int64]int64 {
	e.t.Helper()
	rows, err := e.db.Query("SELECT id, n FROM boxes")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	m := map[int64]int64{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			e.t.Fatal(err)
		}
		m[id] = n
	}
	return m
}

// awaitAll waits until every row's latest committed n has reached its
// handler and the outbox is empty, then checks that each row's handlers
// ran in commit order and each event ran once. A handler sees the row as
// committed when its event is handled (the outbox trigger's events read
// it then), so the n a row's handlers see never falls, and may repeat.
func (e *outboxEnv) awaitAll(timeout time.Duration) {
	e.t.Helper()
	want := e.latest()
	missing := func() int {
		e.seen.mu.Lock()
		defer e.seen.mu.Unlock()
		n := 0
		for id, v := range want {
			r := e.seen.runs[id]
			if len(r) == 0 || r[len(r)-1] != v {
				n++
			}
		}
		return n
	}
	testenv.Progressing(e.t, timeout, fmt.Sprintf("the latest change of %d rows handled", len(want)), func() (int64, bool) {
		left := missing()
		return int64(len(want) - left), left == 0
	})
	testenv.Eventually(e.t, time.Minute, "the outbox to empty", func() bool {
		n, err := outbox.Backlog(context.Background(), e.db)
		return err == nil && n == 0
	})
	e.seen.mu.Lock()
	defer e.seen.mu.Unlock()
	for id, r := range e.seen.runs {
		for i := 1; i < len(r); i++ {
			if r[i] < r[i-1] {
				e.t.Errorf("row %d: handlers ran n=%v: out of commit order", id, r)
				break
			}
		}
	}
	for ev, n := range e.seen.events {
		if n > 1 {
			e.t.Errorf("event %s: handler ran %d times, want once", ev, n)
		}
	}
}

// writers inserts and updates boxes from 4 connections until each did
// per changes; the counter says how many changes committed so far. A
// refused write fails the test.
func (e *outboxEnv) writers(per int, done *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			var mine []int64
			for i := range per {
				if len(mine) == 0 || i%3 == 0 {
					r, err := e.db.Exec("INSERT INTO boxes (n) VALUES (0)")
					if err != nil {
						e.t.Errorf("writer %d: insert %d refused: %v", w, i, err)
						return
					}
					id, _ := r.LastInsertId()
					mine = append(mine, id)
				} else if _, err := e.db.Exec("UPDATE boxes SET n = n + 1 WHERE id = ?", mine[rand.IntN(len(mine))]); err != nil {
					e.t.Errorf("writer %d: update %d refused: %v", w, i, err)
					return
				}
				done.Add(1)
			}
		})
	}
	return &wg
}

func outboxChanges(def int) int {
	if n, err := strconv.Atoi(os.Getenv("ROWGEAR_OUTBOX_CHANGES")); err == nil && n > 0 {
		return n
	}
	return def
}

// TestOutboxSurvivesGearmandKill: gearmand (memory queue) is killed with
// -9 under 4 writers and started again: no write is refused, and every
// row's latest committed change reaches its handler, in commit order per
// row; what gearmand lost is sent again from the outbox.
func TestOutboxSurvivesGearmandKill(t *testing.T) {
	newOutboxEnv(t).killGearmandUnderWriters(t)
}

// TestOutboxBatchesSurviveGearmandKill is TestOutboxSurvivesGearmandKill
// with the relay sending batches (triggers.batch: 50): the worker applies
// a batch's events in one transaction, their gate rows included.
func TestOutboxBatchesSurviveGearmandKill(t *testing.T) {
	e := newOutboxEnvWith(t, "batch: 50")
	if !e.killGearmandUnderWriters(t) {
		return
	}
	st, err := testenv.Status(context.Background(), e.gm.Addr)
	if err != nil {
		t.Fatal(err)
	}
	batchFn := ""
	for fn := range st {
		if strings.HasSuffix(fn, ".Box.batch") {
			batchFn = fn
		}
	}
	if batchFn == "" {
		t.Errorf("no Box.batch function in gearmand after the restart: the relay sent no batch (functions: %v)", st)
	}
}

// killGearmandUnderWriters runs a worker and 4 writers, kills gearmand
// at a third of the changes and starts it again 10 s and a sixth of the
// changes later (the scenario; on a loaded machine 10 s may see
// few writes), then waits for every row's latest change (awaitAll). It
// reports whether the writes all went through.
func (e *outboxEnv) killGearmandUnderWriters(t *testing.T) bool {
	e.work()
	total := outboxChanges(4000)
	var done atomic.Int64
	wg := e.writers(total/4, &done)
	testenv.Eventually(t, 5*time.Minute, "a third of the changes written", func() bool { return done.Load() >= int64(total/3) })
	e.gm.Kill()
	atKill, killed := done.Load(), time.Now()
	testenv.Eventually(t, 5*time.Minute, "writes going on with gearmand dead", func() bool {
		return done.Load() >= atKill+int64(total/6) && time.Since(killed) >= 10*time.Second
	})
	atStart := done.Load()
	e.gm.Start()
	wg.Wait()
	if t.Failed() {
		return false
	}
	e.awaitAll(3 * time.Minute)
	t.Logf("%d changes of %d rows; gearmand killed after %d, started again after %d (%s later); %d handler runs",
		done.Load(), len(e.latest()), atKill, atStart, time.Since(killed).Round(time.Second), e.seen.all.Load())
	return true
}

// TestOutboxWritesWithoutGearmand: with no gearmand at all, writes go
// through (the doorbell does not wait), the outbox holds the events, and
// they are handled once gearmand is back.
func TestOutboxWritesWithoutGearmand(t *testing.T) {
	e := newOutboxEnv(t)
	e.work()
	e.gm.Kill()
	var done atomic.Int64
	e.writers(50, &done).Wait()
	if t.Failed() {
		return
	}
	n, err := outbox.Backlog(context.Background(), e.db)
	if err != nil || n != 200 {
		t.Fatalf("outbox backlog with gearmand down: %d, %v; want 200", n, err)
	}
	rep, err := status.Collect(context.Background(), e.cfg, e.db, status.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var txt strings.Builder
	rep.WriteText(&txt)
	if rep.Outbox == nil || rep.Outbox.Waiting != 200 || !strings.Contains(txt.String(), "OUTBOX") {
		t.Errorf("status with gearmand down does not name the backlog of 200:\n%s", txt.String())
	}
	e.gm.Start()
	e.awaitAll(3 * time.Minute)
}

// TestOutboxCommitExact: a rolled-back write runs no handler; a
// transaction that commits 2 s after its write is handled after its
// commit, with its committed value.
func TestOutboxCommitExact(t *testing.T) {
	e := newOutboxEnv(t)
	e.work()
	tx, err := e.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO boxes (id, n) VALUES (1, 100)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, err = e.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO boxes (id, n) VALUES (2, 7)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the relay polls meanwhile: the row is locked, skipped
	e.seen.mu.Lock()
	early := len(e.seen.runs[2])
	e.seen.mu.Unlock()
	if early != 0 {
		t.Errorf("row 2's handler ran before its commit")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.awaitAll(time.Minute)
	e.seen.mu.Lock()
	defer e.seen.mu.Unlock()
	if r := e.seen.runs[1]; len(r) != 0 {
		t.Errorf("the rolled-back row ran its handler: %v", r)
	}
	if r := e.seen.runs[2]; len(r) != 1 || r[0] != 7 {
		t.Errorf("row 2: handler runs %v, want [7]", r)
	}
	var dead int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs").Scan(&dead); err != nil || dead != 0 {
		t.Errorf("dead letters: %d, %v; want 0", dead, err)
	}
}

// TestOutboxReadsTheCommittedRow: the outbox trigger's insert and update
// events leave their row out, and the worker reads it when it handles
// them: a handler sees the row as committed then, no old image, and the
// columns its own change modified; an event whose row is gone by then runs
// no handler and leaves nothing behind.
func TestOutboxReadsTheCommittedRow(t *testing.T) {
	e := newOutboxEnv(t)
	// All written before a worker runs: the events wait in the outbox.
	for _, q := range []string{
		"INSERT INTO boxes (id, n) VALUES (1, 1)", "UPDATE boxes SET n = 2 WHERE id = 1",
		"INSERT INTO boxes (id, n) VALUES (2, 5)", "UPDATE boxes SET n = 6 WHERE id = 2", "DELETE FROM boxes WHERE id = 2",
	} {
		if _, err := e.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var light int
	e.db.QueryRow("SELECT COUNT(*) FROM rowgear_gate WHERE payload LIKE '%\"read_row\": true%' AND payload NOT LIKE '%\"row\":%'").Scan(&light)
	if light != 4 {
		t.Fatalf("%d outbox rows with read_row and no row; want the 4 events", light)
	}
	e.work()
	e.awaitAll(time.Minute)
	e.seen.mu.Lock()
	defer e.seen.mu.Unlock()
	if r := e.seen.runs[2]; len(r) != 0 {
		t.Errorf("row 2 (deleted before its events were handled): handlers saw n=%v; want none", r)
	}
	// The update overtakes the insert when it reaches the worker first.
	r := e.seen.runs[1]
	if len(r) == 0 || len(r) > 2 || r[0] != 2 || r[len(r)-1] != 2 {
		t.Fatalf("row 1: handlers saw n=%v; want [2] or [2 2] (the committed row)", r)
	}
	for _, ev := range e.seen.envs[1] {
		want := []string{"n"}
		if ev.Op == events.OpInsert {
			want = []string{"id", "n"}
		}
		if ev.ReadRow || ev.Old != nil || !slices.Equal(ev.Modified, want) || string(ev.Row["n"]) != "2" {
			t.Errorf("row 1's %s event: read_row %v, old %v, modified %v, row %v; want false, nil, %v, n 2",
				ev.Op, ev.ReadRow, ev.Old, ev.Modified, ev.Row, want)
		}
	}
	var dead int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs").Scan(&dead); err != nil || dead != 0 {
		t.Errorf("dead letters: %d, %v; want 0", dead, err)
	}
}

// TestOutboxDeadLetterIsNotSentAgain: an event whose handler always fails
// ends as one dead letter after its attempts; the relay then leaves its
// row alone (no fresh round of attempts at each resend time), and a
// replay of the dead letter runs it once its handler is mended.
func TestOutboxDeadLetterIsNotSentAgain(t *testing.T) {
	e := newOutboxEnv(t)
	e.seen.poison = 13
	e.work()
	if _, err := e.db.Exec("INSERT INTO boxes (id, n) VALUES (1, 13), (2, 1)"); err != nil {
		t.Fatal(err)
	}
	dead := func() int {
		var n int
		e.db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead'").Scan(&n)
		return n
	}
	testenv.Eventually(t, 2*time.Minute, "the poison event dead-lettered", func() bool { return dead() == 1 })
	tries := e.seen.tries.Load()
	// Past two resend times (3 s each): the relay would have sent it again.
	testenv.Eventually(t, time.Minute, "row 2 handled", func() bool {
		e.seen.mu.Lock()
		defer e.seen.mu.Unlock()
		return len(e.seen.runs[2]) == 1
	})
	time.Sleep(7 * time.Second)
	if got := e.seen.tries.Load(); got != tries || dead() != 1 {
		t.Errorf("after the dead letter: %d more runs of the poison event, %d dead letters; want 0 and 1", got-tries, dead())
	}
	if tries != 10 {
		t.Errorf("the poison event ran %d times; want its 10 attempts", tries)
	}
	var parked int
	e.db.QueryRow("SELECT COUNT(*) FROM rowgear_gate WHERE relay_after IS NULL").Scan(&parked)
	if parked != 1 {
		t.Errorf("%d outbox rows parked; want the dead letter's 1", parked)
	}
}

// TestOutboxWorkerKill9: two worker processes relay and handle (their
// handlers log each run in box_log) while 4 writers write; one of them is
// killed with -9 three times and started again. Every row's latest
// committed change is handled, each row's runs are in commit order and
// logged once (the log is written in the event's transaction), and no
// write is refused.
func TestOutboxWorkerKill9(t *testing.T) {
	e := newOutboxEnv(t)
	if _, err := e.db.Exec("CREATE TABLE box_log (seq BIGINT AUTO_INCREMENT PRIMARY KEY, box_id BIGINT NOT NULL, n BIGINT NOT NULL, event_id VARCHAR(64) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	bin := testenv.Build(t, "github.com/rowgear/rowgear/internal/outbox/outboxtest/worker")
	stateA, stateB := t.TempDir(), t.TempDir()
	spawn := func(state string) *testenv.Proc {
		return testenv.StartProc(t, "worker", exec.Command(bin, "-file", e.cfg.File, "-state-dir", state))
	}
	a, _ := spawn(stateA), spawn(stateB)
	total := outboxChanges(6000)
	var done atomic.Int64
	wg := e.writers(total/4, &done)
	for k := 1; k <= 3; k++ {
		testenv.Eventually(t, 5*time.Minute, fmt.Sprintf("%d/4 of the changes written", k), func() bool { return done.Load() >= int64(k*total/4) })
		a.Cmd.Process.Kill() // SIGKILL
		<-a.Done()
		a = spawn(stateA)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := e.latest()
	last := func() map[int64]int64 {
		m := map[int64]int64{}
		rows, err := e.db.Query("SELECT box_id, n FROM box_log ORDER BY seq")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, n int64
			rows.Scan(&id, &n)
			if prev, ok := m[id]; ok && n < prev {
				t.Errorf("row %d: n %d ran after %d: out of commit order", id, n, prev)
			}
			m[id] = n
		}
		return m
	}
	testenv.Progressing(t, 3*time.Minute, fmt.Sprintf("the latest change of %d rows handled", len(want)), func() (int64, bool) {
		got := last()
		ok := 0
		for id, n := range want {
			if got[id] == n {
				ok++
			}
		}
		return int64(ok), ok == len(want)
	})
	var runs, distinct int64
	e.db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM box_log").Scan(&runs, &distinct)
	t.Logf("%d changes of %d rows; %d handler runs logged", done.Load(), len(want), runs)
	if runs != distinct {
		// The log is written in the event's transaction: a run a kill cut
		// short left nothing.
		t.Errorf("%d runs logged twice; want 0", runs-distinct)
	}
}

var outboxLog = func() *slog.Logger {
	if os.Getenv("ROWGEAR_OUTBOX_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return quiet
}()

// TestOutboxForgery: an account with USAGE only cannot write the outbox,
// its doorbell does nothing a handler runs, and a job forged onto a real
// outbox row (its id as seq, another payload) never reaches a handler.
func TestOutboxForgery(t *testing.T) {
	e := newOutboxEnv(t)
	ctx := context.Background()
	if _, err := e.db.Exec("INSERT INTO boxes (id, n) VALUES (1, 5)"); err != nil {
		t.Fatal(err)
	}
	var id uint64
	if err := e.db.QueryRow("SELECT id FROM rowgear_gate WHERE relay_after IS NOT NULL").Scan(&id); err != nil {
		t.Fatal(err)
	}
	// The USAGE-only account.
	user := testenv.Name(t, "u")[:16]
	for _, q := range []string{"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw'", "GRANT USAGE ON *.* TO '" + user + "'@'%'"} {
		if _, err := e.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { e.db.Exec("DROP USER '" + user + "'@'%'") })
	mc, err := mysql.ParseDSN(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	mc.User, mc.Passwd, mc.DBName = user, "pw", ""
	weak, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer weak.Close()
	dbName := strings.TrimSuffix(strings.SplitN(e.dsn, "/", 2)[1], "?"+strings.SplitN(e.dsn, "?", 2)[1])
	if _, err := weak.Exec("INSERT INTO `" + dbName + "`.rowgear_gate (fn, payload, relay_after) VALUES ('x.Box.insert', '{}', NOW())"); err == nil {
		t.Errorf("a USAGE-only account wrote the outbox")
	}
	var rang sql.NullInt64
	if err := weak.QueryRow("SELECT rowgear_ring(?)", e.cfg.Namespace+".outbox").Scan(&rang); err != nil || !rang.Valid {
		t.Errorf("the doorbell refused a USAGE-only account: %v, %v (it should ring, harmlessly)", rang, err)
	}
	// The forged job, sent straight to gearmand before any worker runs.
	forged := fmt.Sprintf(`{"v": 1, "id": "forged-1", "source": "trigger", "schema": "%s", "table": "boxes", "model": "Box", "op": "insert", `+
		`"pk": {"id": 1}, "row": {"id": 1, "n": 666}, "modified": ["id", "n"], "ts": "2026-12-07T00:00:00.000000Z", "seq": "%020d"}`, dbName, id)
	gc := gearman.NewClient([]string{e.gm.Addr})
	defer gc.Close()
	if _, err := gc.Background(ctx, e.cfg.Namespace+".Box.insert", []byte(forged), gearman.Normal); err != nil {
		t.Fatal(err)
	}
	e.work()
	e.awaitAll(time.Minute)
	// The forged job, queued before the worker started, ran first: it is a
	// dead letter, and it did not hold the real row back.
	testenv.Eventually(t, time.Minute, "the forged job dead-lettered as forged", func() bool {
		var n int
		e.db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead' AND errors LIKE '%forged%'").Scan(&n)
		return n == 1
	})
	e.seen.mu.Lock()
	defer e.seen.mu.Unlock()
	if r := e.seen.runs[1]; len(r) != 1 || r[0] != 5 {
		t.Errorf("row 1's handlers ran n=%v; want only the committed 5, never the forged 666", r)
	}
}
