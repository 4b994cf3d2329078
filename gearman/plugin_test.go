package gearman_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/phpser"
	"github.com/rowgear/rowgear/internal/testenv"
)

// Wire interop with sfGearmanPlugin: testdata/plugin.php calls php-gearman
// as the plugin's classes do (serialize()/unserialize(), name@namespace,
// queue.<name> jobs with serialize()d workloads).

type typedIn struct {
	ID    int      `json:"id"`
	Price float64  `json:"price"`
	OK    bool     `json:"ok"`
	Tags  []string `json:"tags"`
	Note  *string  `json:"note"`
}

// A PHP client calls Go workers with arrays, objects cast to arrays, ints,
// floats, booleans, null and nested values, and gets them back as it sent
// them; a message it puts in a queue reaches a Go Queue.Get.
func TestPluginPHPClientCallsGoWorker(t *testing.T) {
	php := testenv.PHP(t)
	addr := testenv.Gearman(t)
	ns := testenv.Name(t, "ns")
	w := gearman.NewWorker([]string{addr}, gearman.WithWorkerCodec(gearman.PHP), gearman.WithWorkerFunctionSuffix("@"+ns))
	w.Register("echo", func(_ context.Context, j *gearman.Job) (any, error) {
		var v any
		if err := j.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	})
	w.Register("typed", func(_ context.Context, j *gearman.Job) (any, error) {
		var in typedIn
		if err := j.Decode(&in); err != nil {
			return nil, err
		}
		return typedIn{ID: in.ID + 1, Price: in.Price * 2, OK: !in.OK, Tags: append(in.Tags, "go"), Note: in.Note}, nil
	})
	w.Register("reverse", reverse)
	startWorker(t, w)

	ctx := ctxT(t)
	cmd := exec.CommandContext(ctx, php, "testdata/plugin.php", "client", addr, ns)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plugin.php client: %v\n%s", err, stderr.Bytes())
	}
	var report map[string]string
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("plugin.php printed %q: %v", out, err)
	}
	for _, name := range []string{"list", "scalars", "object as array", "nested", "sparse", "empty", "typed", "reverse"} {
		if report[name] != "same" {
			t.Errorf("PHP client, %s: %s", name, report[name])
		}
	}
	if r, ok := report["queue"]; ok {
		t.Fatalf("PHP queue put: %s", r)
	}

	c := gearman.NewClient([]string{addr}, gearman.WithCodec(gearman.PHP), gearman.WithFunctionSuffix("@"+ns))
	defer c.Close()
	q := gearman.NewQueue(c)
	m, err := q.Get(ctx, "q1", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := m.Decode(&s); err != nil || s != "a message" {
		t.Errorf("first message %q: %q, %v", m.Data, s, err)
	}
	m, err = q.Get(ctx, "q1", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		ID int     `json:"id"`
		F  float64 `json:"f"`
		L  []any   `json:"l"`
	}
	if err := m.Decode(&msg); err != nil || msg.ID != 1 || msg.F != 0.5 || !reflect.DeepEqual(msg.L, []any{true, nil}) {
		t.Errorf("second message %q: %+v, %v", m.Data, msg, err)
	}
}

// A Go client calls a PHP worker: PHP unserializes each value to the PHP
// type it stands for; a Go Queue.Put reaches the plugin's queue get.
func TestPluginGoClientCallsPHPWorker(t *testing.T) {
	php := testenv.PHP(t)
	addr := testenv.Gearman(t)
	ns := testenv.Name(t, "ns")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var stdout, stderr bytes.Buffer
	exited := startPHPWorker(t, cancel, &stdout, &stderr, php, "testdata/plugin.php", "worker", addr, ns)

	c := gearman.NewClient([]string{addr}, gearman.WithCodec(gearman.PHP), gearman.WithFunctionSuffix("@"+ns))
	defer c.Close()
	type echoed struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	for _, tt := range []struct {
		name     string
		in       any
		phpType  string
		wantBack any // the value as PHP returned it, decoded into any
	}{
		{"int", 42, "integer", int64(42)},
		{"nested", map[string]any{"a": []any{1, 2.5, true, false, nil, "é"}, "m": map[int]string{3: "x"}, "f": -1.25e-7},
			"array", map[string]any{"a": []any{int64(1), 2.5, true, false, nil, "é"}, "m": map[string]any{"3": "x"}, "f": -1.25e-7}},
		{"struct as array", typedIn{ID: 3, Price: 2, Tags: []string{"a"}}, "array",
			map[string]any{"id": int64(3), "price": 2.0, "ok": false, "tags": []any{"a"}, "note": nil}},
	} {
		r, err := c.Task(ctx, "echo", tt.in, gearman.Normal)
		if err != nil {
			t.Fatalf("%s: %v\nplugin.php: %s", tt.name, err, stderr.String())
		}
		var got echoed
		if err := r.Decode(&got); err != nil {
			t.Fatalf("%s: result %q: %v", tt.name, r.Data, err)
		}
		var back any
		_ = r.Decode(&back)
		value := back.(map[string]any)["value"]
		if got.Type != tt.phpType || !reflect.DeepEqual(value, tt.wantBack) {
			t.Errorf("%s: PHP saw a %s and returned %#v, want a %s and %#v (raw %q)", tt.name, got.Type, value, tt.phpType, tt.wantBack, r.Data)
		}
	}
	q := gearman.NewQueue(c)
	if err := q.Put(ctx, "q2", map[string]any{"id": 9, "ok": true}, gearman.Normal); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("plugin.php worker: %v\n%s", err, stderr.String())
	}
	got, err := phpser.Unmarshal(bytes.TrimSpace(stdout.Bytes()))
	if want := map[string]any{"id": int64(9), "ok": true}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("PHP queue get returned %q (%#v, %v), want %#v", stdout.String(), got, err, want)
	}
}

// A truncated or hostile PHP-serialized workload fails its job with an
// error naming the function and the payload; the worker goes on.
func TestPluginHostileWorkload(t *testing.T) {
	addr := testenv.Gearman(t)
	fn := testenv.Name(t, "typed")
	w := gearman.NewWorker([]string{addr}, gearman.WithWorkerCodec(gearman.PHP))
	w.Register(fn, func(_ context.Context, j *gearman.Job) (any, error) {
		var in typedIn
		return in.ID, j.Decode(&in)
	})
	startWorker(t, w)
	c := gearman.NewClient([]string{addr}) // JSON: strings go raw, byte for byte
	defer c.Close()
	ctx := ctxT(t)
	deep := strings.Repeat("a:1:{i:0;", 100000) + "N;" + strings.Repeat("}", 100000)
	for _, bad := range []string{
		`a:2:{s:2:"id";i:1;`, `s:99999999999:"x";`, `a:2000000000:{}`, deep,
		`O:7:"Exploit":1:{s:3:"cmd";s:6:"rm -rf";}`, `a:1:{i:0;R:1;}`, `C:11:"ArrayObject":0:{}`,
	} {
		_, err := c.Task(ctx, fn, bad, gearman.Normal)
		var je *gearman.JobError
		if !errors.As(err, &je) || !strings.Contains(je.Msg, fn) || !strings.Contains(je.Msg, "php serialize") {
			t.Errorf("%.30q: %v, want a failed job naming %s and the decode error", bad, err, fn)
		}
		if len(bad) < 40 && !strings.Contains(je.Msg, bad[:5]) {
			t.Errorf("%q: error %q does not show the payload", bad, je.Msg)
		}
	}
	r, err := c.Task(ctx, fn, `a:1:{s:2:"id";i:5;}`, gearman.Normal)
	if err != nil || r.String() != "i:5;" {
		t.Fatalf("good job after the bad ones: %v %v", r, err)
	}
}

// JSON expected, PHP received: the error says so.
func TestUnserializeSaysPHP(t *testing.T) {
	var v map[string]any
	err := gearman.Unserialize([]byte(`a:1:{s:1:"a";i:1;}`), &v)
	if !errors.Is(err, gearman.ErrNotSerialized) || !strings.Contains(err.Error(), "PHP-serialized") {
		t.Errorf("error %v, want ErrNotSerialized saying PHP-serialized", err)
	}
	var f float64
	if err := gearman.PHP.Decode([]byte("d:-0;"), &f); err != nil || f != 0 || !math.Signbit(f) {
		t.Errorf("PHP d:-0; = %v, %v", f, err)
	}
	var n int
	if err := gearman.PHP.Decode([]byte("42"), &n); err != nil || n != 42 {
		t.Errorf("PHP raw 42 = %d, %v", n, err)
	}
}

// FuzzPHPDecode: no payload panics the PHP codec, whatever the target.
func FuzzPHPDecode(f *testing.F) {
	for _, s := range []string{`a:1:{s:2:"id";i:1;}`, `s:1:"x";`, `42`, `d:INF;`, `a:1:{s:4:"tags";a:1:{i:0;N;}}`, `O:8:"stdClass":0:{}`, `b:1;`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in typedIn
		_ = gearman.PHP.Decode(data, &in)
		var v any
		_ = gearman.PHP.Decode(data, &v)
		var s string
		_ = gearman.PHP.Decode(data, &s)
		var m map[string]any
		_ = gearman.PHP.Decode(data, &m)
	})
}
