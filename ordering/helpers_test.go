package ordering_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/ordertest"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/triggers"

	_ "github.com/go-sql-driver/mysql"
)

func TestMain(m *testing.M) {
	testenv.RunWithoutLeaks(m, testenv.RemoveBuilds)
}

// world is one test's application: its database (rowgear's migrations and
// the ordertest schema), a namespace of its own, ItemT's triggers
// installed, binlogbridge publishing ItemB.
type world struct {
	t       *testing.T
	db      *sql.DB
	ns      string
	cfgFile string
	cfg     *config.Config
	servers []string // the gearmands of gearman.yml
}

func newWorld(t *testing.T) *world {
	t.Helper()
	db, dsn := testenv.DB(t)
	return newWorldOn(t, db, dsn, testenv.Gearman(t))
}

// newWorldOn is newWorld on database db (dsn) with the given gearmands.
func newWorldOn(t *testing.T, db *sql.DB, dsn string, servers ...string) *world {
	t.Helper()
	return newWorldBatch(t, db, dsn, 1, servers...)
}

// newWorldBatch is newWorldOn with the bridge sending up to batch
// events of ItemB per job.
func newWorldBatch(t *testing.T, db *sql.DB, dsn string, batch int, servers ...string) *world {
	t.Helper()
	ctx := context.Background()
	if err := migrations.UpRowgear(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ordertest.Schema); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, db: db, ns: testenv.Name(t, "ns"), servers: servers}
	dir := t.TempDir()
	yml := ordertest.Config(w.ns, servers, dsn, filepath.Join(dir, "position.json"), batch, 0)
	w.cfgFile = filepath.Join(dir, "gearman.yml")
	if err := os.WriteFile(w.cfgFile, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(w.cfgFile, "")
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	tab, err := sqlschema.LoadTable(ctx, db, "", "items_t")
	if err != nil {
		t.Fatal(err)
	}
	trs, err := triggers.Generate(triggers.Spec{Namespace: w.ns, Model: "ItemT", Table: "items_t"}, tab)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trs {
		w.exec(tr.Create)
	}
	w.startBridge(filepath.Join(dir, "position.json"))
	return w
}

func (w *world) startBridge(posFile string) {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b, err := bridge.New(ctx, w.cfg, bridge.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		w.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	w.t.Cleanup(func() { cancel(); <-done; b.Close() })
	testenv.Eventually(w.t, 60*time.Second, "the bridge to fix its start position", func() bool {
		_, err := os.Stat(posFile)
		return err == nil
	})
}

func (w *world) exec(q string, args ...any) {
	w.t.Helper()
	if _, err := w.db.Exec(q, args...); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
}

// work runs a worker in the test process until the test ends.
func (w *world) work(concurrency int) { w.workPool(concurrency, false) }

// workPool is work; with plain, the orderer shares the application's pool
// (a round trip per statement) instead of its own from OpenDB.
func (w *world) workPool(concurrency int, plain bool) {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	go func() { done <- ordertest.RunPool(ctx, w.cfg, concurrency, w.t.TempDir(), log, plain) }()
	w.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			w.t.Errorf("worker: %v", err)
		}
	})
}

// applied is one line of applied_log.
type applied struct {
	model, op, eventID string
	id, v              int64
	refreshed          sql.NullInt64
}

func (w *world) applied(model string) []applied {
	w.t.Helper()
	rows, err := w.db.Query("SELECT model, op, event_id, item_id, v, refreshed_v FROM applied_log WHERE model = ? ORDER BY n", model)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []applied
	for rows.Next() {
		var a applied
		if err := rows.Scan(&a.model, &a.op, &a.eventID, &a.id, &a.v, &a.refreshed); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func (w *world) count(q string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.db.QueryRow(q, args...).Scan(&n); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// zero reports an error unless query counts 0: "<count> <what>".
func (w *world) zero(query, what string) {
	w.t.Helper()
	if n := w.count(query); n != 0 {
		w.t.Errorf("%d %s", n, what)
	}
}

// status sums gearmand's admin status of every server, by function.
func (w *world) status() map[string]testenv.FuncStatus {
	w.t.Helper()
	all := map[string]testenv.FuncStatus{}
	for _, addr := range w.servers {
		st, err := testenv.Status(context.Background(), addr)
		if err != nil {
			w.t.Fatal(err)
		}
		for fn, s := range st {
			a := all[fn]
			a.Total, a.Running = a.Total+s.Total, a.Running+s.Running
			all[fn] = a
		}
	}
	return all
}

// running is how many jobs of this namespace workers hold.
func (w *world) running() int {
	w.t.Helper()
	n := 0
	for fn, s := range w.status() {
		if strings.HasPrefix(fn, w.ns+".") {
			n += s.Running
		}
	}
	return n
}

// settled: the gearmands hold no job of this namespace and no retry waits.
func (w *world) settled() bool {
	w.t.Helper()
	for fn, s := range w.status() {
		if strings.HasPrefix(fn, w.ns+".") && s.Total > 0 {
			return false
		}
	}
	return w.count("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'retry'") == 0
}

// marker commits an update of row id of both models and waits for their
// handlers: what was written before has reached gearmand by then.
func (w *world) marker(id int, v int) {
	w.t.Helper()
	w.exec("UPDATE items_t SET v = ? WHERE id = ?", v, id)
	w.exec("UPDATE items_b SET v = ? WHERE id = ?", v, id)
	testenv.Eventually(w.t, 60*time.Second, "the marker's handlers", func() bool {
		return w.count("SELECT COUNT(*) FROM applied_log WHERE item_id = ? AND v = ?", id, v) == 2
	})
}

// session is one connection of its own (for explicit transactions).
func (w *world) session() *sql.Conn {
	w.t.Helper()
	c, err := w.db.Conn(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close() })
	return c
}

func run(t *testing.T, c *sql.Conn, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

var models = []string{"ItemT", "ItemB"}

func table(model string) string {
	if model == "ItemT" {
		return "items_t"
	}
	return "items_b"
}

// forge submits payload to fn through the UDF, as any SQL account can.
func (w *world) forge(fn, payload, unique string) {
	w.t.Helper()
	var h sql.NullString
	if err := w.db.QueryRow("SELECT gman_do_background(?, ?, ?)", fn, payload, unique).Scan(&h); err != nil || !h.Valid {
		w.t.Fatalf("forging %s: %v (handle %v)", fn, err, h)
	}
}

func fn(w *world, model, op string) string { return events.FuncName(w.ns, model, op) }
