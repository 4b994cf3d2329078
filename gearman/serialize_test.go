package gearman_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/rowgear/rowgear/gearman"
)

type name string

func TestSerialize(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"Hello!", "Hello!"},
		{`"already quoted"`, `"already quoted"`},
		{[]byte("\x00raw\xff"), "\x00raw\xff"},
		{name("x"), `"x"`}, // only string and []byte themselves go raw
		{42, `42`},
		{[]string{"a", "b"}, `["a","b"]`},
		{map[string]any{"k": 1.5}, `{"k":1.5}`},
		{json.RawMessage(`{"a":1}`), `{"a":1}`},
	} {
		got, err := gearman.Serialize(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("Serialize(%#v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := gearman.Serialize(func() {}); err == nil {
		t.Error("Serialize(func) succeeded")
	}
}

func TestUnserialize(t *testing.T) {
	type pair struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	for _, tt := range []struct {
		name string
		in   string
		into any // a pointer to a fresh value
		want any // what it points to afterwards
		err  error
	}{
		{"string raw", "!olleH", new(string), "!olleH", nil},
		{"string keeps JSON quotes", `"x"`, new(string), `"x"`, nil},
		{"bytes raw", "a\x00b", new([]byte), []byte("a\x00b"), nil},
		{"named string from JSON", `"x"`, new(name), name("x"), nil},
		{"int from raw digits", "42", new(int), 42, nil},
		{"struct from PHP json_encode", `{"a":1,"b":"\u00e9\/"}`, new(pair), pair{1, "é/"}, nil},
		{"slice from PHP array", `["d41d","da39"]`, new([]string), []string{"d41d", "da39"}, nil},
		{"any JSON object", `{"a":1}`, new(any), map[string]any{"a": 1.0}, nil},
		{"any JSON string", `"x"`, new(any), "x", nil},
		{"any raw", "Hello!", new(any), "Hello!", nil},
		{"any empty", "", new(any), nil, nil},
		{"empty into slice", "", new([]string), []string(nil), nil},
		{"empty into struct", "", new(pair), pair{}, nil},
		{"raw into slice", "!olleH", new([]string), []string(nil), gearman.ErrNotSerialized},
		{"raw into struct", "a,b", new(pair), pair{}, gearman.ErrNotSerialized},
		{"legacy prefix", "\x00RG1[\"a\"]", new([]string), []string{"a"}, nil},
		{"legacy string", "\x00RG1\"x\"", new(string), "x", nil},
		{"raw message", `{ "a" : 1 }`, new(json.RawMessage), json.RawMessage(`{ "a" : 1 }`), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := gearman.Unserialize([]byte(tt.in), tt.into)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(tt.into).Elem().Interface(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	// A type error names the target.
	var n int
	if err := gearman.Unserialize([]byte(`"x"`), &n); err == nil || errors.Is(err, gearman.ErrNotSerialized) {
		t.Errorf("string JSON into int: %v", err)
	}
	// The raw bytes are copied: the payload buffer may be reused.
	in := []byte("abc")
	var b []byte
	_ = gearman.Unserialize(in, &b)
	in[0] = 'x'
	if string(b) != "abc" {
		t.Errorf("[]byte aliases the payload: %q", b)
	}
}
