package console

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/rowgear/rowgear/internal/gearmanadmin"
	"github.com/rowgear/rowgear/internal/status"
)

// problem is one of status's problems with what an operator does about it.
type problem struct {
	Text, Do, Link string
}

// advise says what to do about a problem status names. The texts are
// status's own (status.go); a problem it does not know gets status's text
// alone.
func advise(p string, deadFn string) problem {
	switch {
	case strings.Contains(p, "dead letter(s) of "):
		return problem{p, "Open its dead letters: read the error and the payload, fix the handler or the data, then retry them (or purge what is obsolete).", "/dead?function=" + deadFn}
	case strings.HasPrefix(p, "trigger drift"):
		return problem{p, "The installed triggers differ from gearman.yml: run `app triggers generate`, review the migration, then `app migrate up`.", ""}
	case strings.HasPrefix(p, "gearmand") && strings.Contains(p, "unreachable"):
		return problem{p, "Start or restart that gearmand (or fix server: in gearman.yml); producers' jobs are not queued meanwhile (the UDF's lenient mode drops them, strict mode fails the writes).", ""}
	case strings.HasPrefix(p, "bridge lagging"):
		return problem{p, "Is binlogbridge running? Check its log and its behind-bytes: a stopped bridge resumes from its saved position; a slow one needs more --concurrency, batches, or workers.", ""}
	case strings.HasPrefix(p, "bridge") && strings.Contains(p, "no saved position"):
		return problem{p, "binlogbridge has not saved a position yet: start it (`app bridge`), or check its --start and binlog: section.", ""}
	case strings.HasPrefix(p, "database unreachable"):
		return problem{p, "Check that MariaDB runs and database.dsn (and its password file) in gearman.yml.", ""}
	case strings.Contains(p, "unknown:"):
		return problem{p, "The console could not read it: check the database user's grants and that `app migrate up` ran.", ""}
	}
	return problem{Text: p}
}

// funcRow is one function of the overview's table.
type funcRow struct {
	Server, Addr string
	gearmanadmin.FuncStatus
	Dead int64
}

type overviewData struct {
	R         *status.Report
	Functions []funcRow
	Problems  []problem
	Sources   []sourceState
	Lag       string // shown as text; data attributes carry the numbers
	Behind    string
}

func (c *Console) overviewData(r *http.Request) (*overviewData, error) {
	rep, err := c.report(r.Context())
	if err != nil {
		return nil, err
	}
	d := &overviewData{R: rep, Sources: c.sampler.states(), Lag: "?", Behind: "?"}
	seen := map[string]bool{}
	for _, s := range rep.Servers {
		for _, f := range s.Functions {
			d.Functions = append(d.Functions, funcRow{Server: s.Name, Addr: s.Addr, FuncStatus: f, Dead: rep.DeadLetters[f.Function]})
			seen[f.Function] = true
		}
	}
	// Functions with dead letters that no gearmand lists any more.
	for fn, n := range rep.DeadLetters {
		if !seen[fn] {
			d.Functions = append(d.Functions, funcRow{Server: "-", FuncStatus: gearmanadmin.FuncStatus{Function: fn}, Dead: n})
		}
	}
	sort.SliceStable(d.Functions, func(i, j int) bool { return d.Functions[i].Function < d.Functions[j].Function })
	deadFns := sortedDead(rep.DeadLetters)
	k := 0
	for _, p := range rep.Problems {
		fn := ""
		if strings.Contains(p, "dead letter(s) of ") && k < len(deadFns) {
			fn = deadFns[k] // status names them in this order
			k++
		}
		d.Problems = append(d.Problems, advise(p, fn))
	}
	if b := rep.Bridge; b != nil {
		if b.LagSeconds != nil {
			d.Lag = fmt.Sprintf("%.2f s", *b.LagSeconds)
		}
		if b.BehindBytes != nil {
			d.Behind = fmt.Sprintf("%d bytes", *b.BehindBytes)
		}
	}
	return d, nil
}

func sortedDead(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	d, err := c.overviewData(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	c.full(w, "overview", "Overview", d)
}

func (c *Console) overviewLive(w http.ResponseWriter, r *http.Request) {
	d, err := c.overviewData(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	c.render(w, http.StatusOK, "overview", "live", d)
}

// statusJSON is the report as `status --json` writes it.
func (c *Console) statusJSON(w http.ResponseWriter, r *http.Request) {
	rep, err := c.report(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	rep.WriteJSON(w)
}

// series is the charts' data in uPlot's column form: unix seconds, then
// one column per series; null where unknown.
func (c *Console) series(w http.ResponseWriter, r *http.Request) {
	ss := c.sampler.samples()
	cols := make([][]*float64, 6)
	for _, s := range ss {
		for i, v := range []float64{float64(s.At.UnixMilli()) / 1000, s.WorkerRate, s.BridgeRate, s.P50 * 1000, s.P99 * 1000, s.Lag} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				cols[i] = append(cols[i], nil)
				continue
			}
			cols[i] = append(cols[i], &v)
		}
	}
	for i := range cols {
		if cols[i] == nil {
			cols[i] = []*float64{}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"every": c.opt.SampleEvery.Seconds(), "data": cols})
}

func sortStrings(s []string) { sort.Strings(s) }
