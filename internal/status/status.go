// Package status answers an operator's first questions on one screen: is
// the pipeline keeping up, and is anything stuck? Collect gathers, for a
// gearman.yml and its database:
//
//   - every configured gearmand, up or down, and its functions: jobs queued,
//     running, and workers (admin protocol "status"); an unreachable server
//     is a problem. The gearmands the UDF lists (mysqld's
//     ROWGEAR_GEARMAN_SERVERS, read with gman_servers_set(NULL)) are asked
//     too: one down there is a note, as status may run where their names do
//     not resolve;
//   - binlogbridge's saved position and lag: the age of the newest heartbeat
//     it read back (rowgear_heartbeat), and the binlog bytes between the
//     saved position and the server's end; a lag beyond the threshold is a
//     problem (a stopped bridge's lag grows with its heartbeats' age);
//   - dead letters by function (rowgear_failed_jobs); any is a problem;
//   - the UDF's failure count since mysqld started (gman_failures():
//     writes let through in lenient mode whose job was not queued); shown,
//     not a problem by itself;
//   - trigger drift (as the `triggers check` command); any is a problem.
//
// Report.Problems names each; Command exits non-zero when there is one, so
// it serves as a cron or CI probe.
package status

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/internal/gearmanadmin"
	"github.com/rowgear/rowgear/internal/retryguard"
	"github.com/rowgear/rowgear/triggers"
)

// ErrAttention: the report has problems; Command returns it (wrapped) so
// that the program exits non-zero.
var ErrAttention = errors.New("status: needs attention")

// Report is what Collect found.
type Report struct {
	At          time.Time        `json:"at"`
	Servers     []Server         `json:"servers"`
	Bridge      *Bridge          `json:"bridge,omitempty"` // nil: no model has source binlog
	Outbox      *Outbox          `json:"outbox,omitempty"` // nil: triggers.mode is not outbox
	DeadLetters map[string]int64 `json:"dead_letters"`     // by function
	UDFFailures *int64           `json:"udf_failures"`     // nil: unknown (see Notes)
	Drift       []string         `json:"drift"`
	Problems    []string         `json:"problems"` // empty: nothing needs a person
	Notes       []string         `json:"notes,omitempty"`
}

// Server is one gearmand of the config or of the UDF's list.
type Server struct {
	Name      string                    `json:"name"` // the server: section's connection names, "udf" for the UDF's list
	Addr      string                    `json:"addr"`
	Up        bool                      `json:"up"`
	Error     string                    `json:"error,omitempty"` // why it is not up
	Functions []gearmanadmin.FuncStatus `json:"functions"`
}

// Bridge is binlogbridge's state as the database shows it.
type Bridge struct {
	ServerID    uint32     `json:"server_id"`
	Position    string     `json:"position,omitempty"` // saved: what a restart resumes from
	SavedAt     *time.Time `json:"saved_at,omitempty"`
	LagSeconds  *float64   `json:"lag_seconds"`  // age of the newest heartbeat read back; nil: unknown
	BehindBytes *int64     `json:"behind_bytes"` // saved position → server's end, same file only; nil: unknown
	// Keyless: tables of binlog models without a primary key
	// ("schema.table"): binlogbridge skips their row changes.
	Keyless []string `json:"keyless_tables,omitempty"`
	// Instances are the bridges of a binlog.ha group: which one is active,
	// where the others stand.
	Instances []BridgeInstance `json:"instances,omitempty"`
}

// Outbox is the trigger source's backlog (triggers.mode: outbox): the
// events committed and not yet handled, which the relay sends (again)
// until they are.
type Outbox struct {
	Waiting       int64    `json:"waiting"`                  // rows not yet handled
	OldestSeconds *float64 `json:"oldest_seconds,omitempty"` // the oldest's age; nil: none waits
	Parked        int64    `json:"parked"`                   // rows of dead letters, sent again only by a replay
}

// Options of Collect.
type Options struct {
	// LagThreshold: a bridge lag beyond it is a problem (default 1 min).
	LagThreshold time.Duration
	// Timeout of each gearmand's admin answer (default 3 s).
	AdminTimeout time.Duration
	// AllFunctions lists every function gearmand knows; by default only
	// this config's: <namespace>.* and the functions of its worker: sets.
	AllFunctions bool
}

// Collect builds the report for cfg, reading db (the application's
// database, where rowgear's tables are). It fails only when the database
// cannot be reached at all; everything else is a problem or a note in the
// report.
func Collect(ctx context.Context, cfg *config.Config, db *sql.DB, opt Options) (*Report, error) {
	if opt.LagThreshold <= 0 {
		opt.LagThreshold = time.Minute
	}
	if opt.AdminTimeout <= 0 {
		opt.AdminTimeout = 3 * time.Second
	}
	r := &Report{At: time.Now().UTC(), DeadLetters: map[string]int64{}, Drift: []string{}, Problems: []string{}}
	if err := db.PingContext(ctx); err != nil {
		r.servers(ctx, cfg, "", opt)
		r.problem("database unreachable: %v", err)
		return r, nil
	}
	var udfServers sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT gman_servers_set(NULL)").Scan(&udfServers); err != nil {
		r.note("the UDF's gearmands unknown: %v", err)
	}
	r.servers(ctx, cfg, udfServers.String, opt)
	dead, err := retryguard.NewStore(db).CountDead(ctx)
	if err != nil {
		r.problem("dead letters unknown: %v", err)
	}
	for fn, n := range dead {
		r.DeadLetters[fn] = n
	}
	for _, fn := range sortedKeys(dead) {
		r.problem("%d dead letter(s) of %s (see `dead list`)", dead[fn], fn)
	}
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT gman_failures()").Scan(&n); err != nil {
		r.note("UDF failures unknown: %v", err)
	} else {
		r.UDFFailures = &n
	}
	specs, err := triggers.Specs(cfg)
	if err == nil && len(specs) > 0 {
		var drift []triggers.Drift
		if drift, err = triggers.Check(ctx, db, specs...); err == nil {
			for _, d := range drift {
				r.Drift = append(r.Drift, d.String())
				r.problem("trigger drift: %s (run `triggers generate`, then `migrate up`)", d)
			}
		}
	}
	if err != nil {
		r.problem("trigger drift unknown: %v", err)
	}
	if slices.ContainsFunc(slices.Collect(maps.Values(cfg.Models)), func(m config.Model) bool { return m.Source == "binlog" }) {
		r.bridge(ctx, cfg, db, opt.LagThreshold)
	}
	if cfg.Triggers.Mode == "outbox" {
		r.outbox(ctx, db, opt.LagThreshold)
	}
	return r, nil
}

// outbox reads the backlog of the connection's gate table; a backlog older
// than threshold is a problem: nothing is relayed or handled.
func (r *Report) outbox(ctx context.Context, db *sql.DB, threshold time.Duration) {
	o := &Outbox{}
	var oldest sql.NullFloat64
	err := db.QueryRowContext(ctx, "SELECT COUNT(relay_after), COUNT(*) - COUNT(relay_after), "+
		"TIMESTAMPDIFF(MICROSECOND, MIN(IF(relay_after IS NULL, NULL, created_at)), NOW()) / 1e6 "+
		"FROM rowgear_gate WHERE relay_after IS NOT NULL OR digest IS NULL").Scan(&o.Waiting, &o.Parked, &oldest)
	if err != nil {
		r.problem("trigger outbox unknown: %v", err)
		return
	}
	if oldest.Valid {
		o.OldestSeconds = &oldest.Float64
		if age := time.Duration(oldest.Float64 * float64(time.Second)); age > threshold {
			r.problem("%d trigger event(s) wait in the outbox, the oldest for %s: is a worker running, and a gearmand up?",
				o.Waiting, age.Round(time.Second))
		}
	}
	r.Outbox = o
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// servers asks every configured gearmand and every one of the UDF's list
// (udf: "host:port,…"), once per address.
func (r *Report) servers(ctx context.Context, cfg *config.Config, udf string, opt Options) {
	ns := cmp.Or(cfg.Namespace, config.DefaultNamespace) + "."
	plain := map[string]bool{}
	for _, set := range cfg.Workers {
		for fn := range set {
			plain[fn] = true
		}
	}
	ours := func(fn string) bool { return opt.AllFunctions || strings.HasPrefix(fn, ns) || plain[fn] }
	names := map[string][]string{}
	for _, name := range sortedKeys(cfg.Servers) {
		for _, a := range cfg.Servers[name] {
			names[a] = append(names[a], name)
		}
	}
	for _, a := range udfList(udf) {
		names[a] = append(names[a], "udf")
	}
	for _, addr := range sortedKeys(names) {
		s := Server{Name: strings.Join(names[addr], ","), Addr: addr, Functions: []gearmanadmin.FuncStatus{}}
		actx, cancel := context.WithTimeout(ctx, opt.AdminTimeout)
		fs, err := gearmanadmin.Status(actx, addr)
		cancel()
		switch {
		case err != nil && s.Name == "udf":
			s.Error = err.Error()
			r.note("gearmand %s of the UDF's list unreachable from here: %v", addr, err)
		case err != nil:
			s.Error = err.Error()
			r.problem("gearmand %s (%s) unreachable: %v", s.Name, addr, err)
		default:
			s.Up = true
			for _, f := range fs {
				if ours(f.Function) {
					s.Functions = append(s.Functions, f)
				}
			}
			sort.Slice(s.Functions, func(i, j int) bool { return s.Functions[i].Function < s.Functions[j].Function })
		}
		r.Servers = append(r.Servers, s)
	}
}

// udfList splits the UDF's server list as the UDF does: a host without a
// port is on 4730.
func udfList(list string) []string {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(strings.Trim(a, "[]"), "4730")
		}
		addrs = append(addrs, a)
	}
	return addrs
}

func (r *Report) bridge(ctx context.Context, cfg *config.Config, db *sql.DB, threshold time.Duration) {
	b := &Bridge{ServerID: cfg.Binlog.ServerID}
	if b.ServerID == 0 {
		b.ServerID = 1001
	}
	r.Bridge = b
	r.instances(ctx, db, b)
	var saved bridge.Position
	var at time.Time
	var err error
	if path, ok := strings.CutPrefix(cfg.Binlog.Position, "file:"); ok {
		var found bool
		saved, found, err = bridge.FileStore{Path: path}.Load(ctx)
		if err == nil && !found {
			err = errors.New("no saved position in " + path)
		}
	} else {
		var ts string
		err = db.QueryRowContext(ctx, "SELECT binlog_file, binlog_pos, gtid_set, DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f') FROM `"+
			bridge.PositionTable+"` WHERE server_id = ?", b.ServerID).Scan(&saved.File, &saved.Pos, &saved.GTID, &ts)
		if err == nil {
			at, _ = time.ParseInLocation("2006-01-02 15:04:05.999999", ts, time.Local)
		}
	}
	if err != nil {
		r.problem("bridge (server_id %d): no saved position: %v", b.ServerID, err)
	} else {
		b.Position = saved.String()
		if !at.IsZero() {
			t := at.UTC()
			b.SavedAt = &t
		}
		var end bridge.Position
		var rest [2]sql.NullString
		if db.QueryRowContext(ctx, "SHOW BINLOG STATUS").Scan(&end.File, &end.Pos, &rest[0], &rest[1]) == nil && end.File == saved.File {
			n := max(int64(end.Pos)-int64(saved.Pos), 0)
			b.BehindBytes = &n
		}
	}
	r.keyless(ctx, cfg, db, b)
	var lag sql.NullFloat64
	err = db.QueryRowContext(ctx, "SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), UTC_TIMESTAMP(6)) / 1e6 FROM `"+bridge.HeartbeatTable+
		"` WHERE server_id = ? AND binlog_file IS NOT NULL", b.ServerID).Scan(&lag)
	var me *gomysql.MySQLError
	switch {
	case errors.As(err, &me) && me.Number == 1146:
		r.note("bridge lag unknown: no %s table (migration 00030)", bridge.HeartbeatTable)
	case err != nil:
		r.problem("bridge lag unknown: %v", err)
	case !lag.Valid:
		r.note("bridge lag unknown: no heartbeat read back yet (is binlogbridge running with --heartbeat?)")
	default:
		v := max(lag.Float64, 0)
		b.LagSeconds = &v
		if d := time.Duration(v * float64(time.Second)); d > threshold {
			r.problem("bridge lagging: %s behind (threshold %s); newest heartbeat read back is that old", d.Round(time.Second), threshold)
		}
	}
}

// keyless finds the binlog models' tables without a primary key.
func (r *Report) keyless(ctx context.Context, cfg *config.Config, db *sql.DB, b *Bridge) {
	for _, name := range sortedKeys(cfg.Models) {
		m := cfg.Models[name]
		if m.Source != "binlog" {
			continue
		}
		var schema string
		var n int
		err := db.QueryRowContext(ctx, "SELECT COALESCE(NULLIF(?, ''), DATABASE()), (SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS "+
			"WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ? AND CONSTRAINT_TYPE = 'PRIMARY KEY')",
			m.Schema, m.Schema, m.Table).Scan(&schema, &n)
		if err != nil {
			r.problem("model %s: primary key unknown: %v", name, err)
			continue
		}
		if n == 0 {
			b.Keyless = append(b.Keyless, schema+"."+m.Table)
			r.problem("model %s: table %s.%s has no primary key: binlogbridge skips its row changes "+
				"(add one with ALTER TABLE … ADD PRIMARY KEY, or use source: trigger)", name, schema, m.Table)
		}
	}
}

// OK reports whether nothing needs a person.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the one-screen form.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "rowgear status at %s\n\nGEARMAND\tFUNCTION\tQUEUED\tRUNNING\tWORKERS\n", r.At.Format(time.RFC3339))
	for _, s := range r.Servers {
		label := s.Name + " " + s.Addr + " up"
		if !s.Up {
			fmt.Fprintf(tw, "%s %s DOWN\t%s\t\t\t\n", s.Name, s.Addr, s.Error)
			continue
		}
		if len(s.Functions) == 0 {
			fmt.Fprintf(tw, "%s\t(no functions)\t\t\t\n", label)
		}
		for _, f := range s.Functions {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", label, f.Function, f.Queued, f.Running, f.Workers)
		}
	}
	if b := r.Bridge; b != nil {
		fmt.Fprintf(tw, "\nBRIDGE\tSAVED POSITION\tLAG\tBEHIND\t\n")
		lag, behind := "?", "?"
		if b.LagSeconds != nil {
			lag = fmt.Sprintf("%.1fs", *b.LagSeconds)
		}
		if b.BehindBytes != nil {
			behind = fmt.Sprintf("%d bytes", *b.BehindBytes)
		}
		fmt.Fprintf(tw, "server_id %d\t%s\t%s\t%s\t\n", b.ServerID, cmp.Or(b.Position, "-"), lag, behind)
		writeInstances(tw, b)
	}
	if o := r.Outbox; o != nil {
		oldest := "-"
		if o.OldestSeconds != nil {
			oldest = fmt.Sprintf("%.1fs", *o.OldestSeconds)
		}
		fmt.Fprintf(tw, "\nOUTBOX\tWAITING\tOLDEST\tPARKED\t\n")
		fmt.Fprintf(tw, "trigger events\t%d\t%s\t%d\t\n", o.Waiting, oldest, o.Parked)
	}
	fmt.Fprintf(tw, "\nDEAD LETTERS\tCOUNT\t\t\t\n")
	if len(r.DeadLetters) == 0 {
		fmt.Fprintf(tw, "(none)\t0\t\t\t\n")
	}
	for _, fn := range sortedKeys(r.DeadLetters) {
		fmt.Fprintf(tw, "%s\t%d\t\t\t\n", fn, r.DeadLetters[fn])
	}
	udf := "?"
	if r.UDFFailures != nil {
		udf = fmt.Sprint(*r.UDFFailures)
	}
	fmt.Fprintf(tw, "\nUDF failures since mysqld start: %s\ttrigger drift: %d\t\t\t\n", udf, len(r.Drift))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.OK() {
		_, err := fmt.Fprintln(w, "\nOK: nothing needs attention")
		return err
	}
	fmt.Fprintf(w, "\n%d problem(s):\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
