package bridge_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestColumnTypes runs the triggers' column-type table through the binlog
// and compares each row image, value for value as JSON text, with the
// images the trigger source publishes for it (the same file, checked in
// triggers' TestColtypesEnvelope): both sources write one form per type.
func TestColumnTypes(t *testing.T) {
	ct := testenv.LoadColTypes(t)
	e := newEnv(t, map[string]string{"ColTypes": "coltypes"})
	e.exec(ct.Table)
	got := e.collect("ColTypes")
	e.startBridge()
	e.exec(ct.Rows)
	// The writer's time zone does not matter: TIMESTAMP is published in UTC.
	e.exec("SET time_zone = '+05:30'; INSERT INTO coltypes (id, ts) VALUES (4, '2024-01-01 05:30:00.5')")
	e.exec("DELETE FROM coltypes WHERE id = 1")

	want := ct.Want
	want["4"] = events.Row{}
	for col := range want["2"] {
		want["4"][col] = json.RawMessage("null")
	}
	want["4"]["id"], want["4"]["ts"] = json.RawMessage("4"), json.RawMessage(`"2024-01-01 00:00:00.500000"`)
	rows := map[string]events.Row{}
	var del *events.Envelope
	for _, ev := range got.wait(t, len(want)+1, 30*time.Second) {
		if ev.Op == events.OpDelete {
			del = ev
			continue
		}
		rows[string(ev.PK["id"])] = ev.Row
	}
	for _, d := range testenv.DiffRows(rows, want) {
		t.Error(d)
	}
	if del == nil || del.Modified != nil || testenv.DiffRows(map[string]events.Row{"1": del.Row}, map[string]events.Row{"1": want["1"]}) != nil {
		t.Errorf("delete event: %+v", del)
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
