package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/events"
)

// ColTypes is the column-type table both sources are checked against:
// triggers/testdata/coltypes.sql split at its "-- rows" line, and the row
// images every source must publish for it (coltypes.expected.json).
type ColTypes struct {
	Table, Rows  string
	Want         map[string]events.Row // by the id column's value
	ExpectedPath string
}

// LoadColTypes reads the column-type table from the repository.
func LoadColTypes(t testing.TB) *ColTypes {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "triggers", "testdata")
	sqlText, err := os.ReadFile(filepath.Join(dir, "coltypes.sql"))
	if err != nil {
		t.Fatal(err)
	}
	c := &ColTypes{ExpectedPath: filepath.Join(dir, "coltypes.expected.json")}
	var ok bool
	if c.Table, c.Rows, ok = strings.Cut(string(sqlText), "\n-- rows\n"); !ok {
		t.Fatal(`coltypes.sql has no "-- rows" line`)
	}
	expected, err := os.ReadFile(c.ExpectedPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(expected, &c.Want); err != nil {
		t.Fatalf("%s: %v", c.ExpectedPath, err)
	}
	return c
}

// DiffRows lists how got differs from want, value by value: the JSON
// text of each value must be the same once compacted (1e308 is not
// 1e+308, "0.10" is not "0.1"); a nil value is null.
func DiffRows(got, want map[string]events.Row) []string {
	var out []string
	for _, id := range sortedKeys(want) {
		g, ok := got[id]
		if !ok {
			out = append(out, fmt.Sprintf("row %s: missing", id))
			continue
		}
		w := want[id]
		for _, col := range sortedKeys(w) {
			gv, ok := g[col]
			if !ok {
				out = append(out, fmt.Sprintf("row %s column %s: missing", id, col))
				continue
			}
			if a, b := compact(gv), compact(w[col]); a != b {
				out = append(out, fmt.Sprintf("row %s column %s: got %s, want %s", id, col, a, b))
			}
		}
		for _, col := range sortedKeys(g) {
			if _, ok := w[col]; !ok {
				out = append(out, fmt.Sprintf("row %s column %s: unexpected", id, col))
			}
		}
	}
	for _, id := range sortedKeys(got) {
		if _, ok := want[id]; !ok {
			out = append(out, fmt.Sprintf("row %s: unexpected", id))
		}
	}
	return out
}

func compact(v json.RawMessage) string {
	if v == nil {
		return "null"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return "invalid JSON " + string(v)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
