package phpser_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/internal/phpser"
)

func TestUnmarshal(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want any
	}{
		{`N;`, nil},
		{`b:1;`, true},
		{`b:0;`, false},
		{`i:-42;`, int64(-42)},
		{`i:9223372036854775807;`, int64(math.MaxInt64)},
		{`d:1.5;`, 1.5},
		{`d:1.0E+25;`, 1e25},
		{`d:-0;`, math.Copysign(0, -1)},
		{`d:INF;`, math.Inf(1)},
		{`s:2:"é";`, "é"},
		{`s:5:"a";b"";`, `a";b"`},
		{`a:0:{}`, []any{}},
		{`a:2:{i:0;s:1:"a";i:1;i:2;}`, []any{"a", int64(2)}},
		{`a:2:{i:1;s:1:"a";i:0;i:2;}`, map[string]any{"1": "a", "0": int64(2)}},
		{`a:2:{s:1:"0";s:1:"a";s:1:"1";N;}`, []any{"a", nil}},         // numeric strings are int keys
		{`a:2:{i:5;i:1;s:1:"5";i:2;}`, map[string]any{"5": int64(2)}}, // last wins
		{`a:1:{s:1:"k";a:1:{i:0;b:1;}}`, map[string]any{"k": []any{true}}},
		{`O:8:"stdClass":1:{s:1:"a";i:1;}`, map[string]any{"a": int64(1)}},
	} {
		got, err := phpser.Unmarshal([]byte(tt.in))
		if err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.in, err)
			continue
		}
		if f, ok := tt.want.(float64); ok && f == 0 {
			if g, ok := got.(float64); !ok || g != 0 || !math.Signbit(g) {
				t.Errorf("Unmarshal(%s) = %#v, want -0", tt.in, got)
			}
			continue
		}
		if f, ok := tt.want.(float64); ok && math.IsInf(f, 0) {
			if got != tt.want {
				t.Errorf("Unmarshal(%s) = %#v", tt.in, got)
			}
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Unmarshal(%s) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

// Hostile and broken input: an error that says what is wrong, no panic,
// no allocation the input cannot pay for.
func TestUnmarshalHostile(t *testing.T) {
	deep := strings.Repeat("a:1:{i:0;", 1_000_000) + "N;" + strings.Repeat("}", 1_000_000)
	for _, tt := range []struct{ in, want string }{
		{``, "truncated"},
		{`s:5:"abc";`, "truncated"},
		{`s:99999999999:"x";`, "only 3 left"},
		{`s:99999999999999999999999:"x";`, "overlong"},
		{`s:-1:"";`, "bad string length"},
		{`a:100000000:{}`, "cannot hold them"},
		{`a:2:{i:0;i:1;`, "cannot hold them"},
		{`a:1:{i:0;i:1;`, "truncated"},
		{deep, "nested deeper than 4096"},
		{`O:7:"Exploit":1:{s:3:"cmd";s:2:"id";}`, `class "Exploit"`},
		{`a:1:{i:0;O:24:"GuzzleHttp\Psr7\FnStream":0:{}}`, "only arrays and stdClass"},
		{`C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}`, "custom-serialized"},
		{`E:7:"Foo:Bar";`, "enum"},
		{`a:2:{i:0;i:1;i:1;R:2;}`, "reference"},
		{`a:1:{i:0;r:1;}`, "reference"},
		{`i:99999999999999999999;`, "out-of-range"},
		{`b:2;`, "bad boolean"},
		{`d:0x10;`, "bad float"},
		{`i:1;junk`, "4 bytes after"},
		{`a:1:{d:1.5;i:1;}`, "array key"},
		{`Hello!`, "unknown type"},
	} {
		_, err := phpser.Unmarshal([]byte(tt.in))
		if err == nil || !errors.Is(err, phpser.ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
			in := tt.in
			if len(in) > 40 {
				in = in[:40] + "…"
			}
			t.Errorf("Unmarshal(%s): %v, want an error with %q", in, err, tt.want)
		}
	}
	if _, err := phpser.Unmarshal([]byte(`O:7:"Exploit":0:{}`)); !errors.Is(err, phpser.ErrRefused) {
		t.Errorf("object: %v, want ErrRefused", err)
	}
}

func TestMarshal(t *testing.T) {
	type item struct {
		Name string   `json:"name"`
		N    int      `json:"n"`
		Tags []string `json:"tags,omitempty"`
	}
	for _, tt := range []struct {
		in   any
		want string
	}{
		{nil, `N;`},
		{true, `b:1;`},
		{int8(-3), `i:-3;`},
		{uint64(7), `i:7;`},
		{1.0, `d:1;`},
		{0.1, `d:0.1;`},
		{1e25, `d:1.0E+25;`},
		{1e16, `d:10000000000000000;`},
		{1e17, `d:1.0E+17;`},
		{1.5e-7, `d:1.5E-7;`},
		{0.0001, `d:0.0001;`},
		{math.Copysign(0, -1), `d:-0;`},
		{math.Inf(-1), `d:-INF;`},
		{math.NaN(), `d:NAN;`},
		{"é", `s:2:"é";`},
		{[]byte("a\x00"), "s:2:\"a\x00\";"},
		{[]any{"a", 1}, `a:2:{i:0;s:1:"a";i:1;i:1;}`},
		{[]int(nil), `N;`},
		{map[string]any{"b": 1, "a": nil, "7": "x"}, `a:3:{i:7;s:1:"x";s:1:"a";N;s:1:"b";i:1;}`},
		{map[int]bool{2: true}, `a:1:{i:2;b:1;}`},
		{item{"x", 2, nil}, `a:2:{s:4:"name";s:1:"x";s:1:"n";i:2;}`},
		{&item{"y", 1, []string{"t"}}, `a:3:{s:4:"name";s:1:"y";s:1:"n";i:1;s:4:"tags";a:1:{i:0;s:1:"t";}}`},
		{struct {
			item
			Price float64 `json:"price"`
			skip  int
			Drop  int `json:"-"`
		}{item{"z", 0, nil}, 2, 1, 1}, `a:3:{s:4:"name";s:1:"z";s:1:"n";i:0;s:5:"price";d:2;}`},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), `s:20:"2026-01-02T03:04:05Z";`},
	} {
		got, err := phpser.Marshal(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("Marshal(%#v) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := phpser.Marshal(uint64(math.MaxUint64)); err == nil {
		t.Error("Marshal(MaxUint64) succeeded")
	}
	if _, err := phpser.Marshal(func() {}); err == nil {
		t.Error("Marshal(func) succeeded")
	}
	cyc := []any{nil}
	cyc[0] = cyc
	if _, err := phpser.Marshal(cyc); err == nil {
		t.Error("Marshal(cycle) succeeded")
	}
}

// FuzzUnmarshal: no input panics; what decodes encodes to something that
// decodes to the same value.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := phpser.Unmarshal(data)
		if err != nil {
			if !errors.Is(err, phpser.ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		out, err := phpser.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", v, err)
		}
		back, err := phpser.Unmarshal(out)
		if err != nil {
			t.Fatalf("re-Unmarshal(%s): %v", out, err)
		}
		again, _ := phpser.Marshal(back)
		if string(again) != string(out) {
			t.Fatalf("not stable: %s then %s", out, again)
		}
	})
}

// seeds are the fuzz corpus, also fed to the real php in TestAgainstPHP.
var seeds = []string{
	`N;`, `b:1;`, `b:0;`, `i:0;`, `i:-9223372036854775808;`, `d:0.1;`, `d:-0;`, `d:1.0E+25;`, `d:INF;`, `d:NAN;`,
	`d:5.0E-324;`, `d:1.7976931348623157E+308;`, `s:0:"";`, `s:3:"a"b";`, `s:2:"é";`,
	`a:0:{}`, `a:1:{i:0;a:0:{}}`, `a:2:{i:1;s:1:"a";s:1:"k";d:2.5;}`, `a:2:{i:5;i:1;s:1:"5";i:2;}`,
	`a:3:{s:4:"name";s:3:"é/ü";s:1:"n";i:42;s:4:"tags";a:2:{i:0;s:1:"a";i:1;s:1:"b";}}`,
	`O:8:"stdClass":2:{s:1:"a";i:1;s:1:"b";O:8:"stdClass":0:{}}`,
	`O:7:"Exploit":0:{}`, `a:1:{i:0;R:1;}`, `s:99999999999:"x";`, `a:100000000:{}`, `i:1;junk`,
}

// A workload as the plugin's Doctrine template sends a table job, with
// a nested record-like array.
var benchPayload = []byte(`a:2:{s:9:"arguments";a:3:{i:0;b:1;i:1;d:1.5;i:2;s:11:"hello world";}s:2:"pk";a:1:{s:2:"id";i:12345;}}`)

func BenchmarkUnmarshal(b *testing.B) {
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		if _, err := phpser.Unmarshal(benchPayload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	v, _ := phpser.Unmarshal(benchPayload)
	for b.Loop() {
		if _, err := phpser.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}
