package bridge_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/charset"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/triggers"
)

// A family of character sets, tested in one table: a VARCHAR per set, an
// ENUM and a SET with members that are no ASCII.
type csFamily struct {
	name   string
	sets   []string
	enum   string   // ENUM(…) CHARACTER SET …
	set    string   // SET(…) CHARACTER SET …
	extras []string // SQL values for the first set's column, as the application writes them
}

var csFamilies = []csFamily{
	{name: "single_byte", sets: []string{"latin2", "latin5", "latin7", "cp1250", "cp1251", "cp1256", "cp1257", "cp850",
		"cp852", "cp866", "koi8r", "koi8u", "greek", "hebrew", "tis620", "macroman", "macce", "armscii8", "dec8",
		"geostd8", "hp8", "keybcs2", "swe7", "ascii"},
		enum: "ENUM('Жук','я','x') CHARACTER SET cp1251", set: "SET('α','β','γ') CHARACTER SET greek",
		extras: []string{"'Łódź'", "'ĄŚŻ'"}},
	{name: "cjk", sets: []string{"gbk", "big5", "gb2312", "sjis", "cp932", "ujis", "eucjpms", "euckr"},
		enum: "ENUM('乪','中文','x') CHARACTER SET gbk", set: "SET('圖','形碼','x') CHARACTER SET big5",
		extras: []string{"'乪'", "'中文字'"}},
	{name: "wide", sets: []string{"ucs2", "utf16", "utf16le", "utf32"},
		enum: "ENUM('😀','é','x') CHARACTER SET utf16", set: "SET('a','ü','ß') CHARACTER SET ucs2",
		extras: []string{"'€ ‰ Œ'", "'Ωμέγα'"}},
	{name: "latin1", sets: []string{"latin1"},
		enum: "ENUM('€','‰','Œ','Ã©') CHARACTER SET latin1", set: "SET('€','Ÿ','x') CHARACTER SET latin1",
		extras: []string{"'€ ‰ Œ'", "'Ã©'", "X'818D8F909D'"}},
}

// TestCharsetFamilies writes rows with hostile values (every byte of a
// single-byte set, random multi-byte sequences valid or not, surrogates and
// 4-byte characters for the UTF-16/32 family, what latin1 holds beyond
// ISO-8859-1) in every character set the server has, inserts, updates and
// deletes them, and compares the binlog source's events with the trigger
// source's (the generated triggers, their submit captured in a table) and
// with the server's CONVERT(col USING utf8mb4), byte for byte.
func TestCharsetFamilies(t *testing.T) {
	for _, f := range csFamilies {
		t.Run(f.name, func(t *testing.T) { testCharsetFamily(t, f) })
	}
}

func testCharsetFamily(t *testing.T, f csFamily) {
	const n = 100
	e := newEnv(t, map[string]string{"B": "cs"})
	var cols []string
	for _, s := range f.sets {
		cols = append(cols, fmt.Sprintf("c_%s VARCHAR(300) CHARACTER SET %s", s, s))
	}
	e.exec(fmt.Sprintf("CREATE TABLE cs (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0, %s, e %s, s %s)",
		strings.Join(cols, ", "), f.enum, f.set))
	// The trigger source: its submits go to a table instead of gearmand.
	e.exec("CREATE TABLE submitted (id INT AUTO_INCREMENT PRIMARY KEY, payload LONGBLOB)")
	e.exec("CREATE FUNCTION capture(f TEXT, w LONGBLOB, u TEXT) RETURNS TEXT DETERMINISTIC MODIFIES SQL DATA BEGIN INSERT INTO submitted (payload) VALUES (w); RETURN u; END")
	tab, err := sqlschema.LoadTable(context.Background(), e.db, "", "cs")
	if err != nil {
		t.Fatal(err)
	}
	trs, err := triggers.Generate(triggers.Spec{Namespace: e.ns, Model: "T", Table: "cs"}, tab)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := e.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%.200s: %v", q, err)
		}
	}
	exec("SET SESSION sql_mode = ''") // what cannot be stored is rewritten by the server, not refused
	// Triggers created in strict mode refuse a write whose value CONVERT
	// cannot convert (ERROR 1977, where a SELECT gives '?'): these keep the
	// session's non-strict mode, as the binlog source never refuses.
	for _, tr := range trs {
		exec(strings.ReplaceAll(tr.Create, "gman_do_background(", "capture("))
	}
	got := e.collect("B")
	e.startBridge()

	rnd := rand.New(rand.NewPCG(7, uint64(len(f.name))))
	vals := map[string][][]byte{}
	for _, s := range f.sets {
		for _, v := range charset.Hostile(s, rnd, 3*n) {
			cs, _ := charset.Get(s)
			if _, err := cs.Append(nil, v); errors.Is(err, charset.ErrNotUTF8) {
				continue // no JSON string holds it: TestPoisonedRow
			}
			vals[s] = append(vals[s], v)
		}
	}
	value := func(s string, i int) string {
		if s == f.sets[0] && i < len(f.extras) {
			return f.extras[i]
		}
		return "X'" + hex.EncodeToString(vals[s][i%len(vals[s])]) + "'"
	}
	for i := range n {
		var vs []string
		for _, s := range f.sets {
			vs = append(vs, value(s, i))
		}
		exec(fmt.Sprintf("INSERT INTO cs VALUES (%d, 0, %s, %d, %d)", i, strings.Join(vs, ", "), 1+i%3, i%8))
	}
	for i := range n {
		var sets []string
		for _, s := range f.sets {
			sets = append(sets, fmt.Sprintf("c_%s = %s", s, value(s, n+i)))
		}
		exec(fmt.Sprintf("UPDATE cs SET n = n + 1, %s, e = %d, s = %d WHERE id = %d", strings.Join(sets, ", "), 1+(i+1)%3, (i+3)%8, i))
	}
	exec(fmt.Sprintf("DELETE FROM cs WHERE id >= %d", n/2))
	want := n + n + n/2

	// The server's conversion of what it stored, for the rows left.
	server := map[string]map[string][]byte{}
	rows, err := e.db.Query("SELECT id, " + convertAll(f.sets) + " FROM cs")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		dst := make([]any, len(f.sets)+3)
		var id string
		dst[0] = &id
		conv := make([][]byte, len(f.sets)+2)
		for i := range conv {
			dst[i+1] = &conv[i]
		}
		if err := rows.Scan(dst...); err != nil {
			t.Fatal(err)
		}
		server[id] = map[string][]byte{}
		for i, s := range f.sets {
			server[id]["c_"+s] = conv[i]
		}
		server[id]["e"], server[id]["s"] = conv[len(f.sets)], conv[len(f.sets)+1]
	}
	rows.Close()

	binlog := map[string]*events.Envelope{}
	for _, ev := range got.wait(t, want, 2*time.Minute) {
		binlog[ev.Op+":"+string(ev.PK["id"])] = ev
	}
	trig := map[string]map[string]json.RawMessage{}
	prow, err := e.db.Query("SELECT payload FROM submitted ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for prow.Next() {
		var p []byte
		prow.Scan(&p)
		var env map[string]json.RawMessage
		if err := json.Unmarshal(p, &env); err != nil {
			t.Fatalf("trigger payload %q: %v", p, err)
		}
		var op string
		json.Unmarshal(env["op"], &op)
		var pk map[string]json.RawMessage
		json.Unmarshal(env["pk"], &pk)
		trig[op+":"+string(pk["id"])] = env
	}
	prow.Close()
	if len(binlog) != want || len(trig) != want {
		t.Fatalf("%d binlog events, %d trigger events, want %d each", len(binlog), len(trig), want)
	}
	diffs := 0
	report := func(format string, args ...any) {
		t.Helper()
		if diffs++; diffs <= 20 {
			t.Errorf(format, args...)
		}
	}
	for key, ev := range binlog {
		tr := trig[key]
		if tr == nil {
			report("%s: no trigger event", key)
			continue
		}
		images := map[string]events.Row{"row": ev.Row}
		if ev.Op == events.OpUpdate {
			images["old"] = ev.Old
		}
		for img, row := range images {
			var trow map[string]json.RawMessage
			json.Unmarshal(tr[img], &trow)
			for col, v := range row {
				if !sameString(v, trow[col]) {
					report("%s %s.%s: binlog %s, trigger %s", key, img, col, v, trow[col])
				}
			}
		}
		if ev.Op == events.OpUpdate {
			for col, conv := range server[string(ev.PK["id"])] {
				var s string
				if err := json.Unmarshal(ev.Row[col], &s); err != nil || !bytes.Equal([]byte(s), conv) {
					report("%s %s: binlog %s, server CONVERT %X", key, col, ev.Row[col], conv)
				}
			}
		}
	}
}

func convertAll(sets []string) string {
	var out []string
	for _, s := range sets {
		out = append(out, "CONVERT(c_"+s+" USING utf8mb4)")
	}
	return strings.Join(append(out, "CONVERT(e USING utf8mb4)", "CONVERT(s USING utf8mb4)"), ", ")
}

// sameString compares two JSON values as the strings (or nulls) they
// decode to, byte for byte.
func sameString(a, b json.RawMessage) bool {
	var x, y *string
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	if x == nil || y == nil {
		return x == nil && y == nil
	}
	return *x == *y
}
