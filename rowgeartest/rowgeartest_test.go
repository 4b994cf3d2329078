package rowgeartest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/ordering"
	"github.com/rowgear/rowgear/rowgeartest"
)

// Item's handlers write what they saw into the log table.
type Item struct {
	dispatch.Record
	ID   int64  `db:"id,pk"`
	Name string `db:"name"`
	Qty  int    `db:"qty"`
}

func (it *Item) note(ctx context.Context, format string, args ...any) error {
	_, err := it.DB().ExecContext(ctx, "INSERT INTO log (what) VALUES (?)", fmt.Sprintf(format, args...))
	return err
}

func (it *Item) TriggerInsert(ctx context.Context) error {
	if it.Name == "panic" {
		panic("a handler bug")
	}
	return it.note(ctx, "insert %d %s %d", it.ID, it.Name, it.Qty)
}

// TriggerUpdate writes in the event's transaction, as the worker gives it.
func (it *Item) TriggerUpdate(ctx context.Context, modified []string) error {
	tx, ok := ordering.Tx(ctx)
	if !ok {
		return errors.New("no event transaction")
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO log (what) VALUES (?)", fmt.Sprintf("update %d %v", it.ID, modified))
	return err
}

var errKeep = errors.New("this item is kept")

func (it *Item) TriggerDelete(ctx context.Context) error {
	if it.Name == "keep" {
		// Written in the event's transaction, then failed: rolled back.
		if tx, ok := ordering.Tx(ctx); ok {
			if _, err := tx.ExecContext(ctx, "INSERT INTO log (what) VALUES ('kept')"); err != nil {
				return err
			}
		}
		return errKeep
	}
	return it.note(ctx, "delete %d", it.ID)
}

// Rename is a record job: it runs on the row loaded from the database.
func (it *Item) Rename(ctx context.Context, name string) (string, error) {
	_, err := it.DB().ExecContext(ctx, "UPDATE items SET name = ? WHERE id = ?", name, it.ID)
	return it.Name + " -> " + name, err
}

type ItemTable struct{ dispatch.Table }

// Total is a table job.
func (t *ItemTable) Total(ctx context.Context) (int, error) {
	var n int
	err := t.DB().QueryRowContext(ctx, "SELECT COALESCE(SUM(qty), 0) FROM "+t.Name()).Scan(&n)
	return n, err
}

const yml = `
all:
  worker:
    tools:
      echo: [Tools, echo]
      progress: [Tools, progress]
  dbworker:
    items: {Item: [rename, total, ~]}
  models:
    Item: {table: items, source: trigger}
`

func setup(t *testing.T, opts ...rowgeartest.Option) (*rowgeartest.Worker, func(string) []string) {
	t.Helper()
	db, _ := testenv.DB(t)
	for _, q := range []string{
		"CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INT NOT NULL)",
		"CREATE TABLE log (n INT AUTO_INCREMENT PRIMARY KEY, what TEXT NOT NULL)",
		"INSERT INTO items VALUES (1, 'one', 2), (2, 'two', 3)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse("gearman.yml", []byte(yml), "")
	if err != nil {
		t.Fatal(err)
	}
	reg := dispatch.NewRegistry()
	reg.Use(func(next gearman.Handler) gearman.Handler {
		return func(ctx context.Context, j *gearman.Job) (any, error) {
			db.ExecContext(ctx, "INSERT INTO log (what) VALUES (?)", "registry middleware: "+j.Function)
			return next(ctx, j)
		}
	})
	reg.HandleFunc("Tools.echo", func(_ context.Context, j *gearman.Job) (any, error) { return string(j.Workload), nil })
	reg.HandleFunc("Tools.progress", func(_ context.Context, j *gearman.Job) (any, error) { return nil, j.SendStatus(1, 2) })
	if err := dispatch.Register[Item](reg, "Item", dispatch.RecordJob("rename", (*Item).Rename),
		dispatch.TableJob("total", (*ItemTable).Total)); err != nil {
		t.Fatal(err)
	}
	w, err := rowgeartest.New(cfg, reg, db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	logged := func(prefix string) []string {
		t.Helper()
		return testenv.Strings(t, db, "SELECT what FROM log WHERE what LIKE CONCAT(?, '%') ORDER BY n", prefix)
	}
	return w, logged
}

// TestRowEvents: inserts, updates and deletes from Go values and column
// maps reach the handlers, through the registry's middleware and the kit's,
// on the application's database; a handler's error comes back as it is.
func TestRowEvents(t *testing.T) {
	kitMW := func(next gearman.Handler) gearman.Handler {
		return func(ctx context.Context, j *gearman.Job) (any, error) {
			out, err := next(ctx, j)
			if err != nil {
				err = fmt.Errorf("kit middleware saw: %w", err)
			}
			return out, err
		}
	}
	w, logged := setup(t, rowgeartest.WithMiddleware(kitMW))
	ctx := context.Background()
	if err := w.Insert(ctx, "Item", &Item{ID: 3, Name: "three", Qty: 4}); err != nil {
		t.Fatal(err)
	}
	// A column map: the key comes from the table's primary key.
	if err := w.Insert(ctx, "Item", map[string]any{"id": 4, "name": "four", "qty": 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Update(ctx, "Item", &Item{ID: 3, Name: "three", Qty: 4}, &Item{ID: 3, Name: "three", Qty: 5}); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(ctx, "Item", &Item{ID: 3, Name: "three"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"insert 3 three 4", "insert 4 four 1", "update 3 [qty]", "delete 3"}
	if got := logged(""); strings.Join(filter(got, "registry"), "|") != strings.Join(want, "|") {
		t.Errorf("handlers logged %q, want %q", got, want)
	}
	if got := logged("registry middleware: "); len(got) != 4 || got[0] != "registry middleware: rowgear.Item.insert" {
		t.Errorf("the registry's middleware saw %q", got)
	}
	err := w.Delete(ctx, "Item", &Item{ID: 2, Name: "keep"})
	if !errors.Is(err, errKeep) || !strings.Contains(err.Error(), "kit middleware saw") {
		t.Errorf("failing handler: %v", err)
	}
	if got := logged("kept"); len(got) != 0 {
		t.Errorf("a failing handler's write in the event's transaction was committed: %q", got)
	}
	if err := w.Insert(ctx, "Item", &Item{ID: 5, Name: "panic"}); err == nil || !strings.Contains(err.Error(), "a handler bug") {
		t.Errorf("panicking handler: %v", err)
	}
	if err := w.Insert(ctx, "Nope", &Item{ID: 5}); err == nil || !strings.Contains(err.Error(), `model "Nope"`) {
		t.Errorf("unknown model: %v", err)
	}
	if err := w.Update(ctx, "Item", nil, &Item{ID: 5}); err == nil {
		t.Error("update without old row: no error")
	}
	if err := w.Insert(ctx, "Item", map[string]any{"name": "no key"}); err == nil || !strings.Contains(err.Error(), "no column id") {
		t.Errorf("map without the key: %v", err)
	}
}

// TestJobs: a record job runs on the row loaded by its key, a table job on
// the table; a missing row is dispatch.ErrNotFound.
func TestJobs(t *testing.T) {
	w, _ := setup(t)
	ctx := context.Background()
	res, err := w.Job(ctx, &Item{ID: 1}, "rename", "uno")
	if err != nil || res != "one -> uno" {
		t.Fatalf("rename: %v, %v", res, err)
	}
	if res, err := w.Job(ctx, &Item{ID: 1}, "rename", "eins"); err != nil || res != "uno -> eins" {
		t.Fatalf("second rename (reads the row the first wrote): %v, %v", res, err)
	}
	if res, err := w.Job(ctx, ItemTable{}, "total"); err != nil || res != 5 {
		t.Errorf("total: %v, %v", res, err)
	}
	if _, err := w.Job(ctx, &Item{ID: 99}, "rename", "x"); !errors.Is(err, dispatch.ErrNotFound) {
		t.Errorf("missing row: %v", err)
	}
	if _, err := w.Job(ctx, &Item{ID: 1}, "rename", 42); !errors.Is(err, dispatch.ErrPayload) {
		t.Errorf("bad argument: %v", err)
	}
}

// TestPlainFunctions: WithSet mounts a worker: set; Call runs its
// functions; a handler that reports progress gets an error, not a crash.
func TestPlainFunctions(t *testing.T) {
	w, _ := setup(t, rowgeartest.WithSet("tools"))
	ctx := context.Background()
	if res, err := w.Call(ctx, "echo", []byte("hi")); err != nil || res != "hi" {
		t.Errorf("echo: %v, %v", res, err)
	}
	if _, err := w.Call(ctx, "progress", nil); err == nil {
		t.Error("SendStatus without a client: no error")
	}
	if _, err := w.Call(ctx, "rowgear.Item.insert", nil); !errors.Is(err, rowgeartest.ErrNotMounted) {
		t.Errorf("a function of another set: %v", err)
	}
	if _, err := rowgeartest.New(&config.Config{}, dispatch.NewRegistry(), nil, rowgeartest.WithSet("tools")); !errors.Is(err, config.ErrUnknownSet) {
		t.Errorf("unknown set: %v", err)
	}
}

func filter(s []string, drop string) []string {
	var out []string
	for _, x := range s {
		if !strings.HasPrefix(x, drop) {
			out = append(out, x)
		}
	}
	return out
}
