package gearman_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"os/exec"
	"reflect"
	"testing"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
)

// Interop with PHP's pecl gearman (Debian's php-gearman), as teams
// migrating from sfGearmanPlugin run it: structured payloads are plain
// JSON both ways, strings raw.

// phpItem is the structured workload the PHP client sends to echo.
type phpItem struct {
	Name string   `json:"name"`
	N    int      `json:"n"`
	Tags []string `json:"tags"`
}

func hashes(s string) []string {
	m, h := md5.Sum([]byte(s)), sha1.Sum([]byte(s))
	return []string{hex.EncodeToString(m[:]), hex.EncodeToString(h[:])}
}

// A PHP client calls Go workers: hash returns an array that json_decode
// reads, reverse a raw string, echo decodes a json_encode'd workload.
func TestPHPClientCallsGoWorker(t *testing.T) {
	php := testenv.PHP(t)
	addr := testenv.Gearman(t)
	fnHash, fnRev, fnEcho := testenv.Name(t, "hash"), testenv.Name(t, "reverse"), testenv.Name(t, "echo")
	w := gearman.NewWorker([]string{addr})
	w.Register(fnHash, hash)
	w.Register(fnRev, reverse)
	w.Register(fnEcho, func(_ context.Context, j *gearman.Job) (any, error) {
		var in phpItem
		if err := j.Decode(&in); err != nil {
			return nil, err
		}
		in.N++
		in.Tags = append(in.Tags, "go")
		return in, nil
	})
	startWorker(t, w)

	ctx := ctxT(t)
	cmd := exec.CommandContext(ctx, php, "testdata/client.php", addr, fnHash, fnRev, fnEcho)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client.php: %v\n%s", err, stderr.Bytes())
	}
	var got struct {
		Hash    []string `json:"hash"`
		Reverse string   `json:"reverse"`
		Echo    phpItem  `json:"echo"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client.php printed %q: %v", out, err)
	}
	if !reflect.DeepEqual(got.Hash, hashes("Hello!")) {
		t.Errorf("PHP decoded hash as %q, want %q", got.Hash, hashes("Hello!"))
	}
	if got.Reverse != "!olleH" {
		t.Errorf("PHP got reverse %q", got.Reverse)
	}
	if want := (phpItem{"é/ü", 43, []string{"a", "b", "go"}}); !reflect.DeepEqual(got.Echo, want) {
		t.Errorf("PHP decoded echo as %+v, want %+v", got.Echo, want)
	}
}

// A Go client calls a PHP worker: TaskAs decodes its json_encode'd
// results, the worker's json_decode reads our structured workload, and a
// string goes both ways raw.
func TestGoClientCallsPHPWorker(t *testing.T) {
	php := testenv.PHP(t)
	addr := testenv.Gearman(t)
	prefix := testenv.Name(t, "php")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var stderr bytes.Buffer
	exited := startPHPWorker(t, cancel, &stderr, &stderr, php, "testdata/worker.php", addr, prefix, "3")
	fail := func(what string, err error) {
		t.Helper()
		t.Fatalf("%s: %v\nworker.php: %s", what, err, stderr.String())
	}

	c := gearman.NewClient([]string{addr})
	defer c.Close()
	type hashResult struct {
		MD5    string   `json:"md5"`
		SHA1   string   `json:"sha1"`
		Len    int      `json:"len"`
		Tags   []string `json:"tags"`
		Nested struct {
			OK    bool    `json:"ok"`
			Ratio float64 `json:"ratio"`
		} `json:"nested"`
		None *string `json:"none"`
	}
	h, err := gearman.TaskAs[hashResult](ctx, c, prefix+".hash", "Hello!", gearman.Normal)
	if err != nil {
		fail("hash", err)
	}
	if want := hashes("Hello!"); h.MD5 != want[0] || h.SHA1 != want[1] || h.Len != 6 ||
		!reflect.DeepEqual(h.Tags, []string{"é", "a/b"}) || !h.Nested.OK || h.Nested.Ratio != 1.5 || h.None != nil {
		t.Errorf("hash decoded as %+v", h)
	}

	sent := phpItem{Name: "é/ü \"quoted\"", N: 42, Tags: []string{"a", "b"}}
	echo, err := gearman.TaskAs[struct {
		Type string  `json:"type"`
		Got  phpItem `json:"got"`
	}](ctx, c, prefix+".echo", sent, gearman.Normal)
	if err != nil {
		fail("echo", err)
	}
	if echo.Type != "array" || !reflect.DeepEqual(echo.Got, sent) {
		t.Errorf("PHP json_decoded our workload as %s %+v, want array %+v", echo.Type, echo.Got, sent)
	}

	rev, err := gearman.TaskAs[string](ctx, c, prefix+".reverse", "Hello!", gearman.Normal)
	if err != nil {
		fail("reverse", err)
	}
	if rev != "!olleH" {
		t.Errorf("reverse = %q", rev)
	}
	if err := <-exited; err != nil {
		fail("worker.php exit", err)
	}
}

// startPHPWorker starts `php args…` as a worker process, killed at the
// test's end; a worker that dies early calls cancel, so the calls waiting
// for it fail at once. The channel gets its exit.
func startPHPWorker(t *testing.T, cancel context.CancelFunc, stdout, stderr io.Writer, php string, args ...string) <-chan error {
	t.Helper()
	cmd := exec.Command(php, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		exited <- err
		if err != nil {
			cancel()
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // a no-op once it has exited
	return exited
}
