package bridge

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/schema"

	"github.com/rowgear/rowgear/events"
)

// kind is how a column's canal value becomes its wire form (events/doc.go).
type kind int

const (
	kNumber kind = iota // integers, YEAR: canal gives sized ints, unsigned already widened
	kFloat              // FLOAT, DOUBLE
	kBit                // BIT: canal gives int64; the value is unsigned
	kString             // DECIMAL and temporals (canal formats them), CHAR, TEXT, …
	kJSON               // JSON (MariaDB: LONGTEXT with a json_valid check)
	kBinary             // BINARY, VARBINARY, BLOB: base64
	kEnum               // canal gives the 1-based index
	kSet                // canal gives the bitmap
	kTime               // TIME: canal drops a zero fraction; the column precision is kept
)

type column struct {
	name    string
	kind    kind
	fixed   int      // BINARY(n): the binlog drops trailing zero bytes, the column has n
	prec    int      // TIME(p)
	values  []string // ENUM and SET members
	latin1  bool     // text stored as latin1: converted to UTF-8
	jsonCol bool
}

// tableMeta is what encoding a table's rows needs, derived once per canal
// schema.Table (canal makes a new one after each DDL on the table).
type tableMeta struct {
	src  *schema.Table
	cols []column
	pk   []int
}

// loadMeta derives tableMeta from canal's table. MariaDB shows a JSON column
// as longtext; its json_valid check is the only trace of the type, so the
// checks are read from information_schema.
func loadMeta(ctx context.Context, db *sql.DB, t *schema.Table) (*tableMeta, error) {
	if len(t.PKColumns) == 0 {
		return nil, fmt.Errorf("%w: table %s.%s has no primary key: events name their row by it", errFatal, t.Schema, t.Name)
	}
	jsonCols := map[string]bool{}
	rows, err := db.QueryContext(ctx, "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "+
		"WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?", t.Schema, t.Name)
	if err == nil {
		for rows.Next() {
			var clause string
			if rows.Scan(&clause) == nil {
				if name, ok := jsonValidColumn(clause); ok {
					jsonCols[name] = true
				}
			}
		}
		err = rows.Err()
		rows.Close()
	}
	if err != nil && !strings.Contains(err.Error(), "1109") { // 1109: no such I_S table (old MySQL)
		return nil, fmt.Errorf("checks of %s.%s: %w", t.Schema, t.Name, err)
	}
	m := &tableMeta{src: t, pk: t.PKColumns}
	for _, c := range t.Columns {
		m.cols = append(m.cols, columnOf(c, jsonCols[c.Name]))
	}
	return m, nil
}

// jsonValidColumn recognises MariaDB's "json_valid(`col`)" check.
func jsonValidColumn(clause string) (string, bool) {
	s := strings.TrimSpace(clause)
	if len(s) < len("json_valid(``)") || !strings.EqualFold(s[:len("json_valid(`")], "json_valid(`") || !strings.HasSuffix(s, "`)") {
		return "", false
	}
	return strings.ReplaceAll(s[len("json_valid(`"):len(s)-2], "``", "`"), true
}

func columnOf(c schema.TableColumn, isJSON bool) column {
	raw := strings.ToLower(c.RawType)
	col := column{name: c.Name, kind: kString}
	switch c.Type {
	case schema.TYPE_NUMBER, schema.TYPE_MEDIUM_INT:
		col.kind = kNumber
	case schema.TYPE_FLOAT:
		col.kind = kFloat
	case schema.TYPE_BIT:
		col.kind = kBit
	case schema.TYPE_JSON:
		col.kind = kJSON
	case schema.TYPE_ENUM:
		col.kind, col.values = kEnum, members(c.RawType)
	case schema.TYPE_SET:
		col.kind, col.values = kSet, members(c.RawType)
	case schema.TYPE_TIME:
		col.kind, col.prec = kTime, precision(raw)
	case schema.TYPE_BINARY, schema.TYPE_POINT:
		col.kind = kBinary
		if strings.HasPrefix(raw, "binary") {
			col.fixed = int(c.FixedSize)
		}
	case schema.TYPE_STRING:
		switch {
		case isJSON:
			col.kind = kJSON
		case strings.HasSuffix(raw, "blob") || strings.HasPrefix(raw, "geometry") ||
			strings.HasSuffix(raw, "string") || strings.HasSuffix(raw, "polygon"):
			col.kind = kBinary
		default:
			col.latin1 = strings.HasPrefix(c.Collation, "latin1")
		}
	}
	return col
}

// precision is p of "time(p)", 0 without one.
func precision(raw string) int {
	open, end := strings.IndexByte(raw, '('), strings.IndexByte(raw, ')')
	if open < 0 || end < open {
		return 0
	}
	p, _ := strconv.Atoi(raw[open+1 : end])
	return p
}

// members parses the quoted list of enum('a','b”c') or set(…): canal's own
// parse splits on every comma.
func members(raw string) []string {
	open := strings.IndexByte(raw, '(')
	if open < 0 {
		return nil
	}
	var out []string
	s := raw[open+1:]
	for {
		s = strings.TrimLeft(s, ", ")
		if s == "" || s[0] != '\'' {
			return out
		}
		var b strings.Builder
		i := 1
		for i < len(s) {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i += 2
					continue
				}
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
			i++
		}
		out = append(out, b.String())
		if i >= len(s) {
			return out
		}
		s = s[i+1:]
	}
}

// encode returns v, as canal decoded it for column c, in wire form; nil for
// NULL.
func (c *column) encode(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	switch c.kind {
	case kBit:
		if n, ok := v.(int64); ok {
			return strconv.AppendUint(nil, uint64(n), 10), nil
		}
	case kEnum:
		if n, ok := v.(int64); ok {
			name := "" // index 0: the "" MySQL stores for an invalid value
			if n > 0 && int(n) <= len(c.values) {
				name = c.values[n-1]
			}
			return events.AppendString(nil, name), nil
		}
	case kTime:
		if s, ok := v.(string); ok && c.prec > 0 && !strings.Contains(s, ".") {
			return events.AppendString(nil, s+"."+strings.Repeat("0", c.prec)), nil
		}
	case kSet:
		if n, ok := v.(int64); ok {
			var names []string
			for i, m := range c.values {
				if n&(1<<i) != 0 {
					names = append(names, m)
				}
			}
			return events.AppendString(nil, strings.Join(names, ",")), nil
		}
	}
	switch x := v.(type) {
	case int8:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case uint8:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(nil, x, 10), nil
	case uint:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case float32:
		return strconv.AppendFloat(nil, float64(x), 'g', -1, 32), nil
	case float64:
		return strconv.AppendFloat(nil, x, 'g', -1, 64), nil
	case string:
		return c.bytes([]byte(x))
	case []byte:
		return c.bytes(x)
	}
	return nil, fmt.Errorf("%w: column %s: unexpected %T from canal", errFatal, c.name, v)
}

func (c *column) bytes(b []byte) (json.RawMessage, error) {
	switch c.kind {
	case kBinary:
		if len(b) < c.fixed {
			b = append(b[:len(b):len(b)], make([]byte, c.fixed-len(b))...)
		}
		out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2)
		out = append(out, '"')
		out = base64.StdEncoding.AppendEncode(out, b)
		return append(out, '"'), nil
	case kJSON:
		if len(b) == 0 { // MySQL's empty JSON document (INSERT IGNORE of NULL)
			return json.RawMessage("null"), nil
		}
		if json.Valid(b) {
			return append(json.RawMessage(nil), b...), nil
		}
	}
	if !utf8.Valid(b) {
		if c.latin1 {
			b = latin1ToUTF8(b)
		} else {
			b = []byte(strings.ToValidUTF8(string(b), "\uFFFD"))
		}
	}
	return events.AppendString(nil, string(b)), nil
}

func latin1ToUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)*2)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}
