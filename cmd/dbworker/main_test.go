package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilds()
	os.Exit(code)
}

func dbworker(t *testing.T) string {
	return testenv.Build(t, "github.com/rowgear/rowgear/cmd/dbworker")
}

// seedConfig is the seed README's example1, pointed at addr.
func seedConfig(t *testing.T, addr string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gearman.yml")
	yml := "all:\n  server:\n    default: " + addr + "\n  worker:\n    example1:\n      reverse: [Worker1, reverse]\n      hash: [Worker1, hash]\n"
	if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func start(t *testing.T, args ...string) *testenv.Proc {
	t.Helper()
	return testenv.StartProc(t, "dbworker", exec.Command(dbworker(t), args...))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestExample1VerboseAndSignal(t *testing.T) {
	g := testenv.StartGearmand(t)
	p := start(t, "--file", seedConfig(t, g.Addr), "--config=example1", "--count=0", "--timeout=-1", "--verbose")
	c := gearman.NewClient([]string{g.Addr})
	defer c.Close()
	ctx := ctxT(t)
	r, err := c.Task(ctx, "reverse", "Hello!", gearman.Normal)
	if err != nil || r.String() != "!olleH" {
		t.Fatalf("reverse: %v %v", r, err)
	}
	h, err := gearman.TaskAs[[]string](ctx, c, "hash", "Hello!", gearman.Low)
	if err != nil || len(h) != 2 || h[0] != "952d2c56d0485958336747bcdd98590d" {
		t.Fatalf("hash: %v %v", h, err)
	}
	// --verbose logs function, handle, duration and the workload.
	testenv.Eventually(t, 60*time.Second, "verbose job lines", func() bool {
		out := p.Out.String()
		return strings.Contains(out, `msg="job start" function=reverse`) && strings.Contains(out, "workload=Hello!") &&
			strings.Contains(out, `msg="job done" function=hash`) && strings.Contains(out, "duration=")
	})
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func TestCountExitsAfterNJobs(t *testing.T) {
	g := testenv.StartGearmand(t)
	c := gearman.NewClient([]string{g.Addr})
	defer c.Close()
	ctx := ctxT(t)
	for range 3 {
		if _, err := c.Background(ctx, "reverse", "abc", gearman.Normal); err != nil {
			t.Fatal(err)
		}
	}
	p := start(t, "--file", seedConfig(t, g.Addr), "--config=example1", "--count=2", "--timeout=-1")
	if err := p.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(p.Out.String(), "jobs=2") {
		t.Fatalf("output does not report 2 jobs:\n%s", p.Out)
	}
	st, err := testenv.Status(ctx, g.Addr)
	if err != nil || st["reverse"].Total != 1 {
		t.Fatalf("gearmand keeps %+v (%v), want the 1 job dbworker did not take", st["reverse"], err)
	}
}

func TestIdleTimeoutExits(t *testing.T) {
	g := testenv.StartGearmand(t)
	p := start(t, "--file", seedConfig(t, g.Addr), "--config=example1", "--timeout=1")
	if err := p.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(p.Out.String(), "worker idle, stopping") {
		t.Fatalf("no idle message:\n%s", p.Out)
	}
}

func TestGearmanCLIAndRestart(t *testing.T) {
	g := testenv.StartGearmand(t)
	p := start(t, "--file", seedConfig(t, g.Addr), "--config=example1", "--count=0", "--timeout=-1")
	host, port, _ := strings.Cut(g.Addr, ":")
	cli := func() string {
		out, err := exec.CommandContext(ctxT(t), "gearman", "-h", host, "-p", port, "-f", "reverse", "--", "Hello!").CombinedOutput()
		if err != nil {
			t.Fatalf("gearman CLI: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := cli(); got != "!olleH" {
		t.Fatalf("gearman CLI got %q", got)
	}
	g.Kill()
	g.Start()
	if got := cli(); got != "!olleH" {
		t.Fatalf("after a gearmand restart the CLI got %q", got)
	}
	select {
	case <-p.Done():
		t.Fatalf("dbworker exited: %v", p.Err())
	default:
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	out, err := exec.Command(dbworker(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v\n%s", err, out)
	}
	for _, f := range []string{"--config", "--count", "--timeout", "--verbose", "--concurrency", "--env", "--file", "--server", "--job-timeout", "migrate", "triggers", "dead", "bridge"} {
		if !strings.Contains(string(out), f) {
			t.Errorf("-h does not mention %s:\n%s", f, out)
		}
	}
}

// A worker function whose handler is not registered (the plugin's plain
// callback form loads; the start-up check refuses it) is named by file and
// line.
func TestBadConfigNamesFileAndLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(p, []byte("all:\n  worker:\n    example1:\n      reverse: Worker1\n"), 0o644)
	out, err := exec.Command(dbworker(t), "--file", p, "--config=example1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), p+":4") || !strings.Contains(string(out), "function reverse wants handler Worker1") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
}
