package events

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/internal/rowmap"
)

// FuzzDecode checks that Decode never panics, that it fails only with its
// sentinel errors, and that what it accepts survives Encode and Decode
// unchanged. Seeds live in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(sampleJSON))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("decoded envelope does not encode: %v\n%+v", err, e)
		}
		e2, err := Decode(b)
		if err != nil {
			t.Fatalf("encoded envelope does not decode: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", e, e2)
		}
		b2, err := Encode(e2)
		if err != nil || string(b) != string(b2) {
			t.Fatalf("encoding is not stable: %s\n%s (%v)", b, b2, err)
		}
	})
}

// The valid-* seeds must decode, or the fuzzer starts from nothing useful.
func TestValidSeeds(t *testing.T) {
	files, _ := filepath.Glob("testdata/fuzz/FuzzDecode/valid-*")
	files = append(files, "testdata/fuzz/FuzzDecode/spaced-escaped")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		_, quoted, _ := strings.Cut(strings.TrimSpace(string(b)), "[]byte(")
		data, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := Decode([]byte(data)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(files) < 4 {
		t.Errorf("only %d valid seeds", len(files))
	}
}

// FuzzScan checks that any valid JSON value, in any column, scans without a
// panic, failing only with ErrValue, and that what scans also converts back.
func FuzzScan(f *testing.F) {
	for _, s := range []string{`1`, `-1`, `"12.50"`, `"AAEC/w=="`, `"2026-11-26 23:00:00.5"`,
		`"-838:59:59"`, `null`, `[1,2]`, `{"a":1}`, `1e400`, `true`, `"0000-00-00"`} {
		f.Add(s)
	}
	cols, _ := rowmap.Columns(reflect.TypeFor[Article]())
	f.Fuzz(func(t *testing.T, val string) {
		if !json.Valid([]byte(val)) {
			return
		}
		for _, c := range cols {
			var a Article
			err := Row{c.Name: []byte(val)}.Scan(&a)
			if err != nil {
				if !errors.Is(err, ErrValue) {
					t.Fatalf("%s=%s: %v is not ErrValue", c.Name, val, err)
				}
				continue
			}
			if _, err := RowOf(&a); err != nil {
				t.Fatalf("%s=%s scanned into %+v, which RowOf refuses: %v", c.Name, val, a, err)
			}
		}
	})
}
