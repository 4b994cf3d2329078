package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Differential tests: Decode (jsontext underneath) against refDecode, a
// reference built on encoding/json v1, an independent JSON implementation:
// Decode refuses a payload as invalid JSON or UTF-8 exactly when json.Valid
// or utf8.Valid does; it gives ErrVersion exactly when the reference
// finds a version other than 1; and what it accepts, the reference accepts
// and decodes to the same envelope.

// trickyJSON are values near the edges of the JSON grammar, valid or not.
var trickyJSON = []string{
	// literals and numbers
	`true`, `false`, `null`, `tru`, `nul`, `truex`, `True`, `NaN`, `Infinity`, `-Infinity`,
	`0`, `-0`, `00`, `01`, `-01`, `1`, `-`, `--1`, `+1`, `1.`, `.5`, `1.5`, `1.e5`, `1e`, `1e+`,
	`1e-`, `1E5`, `1e+5`, `1e-05`, `1.5e3`, `0.0`, `0e0`, `-0.0e-0`, `1ee5`, `1e5.5`, `0x10`,
	`1_000`, `18446744073709551616`, `1e400`, `0.`, `-.5`, `1 2`, `1,2`, `[1 2]`,
	// strings and escapes
	`""`, `"`, `"a`, `"\"`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\a"`, `"\x41"`, `"\'"`, `"\0"`,
	`"\u"`, `"\u12"`, `"\u123"`, `"\u1234"`, `"\uABCD"`, `"\uabcd"`, `"\u12G4"`, `"\U1234"`,
	`"\ud800"`, `"\udc00"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00\ud83d"`, `"\u0000"`,
	`"\\u1234"`, `"a\"b"`, `"tab	in"`, "\"nl\nin\"", "\"nul\x00in\"", "\"del\x7fin\"",
	"\"\x1f\"", "\"\x20\"", `"😀"`, `"中文"`,
	// invalid UTF-8 inside and outside strings
	"\"\xff\"", "\"\xc3\"", "\"\xc3\x28\"", "\"\xe2\x82\"", "\"\xed\xa0\x80\"", "\"\xc0\xaf\"",
	"\"\xf4\x90\x80\x80\"", "\"\xf0\x9f\x98\"", "\"\xef\xbf\xbd\"", "\"a\xe2\"b\"", "\xff", "1\xff",
	"\"\x80\x80\x80\x80\x80\x80\x80\x80\x80\"", "\"abcdefgh\xffabcdefgh\"",
	// containers
	`[]`, `{}`, `[`, `]`, `{`, `}`, `[1,]`, `[,1]`, `[1,,2]`, `{"a":1,}`, `{,"a":1}`, `{"a"}`,
	`{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{1:1}`, `{"a":1 "b":2}`, `[}`, `{]`, `[[]]`,
	`[[]`, `[]]`, `{"a":{"b":[1,{"c":null}]}}`, `{"a":1}{}`, `{"":1}`, `{"a":1,"a":2}`,
	// whitespace, BOM, trailing data
	"", " ", " \t\n\r1\r\n\t ", "\v1", "\f1", "1\v", "\u00a01", "\xef\xbb\xbf{}", "{}\x00",
	"{ }", "[ ]", "[ 1 , 2 ]", "{ \"a\" : 1 }", "/*c*/1", "1//c",
}

// deep returns n nested arrays, or objects, around 1.
func deep(n int, obj bool) string {
	open, close := "[", "]"
	if obj {
		open, close = `{"a":`, "}"
	}
	return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
}

// refDecode is the reference: the envelope as encoding/json v1 (a JSON
// implementation independent of jsontext) reads it, with the envelope's
// rules applied on top. It returns the envelope, or why it refuses:
// refSyntax, refVersion or refContent.
func refDecode(data []byte) (*Envelope, refusal) {
	if !json.Valid(data) || !utf8.Valid(data) {
		return nil, refSyntax
	}
	names, vals, ok := members(data)
	if !ok {
		return nil, refContent
	}
	raw := map[string]json.RawMessage{}
	for i, n := range names {
		if _, dup := raw[n]; dup {
			return nil, refContent
		}
		raw[n] = vals[i]
	}
	v, ok := raw["v"]
	if !ok || v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return nil, refContent
	}
	if n, err := strconv.Atoi(string(v)); err != nil || n != Version {
		return nil, refVersion
	}
	e := &Envelope{V: Version}
	str := map[string]*string{"id": &e.ID, "source": &e.Source, "schema": &e.Schema, "table": &e.Table,
		"model": &e.Model, "op": &e.Op, "pos": &e.Pos}
	rows := map[string]*Row{"pk": &e.PK, "row": &e.Row, "old": &e.Old}
	var ts string
	for name, val := range raw {
		switch p, r := str[name], rows[name]; {
		case name == "v":
		case p != nil || name == "ts":
			if val[0] != '"' {
				return nil, refContent
			}
			if p == nil {
				p = &ts
			}
			if err := json.Unmarshal(val, p); err != nil {
				return nil, refContent
			}
		case r != nil:
			cols, cvals, ok := members(val)
			if !ok {
				return nil, refContent
			}
			*r = Row{}
			for i, c := range cols {
				if _, dup := (*r)[c]; dup {
					return nil, refContent
				}
				var b bytes.Buffer
				if err := json.Compact(&b, cvals[i]); err != nil {
					return nil, refContent
				}
				(*r)[c] = b.Bytes()
			}
		case name == "modified":
			var elems []json.RawMessage
			if val[0] != '[' || json.Unmarshal(val, &elems) != nil {
				return nil, refContent
			}
			for _, el := range elems {
				var s string
				if el[0] != '"' || json.Unmarshal(el, &s) != nil {
					return nil, refContent
				}
				e.Modified = append(e.Modified, s)
			}
		default: // unknown, "" included
			return nil, refContent
		}
	}
	for _, req := range []string{"id", "source", "schema", "table", "model", "op", "pk", "row", "ts"} {
		if _, ok := raw[req]; !ok {
			return nil, refContent
		}
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, refContent
	}
	e.TS = t.UTC().Truncate(time.Microsecond)
	for _, x := range []*string{&e.Source, &e.Op} {
		*x = intern(*x)
	}
	if e.validate() != nil {
		return nil, refContent
	}
	return e, refOK
}

type refusal int

const (
	refOK refusal = iota
	refSyntax
	refVersion
	refContent
)

// members returns the names and values of the JSON object data, in order,
// as encoding/json v1's tokenizer reads them; ok is false if data is not an
// object.
func members(data []byte) (names []string, vals []json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		names, vals = append(names, t.(string)), append(vals, v)
	}
	return names, vals, true
}

// checkDecode compares Decode with refDecode on data.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	want, why := refDecode(data)
	got, err := Decode(data)
	if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
		t.Fatalf("error %q wraps neither sentinel: %q", err, data)
	}
	syntax := err != nil && regexp.MustCompile(`invalid JSON|invalid UTF-8|empty payload|trailing data`).MatchString(err.Error())
	switch {
	case why == refOK && err != nil:
		t.Fatalf("Decode refuses with %q what the reference accepts: %q", err, data)
	case why != refOK && err == nil:
		t.Fatalf("Decode accepts what the reference refuses (%d): %q", why, data)
	case (why == refSyntax) != syntax:
		t.Fatalf("Decode error %q, reference refusal %d: %q", err, why, data)
	case (why == refVersion) != errors.Is(err, ErrVersion):
		t.Fatalf("Decode error %q, reference refusal %d: %q", err, why, data)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("Decode gives\n%+v\nthe reference\n%+v\nfor %q", got, want, data)
	}
}

// inEnvelope puts v in every place of the sample envelope where Decode
// does something different: a field, a row column, a deeper value.
func inEnvelope(v string) []string {
	return []string{
		v,
		strings.Replace(sampleJSON, `"id":42,"price"`, `"id":`+v+`,"price"`, 1),
		strings.Replace(sampleJSON, `"tags":["a","b"]`, `"tags":[`+v+`]`, 1),
		strings.Replace(sampleJSON, `"tags":["a","b"]`, `"tags":{"x":`+v+`}`, 1),
		strings.Replace(sampleJSON, `"table":"articles"`, `"table":`+v, 1),
		strings.Replace(sampleJSON, `"v":1`, `"v":`+v, 1),
		strings.Replace(sampleJSON, `"v":1,`, `"v":1,"x":`+v+`,`, 1),
		strings.Replace(sampleJSON, `"pk":{"id":42}`, `"pk":{"id":42, "x" :`+v+`}`, 1),
		strings.Replace(sampleJSON, `"modified":["title"]`, `"modified":["title",`+v+`]`, 1),
		strings.Replace(sampleJSON, `"ts"`, v+`:1,"ts"`, 1),
		sampleJSON + v,
		v + sampleJSON,
	}
}

func TestDecodeMatchesReference(t *testing.T) {
	for _, v := range trickyJSON {
		for _, in := range inEnvelope(v) {
			checkDecode(t, []byte(in))
		}
	}
	for _, n := range []int{1, 2, 3, 9998, 9999, 10000, 10001} { // the envelope and row are 2 levels
		for _, obj := range []bool{false, true} {
			for _, in := range inEnvelope(deep(n, obj)) {
				checkDecode(t, []byte(in))
			}
		}
	}
	// Every byte in every position of a string: a field, a column value.
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			s := []byte(`"` + strings.Repeat("a", 17) + `"`)
			s[1+pos] = byte(c)
			for _, in := range inEnvelope(string(s)) {
				checkDecode(t, []byte(in))
			}
		}
	}
	seeds, err := readCorpus("testdata/fuzz/FuzzDecode")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		checkDecode(t, s)
	}
	for _, in := range edits {
		checkDecode(t, []byte(in))
	}
}

// Decode's allocations stay bounded: the envelope, its strings, the three
// rows with their column names, the value buffer, modified.
func TestDecodeAllocs(t *testing.T) {
	data := []byte(sampleJSON)
	if n := testing.AllocsPerRun(100, func() { _, _ = Decode(data) }); n > 25 {
		t.Errorf("Decode makes %v allocations, want at most 25", n)
	}
}

// edits are variants of the sample: escaped and spaced names, odd fields.
var edits = []string{
	strings.Replace(sampleJSON, `"v":1`, `"\u0076":1`, 1),
	strings.Replace(sampleJSON, `"row":`, `"r\u006fw":`, 1),
	strings.Replace(sampleJSON, `"row":{"body"`, `"row":{"b\u006fdy"`, 1),
	strings.Replace(sampleJSON, `"row":{"body":null,`, `"row":{"body":null,"b\u006fdy":1,`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"v":1,"":2,`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"v":1,"":2,"zz":3,`, 1),
	strings.Replace(sampleJSON, `"ts"`, `"":1,"ts"`, 1),
	strings.Replace(sampleJSON, `"tags":["a","b"]`, `"tags":{"x":1,"x":2}`, 1),
	strings.Replace(sampleJSON, `"tags":["a","b"]`, `"tags":{"x":1,"x":{"y":[{"z":1,"z":2}]}}`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"v":1,"zz":3,"table":"x",`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"table":"x","v":1,`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"v":1,"v":1,"model":"M",`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"v":2,"v":1,`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"v":1 , "x" : [ 1 , { "y" : 2 } ] ,`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"v":1e0,`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"v":-1,`, 1),
	strings.Replace(sampleJSON, `"v":1,`, `"v":01,`, 1),
	strings.Replace(sampleJSON, `"tags":["a","b"]`, "\"tags\" :\t[ \"a b\" ,\n\"c\\\" d\" , { \"e\" : [ ] } ]", 1),
	strings.Replace(sampleJSON, `"tags":["a","b"]`, `"tags":"a b"`, 1),
	strings.Replace(sampleJSON, `"pk":{"id":42}`, `"pk":{}`, 1),
	strings.Replace(sampleJSON, `"pk":{"id":42}`, `"pk":{"":1}`, 1),
	strings.Replace(sampleJSON, `"pk":{"id":42}`, `"pk":{ }`, 1),
	strings.Replace(sampleJSON, `"title":"Hello"`, `"title":"\ud800"`, 1),
	strings.Replace(sampleJSON, `"id":"0b6c3c1e`, `"id":"\ud800\u00e9`, 1),
	strings.Replace(sampleJSON, `"modified":["title"]`, `"modified":["t\u0069tle"]`, 1),
	strings.Replace(sampleJSON, `"modified":["title"]`, `"modified":[ ]`, 1),
	strings.Replace(sampleJSON, `"source":"trigger"`, `"source":"tr\u0069gger"`, 1),
	strings.Replace(sampleJSON, `"modified":["title"],`, ``, 1),
	strings.Replace(sampleJSON, `"modified":["title"],`, `"modified":null,`, 1),
	" \t\r\n" + sampleJSON + " \t\r\n",
	sampleJSON + " ",
	wideRow(31, ""), wideRow(32, ""), wideRow(40, ""), wideRow(70, ""), wideRow(70, " "), wideRow(200, "\n"),
	strings.Replace(wideRow(70, ""), `"c68":68`, `"c68":68,"c3":1`, 1),
	strings.Replace(wideRow(70, ""), `"c68":68`, `"c68":[ 68 ]`, 1),
	strings.Replace(wideRow(70, ""), `"c68":68`, `"c68":[ 68 ]`, 2),
	strings.Replace(wideRow(30, ""), `"c3":3`, `"c3":3,"c3":1`, 1),
}

// wideRow is an update envelope with rows of n columns; sep is the
// whitespace in them.
func wideRow(n int, sep string) string {
	var b strings.Builder
	b.WriteString(`{"v":1,"id":"x","source":"trigger","schema":"s","table":"t","model":"M","op":"update",`)
	b.WriteString(`"ts":"2026-11-26T23:00:00Z","pk":{"c0":0},`)
	for _, f := range []string{"row", "old"} {
		fmt.Fprintf(&b, `"%s":{`, f)
		for i := range n {
			if i > 0 {
				b.WriteString("," + sep)
			}
			fmt.Fprintf(&b, `"c%d":%s%d`, i, sep, i)
		}
		b.WriteString("},")
	}
	b.WriteString(`"modified":["c1"]}`)
	return b.String()
}

// readCorpus returns the inputs of the []byte fuzz corpus files in dir.
func readCorpus(dir string) ([][]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		_, quoted, ok := strings.Cut(strings.TrimSpace(string(b)), "[]byte(")
		if !ok {
			return nil, fmt.Errorf("%s: not a []byte corpus file", name)
		}
		data, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		out = append(out, []byte(data))
	}
	return out, nil
}

// FuzzDecodeDiff checks Decode against refDecode on any input.
func FuzzDecodeDiff(f *testing.F) {
	f.Add([]byte(sampleJSON))
	for _, v := range trickyJSON {
		for _, in := range inEnvelope(v) {
			f.Add([]byte(in))
		}
	}
	for _, in := range edits {
		f.Add([]byte(in))
	}
	seeds, err := readCorpus("testdata/fuzz/FuzzDecode")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
	})
}
