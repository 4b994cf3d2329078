// Package dispatch is the model registry: it binds Go types and handlers to
// the model names of gearman.yml, mounts them on a gearman worker as
// <namespace>.<Model>.<op|job> functions, and decodes each job into a call:
// a row event into TriggerInsert/TriggerUpdate/TriggerDelete (a snapshot's
// row into TriggerSnapshot) on the decoded record, a record job into a
// method on the record loaded by primary key, a table job into a method on
// the model's table type.
package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/rowmap"
)

// The trigger handlers a model may implement (on its pointer type), named
// as the seed names them. TriggerUpdate gets the modified columns.
type (
	Inserter interface {
		TriggerInsert(ctx context.Context) error
	}
	Updater interface {
		TriggerUpdate(ctx context.Context, modified []string) error
	}
	Deleter interface {
		TriggerDelete(ctx context.Context) error
	}
	// Snapshotter gets the rows a binlogbridge snapshot (backfill) reads,
	// op snapshot: the row as it was when its chunk was read, ordered
	// with the row's live changes (see package bridge). A model without
	// it can take them through TriggerInsert instead, with
	// models.<Model>.snapshot: insert.
	Snapshotter interface {
		TriggerSnapshot(ctx context.Context) error
	}
)

var (
	// ErrMismatch: the Go registrations and gearman.yml disagree.
	ErrMismatch = errors.New("dispatch: registrations and config disagree")
	// ErrRegister: a registration is malformed (bad type or job signature).
	ErrRegister = errors.New("dispatch: bad registration")
	// ErrPayload: a job's payload cannot be decoded or does not fit.
	ErrPayload = errors.New("dispatch: bad payload")
	// ErrNotFound: the record is no longer in the database (a ghost, as the
	// seed calls a deleted record).
	ErrNotFound = errors.New("dispatch: record not found")
)

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errType   = reflect.TypeFor[error]()
	recType   = reflect.TypeFor[Record]()
	tableType = reflect.TypeFor[Table]()
)

// Registry holds what the application's Go code provides: plain functions
// (the seed's worker sets), models and middleware. Build it at start-up,
// then Mount it.
type Registry struct {
	funcs  map[string]gearman.Handler
	models map[string]*model
	byType map[reflect.Type]*model // model struct type and table type → model
	mws    []Middleware
	log    *slog.Logger
	err    error // the first bad option: Register's and Mount's error
}

// Middleware wraps the handler of every function Mount registers: logging,
// metrics, retries, ordering. job.Function names the function it runs.
type Middleware func(next gearman.Handler) gearman.Handler

// RegistryOption configures a Registry. An option checks its argument: a
// bad one is the error of Register and Mount.
type RegistryOption func(*Registry) error

// WithLogger gives the registry the logger that Logger returns, for the
// application's handlers (nil: slog.Default()); rowgear's commands pass
// theirs.
func WithLogger(l *slog.Logger) RegistryOption {
	return func(r *Registry) error {
		r.log = cmp.Or(l, slog.Default())
		return nil
	}
}

// NewRegistry returns an empty registry.
func NewRegistry(opts ...RegistryOption) *Registry {
	r := &Registry{funcs: map[string]gearman.Handler{}, models: map[string]*model{},
		byType: map[reflect.Type]*model{}, log: slog.Default()}
	for _, o := range opts {
		if err := o(r); err != nil && r.err == nil {
			r.err = err
		}
	}
	return r
}

// Logger is the logger the registry was built with (slog.Default() when
// none): hand it to the handlers that log.
func (r *Registry) Logger() *slog.Logger { return r.log }

// Use appends middleware to the chain Mount wraps around every function's
// handler. The first one added is the outermost: it sees a job first and
// its result last.
func (r *Registry) Use(mw ...Middleware) { r.mws = append(r.mws, mw...) }

// Chained returns a registry with r's registrations whose chain is outer,
// then r's own middleware (Use), then inner; r is unchanged. rowgear's
// worker and test kit put their middleware around and inside the
// application's this way.
func (r *Registry) Chained(outer, inner []Middleware) *Registry {
	c := *r
	c.mws = slices.Concat(outer, r.mws, inner)
	return &c
}

// chain wraps h in the registry's middleware.
func (r *Registry) chain(h gearman.Handler) gearman.Handler {
	for i := len(r.mws) - 1; i >= 0; i-- {
		h = r.mws[i](h)
	}
	return h
}

// HandleFunc registers a plain handler under the name gearman.yml's worker
// sets use for it: "Worker1.reverse" for `reverse: [Worker1, reverse]`.
func (r *Registry) HandleFunc(name string, h gearman.Handler) { r.funcs[name] = h }

// model is what Register learned about one model type.
type model struct {
	name     string
	typ      reflect.Type // the struct type T
	cols     []rowmap.Column
	recField []int // index of the embedded Record
	ops      map[string]bool
	jobs     map[string]*job
	table    reflect.Type         // the table struct type, if any table job
	newRec   func() reflect.Value // *T for each record; nil: a zero T
	newTab   func() reflect.Value // *Tab for each table job; nil: a zero Tab
	ctors    []ctor               // Constructor options, checked once the types are known
}

// ctor is a constructor given with Constructor, before Register knows whether it
// makes records or table values.
type ctor struct {
	typ reflect.Type
	fn  func() reflect.Value
}

// Constructor gives a model the constructor of its records, or of its table type:
// each job starts from what newT returns instead of a zero value, so the
// handlers reach the application's services (a logger, a search client)
// through fields the constructor set, without package globals. The row's
// columns are then decoded over it. newT must return a new value each call.
func Constructor[T any](newT func() *T) ModelOption {
	return func(m *model) error {
		if newT == nil {
			return fmt.Errorf("Constructor: nil constructor")
		}
		m.ctors = append(m.ctors, ctor{typ: reflect.TypeFor[T](), fn: func() reflect.Value {
			v := newT()
			if v == nil {
				return reflect.New(reflect.TypeFor[T]())
			}
			return reflect.ValueOf(v)
		}})
		return nil
	}
}

// newRecord returns a fresh *T for a job.
func (m *model) newRecord() reflect.Value {
	if m.newRec != nil {
		return m.newRec()
	}
	return reflect.New(m.typ)
}

// newTable returns a fresh *Tab for a table job.
func (m *model) newTable() reflect.Value {
	if m.newTab != nil {
		return m.newTab()
	}
	return reflect.New(m.table)
}

// bindCtors assigns the Constructor functions to the record or the table type.
func (m *model) bindCtors() error {
	for _, c := range m.ctors {
		switch {
		case c.typ == m.typ && m.newRec == nil:
			m.newRec = c.fn
		case m.table != nil && c.typ == m.table && m.newTab == nil:
			m.newTab = c.fn
		case c.typ == m.typ || c.typ == m.table:
			return fmt.Errorf("Constructor: a second constructor of %v", c.typ)
		default:
			return fmt.Errorf("Constructor: constructor of %v, which is neither the model type %v nor its table type", c.typ, m.typ)
		}
	}
	return nil
}

// job is a record or table method with typed arguments.
type job struct {
	name    string
	fn      reflect.Value
	table   bool
	args    []reflect.Type // after the receiver and the context
	results int            // 1: error; 2: (value, error)
}

// ModelOption adds jobs to a model at registration.
type ModelOption func(*model) error

// RecordJob registers a custom record job: method is a method expression on
// the model, e.g. (*Article).Publish, of the form
// func(*T, context.Context, args...) error or (R, error). The worker loads
// the record by primary key and calls it with the client's arguments.
func RecordJob(name string, method any) ModelOption {
	return func(m *model) error { return m.addJob(name, method, false) }
}

// TableJob registers a table job: method is a method expression on the
// model's table type, e.g. (*ArticleTable).BuildFeed, of the form
// func(*Tab, context.Context, args...) error or (R, error). A table type
// embeds dispatch.Table to reach the database and the job.
func TableJob(name string, method any) ModelOption {
	return func(m *model) error { return m.addJob(name, method, true) }
}

// Register binds model name to struct type T. T maps to its table by `db`
// tags (primary key tagged `db:"id,pk"`) and embeds dispatch.Record; *T
// implements the trigger handlers for the events it wants.
func Register[T any](r *Registry, name string, opts ...ModelOption) error {
	if r.err != nil {
		return r.err
	}
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("%w: model %s: %v is not a struct", ErrRegister, name, t)
	}
	if _, dup := r.models[name]; dup {
		return fmt.Errorf("%w: model %s registered twice", ErrRegister, name)
	}
	cols, err := rowmap.Columns(t)
	if err != nil {
		return fmt.Errorf("%w: model %s: %w", ErrRegister, name, err)
	}
	f, ok := t.FieldByName("Record")
	if !ok || !f.Anonymous || f.Type != recType {
		return fmt.Errorf("%w: model %s: %v must embed dispatch.Record", ErrRegister, name, t)
	}
	hasPK := false
	for _, c := range cols {
		hasPK = hasPK || c.PK
	}
	if !hasPK {
		return fmt.Errorf("%w: model %s: %v has no field tagged db:\"…,pk\"", ErrRegister, name, t)
	}
	m := &model{name: name, typ: t, cols: cols, recField: f.Index, ops: map[string]bool{},
		jobs: map[string]*job{}}
	pt := reflect.PointerTo(t)
	m.ops[events.OpInsert] = pt.Implements(reflect.TypeFor[Inserter]())
	m.ops[events.OpUpdate] = pt.Implements(reflect.TypeFor[Updater]())
	m.ops[events.OpDelete] = pt.Implements(reflect.TypeFor[Deleter]())
	m.ops[events.OpSnapshot] = pt.Implements(reflect.TypeFor[Snapshotter]())
	for _, o := range opts {
		if err := o(m); err != nil {
			return fmt.Errorf("%w: model %s: %w", ErrRegister, name, err)
		}
	}
	if err := m.bindCtors(); err != nil {
		return fmt.Errorf("%w: model %s: %w", ErrRegister, name, err)
	}
	r.models[name] = m
	r.byType[t] = m
	if m.table != nil {
		if other, dup := r.byType[m.table]; dup {
			return fmt.Errorf("%w: table type %v serves both %s and %s", ErrRegister, m.table, other.name, name)
		}
		r.byType[m.table] = m
	}
	return nil
}

func (m *model) addJob(name string, method any, table bool) error {
	if _, dup := m.jobs[name]; dup {
		return fmt.Errorf("job %q registered twice", name)
	}
	if _, isOp := m.ops[name]; isOp || name == events.OpBatch {
		return fmt.Errorf("job %q has the name of a row event (or of the batch function)", name)
	}
	fn := reflect.ValueOf(method)
	ft := fn.Type()
	if ft.Kind() != reflect.Func || ft.NumIn() < 2 || ft.In(0).Kind() != reflect.Pointer ||
		ft.In(1) != ctxType || ft.IsVariadic() {
		return fmt.Errorf("job %q: want a method expression func(*Type, context.Context, args...), got %v", name, ft)
	}
	recv := ft.In(0).Elem()
	switch {
	case !table && recv != m.typ:
		return fmt.Errorf("record job %q: receiver %v is not the model type %v", name, ft.In(0), m.typ)
	case table && recv.Kind() != reflect.Struct:
		return fmt.Errorf("table job %q: receiver %v is not a pointer to a struct", name, ft.In(0))
	case table && m.table != nil && recv != m.table:
		return fmt.Errorf("table job %q: receiver %v, but the model's table type is %v", name, recv, m.table)
	}
	if f, ok := recv.FieldByName("Table"); table && ok && (!f.Anonymous || f.Type != tableType) {
		return fmt.Errorf("table job %q: field Table of %v must be an embedded dispatch.Table", name, recv)
	}
	switch {
	case ft.NumOut() == 1 && ft.Out(0) == errType:
	case ft.NumOut() == 2 && ft.Out(1) == errType:
	default:
		return fmt.Errorf("job %q: must return error or (value, error), got %v", name, ft)
	}
	j := &job{name: name, fn: fn, table: table, results: ft.NumOut()}
	for i := 2; i < ft.NumIn(); i++ {
		j.args = append(j.args, ft.In(i))
	}
	if table {
		m.table = recv
	}
	m.jobs[name] = j
	return nil
}

func (m *model) jobNames() []string {
	var names []string
	for n := range m.jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
