package triggers

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// Drift is one difference between the installed triggers and the config.
type Drift struct {
	Schema  string
	Trigger string
	Table   string
	// Kind is "missing" (configured, not installed), "extra" (an installed
	// rowgear_* trigger the config does not generate) or "differs".
	Kind   string
	Detail string
}

func (d Drift) String() string {
	s := fmt.Sprintf("%s trigger %s.%s on %s", d.Kind, d.Schema, d.Trigger, d.Table)
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	return s
}

// Installed returns the triggers installed in schema (empty: the current
// database) whose names start with rowgear_, sorted by name.
func Installed(ctx context.Context, db *sql.DB, schema string) ([]Trigger, error) {
	rows, err := db.QueryContext(ctx, `SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT
		FROM information_schema.TRIGGERS
		WHERE TRIGGER_SCHEMA = IFNULL(NULLIF(?, ''), DATABASE()) AND TRIGGER_NAME LIKE 'rowgear\_%'
		ORDER BY TRIGGER_NAME`, schema)
	if err != nil {
		return nil, fmt.Errorf("installed triggers: %w", err)
	}
	defer rows.Close()
	var out []Trigger
	for rows.Next() {
		var t Trigger
		var event, timing string
		if err := rows.Scan(&t.Name, &t.Table, &event, &timing, &t.Body); err != nil {
			return nil, fmt.Errorf("installed triggers: %w", err)
		}
		t.Event = strings.ToLower(event)
		t.Create = fmt.Sprintf("CREATE TRIGGER %s %s %s ON %s FOR EACH ROW\n%s",
			quoteIdent(t.Name), strings.ToUpper(timing), strings.ToUpper(event), quoteIdent(t.Table), t.Body)
		t.Drop = "DROP TRIGGER IF EXISTS " + quoteIdent(t.Name)
		if timing != "AFTER" {
			t.Event = strings.ToLower(timing) + " " + t.Event // never equal to a generated one
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Check compares the installed rowgear triggers of the specs' schemas with
// what Generate makes of the specs against the live tables. No drift: nil.
func Check(ctx context.Context, db *sql.DB, specs ...Spec) ([]Drift, error) {
	want := map[string][]Trigger{} // by schema
	var schemas []string
	for _, s := range specs {
		t, err := LoadTable(ctx, db, s.Schema, s.Table)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", s.Model, err)
		}
		gen, err := Generate(s, t)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(schemas, t.Schema) {
			schemas = append(schemas, t.Schema)
		}
		want[t.Schema] = append(want[t.Schema], gen...)
	}
	var drift []Drift
	for _, schema := range schemas {
		have, err := Installed(ctx, db, schema)
		if err != nil {
			return nil, err
		}
		byName := map[string]Trigger{}
		for _, t := range have {
			byName[t.Name] = t
		}
		for _, w := range want[schema] {
			h, ok := byName[w.Name]
			delete(byName, w.Name)
			d := Drift{Schema: schema, Trigger: w.Name, Table: w.Table}
			switch {
			case !ok:
				d.Kind = "missing"
			case h.Table != w.Table:
				d.Kind, d.Detail = "differs", "it is on table "+h.Table
			case h.Event != w.Event:
				d.Kind, d.Detail = "differs", "it fires "+h.Event+", want after "+w.Event
			case normalizeSpace(h.Body) != normalizeSpace(w.Body):
				d.Kind, d.Detail = "differs", "body differs: "+firstDifference(normalizeSpace(h.Body), normalizeSpace(w.Body))
			default:
				continue
			}
			drift = append(drift, d)
		}
		for _, h := range have {
			if _, ok := byName[h.Name]; ok {
				drift = append(drift, Drift{Schema: schema, Trigger: h.Name, Table: h.Table, Kind: "extra",
					Detail: "no configured model generates it"})
			}
		}
	}
	return drift, nil
}

// firstDifference shows where two bodies part, for a readable drift report.
func firstDifference(have, want string) string {
	i := 0
	for i < len(have) && i < len(want) && have[i] == want[i] {
		i++
	}
	from := max(0, i-30)
	excerpt := func(s string) string {
		return strings.TrimSpace(s[from:min(len(s), i+50)])
	}
	return fmt.Sprintf("installed %q, want %q", excerpt(have), excerpt(want))
}
