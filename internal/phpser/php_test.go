package phpser_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"math"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/internal/phpser"
	"github.com/rowgear/rowgear/internal/testenv"
)

// phpRoundTrip has the real php unserialize each input and serialize the
// result again; "" for an input php refuses.
func phpRoundTrip(t *testing.T, inputs [][]byte) []string {
	t.Helper()
	php := testenv.PHP(t)
	var in bytes.Buffer
	for _, b := range inputs {
		in.WriteString(base64.StdEncoding.EncodeToString(b) + "\n")
	}
	const script = `ini_set("unserialize_max_depth", 4096);
while (($l = fgets(STDIN)) !== false) {
  $s = base64_decode(trim($l));
  $v = @unserialize($s, ["allowed_classes" => false]);
  echo ($v === false && $s !== "b:0;") ? "-" : base64_encode(serialize($v)), "\n";
}`
	cmd := exec.Command(php, "-r", script)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("php: %v", err)
	}
	var res []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if sc.Text() == "-" {
			res = append(res, "")
			continue
		}
		b, err := base64.StdEncoding.DecodeString(sc.Text())
		if err != nil {
			t.Fatalf("php printed %q", sc.Text())
		}
		res = append(res, string(b))
	}
	if len(res) != len(inputs) {
		t.Fatalf("php answered %d of %d inputs", len(res), len(inputs))
	}
	return res
}

// Whatever Go writes, php reads and writes back byte for byte (float
// notation, byte lengths, key order); whatever Go reads, php reads as the
// same value.
func TestAgainstPHP(t *testing.T) {
	values := []any{
		nil, true, false, 0, -1, math.MaxInt64, math.MinInt64, 0.1, 1.0, -1.5, 1e15, 1e16, 1e17, 1e25, 1.5e-7,
		1e-4, 1e-5, 5e-324, math.MaxFloat64, 123456789012345678.0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1),
		"", "é/ü \"quoted\"", "a\x00b;\n", []any{}, []any{1, "a", nil, []any{true}},
		map[string]any{"name": "x", "n": 42, "ratio": 0.5, "7": "seven", "-3": "minus", "01": "str", "nested": map[string]any{"ok": true}},
	}
	var inputs [][]byte
	for _, v := range values {
		b, err := phpser.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, b)
	}
	got := phpRoundTrip(t, inputs)
	for i, b := range inputs {
		if got[i] != string(b) && !(strings.Contains(string(b), "NAN")) {
			t.Errorf("Go wrote %s, php wrote it back as %s", b, got[i])
		}
	}

	var reads [][]byte
	for _, s := range seeds {
		reads = append(reads, []byte(s))
	}
	reads = append(reads, corpus(t)...)
	back := phpRoundTrip(t, reads)
	for i, in := range reads {
		v, err := phpser.Unmarshal(in)
		if err != nil {
			continue // refusing more than php does is allowed
		}
		if back[i] == "" {
			t.Errorf("Go read %q as %#v, php refuses it", in, v)
			continue
		}
		pv, err := phpser.Unmarshal([]byte(back[i]))
		if err != nil {
			t.Errorf("php rewrote %q as %q, which Go refuses: %v", in, back[i], err)
			continue
		}
		if !sameValue(v, pv) {
			t.Errorf("%q: Go read %#v, php %#v", in, v, pv)
		}
	}
}

// corpus is the fuzzer's saved inputs, if any.
func corpus(t *testing.T) [][]byte {
	files, _ := filepathGlob("testdata/fuzz/FuzzUnmarshal/*")
	var out [][]byte
	for _, f := range files {
		b, err := readCorpusFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, b)
	}
	return out
}

func sameValue(a, b any) bool {
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && (fa == fb && math.Signbit(fa) == math.Signbit(fb) || math.IsNaN(fa) && math.IsNaN(fb))
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !sameValue(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
