package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/rowgear/rowgear/internal/jsonstr"
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
	b = jsonstr.Append(b, e.ID)
	b = append(b, `,"source":`...)
	b = jsonstr.Append(b, e.Source)
	b = append(b, `,"schema":`...)
	b = jsonstr.Append(b, e.Schema)
	b = append(b, `,"table":`...)
	b = jsonstr.Append(b, e.Table)
	b = append(b, `,"model":`...)
	b = jsonstr.Append(b, e.Model)
	b = append(b, `,"op":`...)
	b = jsonstr.Append(b, e.Op)
	b = append(b, `,"pk":`...)
	if b, err = appendRow(b, e.PK, "pk"); err != nil {
		return nil, err
	}
	if e.ReadRow {
		b = append(b, `,"read_row":true`...)
	} else {
		b = append(b, `,"row":`...)
		if b, err = appendRow(b, e.Row, "row"); err != nil {
			return nil, err
		}
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
			b = jsonstr.Append(b, c)
		}
		b = append(b, ']')
	}
	b = append(b, `,"ts":`...)
	b = e.TS.UTC().AppendFormat(b, tsLayout)
	if e.Pos != "" {
		b = append(b, `,"pos":`...)
		b = jsonstr.Append(b, e.Pos)
	}
	if e.Seq != "" {
		b = append(b, `,"seq":`...)
		b = jsonstr.Append(b, e.Seq)
	}
	if !e.ReadAt.IsZero() {
		b = append(b, `,"read_at":`...)
		b = e.ReadAt.UTC().AppendFormat(b, tsLayout)
	}
	return append(b, '}'), nil
}

// sizeHint estimates the encoded length, so Encode allocates once.
func (e *Envelope) sizeHint() int {
	n := 200 + len(e.ID) + len(e.Schema) + len(e.Table) + len(e.Model) + len(e.Pos) + len(e.Seq)
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
		b = jsonstr.Append(b, k)
		b = append(b, ':')
		switch v := r[k]; {
		case v == nil:
			b = append(b, "null"...)
		case !json.Valid(v) || !utf8.Valid(v):
			return nil, malformed(field, "column %q: invalid JSON value %q", k, v)
		default:
			b = jsonstr.AppendCompact(b, v)
		}
	}
	return append(b, '}'), nil
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
	fReadAt
	fReadRow
	nFields
)

var fieldNames = [nFields]string{"v", "id", "source", "schema", "table", "model",
	"op", "pk", "row", "old", "modified", "ts", "pos", "seq", "read_at", "read_row"}

func fieldIndex(name string) int {
	for i, n := range fieldNames {
		if n == name {
			return i
		}
	}
	return -1
}
