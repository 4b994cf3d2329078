package events

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/rowgear/rowgear/internal/jsonstr"
)

// Decode parses a version-1 envelope. It is strict: field names match
// exactly (case included), and an unknown field (the empty name "" too), a
// repeated field or row column, a missing or empty required field, a value
// of the wrong JSON type, an unknown op or source, invalid UTF-8 and data
// after the envelope are all errors wrapping ErrMalformed and naming the
// field. A version other than 1 gives ErrVersion before anything but the
// JSON syntax and repeated fields is checked. Inside a column's value (a
// JSON column) repeated names are kept, as MariaDB's JSON_VALID accepts
// them. A \u escape of half a surrogate pair, which JSON allows, stays as it
// is in a column's value and reads as U+FFFD in a field.
//
// Row values come back compacted; TS comes back in UTC, truncated to
// microseconds. The envelope does not alias data.
//
// UTF-8 is checked first (utf8.Valid), then the JSON syntax and nesting
// depth by github.com/go-json-experiment/json's jsontext (the code behind
// encoding/json/v2), whose tokens Decode walks to check the envelope. A
// syntax error anywhere in data is reported before any error about the
// envelope's content.
func Decode(data []byte) (*Envelope, error) {
	if !utf8.Valid(data) {
		w := walker{data: data}
		return nil, w.syntax(nil)
	}
	st := decoders.Get().(*decodeState)
	defer st.release()
	// Decode checks repeated names where they matter. jsontext refuses
	// invalid UTF-8, but also a \u escape of half a surrogate pair, which
	// JSON allows and a JSON column may hold: utf8.Valid checked the former.
	st.buf.Write(data)
	st.dec.Reset(&st.buf, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	w := walker{dec: &st.dec, data: data, vals: make([]byte, 0, len(data)), names: st.names[:0]}
	e, err := w.envelope()
	st.names = w.names // its storage, for the next Decode
	return e, err
}

// decodeState is a pooled decoder: it parses straight from buf, which holds
// a copy of the payload (jsontext reads a bytes.Buffer in place).
type decodeState struct {
	buf   bytes.Buffer
	dec   jsontext.Decoder
	names []string // walker.names' storage
}

var decoders = sync.Pool{New: func() any { return new(decodeState) }}

func (st *decodeState) release() {
	st.buf.Reset()
	clear(st.names)             // keep no envelope's strings alive
	if st.buf.Cap() <= 64<<10 { // do not keep a huge payload's buffer
		decoders.Put(st)
	}
}

// walker reads one envelope from dec. A method returns a non-nil error
// only for a syntax error, which ends the walk; errors about the content
// are kept in errs and reported once the whole payload has been read.
type walker struct {
	dec  *jsontext.Decoder
	data []byte
	vals []byte // row values, compacted; Row values are sub-slices
	v    string // the raw number of field v
	errs [nFields]error

	names  []string // column names of the rows read so far, see column
	shared int      // how many of names come from earlier rows
	next   int      // where column starts its search
}

func (w *walker) envelope() (*Envelope, error) {
	if k := w.dec.PeekKind(); k != '{' {
		if err := w.skip(); err != nil {
			return nil, err
		}
		if err := w.end(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: want a JSON object, got %s", ErrMalformed, jsonstr.KindName(byte(k)))
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return nil, w.syntax(err)
	}
	var (
		e                 = &Envelope{V: Version}
		seen              [nFields]bool
		repeated, unknown *string // the first of each, in payload order
	)
	for w.dec.PeekKind() != '}' {
		tok, err := w.dec.ReadToken()
		if err != nil {
			return nil, w.syntax(err)
		}
		switch i := fieldIndex(tok.String()); { // the name does not escape: no copy
		case i < 0:
			if unknown == nil {
				name := tok.String()
				unknown = &name
			}
			err = w.skip()
		case seen[i]:
			if repeated == nil {
				name := tok.String()
				repeated = &name
			}
			err = w.skip()
		default:
			seen[i] = true
			err = w.field(e, i)
		}
		if err != nil {
			return nil, err
		}
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return nil, w.syntax(err)
	}
	if err := w.end(); err != nil {
		return nil, err
	}

	if err := w.check(&seen, repeated, unknown); err != nil {
		return nil, err
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// check says what is wrong with the fields envelope read, in the order a
// reader fixes them: a repeated field, the version, an unknown field, then
// each field missing or malformed.
func (w *walker) check(seen *[nFields]bool, repeated, unknown *string) error {
	if repeated != nil {
		return malformed(*repeated, "repeated")
	}
	// The version decides what the rest means: check it first.
	if !seen[fV] {
		return malformed("v", "missing")
	}
	if w.errs[fV] != nil {
		return w.errs[fV]
	}
	if n, err := strconv.Atoi(w.v); err != nil || n != Version {
		return fmt.Errorf("%w: v is %s, want %d", ErrVersion, w.v, Version)
	}
	if unknown != nil {
		return fmt.Errorf("%w: unknown field %q", ErrMalformed, *unknown)
	}
	for i := fID; i < nFields; i++ {
		switch {
		case !seen[i] && (i == fOld || i == fModified || i == fPos || i == fSeq || i == fReadAt || i == fReadRow):
			// optional; validate checks old, pos, read_at and read_row
		case !seen[i] && i == fRow && seen[fReadRow]:
			// read from the table (read_row); validate checks the op
		case !seen[i]:
			return malformed(fieldNames[i], "missing")
		case w.errs[i] != nil:
			return w.errs[i]
		}
	}
	return nil
}

// field decodes the value of field i into e.
func (w *walker) field(e *Envelope, i int) error {
	name := fieldNames[i]
	want := jsontext.Kind('"')
	switch i {
	case fV:
		want = '0'
	case fPK, fRow, fOld:
		want = '{'
	case fModified:
		want = '['
	case fReadRow:
		want = 't'
	}
	if got := w.dec.PeekKind(); got != want {
		w.errs[i] = malformed(name, "want %s, got %s", jsonstr.KindName(byte(want)), jsonstr.KindName(byte(got)))
		return w.skip()
	}
	var s string
	if want == '"' {
		tok, err := w.dec.ReadToken()
		if err != nil {
			return w.syntax(err)
		}
		if i == fSource || i == fOp {
			s = intern(tok.String())
		}
		if s == "" {
			s = tok.String()
		}
	}
	strs := [nFields]*string{fID: &e.ID, fSource: &e.Source, fSchema: &e.Schema, fTable: &e.Table,
		fModel: &e.Model, fOp: &e.Op, fPos: &e.Pos, fSeq: &e.Seq}
	var err error
	switch {
	case strs[i] != nil:
		*strs[i] = s
	case i == fV:
		var v jsontext.Value
		v, err = w.dec.ReadValue()
		w.v = string(v)
	case i == fPK:
		e.PK, err = w.row(i)
	case i == fRow:
		e.Row, err = w.row(i)
	case i == fOld:
		e.Old, err = w.row(i)
	case i == fModified:
		e.Modified, err = w.strings(i)
	case i == fTS:
		e.TS, w.errs[i] = parseTS(s)
	case i == fReadRow:
		_, err = w.dec.ReadToken()
		e.ReadRow = true
	case i == fReadAt:
		if e.ReadAt, err = parseTS(s); err != nil {
			w.errs[i], err = malformed(name, "not RFC 3339: %q", s), nil
		}
	}
	if err != nil {
		return w.syntax(err)
	}
	return nil
}

// row reads the object of field i into a Row. Values are copied, compacted,
// into w.vals.
func (w *walker) row(i int) (Row, error) {
	if _, err := w.dec.ReadToken(); err != nil { // {
		return nil, err
	}
	r := make(Row, 8)
	w.shared, w.next = len(w.names), 0
	for w.dec.PeekKind() != '}' {
		tok, err := w.dec.ReadToken()
		if err != nil {
			return nil, err
		}
		col := w.column(tok)
		v, err := w.dec.ReadValue()
		if err != nil {
			return nil, err
		}
		if _, dup := r[col]; dup && w.errs[i] == nil {
			w.errs[i] = malformed(fieldNames[i], "column %q repeated", col)
		}
		start := len(w.vals)
		w.vals = jsonstr.AppendCompact(w.vals, v)
		r[col] = w.vals[start:len(w.vals):len(w.vals)] // capped: an append cannot clobber the next
	}
	_, err := w.dec.ReadToken() // }
	return r, err
}

// column returns the column name tok, sharing the string with an earlier
// row of the envelope (w.names[:w.shared]) when it has the same column: pk,
// row and old mostly list the same names in the same order (Encode sorts
// them), so the search starts after the previous match.
func (w *walker) column(tok jsontext.Token) string {
	name := tok.String() // does not escape: no copy
	for j := range w.shared {
		k := (w.next + j) % w.shared
		if w.names[k] == name {
			w.next = k + 1
			return w.names[k]
		}
	}
	s := tok.String()
	w.names = append(w.names, s)
	return s
}

// strings reads the array of strings of field i; an empty array gives nil.
func (w *walker) strings(i int) ([]string, error) {
	if _, err := w.dec.ReadToken(); err != nil { // [
		return nil, err
	}
	var out []string
	for n := 0; w.dec.PeekKind() != ']'; n++ {
		if k := w.dec.PeekKind(); k != '"' {
			if w.errs[i] == nil {
				w.errs[i] = malformed(fieldNames[i], "element %d: want string, got %s", n, jsonstr.KindName(byte(k)))
			}
			if err := w.dec.SkipValue(); err != nil {
				return nil, err
			}
			continue
		}
		tok, err := w.dec.ReadToken()
		if err != nil {
			return nil, err
		}
		out = append(out, tok.String())
	}
	_, err := w.dec.ReadToken() // ]
	return out, err
}

// skip consumes the next value, checking its syntax.
func (w *walker) skip() error {
	if err := w.dec.SkipValue(); err != nil {
		return w.syntax(err)
	}
	return nil
}

// end checks that nothing but whitespace follows the envelope.
func (w *walker) end() error {
	off := w.dec.InputOffset()
	if _, err := w.dec.ReadToken(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the envelope, which ends at offset %d", ErrMalformed, off)
	}
	return nil
}

// syntax explains a syntax error of the payload.
func (w *walker) syntax(err error) error {
	if len(bytes.TrimSpace(w.data)) == 0 {
		return fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	if err == nil {
		return fmt.Errorf("%w: invalid UTF-8", ErrMalformed)
	}
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return fmt.Errorf("%w: invalid JSON: %w", ErrMalformed, err)
	}
	if errors.Is(se.Err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: invalid JSON: unexpected end at offset %d", ErrMalformed, se.ByteOffset)
	}
	where := ""
	if se.JSONPointer != "" {
		where = " in " + string(se.JSONPointer)
	}
	return fmt.Errorf("%w: invalid JSON at offset %d%s: %v", ErrMalformed, se.ByteOffset, where, se.Err)
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

// intern returns the package constant equal to s, or "": frequent values
// share one string, and s need not be copied.
func intern(s string) string {
	for _, c := range [...]string{OpInsert, OpUpdate, OpDelete, OpSnapshot, SourceTrigger, SourceBinlog} {
		if s == c {
			return c
		}
	}
	return ""
}
