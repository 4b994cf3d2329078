package dispatch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
)

// Worker is where Mount registers functions; *gearman.Worker is one.
type Worker interface {
	Register(fn string, h gearman.Handler)
}

// Mount registers on w the gearman functions of worker set `set` of cfg and
// returns their names, sorted, each handler wrapped in the middleware of
// Use. A `worker:` set mounts plain functions; a
// `doctrine:`/`dbworker:` set mounts its models' events and jobs; an empty
// set mounts every configured model with every event and job. A model
// whose events a set takes (`~`), or whose list names snapshot, also gets
// <Model>.snapshot when its type has TriggerSnapshot (or <Model>.insert
// when models.<Model>.snapshot is insert); a model whose events it mounts
// also gets <Model>.batch, binlogbridge's jobs of several of its events
// (see package bridge, Batches). It refuses (ErrMismatch) when the
// config and the registrations disagree: a model with no Go type, an event
// the config emits that has no handler or a handler for an event it does
// not emit, a job nobody registered, snapshot: insert without
// TriggerInsert or beside a TriggerSnapshot it would bypass.
func (r *Registry) Mount(w Worker, cfg *config.Config, set string, db *sql.DB) ([]string, error) {
	if r.err != nil {
		return nil, r.err
	}
	plan, err := r.plan(cfg, set)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(plan))
	chained := make(map[string]gearman.Handler, len(plan))
	batches := map[string]string{} // batch function → model
	for fn, h := range plan {
		chained[fn] = r.chain(r.wrap(h, db))
		w.Register(fn, chained[fn])
		names = append(names, fn)
		if h.model != nil && h.job == nil {
			batches[events.FuncName(cfg.Namespace, h.model.name, events.OpBatch)] = h.model.name
		}
	}
	for fn, model := range batches {
		w.Register(fn, r.chain(r.batch(cfg.Namespace, model, chained)))
		names = append(names, fn)
	}
	sort.Strings(names)
	return names, nil
}

// batch is the handler of a model's batch function (events.OpBatch: what
// binlogbridge sends with binlog.batch above 1). It runs each event of the
// batch, in order, through the whole chain of its own function, as if it
// had come alone: the middleware sees one event at a time (the retry guard
// retries a failed event alone, ordering skips a stale one), and the
// handler is called once per event. A failed event does not fail the
// batch, whose others would then run again; only gearman.ErrRequeue (the
// guard could not record the failure) does, so that gearmand keeps it.
// An event whose function this worker does not mount fails alone with
// gearman.ErrUnknownFunction (a dead letter under the guard).
func (r *Registry) batch(ns, model string, chained map[string]gearman.Handler) gearman.Handler {
	return func(ctx context.Context, j *gearman.Job) (any, error) {
		envs, err := eventwire.SplitBatchContext(ctx, j.Workload)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPayload, j.Function, err)
		}
		subs := make([]gearman.Job, len(envs))
		evs := make([]*events.Envelope, len(envs))
		for i, e := range envs {
			ev, err := eventwire.DecodeContext(ctx, e)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: event %d: %w", ErrPayload, j.Function, i, err)
			}
			if ev.Model != model {
				return nil, fmt.Errorf("%w: %s: event %s is of model %s", ErrPayload, j.Function, ev.ID, ev.Model)
			}
			subs[i] = *j
			subs[i].Function, subs[i].Workload, subs[i].Unique = events.FuncName(ns, model, ev.Op), e, ev.ID
			evs[i] = ev
		}
		ctx = eventwire.WithDecoded(ctx, envs, evs)
		failed := 0
		for i := range subs {
			h, ok := chained[subs[i].Function]
			if !ok {
				h = r.chain(func(context.Context, *gearman.Job) (any, error) {
					return nil, fmt.Errorf("%w: %s (in batch %s): this worker does not mount it", gearman.ErrUnknownFunction, subs[i].Function, j.Function)
				})
			}
			if _, err := h(ctx, &subs[i]); errors.Is(err, gearman.ErrRequeue) {
				return nil, err
			} else if err != nil {
				failed++
				r.log.Debug("event of a batch failed", "batch", j.Function, "event", subs[i].Unique, "err", err)
			}
		}
		if failed > 0 {
			r.log.Warn("events of a batch failed, each handled alone (retried or dead-lettered under the retry guard)",
				"batch", j.Function, "events", len(subs), "failed", failed)
		}
		return nil, nil
	}
}

// binding is one gearman function: a plain handler, a model's event, or a
// model's job.
type binding struct {
	plain gearman.Handler
	model *model
	cfg   config.Model
	op    string
	job   *job
}

func (r *Registry) plan(cfg *config.Config, set string) (map[string]binding, error) {
	plan := map[string]binding{}
	if ws, ok := cfg.Workers[set]; ok && set != "" {
		for fn, ref := range ws {
			h, ok := r.funcs[ref.Name()]
			if !ok {
				return nil, fmt.Errorf("%w: %s: worker set %s: function %s wants handler %s, which is not registered (registered: %s)",
					ErrMismatch, cfg.WorkerAt(set, fn), set, fn, ref.Name(), strings.Join(r.funcNames(), ", "))
			}
			plan[fn+cfg.FunctionSuffix] = binding{plain: h}
		}
		// A set under both worker: and doctrine: (the plugin ran them with
		// two tasks) serves both here.
		if _, both := cfg.DBWorkers[set]; !both {
			return plan, nil
		}
	}
	sel, err := cfg.DBWorkerSet(set)
	if err != nil {
		return nil, err // wraps config.ErrUnknownSet
	}
	for name, mj := range sel {
		if err := r.planModel(plan, cfg, set, name, mj); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

func (r *Registry) planModel(plan map[string]binding, cfg *config.Config, set, name string, mj config.ModelJobs) error {
	where := "set " + set
	if set == "" {
		where = "models"
	}
	m := r.models[name]
	if m == nil {
		return fmt.Errorf("%w: %s: model %s has no Go type (dispatch.Register)", ErrMismatch, where, name)
	}
	mc, ok := cfg.Models[name]
	if !ok {
		return fmt.Errorf("%w: %s: model %s is not in the models: section of %s (its table and events)", ErrMismatch, where, name, cfg.File)
	}
	for _, op := range []string{events.OpInsert, events.OpUpdate, events.OpDelete} {
		emits := slices.Contains(mc.Events, op)
		if emits && !m.ops[op] {
			return fmt.Errorf("%w: model %s emits %s (models.%s.events) but *%v has no %s method",
				ErrMismatch, name, op, name, m.typ, handlerName(op))
		}
		if !emits && m.ops[op] && (op != events.OpInsert || mc.SnapshotAs != events.OpInsert) {
			return fmt.Errorf("%w: *%v has %s but models.%s.events does not emit %s",
				ErrMismatch, m.typ, handlerName(op), name, op)
		}
	}
	if err := checkSnapshot(m, mc, name); err != nil {
		return err
	}
	ops := slices.Clone(mj.Events)
	if mj.AllEvents {
		ops = append(ops, mc.Events...)
	}
	for _, op := range ops {
		if !slices.Contains(mc.Events, op) {
			return fmt.Errorf("%w: %s: model %s does not emit %s (models.%s.events)", ErrMismatch, where, name, op, name)
		}
		plan[events.FuncName(cfg.Namespace, name, op)] = binding{model: m, cfg: mc, op: op}
	}
	// A snapshot's rows come with all the events (`~`) or when the set
	// names snapshot; as inserts when the model says so.
	if mj.AllEvents || slices.Contains(mj.Jobs, events.OpSnapshot) {
		op := events.OpSnapshot
		if mc.SnapshotAs == events.OpInsert {
			op = events.OpInsert
		}
		if m.ops[op] {
			plan[events.FuncName(cfg.Namespace, name, op)] = binding{model: m, cfg: mc, op: op}
		} else if !mj.AllEvents {
			return fmt.Errorf("%w: %s: model %s: *%v has no TriggerSnapshot", ErrMismatch, where, name, m.typ)
		}
	}
	for _, jn := range mj.Jobs {
		if jn == events.OpSnapshot {
			continue
		}
		j := m.jobs[jn]
		if j == nil {
			return fmt.Errorf("%w: %s: model %s has no job %q (registered: %s)",
				ErrMismatch, where, name, jn, strings.Join(m.jobNames(), ", "))
		}
		plan[cfg.JobFunction(name, jn)] = binding{model: m, cfg: mc, job: j}
	}
	return nil
}

// checkSnapshot cross-checks how the bridge sends the model's snapshot rows
// with the handlers of its Go type.
func checkSnapshot(m *model, mc config.Model, name string) error {
	if mc.SnapshotAs != events.OpInsert {
		return nil
	}
	if m.ops[events.OpSnapshot] {
		return fmt.Errorf("%w: *%v has TriggerSnapshot but models.%s.snapshot: insert sends snapshot rows to TriggerInsert",
			ErrMismatch, m.typ, name)
	}
	if !m.ops[events.OpInsert] {
		return fmt.Errorf("%w: models.%s.snapshot: insert sends snapshot rows to TriggerInsert, which *%v does not have",
			ErrMismatch, name, m.typ)
	}
	return nil
}

// SnapshotHandler reports which handler of model would get the rows of a
// snapshot of it under cfg: "TriggerSnapshot", or "TriggerInsert" with
// models.<Model>.snapshot: insert. It returns an ErrMismatch error when the
// model's Go type has neither: such a snapshot's jobs would wait in
// gearmand for a worker that never comes. `bridge snapshot` asks it before
// requesting a snapshot.
func (r *Registry) SnapshotHandler(cfg *config.Config, model string) (string, error) {
	m := r.models[model]
	if m == nil {
		return "", fmt.Errorf("%w: model %s has no Go type (dispatch.Register)", ErrMismatch, model)
	}
	mc, ok := cfg.Models[model]
	if !ok {
		return "", fmt.Errorf("%w: model %s is not in the models: section of %s", ErrMismatch, model, cfg.File)
	}
	if mc.SnapshotAs == events.OpInsert {
		if err := checkSnapshot(m, mc, model); err != nil {
			return "", err
		}
		return handlerName(events.OpInsert), nil
	}
	if !m.ops[events.OpSnapshot] {
		return "", fmt.Errorf("%w: *%v has no TriggerSnapshot for the snapshot's rows (add one, or set models.%s.snapshot: insert to send them to TriggerInsert)",
			ErrMismatch, m.typ, model)
	}
	return handlerName(events.OpSnapshot), nil
}

// Models lists the registered model names, sorted.
func (r *Registry) Models() []string {
	names := make([]string, 0, len(r.models))
	for n := range r.models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func handlerName(op string) string {
	return "Trigger" + strings.ToUpper(op[:1]) + op[1:]
}

func (r *Registry) funcNames() []string {
	var names []string
	for n := range r.funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *Registry) wrap(b binding, db *sql.DB) gearman.Handler {
	switch {
	case b.plain != nil:
		return b.plain
	case b.job != nil && b.job.table:
		src := newSource(db, b.cfg.Schema, b.cfg.Table, b.model.cols)
		return func(ctx context.Context, j *gearman.Job) (any, error) {
			return runTableJob(ctx, j, b.model, b.job, src)
		}
	case b.job != nil:
		src := newSource(db, b.cfg.Schema, b.cfg.Table, b.model.cols)
		return func(ctx context.Context, j *gearman.Job) (any, error) {
			return runRecordJob(ctx, j, b.model, b.job, src)
		}
	default:
		src := newSource(db, b.cfg.Schema, b.cfg.Table, b.model.cols)
		return func(ctx context.Context, j *gearman.Job) (any, error) {
			return nil, runEvent(ctx, j, b.model, b.op, src)
		}
	}
}

// runEvent decodes a row event and calls the model's trigger handler.
func runEvent(ctx context.Context, j *gearman.Job, m *model, op string, src *source) error {
	ev, err := eventwire.DecodeContext(ctx, j.Workload)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPayload, j.Function, err)
	}
	if ev.Model != m.name || ev.Op != op {
		return fmt.Errorf("%w: event %s is a %s.%s event, sent to %s", ErrPayload, ev.ID, ev.Model, ev.Op, j.Function)
	}
	if ev.ReadRow {
		// Package ordering reads the row before the handler; without it
		// (no database, or not in the chain) there is nothing to load.
		return fmt.Errorf("%w: event %s: read_row and no row: an outbox trigger's event needs the ordering middleware, which reads its row", ErrPayload, ev.ID)
	}
	rec := m.newRecord()
	if err := ev.Row.Scan(rec.Interface()); err != nil {
		return fmt.Errorf("%w: event %s: %w", ErrPayload, ev.ID, err)
	}
	m.attach(rec, &recState{src: src, self: rec, job: j, event: ev})
	switch op {
	case events.OpInsert:
		err = rec.Interface().(Inserter).TriggerInsert(ctx)
	case events.OpUpdate:
		err = rec.Interface().(Updater).TriggerUpdate(ctx, ev.Modified)
	case events.OpDelete:
		err = rec.Interface().(Deleter).TriggerDelete(ctx)
	case events.OpSnapshot:
		err = rec.Interface().(Snapshotter).TriggerSnapshot(ctx)
	}
	if err != nil {
		return fmt.Errorf("event %s (%s.%s): %w", ev.ID, m.name, op, err)
	}
	return nil
}

func (m *model) attach(rec reflect.Value, st *recState) {
	rec.Elem().FieldByIndex(m.recField).Set(reflect.ValueOf(Record{st: st}))
}

// jobPayload is the workload of record and table jobs.
type jobPayload struct {
	PK   events.Row        `json:"pk,omitempty"`
	Args []json.RawMessage `json:"args"`
}

// pluginPayload is a record or table job's workload as sfGearmanPlugin's
// Doctrine template writes it ({arguments: [...], record: ...}), read with
// the PHP codec; a record is named by pk (its primary key columns), since a
// serialized Doctrine record is a PHP object, refused as such.
type pluginPayload struct {
	PK        map[string]any `json:"pk"`
	Arguments []any          `json:"arguments"`
	Args      []any          `json:"args"`
}

func decodeJob(j *gearman.Job, jb *job) (*jobPayload, []reflect.Value, error) {
	var p jobPayload
	if j.Codec().Name() == "php" {
		var pp pluginPayload
		if err := j.Decode(&pp); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrPayload, err)
		}
		args := pp.Arguments
		if args == nil {
			args = pp.Args
		}
		for _, a := range args {
			raw, err := json.Marshal(a)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s: %w", ErrPayload, j.Function, err)
			}
			p.Args = append(p.Args, raw)
		}
		if pp.PK != nil {
			raw, err := json.Marshal(pp.PK)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s: %w", ErrPayload, j.Function, err)
			}
			if err := json.Unmarshal(raw, &p.PK); err != nil {
				return nil, nil, fmt.Errorf("%w: %s: pk: %w", ErrPayload, j.Function, err)
			}
		}
	} else if err := json.Unmarshal(j.Workload, &p); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrPayload, j.Function, err)
	}
	if len(p.Args) != len(jb.args) {
		return nil, nil, fmt.Errorf("%w: %s takes %d arguments, got %d", ErrPayload, j.Function, len(jb.args), len(p.Args))
	}
	args := make([]reflect.Value, len(p.Args))
	for i, raw := range p.Args {
		v := reflect.New(jb.args[i])
		if err := json.Unmarshal(raw, v.Interface()); err != nil {
			return nil, nil, fmt.Errorf("%w: %s argument %d (%v): %w", ErrPayload, j.Function, i+1, jb.args[i], err)
		}
		args[i] = v.Elem()
	}
	return &p, args, nil
}

func runRecordJob(ctx context.Context, j *gearman.Job, m *model, jb *job, src *source) (any, error) {
	p, args, err := decodeJob(j, jb)
	if err != nil {
		return nil, err
	}
	rec := m.newRecord()
	if err := p.PK.Scan(rec.Interface()); err != nil {
		return nil, fmt.Errorf("%w: %s key: %w", ErrPayload, j.Function, err)
	}
	if err := src.load(ctx, rec); err != nil {
		return nil, err
	}
	m.attach(rec, &recState{src: src, self: rec, job: j})
	return call(jb, rec, ctx, args)
}

func runTableJob(ctx context.Context, j *gearman.Job, m *model, jb *job, src *source) (any, error) {
	_, args, err := decodeJob(j, jb)
	if err != nil {
		return nil, err
	}
	tab := m.newTable()
	if f := tab.Elem().FieldByName("Table"); f.IsValid() && f.Type() == tableType {
		f.Set(reflect.ValueOf(Table{st: &tableState{db: src.db, model: m.name, table: src.table, job: j}}))
	}
	return call(jb, tab, ctx, args)
}

func call(jb *job, recv reflect.Value, ctx context.Context, args []reflect.Value) (any, error) {
	in := append([]reflect.Value{recv, reflect.ValueOf(&ctx).Elem()}, args...)
	out := jb.fn.Call(in)
	errv := out[len(out)-1]
	if !errv.IsNil() {
		return nil, errv.Interface().(error)
	}
	if jb.results == 2 {
		return out[0].Interface(), nil
	}
	return nil, nil
}
