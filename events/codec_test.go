package events

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sample returns a typical update envelope with a 6-column row.
func sample() *Envelope {
	return &Envelope{
		V: Version, ID: "0b6c3c1e-cb3a-11ef-9d4f-0242ac120002", Source: SourceTrigger,
		Schema: "app", Table: "articles", Model: "Article", Op: OpUpdate,
		PK: Row{"id": raw(`42`)},
		Row: Row{
			"id": raw(`42`), "title": raw(`"Hello, wörld 🚀"`), "price": raw(`"12.50"`),
			"created_at": raw(`"2026-11-26 23:00:00.123456"`), "tags": raw(`["a","b"]`),
			"body": raw(`null`),
		},
		Old: Row{
			"id": raw(`42`), "title": raw(`"Hello"`), "price": raw(`"12.50"`),
			"created_at": raw(`"2026-11-26 23:00:00.123456"`), "tags": raw(`["a","b"]`),
			"body": raw(`null`),
		},
		Modified: []string{"title"},
		TS:       time.Date(2026, 11, 26, 23, 0, 0, 123456000, time.UTC),
	}
}

func raw(s string) []byte { return []byte(s) }

const sampleJSON = `{"v":1,"id":"0b6c3c1e-cb3a-11ef-9d4f-0242ac120002","source":"trigger",` +
	`"schema":"app","table":"articles","model":"Article","op":"update","pk":{"id":42},` +
	`"row":{"body":null,"created_at":"2026-11-26 23:00:00.123456","id":42,"price":"12.50","tags":["a","b"],"title":"Hello, wörld 🚀"},` +
	`"old":{"body":null,"created_at":"2026-11-26 23:00:00.123456","id":42,"price":"12.50","tags":["a","b"],"title":"Hello"},` +
	`"modified":["title"],"ts":"2026-11-26T23:00:00.123456Z"}`

func TestEncodeGolden(t *testing.T) {
	b, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != sampleJSON {
		t.Errorf("Encode:\n got %s\nwant %s", b, sampleJSON)
	}
}

func TestRoundTrip(t *testing.T) {
	ins := sample()
	ins.Op, ins.Old, ins.Modified = OpInsert, nil, []string{"id", "title"}
	del := sample()
	del.Op, del.Old, del.Modified = OpDelete, nil, nil
	bin := sample()
	bin.Source, bin.Pos, bin.ID = SourceBinlog, "binlog.000001:1234", "binlog.000001:1234:0"
	bin.TS = time.Date(2026, 11, 26, 23, 0, 1, 0, time.UTC)
	for _, e := range []*Envelope{sample(), ins, del, bin} {
		t.Run(e.Op+"/"+e.Source, func(t *testing.T) {
			b, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
			}
		})
	}
}

// Every column value form of the package documentation survives a round
// trip byte for byte.
func TestValueFormsRoundTrip(t *testing.T) {
	forms := map[string]string{
		"bigint_unsigned_max": `18446744073709551615`,
		"bigint_min":          `-9223372036854775808`,
		"decimal":             `"12.50"`,
		"datetime6":           `"2026-11-26 23:00:00.123456"`,
		"datetime":            `"2026-11-26 23:00:00"`,
		"date":                `"2026-11-26"`,
		"time":                `"-838:59:59.000001"`,
		"json_object":         `{"a":[1,2.5,{"b":null}],"c":"d"}`,
		"json_array":          `[1,"x",true,null]`,
		"json_string":         `"a JSON string"`,
		"blob":                `"AAEC/w=="`,
		"blob_empty":          `""`,
		"null":                `null`,
		"float":               `1.5e-7`,
		"emoji":               `"utf8mb4 😀 ü 中文"`,
		"escapes":             `"quote \" backslash \\ newline \n tab \t nul \u0000 lone \ud800"`,
	}
	e := sample()
	e.Op, e.Old, e.Modified = OpInsert, nil, nil
	e.Row = Row{}
	for k, v := range forms {
		e.Row[k] = raw(v)
	}
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range forms {
		if string(got.Row[k]) != v {
			t.Errorf("%s: got %s, want %s", k, got.Row[k], v)
		}
	}
}

func TestDecodeCanonicalizes(t *testing.T) {
	in := strings.Replace(sampleJSON, `"tags":["a","b"]`, "\"tags\" : [ \"a\" ,\n\t\"b\" ]", 1)
	in = strings.Replace(in, `"ts":"2026-11-26T23:00:00.123456Z"`, `"ts":"2026-11-27T01:00:00.123456789+02:00"`, 1)
	in = strings.Replace(in, `"modified":["title"]`, `"modified":["\u0074itle"]`, 1)
	e, err := Decode([]byte(" \n" + in + "\n "))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e, sample()) {
		t.Errorf("got %+v\nwant %+v", e, sample())
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	b := []byte(sampleJSON)
	e, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'x'
	}
	if !reflect.DeepEqual(e, sample()) {
		t.Error("decoded envelope changed with its input")
	}
}

func TestDecodeErrors(t *testing.T) {
	// edit replaces old with new in sampleJSON, which must contain old.
	edit := func(old, new string) string {
		if !strings.Contains(sampleJSON, old) {
			t.Fatalf("sample has no %s", old)
		}
		return strings.Replace(sampleJSON, old, new, 1)
	}
	insert := strings.NewReplacer(`"op":"update"`, `"op":"insert"`,
		`"old":{"body":null,"created_at":"2026-11-26 23:00:00.123456","id":42,"price":"12.50","tags":["a","b"],"title":"Hello"},`, ``).Replace(sampleJSON)
	tests := []struct {
		name, in string
		is       error
		field    string // the message must name it
	}{
		{"empty", ``, ErrMalformed, "empty"},
		{"not JSON", `{"v":1,`, ErrMalformed, "invalid JSON"},
		{"trailing", sampleJSON + `{}`, ErrMalformed, "trailing"},
		{"trailing garbage", sampleJSON + ` x`, ErrMalformed, "trailing data after the envelope, which ends at offset 458"},
		{"array", `[1]`, ErrMalformed, "object"},
		{"invalid UTF-8", edit(`"app"`, "\"a\xffp\""), ErrMalformed, "UTF-8"},
		{"v missing", edit(`"v":1,`, ``), ErrMalformed, "v"},
		{"v 2", edit(`"v":1,`, `"v":2,"future":true,`), ErrVersion, "v is 2"},
		{"v 0", edit(`"v":1,`, `"v":0,`), ErrVersion, "v is 0"},
		{"v 1.0", edit(`"v":1,`, `"v":1.0,`), ErrVersion, "v is 1.0"},
		{"v huge", edit(`"v":1,`, `"v":100000000000000000000,`), ErrVersion, "v is"},
		{"v string", edit(`"v":1,`, `"v":"1",`), ErrMalformed, "v: want number, got string"},
		{"unknown field", edit(`"v":1,`, `"v":1,"extra":0,`), ErrMalformed, `unknown field "extra"`},
		{"empty field name", edit(`"v":1,`, `"v":1,"":0,`), ErrMalformed, `unknown field ""`},
		{"field case", edit(`"id":`, `"ID":`), ErrMalformed, `unknown field "ID"`},
		{"repeated field", edit(`"v":1,`, `"v":1,"table":"x",`), ErrMalformed, "table: repeated"},
		{"id missing", edit(`"id":"0b6c3c1e-cb3a-11ef-9d4f-0242ac120002",`, ``), ErrMalformed, "id: missing"},
		{"id empty", edit(`"id":"0b6c3c1e-cb3a-11ef-9d4f-0242ac120002"`, `"id":""`), ErrMalformed, "id: empty"},
		{"id long", edit(`"id":"0b6c3c1e-cb3a-11ef-9d4f-0242ac120002"`, `"id":"`+strings.Repeat("x", 65)+`"`), ErrMalformed, "id: 65 bytes"},
		{"id NUL", edit(`"id":"0b6c3c1e`, `"id":"\u0000`), ErrMalformed, "id: contains NUL"},
		{"id number", edit(`"id":"0b6c3c1e-cb3a-11ef-9d4f-0242ac120002"`, `"id":7`), ErrMalformed, "id: want string, got number"},
		{"id null", edit(`"id":"0b6c3c1e-cb3a-11ef-9d4f-0242ac120002"`, `"id":null`), ErrMalformed, "id: want string, got null"},
		{"source missing", edit(`"source":"trigger",`, ``), ErrMalformed, "source: missing"},
		{"source unknown", edit(`"source":"trigger"`, `"source":"cron"`), ErrMalformed, `source: unknown source "cron"`},
		{"schema missing", edit(`"schema":"app",`, ``), ErrMalformed, "schema: missing"},
		{"table missing", edit(`"table":"articles",`, ``), ErrMalformed, "table: missing"},
		{"table empty", edit(`"table":"articles"`, `"table":""`), ErrMalformed, "table: empty"},
		{"model missing", edit(`"model":"Article",`, ``), ErrMalformed, "model: missing"},
		{"model dot", edit(`"model":"Article"`, `"model":"a.b"`), ErrMalformed, "model:"},
		{"op missing", edit(`"op":"update",`, ``), ErrMalformed, "op: missing"},
		{"op unknown", edit(`"op":"update"`, `"op":"UPDATE"`), ErrMalformed, `op: unknown op "UPDATE"`},
		{"op bool", edit(`"op":"update"`, `"op":true`), ErrMalformed, "op: want string, got boolean"},
		{"pk missing", edit(`"pk":{"id":42},`, ``), ErrMalformed, "pk: missing"},
		{"pk empty", edit(`"pk":{"id":42}`, `"pk":{}`), ErrMalformed, "pk: no columns"},
		{"pk array", edit(`"pk":{"id":42}`, `"pk":[42]`), ErrMalformed, "pk: want object, got array"},
		{"row missing", edit(`"row":{"body":null,"created_at":"2026-11-26 23:00:00.123456","id":42,"price":"12.50","tags":["a","b"],"title":"Hello, wörld 🚀"},`, ``), ErrMalformed, "row: missing"},
		{"row string", edit(`"row":{"body":null,"created_at":"2026-11-26 23:00:00.123456","id":42,"price":"12.50","tags":["a","b"],"title":"Hello, wörld 🚀"}`, `"row":"{}"`), ErrMalformed, "row: want object, got string"},
		{"row repeated column", edit(`"row":{"body":null,`, `"row":{"body":null,"body":1,`), ErrMalformed, `row: column "body" repeated`},
		{"row empty column name", edit(`"row":{"body":null,`, `"row":{"":null,`), ErrMalformed, "row: empty column name"},
		{"old missing", strings.Replace(edit(`"old":{"body":null,"created_at":"2026-11-26 23:00:00.123456","id":42,"price":"12.50","tags":["a","b"],"title":"Hello"},`, ``), `"source":"trigger"`, `"source":"binlog"`, 1), ErrMalformed, "old: missing"},
		{"old on insert", edit(`"op":"update"`, `"op":"insert"`), ErrMalformed, `old: not allowed for op "insert"`},
		{"old empty on insert", strings.Replace(insert, `"pk":`, `"old":{},"pk":`, 1), ErrMalformed, `old: not allowed`},
		{"old null", edit(`"old":{"body":null,"created_at":"2026-11-26 23:00:00.123456","id":42,"price":"12.50","tags":["a","b"],"title":"Hello"}`, `"old":null`), ErrMalformed, "old: want object, got null"},
		{"modified object", edit(`"modified":["title"]`, `"modified":{}`), ErrMalformed, "modified: want array, got object"},
		{"modified number", edit(`"modified":["title"]`, `"modified":["title",3]`), ErrMalformed, "modified: element 1: want string, got number"},
		{"modified unknown column", edit(`"modified":["title"]`, `"modified":["nope"]`), ErrMalformed, `modified: column "nope" is not in row`},
		{"modified twice", edit(`"modified":["title"]`, `"modified":["title","title"]`), ErrMalformed, `modified: column "title" listed twice`},
		{"modified on delete", strings.Replace(insert, `"op":"insert"`, `"op":"delete"`, 1), ErrMalformed, `modified: must be empty for op "delete"`},
		{"ts missing", edit(`,"ts":"2026-11-26T23:00:00.123456Z"`, ``), ErrMalformed, "ts: missing"},
		{"ts not RFC 3339", edit(`"ts":"2026-11-26T23:00:00.123456Z"`, `"ts":"2026-11-26 23:00:00"`), ErrMalformed, "ts: not RFC 3339"},
		{"ts number", edit(`"ts":"2026-11-26T23:00:00.123456Z"`, `"ts":1764198000`), ErrMalformed, "ts: want string, got number"},
		{"ts zero", edit(`"ts":"2026-11-26T23:00:00.123456Z"`, `"ts":"0001-01-01T00:00:00Z"`), ErrMalformed, "ts: zero time"},
		{"ts year", edit(`"ts":"2026-11-26T23:00:00.123456Z"`, `"ts":"0000-01-01T00:00:00+01:00"`), ErrMalformed, "ts: year -1"},
		{"pos on trigger", edit(`"v":1,`, `"v":1,"pos":"binlog.000001:4",`), ErrMalformed, `pos: only allowed for source "binlog"`},
		{"pos number", edit(`"v":1,`, `"v":1,"pos":4,`), ErrMalformed, "pos: want string, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded: %+v", e)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not mention %q", err, tt.field)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(e *Envelope)
		is    error
		field string
	}{
		{"version", func(e *Envelope) { e.V = 0 }, ErrVersion, "v is 0"},
		{"id", func(e *Envelope) { e.ID = "" }, ErrMalformed, "id: empty"},
		{"source", func(e *Envelope) { e.Source = "x" }, ErrMalformed, "source"},
		{"op", func(e *Envelope) { e.Op = "" }, ErrMalformed, "op: empty"},
		{"pk", func(e *Envelope) { e.PK = nil }, ErrMalformed, "pk: missing"},
		{"row value", func(e *Envelope) { e.Row["id"] = raw(`{`) }, ErrMalformed, `row: column "id": invalid JSON`},
		{"row value UTF-8", func(e *Envelope) { e.Row["id"] = raw("\"\xff\"") }, ErrMalformed, `row: column "id"`},
		{"row key UTF-8", func(e *Envelope) { e.Row["\xff"] = raw(`1`) }, ErrMalformed, `row: column name`},
		{"old on delete", func(e *Envelope) { e.Op, e.Modified = OpDelete, nil }, ErrMalformed, "old: not allowed"},
		{"old empty", func(e *Envelope) { e.Old = Row{} }, ErrMalformed, "old: no columns"},
		{"ts", func(e *Envelope) { e.TS = time.Time{} }, ErrMalformed, "ts: zero time"},
		{"ts year", func(e *Envelope) { e.TS = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, ErrMalformed, "ts: year 10000"},
		{"pos", func(e *Envelope) { e.Pos = "x:1" }, ErrMalformed, "pos"},
		{"schema UTF-8", func(e *Envelope) { e.Schema = "\xff" }, ErrMalformed, "schema: invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sample()
			tt.edit(e)
			b, err := Encode(e)
			if err == nil {
				t.Fatalf("Encode succeeded: %s", b)
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q: want %v mentioning %q", err, tt.is, tt.field)
			}
		})
	}
	if _, err := Encode(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Encode(nil): %v", err)
	}
}

// Encode writes nil values as null, and whitespace in values compacted, and
// control characters in strings escaped.
func TestEncodeNormalizes(t *testing.T) {
	e := sample()
	e.Row["body"] = nil
	e.Row["tags"] = raw("[ \"a\",\n \"b\" ]")
	e.Schema = "a\x01\"\\\n\t\rb"
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(sampleJSON, `"schema":"app"`, `"schema":"a\u0001\"\\\n\t\rb"`, 1)
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Schema != e.Schema {
		t.Errorf("schema %q, want %q", got.Schema, e.Schema)
	}
}

func BenchmarkEncode(b *testing.B) {
	e := sample()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data := []byte(sampleJSON)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// seq is optional, round-trips, and holds digits and ':' only.
func TestSeq(t *testing.T) {
	e := sample()
	e.Seq = "00000000000000000042"
	b, err := Encode(e)
	if err != nil || !strings.HasSuffix(string(b), `,"seq":"00000000000000000042"}`) {
		t.Fatalf("Encode: %s, %v", b, err)
	}
	// As the trigger sends it: appended after ts, with MariaDB's spacing.
	spaced := strings.TrimSuffix(sampleJSON, "}") + `, "seq": "0000000004:0000001234:000002"}`
	d, err := Decode([]byte(spaced))
	if err != nil || d.Seq != "0000000004:0000001234:000002" {
		t.Fatalf("Decode: %+v, %v", d, err)
	}
	for _, bad := range []string{`"x1"`, `"-1"`, `"` + strings.Repeat("1", 41) + `"`, `12`} {
		in := strings.TrimSuffix(sampleJSON, "}") + `,"seq":` + bad + "}"
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "seq") {
			t.Errorf("seq %s: err = %v, want ErrMalformed naming seq", bad, err)
		}
	}
}

// TestReadAtRoundTrip: read_at, binlog only, survives Encode and Decode.
func TestReadAtRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 123456000, time.UTC)
	e := &Envelope{V: 1, ID: "binlog.000001:4:0", Source: SourceBinlog, Schema: "s", Table: "t",
		Model: "M", Op: OpDelete, PK: Row{"id": raw(`1`)}, Row: Row{"id": raw(`1`)},
		TS: at.Truncate(time.Second), Pos: "binlog.000001:4", ReadAt: at}
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(b)
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if !d.ReadAt.Equal(at) {
		t.Errorf("read_at %v, want %v", d.ReadAt, at)
	}
	bad := strings.Replace(string(b), `"read_at":"2026-11-28T09:00:00.123456Z"`, `"read_at":"yesterday"`, 1)
	if _, err := Decode([]byte(bad)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "read_at") {
		t.Errorf("bad read_at: %v", err)
	}
	e.Source, e.Pos, e.ID = SourceTrigger, "", "x"
	if _, err := Encode(e); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "read_at") {
		t.Errorf("read_at on a trigger event: %v", err)
	}
}

// An outbox trigger's event with read_row leaves row and old out; it
// decodes, encodes back the same, and is refused where it makes no sense.
func TestReadRow(t *testing.T) {
	light := `{"v":1,"id":"e1","source":"trigger","schema":"app","table":"articles","model":"Article","op":"update",` +
		`"pk":{"id":42},"read_row":true,"modified":["title"],"ts":"2026-11-26T23:00:00.123456Z","seq":"00000000000000000007"}`
	e, err := Decode([]byte(light))
	if err != nil {
		t.Fatal(err)
	}
	if !e.ReadRow || e.Row != nil || e.Old != nil || len(e.Modified) != 1 {
		t.Fatalf("decoded %+v, want read_row, no row, no old, modified [title]", e)
	}
	out, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != light {
		t.Fatalf("Encode:\n%s\nwant\n%s", out, light)
	}
	for _, c := range []struct{ name, in, want string }{
		{"delete", strings.Replace(light, `"op":"update"`, `"op":"delete"`, 1), "read_row: only for"},
		{"binlog", strings.Replace(light, `"source":"trigger"`, `"source":"binlog"`, 1), "read_row: only for"},
		{"with row", strings.Replace(light, `"read_row":true`, `"read_row":true,"row":{"id":42}`, 1), "read_row: row and old must be left out"},
		{"false", strings.Replace(light, `"read_row":true`, `"read_row":false`, 1), "read_row: want"},
		{"no row, no read_row", strings.Replace(light, `"read_row":true,`, ``, 1), "row: missing"},
	} {
		_, err := Decode([]byte(c.in))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Decode error %v, want ErrMalformed naming %q", c.name, err, c.want)
		}
	}
}
