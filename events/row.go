package events

import "encoding/json"

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
