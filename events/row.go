package events

import (
	"encoding/json"

	"github.com/rowgear/rowgear/internal/rowmap"
)

// Row maps column names to their values in wire form (see the package
// documentation), e.g. {"id": 42, "price": "12.50", "tags": ["a"]}.
//
// Values stay raw JSON rather than being decoded into Go values:
//   - a 64-bit integer stays exact (no float64 on the way), BIGINT UNSIGNED
//     included, and a JSON column stays the JSON its writer sent;
//   - Decode does not convert each value, only finds where it ends, so
//     decoding costs no allocation per column; the conversion happens once,
//     in Scan, when the target Go type is known;
//   - Encode writes values back byte for byte (compacted), so a relayed
//     event is unchanged.
//
// A nil value is written as null. Use Scan and RowOf to convert from and to
// Go values.
type Row map[string]json.RawMessage

// check validates r as the envelope field named field. Column names and
// values are checked while encoding (appendRow), and Decode gets them right
// by construction.
func (r Row) check(field string) error {
	if r == nil {
		return malformed(field, "missing")
	}
	if len(r) == 0 {
		return malformed(field, "no columns")
	}
	if _, ok := r[""]; ok {
		return malformed(field, "empty column name")
	}
	return nil
}

// ErrStruct is wrapped by errors about a Go type that cannot map to a row:
// not a struct, a bad db tag, an unsupported field type.
var ErrStruct = rowmap.ErrStruct

// ErrValue is wrapped by errors about a column value that does not convert
// to or from its Go field.
var ErrValue = rowmap.ErrValue

// Scan fills the struct dst points to from r: each db-tagged field whose
// column is in r is set, other fields are left alone, columns without a
// field are ignored.
//
// A field maps to a column through its `db:"name"` tag; options follow the
// name: `db:"id,pk"` marks a primary-key column, `db:"born,date"` a DATE
// column (RowOf writes it without a time of day). Untagged fields and
// `db:"-"` are skipped. Fields of embedded structs count as the outer
// struct's own. Value forms are those of the package documentation:
//
//   - signed and unsigned integers of any size from integer numbers, with a
//     range check; bool from an integer (non-zero is true) or true/false
//   - float32, float64 from numbers, or from DECIMAL strings
//   - string from strings (DECIMAL stays exact) or from numbers (their text)
//   - []byte from base64; time.Time from DATE and DATETIME text, as UTC
//     (MySQL's zero date gives the zero time.Time); time.Duration from TIME
//     text; json.RawMessage from any JSON value
//   - other types through their json.Unmarshaler, if they have one
//
// NULL sets a pointer field to nil, a sql.Null* (or sql.Null[T]) field to
// invalid, and a []byte or json.RawMessage field to nil; into any other
// field it is an error. Errors wrap ErrValue and name the column and field.
func (r Row) Scan(dst any) error { return rowmap.Scan(r, dst) }

// RowOf is the reverse of Scan: the db-tagged fields of src (a struct or a
// pointer to one) as a Row, in the same forms. Times are written in UTC;
// the zero time.Time as MySQL's zero date.
func RowOf(src any) (Row, error) { return rowmap.RowOf(src) }

// PK is RowOf limited to the columns tagged pk: an envelope's pk. A struct
// without one is an error, and so is a NULL key column.
func PK(src any) (Row, error) { return rowmap.PK(src) }
