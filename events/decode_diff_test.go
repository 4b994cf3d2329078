package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// Differential tests: the syntax pass must accept exactly what json.Valid
// accepts, and Decode must behave exactly as oldDecode (olddecode_test.go),
// the json.Valid-then-parse implementation it replaced: same envelope, or
// the same error.

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

func checkSyntax(t *testing.T, data []byte) {
	t.Helper()
	sc := syntax{b: data}
	got, want := sc.check(), json.Valid(data)
	if got != want {
		t.Fatalf("syntax pass says %v, json.Valid %v: %q", got, want, data)
	}
	if got && sc.badUTF8 == utf8.Valid(data) {
		t.Fatalf("syntax pass says invalid UTF-8 %v, utf8.Valid %v: %q", sc.badUTF8, utf8.Valid(data), data)
	}
}

// checkDecode compares Decode with oldDecode on data.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	want, werr := oldDecode(data)
	got, err := Decode(data)
	switch {
	case werr != nil && err == nil:
		t.Fatalf("Decode accepts what it refused with %q: %q", werr, data)
	case werr == nil && err != nil:
		t.Fatalf("Decode refuses with %q what it accepted: %q", err, data)
	case err != nil:
		if err.Error() != werr.Error() || errors.Is(err, ErrVersion) != errors.Is(werr, ErrVersion) ||
			errors.Is(err, ErrMalformed) != errors.Is(werr, ErrMalformed) {
			t.Fatalf("Decode error %q, was %q: %q", err, werr, data)
		}
	case !reflect.DeepEqual(got, want):
		t.Fatalf("Decode gives\n%+v\nwas\n%+v\nfor %q", got, want, data)
	}
}

// inEnvelope puts v in every place of the sample envelope where the syntax
// pass does something different: a field, a row column, a deeper value.
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

func TestSyntaxMatchesJSONValid(t *testing.T) {
	for _, v := range trickyJSON {
		for _, in := range inEnvelope(v) {
			checkSyntax(t, []byte(in))
		}
	}
	for _, n := range []int{1, 2, 3, 9999, 10000, 10001, 10002} {
		checkSyntax(t, []byte(deep(n, false)))
		checkSyntax(t, []byte(deep(n, true)))
	}
	// Every byte in every position of the 8-byte blocks of a string.
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			s := []byte(`"` + strings.Repeat("a", 17) + `"`)
			s[1+pos] = byte(c)
			checkSyntax(t, s)
		}
	}
}

// Decode costs no more allocations than it did: two copies of the payload,
// the envelope, the three rows and modified.
func TestDecodeAllocs(t *testing.T) {
	data := []byte(sampleJSON)
	if n := testing.AllocsPerRun(100, func() { _, _ = Decode(data) }); n > 10 {
		t.Errorf("Decode makes %v allocations, want at most 10", n)
	}
}

func TestDecodeMatchesOld(t *testing.T) {
	for _, v := range trickyJSON {
		for _, in := range inEnvelope(v) {
			checkDecode(t, []byte(in))
		}
	}
	for _, n := range []int{9998, 9999, 10000} { // the envelope and row are 2 levels
		for _, in := range inEnvelope(deep(n, false)) {
			checkDecode(t, []byte(in))
		}
	}
	seeds, err := readCorpus("testdata/fuzz/FuzzDecode")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		checkDecode(t, s)
	}
	for _, in := range strings.Split(strings.Join(edits, "\x00"), "\x00") {
		checkDecode(t, []byte(in))
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

// wideRow is an insert envelope with a row of n columns, more than the
// syntax pass records when n is large; sep is the whitespace in it.
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

// FuzzDecodeDiff checks Decode against oldDecode, and the syntax pass
// against json.Valid, on any input.
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
		checkSyntax(t, data)
		checkDecode(t, data)
	})
}
