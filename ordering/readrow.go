package ordering

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/sqlschema"
)

// rowSource reads one table's committed rows in event form, for the events
// of outbox triggers, which leave their row out (events.Envelope.ReadRow).
type rowSource struct {
	pk  []sqlschema.Column
	sel string // what follows SELECT <tag>: AS rowgear_read, <pk object, or NULL when the row holds the key>, <row object> FROM <table> WHERE
}

// readTag names the first column of a row read, which tells its results
// from the others of a round trip.
const readTag = "rowgear_read"

// source returns the rowSource of ev's table, built once from the table's
// definition and the model's configured columns (all when none).
func (o *Orderer) source(ctx context.Context, ev *events.Envelope) (*rowSource, error) {
	key := ev.Schema + "\x00" + ev.Table
	o.srcMu.Lock()
	defer o.srcMu.Unlock()
	if s, ok := o.sources[key]; ok {
		return s, nil
	}
	t, err := sqlschema.LoadTable(ctx, o.db, ev.Schema, ev.Table)
	if err != nil {
		return nil, err
	}
	names := o.columns[ev.Model]
	if len(names) == 0 {
		for _, c := range t.Columns {
			names = append(names, c.Name)
		}
	}
	row, err := sqlschema.RowSQL(t, names)
	if err != nil {
		return nil, err
	}
	// The key comes from the row when the row holds it: one JSON object
	// less per row for the server to build and the worker to decode.
	pkObj := "NULL"
	if !containsAll(names, t.PK) {
		if pkObj, err = sqlschema.RowSQL(t, t.PK); err != nil {
			return nil, err
		}
	}
	s := &rowSource{sel: " AS " + readTag + ", " + pkObj + ", " + row + " FROM " + quote(ev.Schema) + "." + quote(ev.Table) + " WHERE "}
	for _, name := range t.PK {
		c, _ := t.Column(name)
		s.pk = append(s.pk, c)
	}
	o.sources[key] = s
	return s, nil
}

// forget drops ev's table's rowSource: the table changed under it.
func (o *Orderer) forget(ev *events.Envelope) {
	o.srcMu.Lock()
	delete(o.sources, ev.Schema+"\x00"+ev.Table)
	o.srcMu.Unlock()
}

// where is the condition "the row of ev's primary key", and its arguments.
func (s *rowSource) where(ev *events.Envelope) (string, []any, error) {
	conds := make([]string, len(s.pk))
	args := make([]any, len(s.pk))
	for i, c := range s.pk {
		var err error
		conds[i], args[i], err = sqlschema.KeyCond(quote(c.Name), c, ev.PK[c.Name])
		if err != nil {
			return "", nil, fmt.Errorf("event %s: pk: %w", ev.ID, err)
		}
	}
	return strings.Join(conds, " AND "), args, nil
}

// key identifies a primary key by its values, decoded: the event's pk and
// the one read back are two JSON texts of the same values, which need not
// escape a string alike.
func (s *rowSource) key(pk events.Row) string {
	var b strings.Builder
	for _, c := range s.pk {
		b.WriteString(jsonKey(pk[c.Name]))
		b.WriteByte(0)
	}
	return b.String()
}

// jsonKey is a JSON value's decoded form: a string's text, a number's
// digits as written (no float rounding of a BIGINT), anything else as it is.
func jsonKey(raw []byte) string {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "raw:" + string(raw)
	}
	switch v := v.(type) {
	case string:
		return "s:" + v
	case json.Number:
		return "n:" + v.String()
	}
	return "raw:" + string(raw)
}

// readRow completes ev, an event with ReadRow, with its row as committed
// now, read by q in the event's transaction. found is false when the row
// is gone: it was deleted or its key changed after this change, and that
// change's own event follows.
func (o *Orderer) readRow(ctx context.Context, q querier, ev *events.Envelope) (found bool, err error) {
	rows, err := o.readRows(ctx, q, []*events.Envelope{ev})
	if err != nil {
		return false, err
	}
	return rows.complete(ev), nil
}

// readRows reads the committed rows of evs (events of one table) in one
// statement. A table that changed since its rowSource was built (an
// unknown column) is read again with a new one.
func (o *Orderer) readRows(ctx context.Context, q querier, evs []*events.Envelope) (*rowsRead, error) {
	ev := evs[0]
	for retry := true; ; retry = false {
		src, err := o.source(ctx, ev)
		if err == nil {
			var got *rowsRead
			if got, err = src.read(ctx, q, evs); err == nil {
				got.table = ev.Schema + "\x00" + ev.Table
				return got, nil
			}
		}
		if retry && isUnknownColumn(err) {
			o.forget(ev)
			continue
		}
		return nil, fmt.Errorf("ordering: event %s: reading its row from %s.%s: %w", ev.ID, ev.Schema, ev.Table, err)
	}
}

// rowsRead is what readRows found: rows by rowSource.key of their pk.
type rowsRead struct {
	src   *rowSource
	table string // schema NUL table
	rows  map[string]events.Row
}

// complete gives ev its row and clears ReadRow; false when none was read
// for it. The envelope is the one the dispatcher gets further in
// (eventwire.WithDecoded): completing it here is what makes the handler
// see a row.
func (r *rowsRead) complete(ev *events.Envelope) bool {
	row, ok := r.rows[r.src.key(ev.PK)]
	if !ok {
		return false
	}
	ev.Row, ev.ReadRow = row, false
	return true
}

// query is the SELECT of evs' rows, one condition per distinct key: its
// columns are a tag (for a round trip of several statements to know its
// result), the pk object and the row object.
func (s *rowSource) query(evs []*events.Envelope, tag int) (string, []any, error) {
	seen := make(map[string]bool, len(evs))
	var conds []string
	var args []any
	for _, ev := range evs {
		k := s.key(ev.PK)
		if seen[k] {
			continue
		}
		seen[k] = true
		c, a, err := s.where(ev)
		if err != nil {
			return "", nil, err
		}
		conds = append(conds, c)
		args = append(args, a...)
	}
	return "SELECT " + strconv.Itoa(tag) + s.sel + "(" + strings.Join(conds, ") OR (") + ")", args, nil
}

// read runs query and returns what it found.
func (s *rowSource) read(ctx context.Context, q querier, evs []*events.Envelope) (*rowsRead, error) {
	sel, args, err := s.query(evs, 0)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, sel, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &rowsRead{src: s, rows: map[string]events.Row{}}
	for rows.Next() {
		if err := scanRead(rows, out); err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}

// scanRead reads the result row rows is at, a row read of query with
// tag i, into reads[i].
func scanRead(rows *sql.Rows, reads ...*rowsRead) error {
	var tag int
	var pk, row []byte
	if err := rows.Scan(&tag, &pk, &row); err != nil {
		return err
	}
	if tag < 0 || tag >= len(reads) {
		return fmt.Errorf("row read of tag %d: want one of %d", tag, len(reads))
	}
	return reads[tag].add(pk, row)
}

// add decodes a row read (its pk object, NULL when the row holds the
// key, and its row object) into r.
func (r *rowsRead) add(pk, row []byte) error {
	v, err := decodeRow(row)
	if err != nil {
		return err
	}
	p := v
	if pk != nil {
		if p, err = decodeRow(pk); err != nil {
			return err
		}
	}
	r.rows[r.src.key(p)] = v
	return nil
}

// containsAll reports whether every name of want is in have.
func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// decodeRow parses a JSON_OBJECT of RowSQL into a Row, values compacted
// as events.Decode leaves them.
func decodeRow(obj []byte) (events.Row, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, obj); err != nil {
		return nil, err
	}
	var r events.Row
	if err := json.Unmarshal(compact.Bytes(), &r); err != nil {
		return nil, err
	}
	return r, nil
}
