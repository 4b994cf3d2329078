package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// tsLayout is the wire form of Envelope.TS: RFC 3339, UTC, exactly 6
// fraction digits (quotes included, so it appends a JSON string).
const tsLayout = `"2006-01-02T15:04:05.000000Z07:00"`

// Encode returns the JSON form of e. It refuses an envelope Decode would
// refuse, so whatever Encode writes decodes again. The output is
// deterministic: fields in a fixed order, row columns sorted by name, column
// values compacted. A nil value in a Row is written as null.
//
// The encoder is hand-written rather than json.Marshal of a mirror struct:
// it is several times faster and makes one allocation.
func Encode(e *Envelope) ([]byte, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil envelope", ErrMalformed)
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	var err error
	b := make([]byte, 0, e.sizeHint())
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = append(b, `,"id":`...)
	b = AppendString(b, e.ID)
	b = append(b, `,"source":`...)
	b = AppendString(b, e.Source)
	b = append(b, `,"schema":`...)
	b = AppendString(b, e.Schema)
	b = append(b, `,"table":`...)
	b = AppendString(b, e.Table)
	b = append(b, `,"model":`...)
	b = AppendString(b, e.Model)
	b = append(b, `,"op":`...)
	b = AppendString(b, e.Op)
	b = append(b, `,"pk":`...)
	if b, err = appendRow(b, e.PK, "pk"); err != nil {
		return nil, err
	}
	b = append(b, `,"row":`...)
	if b, err = appendRow(b, e.Row, "row"); err != nil {
		return nil, err
	}
	if e.Old != nil {
		b = append(b, `,"old":`...)
		if b, err = appendRow(b, e.Old, "old"); err != nil {
			return nil, err
		}
	}
	if len(e.Modified) > 0 {
		b = append(b, `,"modified":[`...)
		for i, c := range e.Modified {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, c)
		}
		b = append(b, ']')
	}
	b = append(b, `,"ts":`...)
	b = e.TS.UTC().AppendFormat(b, tsLayout)
	if e.Pos != "" {
		b = append(b, `,"pos":`...)
		b = AppendString(b, e.Pos)
	}
	if e.Seq != "" {
		b = append(b, `,"seq":`...)
		b = AppendString(b, e.Seq)
	}
	return append(b, '}'), nil
}

// sizeHint estimates the encoded length, so Encode allocates once.
func (e *Envelope) sizeHint() int {
	n := 170 + len(e.ID) + len(e.Schema) + len(e.Table) + len(e.Model) + len(e.Pos) + len(e.Seq)
	n += e.PK.sizeHint() + e.Row.sizeHint() + e.Old.sizeHint()
	for _, c := range e.Modified {
		n += len(c) + 3
	}
	return n
}

func (r Row) sizeHint() int {
	n := 2
	for k, v := range r {
		n += len(k) + len(v) + 4
	}
	return n
}

// appendRow writes r with its columns sorted and its values compacted. It
// checks what validate left: each name valid UTF-8, each value valid JSON.
func appendRow(b []byte, r Row, field string) ([]byte, error) {
	var buf [32]string // most rows fit: no allocation for the sort
	keys := buf[:0]
	for k := range r {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if !utf8.ValidString(k) {
			return nil, malformed(field, "column name %q is not UTF-8", k)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, k)
		b = append(b, ':')
		switch v := r[k]; {
		case v == nil:
			b = append(b, "null"...)
		case !json.Valid(v) || !utf8.Valid(v):
			return nil, malformed(field, "column %q: invalid JSON value %q", k, v)
		default:
			b = appendCompact(b, v)
		}
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string in the envelope's form. s must be
// valid UTF-8. Unlike encoding/json it does not escape <, > and &: the
// payload is never HTML. Sources use it to build column values.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendCompact appends the valid JSON value v without insignificant
// whitespace.
func appendCompact(b, v []byte) []byte {
	if !hasSpace(v) {
		return append(b, v...)
	}
	inStr := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inStr:
			if c == '\\' {
				b = append(b, c, v[i+1])
				i++
				continue
			}
			inStr = c != '"'
		case c == '"':
			inStr = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		b = append(b, c)
	}
	return b
}

// hasSpace reports whether v has a whitespace byte anywhere; inside strings
// they are escaped, except a literal space, so this is a cheap upper bound.
func hasSpace(v []byte) bool {
	for _, c := range v {
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

// Envelope fields, in wire order.
const (
	fV = iota
	fID
	fSource
	fSchema
	fTable
	fModel
	fOp
	fPK
	fRow
	fOld
	fModified
	fTS
	fPos
	fSeq
	nFields
)

var fieldNames = [nFields]string{"v", "id", "source", "schema", "table", "model",
	"op", "pk", "row", "old", "modified", "ts", "pos", "seq"}

func fieldIndex(name string) int {
	for i, n := range fieldNames {
		if n == name {
			return i
		}
	}
	return -1
}

// Decode parses a version-1 envelope. It is strict: field names match
// exactly (case included), and an unknown or repeated field, a missing or
// empty required one, a value of the wrong JSON type, an unknown op or
// source, invalid UTF-8 and data after the envelope are all errors wrapping
// ErrMalformed and naming the field. A version other than 1 gives ErrVersion
// before anything else is checked.
//
// Row values come back compacted; TS comes back in UTC, truncated to
// microseconds. The envelope does not alias data.
func Decode(data []byte) (*Envelope, error) {
	// One pass checks the syntax, as json.Valid and utf8.Valid did, and
	// finds the fields; see syntax.go.
	sc := syntax{b: data}
	if !sc.check() {
		return nil, syntaxError(data)
	}
	if sc.badUTF8 {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrMalformed)
	}
	// One copy as string and one as bytes: field strings and column names are
	// substrings of s, column values sub-slices of b. Two allocations in all.
	s := string(data)
	p := parser{s: s, b: []byte(s)}
	if c := p.peek(); c != '{' {
		return nil, fmt.Errorf("%w: want a JSON object, got %s", ErrMalformed, typeName(c))
	}
	if sc.repeated.end != 0 {
		return nil, malformed(p.strAt(sc.repeated), "repeated")
	}
	// The version decides what the rest means: check it first.
	fv := sc.fields[fV].val
	if fv.end == 0 {
		return nil, malformed("v", "missing")
	}
	v := s[fv.start:fv.end]
	if typeName(v[0]) != "number" {
		return nil, malformed("v", "want a number, got %s", typeName(v[0]))
	}
	if n, err := strconv.Atoi(v); err != nil || n != Version {
		return nil, fmt.Errorf("%w: v is %s, want %d", ErrVersion, v, Version)
	}
	if sc.unknown.end != 0 {
		return nil, malformed(p.strAt(sc.unknown), "unknown field")
	}

	e := &Envelope{V: Version}
	for i := fID; i < nFields; i++ {
		if sc.fields[i].val.end == 0 {
			switch i {
			case fOld, fModified, fPos, fSeq: // optional; validate checks old and pos
				continue
			}
			return nil, malformed(fieldNames[i], "missing")
		}
		if err := p.field(e, i, &sc); err != nil {
			return nil, err
		}
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// field decodes field i of e, found by the syntax pass sc.
func (p *parser) field(e *Envelope, i int, sc *syntax) error {
	f := &sc.fields[i]
	p.i = f.val.start
	name := fieldNames[i]
	want := "string"
	switch i {
	case fPK, fRow, fOld:
		want = "object"
	case fModified:
		want = "array"
	}
	if got := typeName(p.peek()); got != want {
		return malformed(name, "want %s, got %s", want, got)
	}
	var err error
	switch i {
	case fID:
		e.ID = p.strAt(f.val)
	case fSource:
		e.Source = intern(p.strAt(f.val))
	case fSchema:
		e.Schema = p.strAt(f.val)
	case fTable:
		e.Table = p.strAt(f.val)
	case fModel:
		e.Model = p.strAt(f.val)
	case fOp:
		e.Op = intern(p.strAt(f.val))
	case fPK:
		e.PK, err = p.row(name, f, sc)
	case fRow:
		e.Row, err = p.row(name, f, sc)
	case fOld:
		e.Old, err = p.row(name, f, sc)
	case fModified:
		e.Modified, err = p.strings(name)
	case fTS:
		e.TS, err = parseTS(p.strAt(f.val))
	case fPos:
		e.Pos = p.strAt(f.val)
	case fSeq:
		e.Seq = p.strAt(f.val)
	}
	return err
}

func parseTS(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, malformed("ts", "not RFC 3339: %q", s)
	}
	// Canonical form: what Encode writes, so a decoded envelope re-encodes
	// to an equal one.
	return t.UTC().Truncate(time.Microsecond), nil
}

// intern returns the package constant equal to s, so that frequent values
// share one string.
func intern(s string) string {
	for _, c := range [...]string{OpInsert, OpUpdate, OpDelete, SourceTrigger, SourceBinlog} {
		if s == c {
			return c
		}
	}
	return s
}

// syntaxError explains why data is not a single JSON value. Only on the
// error path, so it may be slow.
func syntaxError(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err == nil {
		return fmt.Errorf("%w: trailing data after the envelope, which ends at offset %d", ErrMalformed, dec.InputOffset())
	}
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: invalid JSON at offset %d: %w", ErrMalformed, se.Offset, err)
	}
	return fmt.Errorf("%w: invalid JSON: %w", ErrMalformed, err)
}

func typeName(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case 0:
		return "nothing"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	}
	return "invalid JSON"
}
