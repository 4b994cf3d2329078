// Package rowgeartest runs an application's handlers in plain `go test`, as
// rowgear's worker would, with no gearmand: a row event (an insert, update
// or delete built from a Go value or a column map) goes to the model's
// TriggerInsert/TriggerUpdate/TriggerDelete, a record or table job to its
// method, against the application's own *sql.DB; the call returns the
// handler's error (and a job's result).
//
//	func TestPublish(t *testing.T) {
//		db := openTestDB(t) // the application's schema
//		reg := dispatch.NewRegistry()
//		if err := models.Register(reg); err != nil {
//			t.Fatal(err)
//		}
//		w, err := rowgeartest.New(cfg, reg, db)
//		if err != nil {
//			t.Fatal(err)
//		}
//		if err := w.Insert(ctx, "Article", &models.Article{ID: 1, Title: "Hi"}); err != nil {
//			t.Fatal(err)
//		}
//		res, err := w.Job(ctx, &models.Article{ID: 1}, "publish", false, true)
//		…
//	}
//
// What runs is the worker's chain minus gearman and rowgear's own
// machinery: the function's decoding (the envelope into the model's type,
// the job's primary key into a record loaded from db, its arguments), the
// registry's middleware (Registry.Use), then WithMiddleware's, around the
// handler. With a db, a row event of an ordered model (or a trigger event)
// runs in a transaction on it, READ COMMITTED, that ordering.Tx returns
// and that is committed when the handler returns nil, as the worker's
// would be. Not run: the retry guard (its retries go through gearmand: the
// kit returns the error of the one attempt), the ordering (its commit gate
// waits for the row a real trigger writes) and the observation. A handler
// that calls Job.SendData, SendStatus or SendWarning gets an error: there is
// no client waiting.
//
// The config is the application's gearman.yml (config.Load), or one built
// in the test: the models section says which tables and events a model has,
// and Mount refuses a registry that disagrees with it, as the worker does.
package rowgeartest

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventtx"
	"github.com/rowgear/rowgear/internal/ids"
	"github.com/rowgear/rowgear/internal/rowmap"
	_ "github.com/rowgear/rowgear/ordering" // sets eventtx.With
)

// ErrNotMounted: the function an event or a job names is not one the worker
// mounts (the model's events in gearman.yml, the set of WithSet).
var ErrNotMounted = errors.New("rowgeartest: function not mounted")

// Option configures a Worker.
type Option func(*Worker) error

// WithSet mounts worker set name of the config, as the worker's WithSet
// (default: every model with every event and job).
func WithSet(name string) Option {
	return func(w *Worker) error {
		if name == "" {
			return errors.New("WithSet: empty set name")
		}
		w.set = name
		return nil
	}
}

// WithMiddleware adds middleware after the registry's own, as the worker's
// WithMiddleware (cli.WithMiddleware) does.
func WithMiddleware(mw ...dispatch.Middleware) Option {
	return func(w *Worker) error {
		for i, m := range mw {
			if m == nil {
				return fmt.Errorf("WithMiddleware: middleware %d is nil", i)
			}
		}
		w.mws = append(w.mws, mw...)
		return nil
	}
}

// Worker runs the handlers of a registry on events and jobs built in a
// test. It is safe for concurrent use.
type Worker struct {
	cfg    *config.Config
	db     *sql.DB
	set    string
	mws    []dispatch.Middleware
	fns    mounted
	client *dispatch.Client
	n      atomic.Int64
}

// New mounts reg's handlers for cfg, their records on db (nil: handlers
// that use no database). It fails when the registry and the config disagree
// (dispatch.ErrMismatch), as the worker would, or an option is bad. reg is not
// changed.
func New(cfg *config.Config, reg *dispatch.Registry, db *sql.DB, opts ...Option) (*Worker, error) {
	if cfg == nil || reg == nil {
		return nil, errors.New("rowgeartest: nil config or registry")
	}
	w := &Worker{cfg: cfg, db: db, fns: mounted{}, client: dispatch.NewClient(nil, reg, cfg.Namespace)}
	for _, o := range opts {
		if err := o(w); err != nil {
			return nil, fmt.Errorf("rowgeartest: %w", err)
		}
	}
	if _, err := reg.Chained(nil, w.mws).Mount(w.fns, cfg, w.set, db); err != nil {
		return nil, fmt.Errorf("rowgeartest: %w", err)
	}
	return w, nil
}

// mounted is where Mount registers the functions (a dispatch.Worker).
type mounted map[string]gearman.Handler

func (m mounted) Register(fn string, h gearman.Handler) { m[fn] = h }

// Functions lists the mounted gearman functions, sorted.
func (w *Worker) Functions() []string { return slices.Sorted(maps.Keys(w.fns)) }

// Insert runs model's insert handler on row, the inserted row: a struct
// (or pointer to one) with db-tagged fields, an events.Row, or a
// map[string]any of column values in the forms of package events (a
// DATETIME as "2006-01-02 15:04:05", a DECIMAL as a string).
func (w *Worker) Insert(ctx context.Context, model string, row any) error {
	return w.change(ctx, model, events.OpInsert, nil, row)
}

// Update runs model's update handler on the change from old to row (as
// Insert takes them); the modified columns are those whose values differ.
func (w *Worker) Update(ctx context.Context, model string, old, row any) error {
	if old == nil {
		return errors.New("rowgeartest: Update: nil old row (an update has a before image)")
	}
	return w.change(ctx, model, events.OpUpdate, old, row)
}

// Delete runs model's delete handler on row, the deleted row.
func (w *Worker) Delete(ctx context.Context, model string, row any) error {
	return w.change(ctx, model, events.OpDelete, nil, row)
}

func (w *Worker) change(ctx context.Context, model, op string, old, row any) error {
	e := &events.Envelope{Model: model, Op: op}
	var cols []string
	var err error
	if e.Row, cols, err = rowOf(row); err != nil {
		return fmt.Errorf("rowgeartest: %s %s: row: %w", model, op, err)
	}
	switch op {
	case events.OpInsert:
		e.Modified = cols
	case events.OpUpdate:
		if e.Old, _, err = rowOf(old); err != nil {
			return fmt.Errorf("rowgeartest: %s %s: old row: %w", model, op, err)
		}
		for _, c := range cols {
			if o, ok := e.Old[c]; !ok || string(o) != string(e.Row[c]) {
				e.Modified = append(e.Modified, c)
			}
		}
	}
	if isStruct(row) {
		if e.PK, err = rowmap.PK(row); err != nil {
			return fmt.Errorf("rowgeartest: %s %s: %w", model, op, err)
		}
	}
	return w.Event(ctx, e)
}

// Event runs the handler of e's model and op on e, as it would come from a
// trigger or binlogbridge. Fields left empty are filled in: V, ID, Source
// (the model's source), Schema (the model's, else db's), Table (the
// model's), TS (now), and PK: the columns of Row that are the table's
// primary key in db.
func (w *Worker) Event(ctx context.Context, e *events.Envelope) error {
	m, ok := w.cfg.Models[e.Model]
	if !ok {
		return fmt.Errorf("rowgeartest: model %q is not in the models section of the config", e.Model)
	}
	ev := *e
	ev.V = events.Version
	ev.ID = cmp.Or(ev.ID, ids.New())
	ev.Source = cmp.Or(ev.Source, m.Source, events.SourceTrigger)
	ev.Table = cmp.Or(ev.Table, m.Table)
	if ev.TS.IsZero() {
		ev.TS = time.Now()
	}
	if ev.Schema == "" {
		ev.Schema = cmp.Or(m.Schema, w.schema(ctx))
	}
	if ev.PK == nil {
		pk, err := w.pkOf(ctx, ev.Schema, ev.Table, ev.Row)
		if err != nil {
			return fmt.Errorf("rowgeartest: %s %s: %w", ev.Model, ev.Op, err)
		}
		ev.PK = pk
	}
	payload, err := events.Encode(&ev)
	if err != nil {
		return fmt.Errorf("rowgeartest: %s %s: %w", ev.Model, ev.Op, err)
	}
	fn := events.FuncName(w.cfg.Namespace, ev.Model, ev.Op)
	if w.db == nil || (m.Unordered && ev.Source != events.SourceTrigger) {
		_, err = w.Call(ctx, fn, payload)
		return err
	}
	// As the worker runs it: in a transaction (ordering.Tx), committed when
	// the handler returns nil.
	tx, err := w.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("rowgeartest: %s %s: begin: %w", ev.Model, ev.Op, err)
	}
	defer tx.Rollback()
	if _, err = w.Call(eventtx.With(ctx, tx), fn, payload); err != nil {
		return err
	}
	return tx.Commit()
}

// schema is the database db is connected to, for an envelope's schema
// (the handlers do not read it; the envelope needs one).
func (w *Worker) schema(ctx context.Context) string {
	var s sql.NullString
	if w.db != nil {
		w.db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&s)
	}
	return cmp.Or(s.String, "rowgeartest")
}

// pkOf is the primary key of row, whose columns the table's definition in
// db names.
func (w *Worker) pkOf(ctx context.Context, schema, table string, row events.Row) (events.Row, error) {
	if w.db == nil {
		return nil, errors.New("no PK, and no database to read the table's primary key from")
	}
	rows, err := w.db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("reading the primary key of %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	pk := events.Row{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		v, ok := row[c]
		if !ok {
			return nil, fmt.Errorf("the row has no column %s, of the primary key of %s.%s", c, schema, table)
		}
		pk[c] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(pk) == 0 {
		return nil, fmt.Errorf("table %s.%s has no primary key in the database: set the envelope's PK", schema, table)
	}
	return pk, nil
}

// Job runs a record or table job as dispatch.Client.Task would send it:
// target is a record (the job runs on its row, loaded from db by primary
// key) or a table value; it returns the method's result and error.
func (w *Worker) Job(ctx context.Context, target any, job string, args ...any) (any, error) {
	fn, payload, err := w.client.Prepare(target, job, args...)
	if err != nil {
		return nil, err
	}
	return w.Call(ctx, fn, payload)
}

// Call runs mounted gearman function fn on workload, as a job of that
// function: for a plain function of a worker set, or a payload built by
// hand.
func (w *Worker) Call(ctx context.Context, fn string, workload []byte) (res any, err error) {
	h, ok := w.fns[fn]
	if !ok {
		return nil, fmt.Errorf("%w: %s (mounted: %v)", ErrNotMounted, fn, w.Functions())
	}
	n := w.n.Add(1)
	job := &gearman.Job{Function: fn, Handle: fmt.Sprintf("H:rowgeartest:%d", n), Unique: fmt.Sprint(n), Workload: workload}
	defer func() {
		// As the worker does, a panicking handler fails its job; here
		// also a handler calling SendData and the like, with no client.
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("rowgeartest: %s panicked: %v", fn, p)
		}
	}()
	return h(ctx, job)
}

// isStruct reports whether v is a struct or a pointer to one.
func isStruct(v any) bool {
	t := reflect.TypeOf(v)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t != nil && t.Kind() == reflect.Struct
}

// rowOf converts a row as Insert takes it, and lists its columns: in field
// order for a struct, sorted for a map.
func rowOf(v any) (events.Row, []string, error) {
	switch r := v.(type) {
	case nil:
		return nil, nil, errors.New("nil")
	case events.Row:
		return r, slices.Sorted(maps.Keys(r)), nil
	case map[string]any:
		row := make(events.Row, len(r))
		for c, x := range r {
			raw, err := json.Marshal(x)
			if err != nil {
				return nil, nil, fmt.Errorf("column %s: %w", c, err)
			}
			row[c] = raw
		}
		return row, slices.Sorted(maps.Keys(row)), nil
	}
	row, err := events.RowOf(v)
	if err != nil {
		return nil, nil, err
	}
	cs, err := rowmap.Columns(reflect.TypeOf(v))
	if err != nil {
		return nil, nil, err
	}
	cols := make([]string, 0, len(cs))
	for _, c := range cs {
		cols = append(cols, c.Name)
	}
	return row, cols, nil
}
