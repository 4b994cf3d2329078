// Package triggers generates the AFTER INSERT/UPDATE/DELETE triggers that
// publish row events through the gearman UDF, renders them as goose
// migrations, and checks installed triggers for drift.
//
// A trigger builds the events.Envelope in SQL with JSON_OBJECT, writing each
// column in the form events documents, writes its commit gate (a row in
// sqlschema.GateTable holding the envelope's SHA-256, inside the writer's
// transaction), appends the gate row's id to the envelope as seq, and
// submits it with gman_do_background('<namespace>.<Model>.<op>', payload,
// id). Package ordering's worker middleware runs the event only once the
// gate row is committed, and verifies the digest. An UPDATE that changes
// none of the model's columns submits nothing; one that changes the primary
// key submits a delete of the old key and an insert of the new one when the
// model takes both events.
//
// TIMESTAMP columns are converted to UTC from their stored epoch value
// (UNIX_TIMESTAMP, then added to 1970-01-01), not with
// CONVERT_TZ(col, @@session.time_zone, '+00:00'): the epoch is what the server
// stores, so the result does not depend on the session's time zone, needs no
// time-zone tables, and is right in the repeated hour at the end of daylight
// saving time, where converting the local text is ambiguous
// (TestTimestampInRepeatedHour). CONVERT_TZ with 'SYSTEM' does work without
// time-zone tables, but is wrong in that hour.
//
// The zero TIMESTAMP is recognised by its text and stays the zero date:
// inside a trigger UNIX_TIMESTAMP of it is NULL.
//
// Other value forms: BIT and YEAR are CAST to UNSIGNED (JSON_OBJECT would
// write BIT's raw bytes, and YEAR 0 as 0000, which is not JSON); DECIMAL,
// DATE, TIME and DATETIME are CAST AS CHAR (the column's
// scale and fraction digits); UUID, INET4 and INET6 CAST AS CHAR (their
// text); FLOAT and DOUBLE go as they are (MariaDB's own notation, which
// binlogbridge reproduces); JSON goes through JSON_EXTRACT(col, '$') so it
// is embedded, not quoted (MariaDB's JSON is a LONGTEXT whose only trace is a
// json_valid check, see sqlschema.LoadTable); binary columns are TO_BASE64 with its
// line breaks removed. `modified` compares text and binary columns as bytes,
// so a case-only change under a case-insensitive collation counts; a delete
// has none. sqlschema.RowSQL gives the same forms to a plain SELECT.
//
// Identifiers are backquoted and string literals never contain a backslash
// (hex literals instead), so the DDL means the same under any sql_mode.
// Identifiers with control characters are refused.
package triggers

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/funcname"
	"github.com/rowgear/rowgear/internal/outbox"
	"github.com/rowgear/rowgear/internal/sqlschema"
)

// Modes of the generated triggers.
const (
	// Strict fails the write (SQLSTATE 45000) when the job cannot be submitted.
	Strict = "strict"
	// Lenient lets the write through; the UDF logs and counts the failure.
	Lenient = "lenient"
	// Outbox writes the event into the commit-gate row, in the writer's
	// transaction, and rings the doorbell (rowgear_ring, which never waits):
	// the worker's relay publishes the row once committed and sends it again
	// until it is handled. No write waits for gearmand or is refused for it.
	Outbox = "outbox"
)

// Modes are the trigger modes Generate takes.
var Modes = []string{Strict, Lenient, Outbox}

// Ops are the row events, in the order triggers are generated.
var Ops = []string{"insert", "update", "delete"}

// Spec is what the config says about one model's triggers.
type Spec struct {
	Namespace string   // function-name prefix, config.Config.Namespace
	Mode      string   // Outbox, Strict or Lenient; empty: Strict (gearman.yml's default is Outbox: Specs)
	Model     string   // model name, e.g. Article
	Schema    string   // empty: the connection's database
	Table     string   // e.g. articles
	Events    []string // insert, update, delete; empty: all three
	Columns   []string // row image and modified are limited to these; empty: all
}

// Trigger is one generated trigger.
type Trigger struct {
	Name   string // e.g. rowgear_articles_update
	Table  string
	Event  string // insert, update or delete
	Create string // the full CREATE TRIGGER statement, unqualified by schema
	Drop   string // DROP TRIGGER IF EXISTS …
	// Body is the trigger body (BEGIN … END), as information_schema.TRIGGERS
	// reports it in ACTION_STATEMENT.
	Body string
	// Plugin marks an installed sfGearmanPlugin trigger (Installed).
	Plugin bool
}

// Name returns the trigger name of a table's op: rowgear_<table>_<op>, or,
// past MySQL's 64 characters, a truncated table name and a hash of the full one.
func Name(table, op string) string {
	n := "rowgear_" + table + "_" + op
	if utf8.RuneCountInString(n) <= 64 {
		return n
	}
	sum := sha1.Sum([]byte(table))
	tail := "_" + hex.EncodeToString(sum[:4]) + "_" + op
	keep := 64 - len("rowgear_") - len(tail)
	return "rowgear_" + string([]rune(table)[:keep]) + tail
}

// Generate returns the triggers of spec on table t, in Ops order.
func Generate(spec Spec, t *sqlschema.Table) ([]Trigger, error) {
	if spec.Model == "" {
		return nil, fmt.Errorf("triggers: spec has no model name")
	}
	ns := spec.Namespace
	if ns == "" {
		return nil, fmt.Errorf("model %s: spec has no namespace", spec.Model)
	}
	mode := spec.Mode
	if mode == "" {
		mode = Strict
	}
	if !slices.Contains(Modes, mode) {
		return nil, fmt.Errorf("model %s: trigger mode %q: want %s", spec.Model, mode, strings.Join(Modes, ", "))
	}
	for _, op := range Ops {
		// Workers map the function name back to model and op.
		if err := funcname.Check(ns, spec.Model, op); err != nil {
			return nil, fmt.Errorf("model %s: %w", spec.Model, err)
		}
	}
	if len(t.PK) == 0 {
		return nil, fmt.Errorf("model %s: table %s has no primary key", spec.Model, t.Name)
	}
	if err := checkName(t.Name); err != nil {
		return nil, fmt.Errorf("model %s: %w", spec.Model, err)
	}
	cols, err := selectColumns(spec, t)
	if err != nil {
		return nil, err
	}
	var pk []sqlschema.Column
	for _, name := range t.PK {
		c, ok := t.Column(name)
		if !ok {
			return nil, fmt.Errorf("model %s: primary-key column %s is not in table %s", spec.Model, name, t.Name)
		}
		pk = append(pk, c)
	}
	events := spec.Events
	if len(events) == 0 {
		events = Ops
	}
	for _, e := range events {
		if !slices.Contains(Ops, e) {
			return nil, fmt.Errorf("model %s: unknown event %q: want insert, update or delete", spec.Model, e)
		}
	}
	g := gen{spec: spec, ns: ns, mode: mode, table: t, cols: cols, pk: pk}
	var out []Trigger
	for _, op := range Ops {
		if !slices.Contains(events, op) {
			continue
		}
		body, err := g.body(op)
		if err != nil {
			return nil, err
		}
		name := Name(t.Name, op)
		out = append(out, Trigger{
			Name:  name,
			Table: t.Name,
			Event: op,
			Body:  body,
			Create: fmt.Sprintf("CREATE TRIGGER %s AFTER %s ON %s FOR EACH ROW\n%s",
				sqlschema.QuoteIdent(name), strings.ToUpper(op), sqlschema.QuoteIdent(t.Name), body),
			Drop: "DROP TRIGGER IF EXISTS " + sqlschema.QuoteIdent(name),
		})
	}
	return out, nil
}

// checkName refuses control characters in identifiers: legal in MySQL, but
// a newline would let a name break out of a goose statement block.
func checkName(name string) error {
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("identifier %q has a control character", name)
		}
	}
	return nil
}

// selectColumns returns the spec's columns in table order, all when none
// are configured.
func selectColumns(spec Spec, t *sqlschema.Table) ([]sqlschema.Column, error) {
	for _, name := range spec.Columns {
		if _, ok := t.Column(name); !ok {
			return nil, fmt.Errorf("model %s: column %s is not in table %s", spec.Model, name, t.Name)
		}
	}
	var out []sqlschema.Column
	for _, c := range t.Columns {
		if len(spec.Columns) == 0 || slices.Contains(spec.Columns, c.Name) {
			if err := checkName(c.Name); err != nil {
				return nil, fmt.Errorf("model %s: %w", spec.Model, err)
			}
			if _, err := valueExpr("NEW", c); err != nil {
				return nil, fmt.Errorf("model %s: %w", spec.Model, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

type gen struct {
	spec  Spec
	ns    string
	mode  string
	table *sqlschema.Table
	cols  []sqlschema.Column
	pk    []sqlschema.Column
}

// Local variable names; prefixed so they can never shadow anything else.
const (
	varID       = "rowgear_id"
	varModified = "rowgear_modified"
	varError    = "rowgear_error"
	varPayload  = "rowgear_payload"
)

func (g gen) body(op string) (string, error) {
	image := "NEW"
	if op == "delete" {
		image = "OLD"
	}
	var b strings.Builder
	b.WriteString("BEGIN\n")
	if g.mode != Outbox { // the outbox's INSERT builds the envelope in place
		fmt.Fprintf(&b, "  DECLARE %s CHAR(36) CHARACTER SET ascii;\n", varID)
		fmt.Fprintf(&b, "  DECLARE %s LONGTEXT CHARACTER SET utf8mb4;\n", varPayload)
	}
	if g.mode == Strict {
		fmt.Fprintf(&b, "  DECLARE %s VARCHAR(512);\n", varError)
	}
	indent := "  "
	var modified string
	switch op {
	case "insert":
		modified = "JSON_ARRAY(" + g.names(g.cols) + ")"
	case "delete":
		// none: a delete carries no modified, as from the binlog
	case "update":
		// The changed columns, as a comma-separated list of JSON strings;
		// empty when nothing the model cares about changed.
		fmt.Fprintf(&b, "  DECLARE %s LONGTEXT CHARACTER SET utf8mb4;\n", varModified)
		fmt.Fprintf(&b, "  SET %s = CONCAT_WS(',',\n", varModified)
		for i, c := range g.cols {
			name, _ := json.Marshal(c.Name)
			fmt.Fprintf(&b, "    IF(%s, %s, NULL)", changed(c), sqlschema.QuoteString(string(name)))
			if i < len(g.cols)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString("  );\n")
		fmt.Fprintf(&b, "  IF %s <> '' THEN\n", varModified)
		indent = "    "
		modified = "CONCAT('[', " + varModified + ", ']')" // jsonText takes JSON text as it is
		if g.mode != Outbox {
			modified = "JSON_EXTRACT(" + modified + ", '$')" // JSON_OBJECT would quote text
		}
	}
	if op == "update" && g.splitsPKChange() {
		// A primary-key change is a delete of the old key and an insert of
		// the new one, so that each key's events stay in order.
		fmt.Fprintf(&b, "%sIF %s THEN\n", indent, g.pkChanged())
		g.send(&b, indent+"  ", "delete", "OLD", "JSON_ARRAY()")
		g.send(&b, indent+"  ", "insert", "NEW", "JSON_ARRAY("+g.names(g.cols)+")")
		fmt.Fprintf(&b, "%sELSE\n", indent)
		g.send(&b, indent+"  ", op, image, modified)
		fmt.Fprintf(&b, "%sEND IF;\n", indent)
	} else {
		g.send(&b, indent, op, image, modified)
	}
	if op == "update" {
		b.WriteString("  END IF;\n")
	}
	b.WriteString("END")
	return b.String(), nil
}

// splitsPKChange: the model receives both halves of a split PK change.
func (g gen) splitsPKChange() bool {
	evs := g.spec.Events
	return len(evs) == 0 || (slices.Contains(evs, "insert") && slices.Contains(evs, "delete"))
}

// pkChanged is the SQL condition "the primary key changed".
func (g gen) pkChanged() string {
	conds := make([]string, len(g.pk))
	for i, c := range g.pk {
		conds[i] = changed(c)
	}
	return strings.Join(conds, " OR ")
}

// send writes the statements that submit one event: build the envelope,
// write its gate row (the SHA-256 of the envelope) inside the writer's
// transaction, append the gate row's id as "seq", and call the UDF.
func (g gen) send(b *strings.Builder, indent, op, image, modified string) {
	fn := events.FuncName(g.ns, g.spec.Model, op)
	id := "UUID()"
	if g.mode != Outbox {
		fmt.Fprintf(b, "%sSET %s = UUID();\n", indent, varID)
		id = varID
	}
	in := indent + "    "
	fields := []field{
		{key: "v", lit: 1},
		{key: "id", sql: id, str: true, plain: true},
		{key: "source", lit: "trigger"},
		{key: "schema", sql: "DATABASE()", str: true},
		{key: "table", lit: g.table.Name},
		{key: "model", lit: g.spec.Model},
		{key: "op", lit: op},
		{key: "pk", sql: g.object(image, g.pk, in)},
	}
	switch {
	case g.mode == Outbox && op != "delete":
		// The worker reads the committed row (events, "Trigger outbox
		// events"): building and writing two images here was the larger
		// part of what the trigger cost the writer's UPDATE.
		fields = append(fields, field{key: "read_row", lit: true})
	case op == "update":
		fields = append(fields, field{key: "row", sql: g.object(image, g.cols, in)}, field{key: "old", sql: g.object("OLD", g.cols, in)})
	default:
		fields = append(fields, field{key: "row", sql: g.object(image, g.cols, in)})
	}
	if modified != "" {
		fields = append(fields, field{key: "modified", sql: modified})
	}
	fields = append(fields, field{key: "ts", sql: "DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ')", str: true, plain: true})
	envelope := jsonObject(fields, in)
	if g.mode == Outbox {
		envelope = jsonText(fields, in)
	}
	// The gate row's id orders the events of one row: the writer holds the
	// row's lock from here to its commit. LAST_INSERT_ID() is restored for
	// the writer's own statements when the trigger ends.
	if g.mode == Outbox {
		// The row is the event: the relay appends the id as seq when it
		// publishes it. Due at once (relay_after's lowest value); the
		// doorbell only says "look". One statement, the envelope built in
		// place: each statement of a trigger's body costs the writer
		// (variables and SETs were 10 µs of a 250 µs UPDATE).
		fmt.Fprintf(b, "%sINSERT INTO %s (fn, payload, relay_after) VALUES (%s, %s, '1000-01-01 00:00:00');\n",
			indent, sqlschema.GateTable, sqlschema.QuoteString(fn), envelope)
		fmt.Fprintf(b, "%sDO rowgear_ring(%s);\n", indent, sqlschema.QuoteString(outbox.Doorbell(g.ns)))
		return
	}
	fmt.Fprintf(b, "%sSET %s = %s;\n", indent, varPayload, envelope)
	fmt.Fprintf(b, "%sINSERT INTO %s (digest) VALUES (UNHEX(SHA2(%s, 256)));\n", indent, sqlschema.GateTable, varPayload)
	fmt.Fprintf(b, "%sSET %s = CONCAT(LEFT(%s, CHAR_LENGTH(%s) - 1), ', \"seq\": \"', LPAD(LAST_INSERT_ID(), 20, '0'), '\"}');\n",
		indent, varPayload, varPayload, varPayload)
	call := fmt.Sprintf("gman_do_background(%s, %s, %s)", sqlschema.QuoteString(fn), varPayload, varID)
	if g.mode == Strict {
		fmt.Fprintf(b, "%sIF %s IS NULL THEN\n", indent, call)
		// MESSAGE_TEXT takes a variable or literal, at most 512 characters in
		// MariaDB (MySQL 8 cuts at 128: the UDF's reason starts with the
		// server and the code).
		fmt.Fprintf(b, "%s  SET %s = LEFT(CONCAT(%s, IFNULL(gman_last_error(), 'unknown error')), 512);\n",
			indent, varError, sqlschema.QuoteString("rowgear: submitting "+fn+" failed: "))
		fmt.Fprintf(b, "%s  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = %s;\n", indent, varError)
		fmt.Fprintf(b, "%sEND IF;\n", indent)
	} else {
		// Lenient: a NULL result means the UDF logged and counted the failure.
		fmt.Fprintf(b, "%sDO %s;\n", indent, call)
	}
}

// field is one member of an event's envelope: a constant (lit), or SQL
// whose value is JSON (JSON_OBJECT, JSON_ARRAY, JSON text) or, with str, a
// string; plain marks a string that needs no escaping inside JSON quotes
// (UUID(), a formatted timestamp).
type field struct {
	key        string
	lit        any
	sql        string
	str, plain bool
}

// jsonObject renders fields as JSON_OBJECT(…), what the strict and
// lenient triggers hash and send.
func jsonObject(fields []field, indent string) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		v := f.sql
		switch x := f.lit.(type) {
		case string:
			v = sqlschema.QuoteString(x)
		case bool:
			v = strings.ToUpper(fmt.Sprint(x))
		case int:
			v = fmt.Sprint(x)
		}
		parts[i] = sqlschema.QuoteString(f.key) + ", " + v
	}
	return fmt.Sprintf("JSON_OBJECT(\n%s  %s\n%s)", indent, strings.Join(parts, ",\n"+indent+"  "), indent)
}

// jsonText renders fields as CONCAT(…) of the same JSON text JSON_OBJECT
// gives, the constant parts written out here: in an outbox trigger it
// cost the writer's UPDATE 7 µs less than JSON_OBJECT (42 µs in place of
// 49 in mysqld, a plain UPDATE 16).
func jsonText(fields []field, indent string) string {
	var parts []string
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			parts = append(parts, sqlschema.QuoteString(text.String()))
			text.Reset()
		}
	}
	text.WriteString("{")
	for i, f := range fields {
		if i > 0 {
			text.WriteString(", ")
		}
		k, _ := json.Marshal(f.key)
		text.Write(k)
		text.WriteString(": ")
		switch {
		case f.lit != nil:
			v, _ := json.Marshal(f.lit)
			text.Write(v)
		case f.str && f.plain:
			text.WriteString(`"`)
			flush()
			parts = append(parts, f.sql)
			text.WriteString(`"`)
		case f.str:
			flush()
			parts = append(parts, "JSON_QUOTE("+f.sql+")")
		default:
			flush()
			parts = append(parts, f.sql)
		}
	}
	text.WriteString("}")
	flush()
	return fmt.Sprintf("CONCAT(\n%s  %s\n%s)", indent, strings.Join(parts, ",\n"+indent+"  "), indent)
}

// names lists the columns as SQL string literals.
func (g gen) names(cols []sqlschema.Column) string {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = sqlschema.QuoteString(c.Name)
	}
	return strings.Join(s, ", ")
}

// object renders JSON_OBJECT('col', <value>, …) over image (NEW or OLD).
func (g gen) object(image string, cols []sqlschema.Column, indent string) string {
	if len(cols) == 0 {
		return "JSON_OBJECT()"
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		v, _ := valueExpr(image, c) // checked in selectColumns
		parts[i] = sqlschema.QuoteString(c.Name) + ", " + v
	}
	if len(cols) == 1 {
		return "JSON_OBJECT(" + parts[0] + ")"
	}
	return "JSON_OBJECT(\n" + indent + "    " + strings.Join(parts, ",\n"+indent+"    ") + ")"
}

// changed is the SQL condition "this column's value differs", NULL-safe.
// Text compares as bytes: under a case-insensitive or PAD SPACE collation
// 'a' <=> 'A ' is true, yet the row did change.
func changed(c sqlschema.Column) string {
	o, n := "OLD."+sqlschema.QuoteIdent(c.Name), "NEW."+sqlschema.QuoteIdent(c.Name)
	if c.Textual() {
		return fmt.Sprintf("NOT (CAST(%s AS BINARY) <=> CAST(%s AS BINARY))", o, n)
	}
	return fmt.Sprintf("NOT (%s <=> %s)", o, n)
}

// valueExpr is the SQL expression that gives JSON_OBJECT column c of image
// in the form events documents.
func valueExpr(image string, c sqlschema.Column) (string, error) {
	return sqlschema.ValueSQL(image+"."+sqlschema.QuoteIdent(c.Name), c)
}
