package console

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/events"
)

// rateObs are a running snapshot's recent (rows done, time) observations,
// for its rate and ETA.
type rateObs struct {
	mu  sync.Mutex // two tabs may poll at once
	pts []ratePt
}

type ratePt struct {
	at   time.Time
	rows int64
}

type snapRow struct {
	bridge.SnapshotProgress
	Chunk     int
	Requested time.Time
	Updated   time.Time
	Percent   float64
	Rate      string // rows/s
	ETA       string
	Running   bool
}

type snapData struct {
	Rows   []snapRow
	Models []string // models a snapshot may be requested for
	Err    string
}

func (c *Console) snapData(ctx context.Context) *snapData {
	d := &snapData{}
	for name, m := range c.opt.Config.Models {
		if m.Source == "binlog" {
			d.Models = append(d.Models, name)
		}
	}
	sortStrings(d.Models)
	all, err := bridge.Snapshots(ctx, c.opt.DB)
	if err != nil {
		d.Err = err.Error()
		return d
	}
	// The request's times and chunk: more columns of the same table.
	extra := map[int64]snapRow{}
	rows, err := c.opt.DB.QueryContext(ctx, "SELECT id, chunk_size, DATE_FORMAT(requested_at, '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f') FROM "+bridge.SnapshotTable)
	if err == nil {
		for rows.Next() {
			var id int64
			var s snapRow
			var req, upd string
			if rows.Scan(&id, &s.Chunk, &req, &upd) == nil {
				s.Requested, _ = time.ParseInLocation("2006-01-02 15:04:05.999999", req, time.Local)
				s.Updated, _ = time.ParseInLocation("2006-01-02 15:04:05.999999", upd, time.Local)
				extra[id] = s
			}
		}
		rows.Close()
	}
	now := time.Now()
	for i := len(all) - 1; i >= 0; i-- { // newest first
		p := all[i]
		s := extra[p.ID]
		s.SnapshotProgress = p
		s.Running = p.Status == "running" || p.Status == "requested"
		if p.RowsEstimate > 0 {
			s.Percent = min(100, float64(p.RowsDone)*100/float64(p.RowsEstimate))
		}
		if p.Status == "done" {
			s.Percent = 100
		}
		var rate float64
		if s.Running {
			v, _ := c.rates.LoadOrStore(p.ID, &rateObs{})
			o := v.(*rateObs)
			o.mu.Lock()
			o.pts = append(o.pts, ratePt{now, p.RowsDone})
			for len(o.pts) > 2 && now.Sub(o.pts[0].at) > time.Minute {
				o.pts = o.pts[1:]
			}
			if a, b := o.pts[0], o.pts[len(o.pts)-1]; b.at.Sub(a.at) > time.Second {
				rate = float64(b.rows-a.rows) / b.at.Sub(a.at).Seconds()
			}
			o.mu.Unlock()
			if rate > 0 && p.RowsEstimate > p.RowsDone {
				s.ETA = (time.Duration(float64(p.RowsEstimate-p.RowsDone)/rate) * time.Second).Round(time.Second).String()
			}
		} else {
			c.rates.Delete(p.ID)
			if d := s.Updated.Sub(s.Requested).Seconds(); d > 0 && p.RowsDone > 0 {
				rate = float64(p.RowsDone) / d // over the whole run
			}
		}
		if rate > 0 {
			s.Rate = strconv.FormatFloat(rate, 'f', 0, 64)
		}
		d.Rows = append(d.Rows, s)
	}
	return d
}

func (c *Console) snapshots(w http.ResponseWriter, r *http.Request) {
	c.full(w, "snapshots", "Snapshots", c.snapData(r.Context()))
}

func (c *Console) snapshotsLive(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "snapshots", "live", c.snapData(r.Context()))
}

// snapshotRequest asks the bridge for a snapshot, as `bridge snapshot`
// does: a row in the snapshot table.
func (c *Console) snapshotRequest(_ http.ResponseWriter, r *http.Request) (string, error) {
	model := strings.TrimSpace(r.PostFormValue("model"))
	chunk, err := strconv.Atoi(cmp.Or(strings.TrimSpace(r.PostFormValue("chunk")), "1000"))
	if err != nil || chunk < 1 {
		return "snapshot", fmt.Errorf("chunk %q: want 1 or more rows", r.PostFormValue("chunk"))
	}
	rate, err := strconv.Atoi(cmp.Or(strings.TrimSpace(r.PostFormValue("rate")), "0"))
	if err != nil || rate < 0 {
		return "snapshot", fmt.Errorf("pace %q: want 0 (unpaced) or more rows a second", r.PostFormValue("rate"))
	}
	if _, ok := c.opt.Config.Models[model]; !ok {
		return "snapshot", fmt.Errorf("model %q is not in the models: section of gearman.yml", model)
	}
	if reg := c.opt.Registry; reg != nil && len(reg.Models()) > 0 {
		if _, err := reg.SnapshotHandler(c.opt.Config, model); err != nil {
			return "snapshot of " + model, err
		}
	}
	id, err := bridge.RequestSnapshot(r.Context(), c.opt.DB, model, chunk, bridge.SnapshotRate(rate))
	if err != nil {
		return "snapshot of " + model, err
	}
	return fmt.Sprintf("snapshot %d of %s requested (chunk %d, pace %s); the bridge starts it", id, model, chunk, paceText(rate)), nil
}

func paceText(rate int) string {
	if rate == 0 {
		return "unpaced"
	}
	return fmt.Sprintf("≤ %d rows/s", rate)
}

type modelFn struct {
	Set, Function, Handler string
}

type modelRow struct {
	Name string
	config.Model
	GoType   string // "registered", "no Go type", or "" (unknown: no registry)
	Handlers []string
	Funcs    []modelFn
	Snapshot string
}

type modelsData struct {
	Namespace string
	Models    []modelRow
	Plain     []modelFn // worker: sets' plain functions
	Registry  bool
}

func (c *Console) models(w http.ResponseWriter, r *http.Request) {
	cfg := c.opt.Config
	ns := cmp.Or(cfg.Namespace, config.DefaultNamespace)
	d := &modelsData{Namespace: ns, Registry: c.opt.Registry != nil}
	var registered []string
	if c.opt.Registry != nil {
		registered = c.opt.Registry.Models()
	}
	names := make([]string, 0, len(cfg.Models))
	for n := range cfg.Models {
		names = append(names, n)
	}
	sortStrings(names)
	sets := make([]string, 0, len(cfg.DBWorkers))
	for s := range cfg.DBWorkers {
		sets = append(sets, s)
	}
	sortStrings(sets)
	for _, n := range names {
		m := cfg.Models[n]
		row := modelRow{Name: n, Model: m}
		switch {
		case m.Source != "binlog":
			row.Snapshot = "- (snapshots are the bridge's: binlog models only)"
		case c.opt.Registry != nil && len(registered) > 0:
			if h, err := c.opt.Registry.SnapshotHandler(cfg, n); err != nil {
				row.Snapshot = "none: " + err.Error()
			} else {
				row.Snapshot = h
			}
		case m.SnapshotAs == events.OpInsert:
			row.Snapshot = "TriggerInsert (op insert)"
		default:
			row.Snapshot = "TriggerSnapshot (op snapshot)"
		}
		if c.opt.Registry != nil {
			row.GoType = "no Go type"
			if slices.Contains(registered, n) {
				row.GoType = "registered"
			}
		}
		for _, op := range m.Events {
			row.Handlers = append(row.Handlers, handlerName(op))
		}
		for _, set := range sets {
			mj, ok := cfg.DBWorkers[set][n]
			if !ok {
				continue
			}
			ops := slices.Clone(mj.Events)
			if mj.AllEvents {
				ops = append(ops, m.Events...)
			}
			for _, op := range ops {
				row.Funcs = append(row.Funcs, modelFn{set, events.FuncName(ns, n, op), handlerName(op)})
			}
			for _, j := range mj.Jobs {
				h := "job " + j
				if j == events.OpSnapshot {
					h = row.Snapshot
				}
				row.Funcs = append(row.Funcs, modelFn{set, events.FuncName(ns, n, j), h})
			}
		}
		d.Models = append(d.Models, row)
	}
	wsets := make([]string, 0, len(cfg.Workers))
	for s := range cfg.Workers {
		wsets = append(wsets, s)
	}
	sortStrings(wsets)
	for _, s := range wsets {
		fns := make([]string, 0, len(cfg.Workers[s]))
		for fn := range cfg.Workers[s] {
			fns = append(fns, fn)
		}
		sortStrings(fns)
		for _, fn := range fns {
			d.Plain = append(d.Plain, modelFn{s, fn, cfg.Workers[s][fn].Name()})
		}
	}
	c.full(w, "models", "Models", d)
}

func handlerName(op string) string { return "Trigger" + strings.ToUpper(op[:1]) + op[1:] }
