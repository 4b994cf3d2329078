package bridge_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

// TestColumnTypes runs the triggers' column-type table through the binlog
// and compares each row image with the forms events/doc.go documents (the
// same file the trigger source is checked against).
func TestColumnTypes(t *testing.T) {
	sqlText, err := os.ReadFile("../triggers/testdata/coltypes.sql")
	if err != nil {
		t.Fatal(err)
	}
	expected, err := os.ReadFile("../triggers/testdata/coltypes.expected.json")
	if err != nil {
		t.Fatal(err)
	}
	table, rows, ok := strings.Cut(string(sqlText), "\n-- rows\n")
	if !ok {
		t.Fatal(`coltypes.sql has no "-- rows" line`)
	}
	e := newEnv(t, map[string]string{"ColTypes": "coltypes"})
	e.exec(table)
	got := e.collect("ColTypes")
	e.startBridge()
	e.exec(rows)
	// The writer's time zone does not matter: TIMESTAMP is published in UTC.
	e.exec("SET time_zone = '+05:30'; INSERT INTO coltypes (id, ts) VALUES (4, '2024-01-01 05:30:00.5')")

	var want map[string]map[string]json.RawMessage
	if err := json.Unmarshal(expected, &want); err != nil {
		t.Fatal(err)
	}
	want["4"] = map[string]json.RawMessage{}
	for col := range want["2"] {
		want["4"][col] = json.RawMessage("null")
	}
	want["4"]["id"], want["4"]["ts"] = json.RawMessage("4"), json.RawMessage(`"2024-01-01 00:00:00.500000"`)
	evs := got.wait(t, len(want), 30*time.Second)
	for _, ev := range evs {
		id := string(ev.PK["id"])
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected row %s", id)
			continue
		}
		for col, wv := range w {
			gv, ok := ev.Row[col]
			if !ok {
				t.Errorf("row %s: column %s missing", id, col)
				continue
			}
			if gv == nil {
				gv = json.RawMessage("null")
			}
			if err := sameJSON(wv, gv); err != nil {
				t.Errorf("row %s column %s: got %s, want %s (%v)", id, col, gv, wv, err)
			}
		}
		if len(ev.Row) != len(w) {
			t.Errorf("row %s: %d columns, want %d", id, len(ev.Row), len(w))
		}
	}
}

// sameJSON compares two JSON values; numbers compare exactly by value
// (1.5 = 1.50, 1e2 = 100), everything else structurally.
func sameJSON(a, b json.RawMessage) error {
	va, err := decodeNumbers(a)
	if err != nil {
		return err
	}
	vb, err := decodeNumbers(b)
	if err != nil {
		return err
	}
	if !equalJSON(va, vb) {
		return fmt.Errorf("differ")
	}
	return nil
}

func decodeNumbers(r json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, ok1 := new(big.Rat).SetString(string(x))
		ry, ok2 := new(big.Rat).SetString(string(y))
		return ok1 && ok2 && rx.Cmp(ry) == 0
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !equalJSON(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// TestFixedBinary: the binlog drops BINARY(n)'s trailing zero bytes; the
// column value has n bytes, and so has the event.
func TestFixedBinary(t *testing.T) {
	e := newEnv(t, map[string]string{"Bin": "bins"})
	e.exec("CREATE TABLE bins (id INT PRIMARY KEY, b BINARY(4), u BIGINT UNSIGNED, m MEDIUMINT UNSIGNED, e ENUM('x,y', 'it''s'))")
	got := e.collect("Bin")
	e.startBridge()
	e.exec("INSERT INTO bins VALUES (1, X'0100', 18446744073709551615, 16777215, 'it''s'), (2, X'01000002', 9223372036854775808, 0, 'x,y')")
	want := map[string]string{
		"1": `b="AQAAAA==" e="it's" id=1 m=16777215 u=18446744073709551615`,
		"2": `b="AQAAAg==" e="x,y" id=2 m=0 u=9223372036854775808`,
	}
	for _, ev := range got.wait(t, 2, 30*time.Second) {
		if g := rowString(ev.Row); g != want[string(ev.PK["id"])] {
			t.Errorf("row %s: got %s, want %s", ev.PK["id"], g, want[string(ev.PK["id"])])
		}
	}
}
