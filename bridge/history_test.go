package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/testenv"
)

// queued is gearmand's count of jobs waiting for fn.
func queued(t *testing.T, addr, fn string) int {
	t.Helper()
	st, err := testenv.Status(context.Background(), addr)
	if err != nil {
		t.Fatalf("gearmand status: %v", err)
	}
	return st[fn].Total
}

// TestResetMasterKeepsIDsUnique: the changes of the old binlog history
// are handled (a worker's rowgear_applied or gearmand's unique keys would
// remember their ids), then the server's binlog is reset. The bridge
// refuses to go on from its saved position (ERROR 1236: one error, no
// retry loop); restarted afresh, it publishes the new changes, which sit
// at the very file:pos of the old ones, under new ids whose seq orders
// after theirs: every change reaches the handler.
func TestResetMasterKeepsIDsUnique(t *testing.T) {
	m := testenv.StartMariaDB(t)
	g := testenv.StartGearmand(t)
	db := m.DB("app")
	e := newEnvOn(t, db, m.DSN+"app", g.Addr, map[string]string{"Article": "articles"})
	e.exec("CREATE TABLE articles (id INT PRIMARY KEY, title VARCHAR(100))")
	fn := events.FuncName(e.ns, "Article", "insert")
	write := func() {
		for _, id := range []string{"1", "2", "3"} {
			e.exec("INSERT INTO articles VALUES (" + id + ", 'same')")
		}
	}

	// History 1: three inserts, handled.
	e.exec("RESET MASTER")
	got := e.collect("Article")
	r := e.startBridge()
	write()
	got.wait(t, 3, 60*time.Second)
	testenv.Eventually(t, 60*time.Second, "the 3 jobs done", func() bool { return queued(t, g.Addr, fn) == 0 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// The server's binlog is reset; the same rows are written again.
	e.exec("DELETE FROM articles")
	e.exec("RESET MASTER")

	// From the saved position the bridge stops with ErrBinlogGone, once.
	var logs bytes.Buffer
	b, err := bridge.New(context.Background(), e.config(), bridge.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = b.Run(ctx)
	b.Close()
	if !errors.Is(err, bridge.ErrBinlogGone) {
		t.Fatalf("Run after RESET MASTER: %v, want ErrBinlogGone", err)
	}
	msg := err.Error()
	for _, want := range []string{"ERROR 1236", "delete the saved position", e.posFile, "--start=current", "re-snapshot"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	// One report: the error Run returns; no retries, no stack traces.
	if l := logs.String(); strings.Contains(l, "restarting") || strings.Contains(l, "1236") || strings.Contains(l, ".go:") {
		t.Errorf("the bridge's log repeats the error, retries or has stack traces:\n%s", l)
	}

	// The binlogbridge command: that one line on stderr, exit status 1.
	yml := filepath.Join(t.TempDir(), "gearman.yml")
	if err := os.WriteFile(yml, []byte(e.yml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(testenv.Build(t, "github.com/rowgear/rowgear/cmd/binlogbridge"), "--file", yml, "--env", "test")
	cmd.Stderr = &stderr
	err = cmd.Run()
	t.Logf("binlogbridge stderr:\n%s", stderr.String())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("binlogbridge: %v, want exit status 1\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "1236"); n != 1 || strings.Contains(stderr.String(), ".go:") {
		t.Errorf("binlogbridge's stderr names ERROR 1236 %d times, want once, without stack traces:\n%s", n, stderr.String())
	}

	// The operator's recovery: forget the position, start at the end.
	saved, _, err := bridge.FileStore{Path: e.posFile}.Load(context.Background())
	if err != nil || saved.History == "" {
		t.Fatalf("the first history's position: %+v, %v", saved, err)
	}
	if err := os.Remove(e.posFile); err != nil {
		t.Fatal(err)
	}
	e.startBridge()
	write()
	evs := got.wait(t, 6, 60*time.Second)
	var positions []string
	for _, ev := range evs {
		if len(ev.ID) > events.MaxIDLen {
			t.Errorf("id %q is longer than %d bytes", ev.ID, events.MaxIDLen)
		}
		if !strings.HasPrefix(ev.ID, ev.Pos+":") {
			t.Errorf("id %q does not start with its position %q", ev.ID, ev.Pos)
		}
		positions = append(positions, ev.Pos)
	}
	// Both histories put their rows at the same positions: file:pos:row
	// alone would have given the new changes the old ones' ids.
	slices.Sort(positions)
	distinct := slices.Compact(slices.Clone(positions))
	if len(distinct) != 3 {
		t.Fatalf("positions %v: want each of 3 positions twice (same file:pos in both histories)", positions)
	}
	if n := got.distinct(); n != 6 {
		t.Fatalf("%d distinct events reached the handler, want 6", n)
	}
	// Per-row ordering compares seq: every event of the new history must
	// order after every event of the old one, though its positions are
	// the same.
	var oldMax, newMin string
	for _, ev := range evs {
		if strings.HasSuffix(ev.ID, "."+saved.History) {
			oldMax = max(oldMax, ev.Seq)
		} else if newMin == "" || ev.Seq < newMin {
			newMin = ev.Seq
		}
		if len(ev.Seq) > events.MaxSeqLen {
			t.Errorf("seq %q is longer than %d bytes", ev.Seq, events.MaxSeqLen)
		}
	}
	if oldMax == "" || newMin == "" || newMin <= oldMax {
		t.Fatalf("seq of the new history (from %q) does not order after the old one's (up to %q)", newMin, oldMax)
	}
}

// TestGearmandKill9WithQueuedJobs: the bridge publishes rows nobody works
// yet; gearmand, holding them, is killed (SIGKILL) and restarted, then a
// worker starts. With either queue type every row reaches the handler: the
// bridge's position waits for the workers' answers, and it sends again the
// jobs whose answer was lost with gearmand (foreground jobs are never in
// gearmand's persistent queue). Before end-to-end acknowledgement the
// memory queue lost all 300.
func TestGearmandKill9WithQueuedJobs(t *testing.T) {
	const n = 300
	for _, q := range []struct {
		name string
		args []string
	}{
		{"sqlite", []string{"--queue-type=libsqlite3", "--libsqlite3-db=" + t.TempDir() + "/queue.sqlite"}},
		{"memory", nil},
	} {
		t.Run(q.name, func(t *testing.T) {
			g := testenv.StartGearmand(t, q.args...)
			db, dsn := testenv.DB(t)
			e := newEnvOn(t, db, dsn, g.Addr, map[string]string{"Item": "items"})
			e.exec("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20))")
			r := e.startBridge()
			e.insertRows("items", 0, n, 10)
			fn := events.FuncName(e.ns, "Item", "insert")
			testenv.Eventually(t, 60*time.Second, "every row queued", func() bool { return queued(t, g.Addr, fn) == n })
			g.Kill()
			g.Start()
			got := e.collectOn(g.Addr, "Item")
			got.wait(t, n, 120*time.Second)
			testenv.Eventually(t, 60*time.Second, "every event handled", func() bool { return r.b.Stats().Handled >= n })
			st := r.b.Stats()
			t.Logf("%s queue: %d of %d rows handled after gearmand's SIGKILL; %d jobs resent", q.name, got.distinct(), n, st.Resent)
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
