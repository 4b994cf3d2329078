package sqlschema

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// RowSQL is JSON_OBJECT('col', <value>, …) over the named columns of t,
// each in the form events documents and the triggers send, referred to
// unqualified: SELECT RowSQL(…) FROM t gives a row in event form (dispatch's
// Refresh loads records this way, so a field loads as it decodes from an
// event).
func RowSQL(t *Table, names []string) (string, error) {
	parts := make([]string, len(names))
	for i, name := range names {
		c, ok := t.Column(name)
		if !ok {
			return "", fmt.Errorf("column %s is not in table %s", name, t.Name)
		}
		v, err := ValueSQL(QuoteIdent(name), c)
		if err != nil {
			return "", err
		}
		parts[i] = QuoteString(name) + ", " + v
	}
	return "JSON_OBJECT(" + strings.Join(parts, ", ") + ")", nil
}

// KeyCond is the condition "column c, referred to by ref, has the value
// raw" (a JSON value in the form RowSQL renders, as in an event's pk), and
// its argument. Where the form is the value itself (numbers, decimals,
// dates and times, text) or decodes to it (base64 of binary) the column is
// compared, so that its index serves; otherwise its rendering is.
func KeyCond(ref string, c Column, raw []byte) (string, any, error) {
	var s string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil, fmt.Errorf("column %s: no key value", c.Name)
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", nil, fmt.Errorf("column %s: key value %s: %w", c.Name, raw, err)
		}
	default:
		s = string(raw)
	}
	switch kindOf(c.DataType) {
	case kindNumber, kindDecimal, kindTemporal, kindText:
		return ref + " = ?", s, nil
	case kindBinary:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", nil, fmt.Errorf("column %s: key value %q: %w", c.Name, s, err)
		}
		return ref + " = ?", b, nil
	}
	v, err := ValueSQL(ref, c)
	if err != nil {
		return "", nil, err
	}
	return v + " = ?", s, nil
}
