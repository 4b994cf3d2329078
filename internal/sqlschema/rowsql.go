package sqlschema

import (
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
