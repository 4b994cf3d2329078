package triggers

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/rowgear/rowgear/internal/sqlschema"
)

// Drift is one difference between the installed triggers and the config.
type Drift struct {
	Schema  string
	Trigger string
	Table   string
	// Kind is "missing" (configured, not installed), "extra" (installed and
	// not generated: a rowgear_* trigger the config no longer makes, an
	// sfGearmanPlugin trigger, or, with no Trigger, a gman_do_background
	// from another UDF library) or "differs". Triggers generate drops
	// every extra trigger in the migration it writes.
	Kind   string
	Detail string
}

func (d Drift) String() string {
	if d.Trigger == "" {
		return fmt.Sprintf("%s UDF: %s", d.Kind, d.Detail)
	}
	s := fmt.Sprintf("%s trigger %s.%s on %s", d.Kind, d.Schema, d.Trigger, d.Table)
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	return s
}

// Installed returns the triggers installed in schema (empty: the current
// database) whose names start with rowgear_, and the sfGearmanPlugin
// triggers (gearman_<table>_<EVENT> calling gman_do_background, marked
// Plugin), sorted by name.
func Installed(ctx context.Context, db *sql.DB, schema string) ([]Trigger, error) {
	rows, err := db.QueryContext(ctx, `SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT
		FROM information_schema.TRIGGERS
		WHERE TRIGGER_SCHEMA = IFNULL(NULLIF(?, ''), DATABASE()) AND (TRIGGER_NAME LIKE 'rowgear\_%'
		  OR TRIGGER_NAME LIKE 'gearman\_%' AND ACTION_STATEMENT LIKE '%gman\_do\_%background%')
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
			sqlschema.QuoteIdent(t.Name), strings.ToUpper(timing), strings.ToUpper(event), sqlschema.QuoteIdent(t.Table), t.Body)
		t.Drop = "DROP TRIGGER IF EXISTS " + sqlschema.QuoteIdent(t.Name)
		t.Plugin = !strings.HasPrefix(t.Name, "rowgear_")
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
		t, err := sqlschema.LoadTable(ctx, db, s.Schema, s.Table)
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
				d := Drift{Schema: schema, Trigger: h.Name, Table: h.Table, Kind: "extra", Detail: "no configured model generates it"}
				if h.Plugin {
					d.Detail = pluginDetail(h, slices.ContainsFunc(want[schema], func(w Trigger) bool { return w.Table == h.Table }))
				}
				drift = append(drift, d)
			}
		}
	}
	udf, err := CheckUDF(ctx, db)
	if err != nil {
		return nil, err
	}
	if udf != nil {
		drift = append(drift, *udf)
	}
	return drift, nil
}

// pluginDetail says what an sfGearmanPlugin trigger does under rowgear
// and what to do about it.
func pluginDetail(t Trigger, modelTable bool) string {
	fix := "`triggers generate` drops it in the migration that installs rowgear's triggers of " + t.Table
	if !modelTable {
		fix = "declare a model for table " + t.Table + " under models: and run `triggers generate`, which drops it in the same migration, or drop it yourself: " + t.Drop
	}
	return "an sfGearmanPlugin trigger (gearman:create-trigger): its gman_do_background('__mysql_trigger', …) " +
		"gets NULL from rowgear's UDF, so the write commits and the event is lost; " + fix
}

// UDFLibrary is the shared library of rowgear's UDF (udf/, migration 00099).
const UDFLibrary = "rowgear_udf.so"

// CheckUDF reports a gman_do_background that mysql.func loads from another
// library than UDFLibrary: the upstream gearman-mysql-udf, which migration
// 00099 leaves in place (CREATE FUNCTION IF NOT EXISTS) and whose
// gman_do_background neither builds rowgear's envelope nor fails a write
// gearmand refused. Nil when it is rowgear's, absent, or mysql.func cannot
// be read (no SELECT privilege on it).
func CheckUDF(ctx context.Context, db *sql.DB) (*Drift, error) {
	var dl string
	err := db.QueryRowContext(ctx, "SELECT dl FROM mysql.func WHERE name = 'gman_do_background'").Scan(&dl)
	if err != nil {
		return nil, nil //nolint:nilerr // no row or no privilege: nothing to say
	}
	return udfDrift(dl), nil
}

func udfDrift(dl string) *Drift {
	if dl == UDFLibrary {
		return nil
	}
	return &Drift{Kind: "extra", Detail: fmt.Sprintf("gman_do_background comes from %s, not %s (the upstream gearman-mysql-udf, say), "+
		"which migration 00099 leaves in place: replace it with DROP FUNCTION gman_do_background; "+
		"(and gman_do_high_background, gman_do_low_background, gman_servers_set), then run migrate up again",
		dl, UDFLibrary)}
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
