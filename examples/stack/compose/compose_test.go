//go:build compose

package compose_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/internal/testenv"
)

// repo is the repository root, seen from this package's directory.
const repo = "../../.."

// stack is one docker-compose project of docker-compose.yml.
type stack struct {
	t       *testing.T
	project string
	env     []string
	mysql   string // host:port of MariaDB published on loopback
}

func newStack(t *testing.T) *stack {
	t.Helper()
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatalf("docker-compose is not installed (%v): in CI, .ci/run brings it up with ../shared/tools/container-engine; elsewhere install Docker and docker-compose", err)
	}
	project := os.Getenv("ROWGEAR_COMPOSE_PROJECT")
	if project == "" {
		project = "rowgear-e2e"
	}
	if err := dockerPing(); err != nil {
		t.Fatalf("no Docker API: %v (eval \"$(../shared/tools/container-engine up)\" starts one and exports DOCKER_HOST)", err)
	}
	s := &stack{t: t, project: project}
	s.env = append(os.Environ(),
		"COMPOSE_PROJECT_NAME="+project,
		"ROWGEAR_IMAGE_TAG="+project,
	)
	return s
}

// publishOn picks the loopback ports the stack publishes MariaDB and
// gearmand on: just before `up`, as a port picked before a build of
// minutes may be taken by then (seen in CI: "bind: address already in
// use").
func (s *stack) publishOn(t *testing.T) {
	mysqlPort, gearmanPort := testenv.FreePort(t), testenv.FreePort(t)
	s.mysql = fmt.Sprintf("127.0.0.1:%d", mysqlPort)
	s.env = append(s.env,
		fmt.Sprintf("ROWGEAR_MYSQL_PUBLISH=%d", mysqlPort),
		fmt.Sprintf("ROWGEAR_GEARMAN_PUBLISH=%d", gearmanPort),
	)
}

// compose runs docker-compose on the project and returns its output; a
// failure fails the test with that output.
func (s *stack) compose(timeout time.Duration, args ...string) string {
	s.t.Helper()
	out, err := s.try(timeout, args...)
	if err != nil {
		s.t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *stack) try(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"--ansi", "never", "--project-directory", repo, "-f", filepath.Join(repo, "docker-compose.yml"), "-p", s.project}, args...)
	cmd := exec.CommandContext(ctx, "docker-compose", full...)
	cmd.Env = s.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %s", ctx.Err(), timeout)
	}
	return out.String(), err
}

// logs is what a service's containers printed since they were created.
func (s *stack) logs(service string) string {
	s.t.Helper()
	return s.compose(2*time.Minute, "logs", "--no-color", service)
}

// bridgeLogs is what both bridges (binlog.ha: one active, one standing
// by) printed.
func (s *stack) bridgeLogs() string {
	return s.logs("binlogbridge") + s.logs("binlogbridge-standby")
}

// activeBridge is the bridge service whose last lease event is an
// acquisition ("" when neither's is).
func (s *stack) activeBridge() string {
	for _, svc := range []string{"binlogbridge", "binlogbridge-standby"} {
		l := s.logs(svc)
		if a := strings.LastIndex(l, "lease acquired"); a >= 0 && a > strings.LastIndex(l, "lease lost") &&
			a > strings.LastIndex(l, "binlog bridge stopped") {
			return svc
		}
	}
	return ""
}

// await polls cond once a second until it holds or timeout passes; what
// names the condition in the failure.
func await(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Second)
	}
}

// handledRe matches a handler's log line of the example application.
var handledRe = regexp.MustCompile(`msg=((Article|Comment)\.Trigger(?:Insert|Update|Delete)) id=(\d+)(.*)`)

// handled is, per handler (Article.TriggerInsert, …) and per model
// (Article, Comment), the row ids whose event dbworker handled, and how many
// Comment events said source=binlog.
type handled struct {
	ids           map[string]map[uint64]int
	commentBinlog int
}

func (s *stack) handled() handled {
	s.t.Helper()
	h := handled{ids: map[string]map[uint64]int{}}
	for _, m := range handledRe.FindAllStringSubmatch(s.logs("dbworker"), -1) {
		id, _ := strconv.ParseUint(m[3], 10, 64)
		for _, k := range []string{m[1], m[2]} {
			if h.ids[k] == nil {
				h.ids[k] = map[uint64]int{}
			}
			h.ids[k][id]++
		}
		if m[2] == "Comment" && strings.Contains(m[4], "source=binlog") {
			h.commentBinlog++
		}
	}
	return h
}

// missing is how many of ids key (a handler or a model) has not handled.
func (h handled) missing(key string, ids []uint64) int {
	n := 0
	for _, id := range ids {
		if h.ids[key][id] == 0 {
			n++
		}
	}
	return n
}

// awaitHandled waits until every row of w reached a handler of its model.
// Per-row ordering (package ordering, in dbworker) runs a row's newest
// event and skips an older one that comes after it: a row inserted then
// updated may show only its update.
func (s *stack) awaitHandled(w *written, timeout time.Duration) handled {
	s.t.Helper()
	var h handled
	arts, coms := w.snapshot()
	await(s.t, timeout, fmt.Sprintf("%d articles and %d comments handled", len(arts), len(coms)), func() bool {
		h = s.handled()
		return h.missing("Article", arts) == 0 && h.missing("Comment", coms) == 0
	})
	return h
}

// written is the ids of the rows a phase inserted.
type written struct {
	mu       sync.Mutex
	articles []uint64
	comments []uint64
}

func (w *written) snapshot() (articles, comments []uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]uint64(nil), w.articles...), append([]uint64(nil), w.comments...)
}

// write inserts an article (trigger source) and a comment on it (binlog
// source), and records their ids.
func (w *written) write(ctx context.Context, db *sql.DB, phase string, i int) error {
	r, err := db.ExecContext(ctx, "INSERT INTO articles (title, body) VALUES (?, ?)", fmt.Sprintf("%s %d", phase, i), "e2e")
	if err != nil {
		return fmt.Errorf("%s: insert article %d: %w", phase, i, err)
	}
	a, _ := r.LastInsertId()
	r, err = db.ExecContext(ctx, "INSERT INTO comments (article_id, author, body) VALUES (?, ?, ?)", a, phase, "e2e")
	if err != nil {
		return fmt.Errorf("%s: insert comment %d: %w", phase, i, err)
	}
	c, _ := r.LastInsertId()
	w.mu.Lock()
	w.articles = append(w.articles, uint64(a))
	w.comments = append(w.comments, uint64(c))
	w.mu.Unlock()
	return nil
}

func (w *written) writeN(t *testing.T, db *sql.DB, phase string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range n {
		if err := w.write(ctx, db, phase, i); err != nil {
			t.Fatal(err)
		}
	}
}

// writeParallel is writeN in sessions at once, each writing n/sessions
// rows.
func (w *written) writeParallel(t *testing.T, db *sql.DB, phase string, n, sessions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	errs := make(chan error, sessions)
	for k := range sessions {
		go func() {
			for i := k; i < n; i += sessions {
				if err := w.write(ctx, db, phase, i); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range sessions {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// bgWriter writes rows in the background (write, every 10 ms) until
// stopped.
type bgWriter struct {
	w       *written
	cancel  context.CancelFunc
	done    chan error
	refused atomic.Int64 // strict writes refused (SQLSTATE 45000, error 1644)
	first   atomic.Value // the first refusal's text
	slow    atomic.Int64 // the slowest write's duration, ns
}

func startWriter(db *sql.DB, phase string) *bgWriter {
	ctx, cancel := context.WithCancel(context.Background())
	bw := &bgWriter{w: &written{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			began := time.Now()
			err := bw.w.write(ctx, db, phase, i)
			if d := int64(time.Since(began)); d > bw.slow.Load() {
				bw.slow.Store(d)
			}
			var me *mysql.MySQLError
			switch {
			case errors.As(err, &me) && me.Number == 1644:
				bw.refused.Add(1)
				bw.first.CompareAndSwap(nil, err.Error())
			case err != nil && ctx.Err() == nil:
				bw.done <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		bw.done <- nil
	}()
	return bw
}

func (bw *bgWriter) rows() int { a, _ := bw.w.snapshot(); return len(a) }

// slowest is the longest a write (an article and its comment) took.
func (bw *bgWriter) slowest() time.Duration {
	return time.Duration(bw.slow.Load()).Round(time.Millisecond)
}

// stop ends the writer and returns what it wrote. A refused strict write
// (the trigger could queue its job on no gearmand) fails the test: a
// gearmand was up all along.
func (bw *bgWriter) stop(t *testing.T) *written {
	t.Helper()
	bw.cancel()
	if err := <-bw.done; err != nil {
		t.Fatalf("the writer failed: %v", err)
	}
	if n := bw.refused.Load(); n > 0 {
		t.Errorf("%d strict trigger writes were refused while a gearmand was up; the first: %v", n, bw.first.Load())
	}
	return bw.w
}

// TestComposeStack is the compose end-to-end test; see the package doc.
func TestComposeStack(t *testing.T) {
	s := newStack(t)
	// A stack left by an interrupted run of the same project goes first.
	s.compose(5*time.Minute, "down", "-v", "--remove-orphans")
	t.Cleanup(func() {
		if out, err := s.try(5*time.Minute, "down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("docker-compose down -v: %v\n%s", err, out)
		}
	})

	start := time.Now()
	s.compose(20*time.Minute, "build")
	t.Logf("images built in %s", time.Since(start).Round(time.Second))
	start = time.Now()
	s.publishOn(t)
	s.compose(10*time.Minute, "up", "-d")
	t.Logf("stack up in %s", time.Since(start).Round(time.Second))

	db, err := sql.Open("mysql", s.appDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	await(t, 2*time.Minute, "MariaDB reachable on "+s.mysql, func() bool { return db.Ping() == nil })
	s.awaitReady(t)

	s.phase(t, "demo", func(t *testing.T) {
		// A strict write refused by a gearmand still slow after its start
		// (seen once: GEARMAN_TIMEOUT on the demo's first insert, on a
		// loaded machine) is reported and the demo run again, twice at most.
		var out string
		for attempt := 1; ; attempt++ {
			var err error
			out, err = s.try(5*time.Minute, "--profile", "demo", "run", "--rm", "demo")
			if err == nil {
				break
			}
			if !strings.Contains(out, "Error 1644") || attempt == 3 {
				t.Fatalf("the demo writer failed: %v\n%s", err, out)
			}
			t.Logf("the demo writer's strict write was refused (attempt %d), running it again:\n%s", attempt, out)
		}
		if !strings.Contains(out, "buildFeed:") {
			t.Fatalf("the demo writer did not get to buildFeed:\n%s", out)
		}
		w := &written{}
		for _, m := range regexp.MustCompile(`inserted (article|comment) (\d+)`).FindAllStringSubmatch(out, -1) {
			id, _ := strconv.ParseUint(m[2], 10, 64)
			if m[1] == "article" {
				w.articles = append(w.articles, id)
			} else {
				w.comments = append(w.comments, id)
			}
		}
		if len(w.articles) != 2 || len(w.comments) != 2 {
			t.Fatalf("the demo writer inserted %d articles and %d comments, want 2 and 2:\n%s", len(w.articles), len(w.comments), out)
		}
		h := s.awaitHandled(w, 2*time.Minute)
		if h.commentBinlog == 0 {
			t.Errorf("no Comment handler line says source=binlog")
		}
		for _, want := range []string{"Article.TriggerUpdate", "Comment.TriggerUpdate", "Comment.TriggerDelete"} {
			await(t, time.Minute, want+" in dbworker's log", func() bool { return len(s.handled().ids[want]) > 0 })
		}
		if !strings.Contains(s.logs("dbworker"), "msg=Article.Publish") {
			t.Errorf("dbworker did not log the publish record job")
		}
	})

	s.phase(t, "restart bridge and worker", func(t *testing.T) {
		// A writer inserts rows all through the restart; each row's event
		// must reach its handler.
		bw := startWriter(db, "restart")
		await(t, time.Minute, "rows written before the restart", func() bool { return bw.rows() >= 20 })
		s.compose(3*time.Minute, "restart", "binlogbridge", "dbworker")
		s.awaitReady(t)
		before := bw.rows()
		await(t, time.Minute, "rows written after the restart", func() bool { return bw.rows() >= before+20 })
		w := bw.stop(t)
		arts, coms := w.snapshot()
		h := s.awaitHandled(w, 3*time.Minute)
		t.Logf("restart: %d articles and %d comments written, all handled (%d and %d handled more than once)",
			len(arts), len(coms), dups(h.ids["Article"], arts), dups(h.ids["Comment"], coms))
	})

	s.phase(t, "kill the active bridge", func(t *testing.T) {
		// binlog.ha: the standby takes over within the lease (3 s) plus its
		// start; every row written through the kill is handled.
		var active string
		await(t, 2*time.Minute, "one bridge active", func() bool { active = s.activeBridge(); return active != "" })
		other := map[string]string{"binlogbridge": "binlogbridge-standby", "binlogbridge-standby": "binlogbridge"}[active]
		await(t, 2*time.Minute, other+" standing by", func() bool { return strings.Contains(s.logs(other), "standing by") })
		before := strings.Count(s.logs(other), "lease acquired")
		bw := startWriter(db, "kill-bridge")
		await(t, time.Minute, "rows written before the kill", func() bool { return bw.rows() >= 30 })
		killed := time.Now()
		s.compose(time.Minute, "kill", active) // SIGKILL
		await(t, time.Minute, other+" to take the lease", func() bool {
			return strings.Count(s.logs(other), "lease acquired") > before
		})
		took := time.Since(killed)
		atTakeover := bw.rows()
		await(t, time.Minute, "rows written after the takeover", func() bool { return bw.rows() >= atTakeover+30 })
		w := bw.stop(t)
		arts, coms := w.snapshot()
		h := s.awaitHandled(w, 3*time.Minute)
		t.Logf("%s killed, %s active %s later (seen through `compose logs`, polled once a second): %d articles and %d comments written, all handled (%d comments more than once)",
			active, other, took.Round(time.Second), len(arts), len(coms), dups(h.ids["Comment"], coms))
		// The killed one comes back as the standby.
		s.compose(3*time.Minute, "start", active)
		await(t, 2*time.Minute, active+" standing by again", func() bool {
			l := s.logs(active)
			return strings.LastIndex(l, "standing by") > strings.LastIndex(l, "lease acquired")
		})
	})

	s.phase(t, "throughput", func(t *testing.T) {
		// The stack's own rate, as an operator would see it: the events of
		// rows written while dbworker was stopped (articles in the outbox,
		// comments in gearmand), drained from dbworker's start until its
		// handlers logged the last of them. A figure, not a check.
		const n = 3000
		s.compose(3*time.Minute, "stop", "dbworker")
		w := &written{}
		began := time.Now()
		w.writeParallel(t, db, "throughput", n, 4)
		wrote := time.Since(began)
		began = time.Now()
		s.compose(3*time.Minute, "start", "dbworker")
		s.awaitHandled(w, 5*time.Minute)
		took := time.Since(began)
		load, _ := os.ReadFile("/proc/loadavg")
		t.Logf("throughput: %d articles (outbox) and %d comments (binlog) written by 4 sessions in %s (%.0f rows/s); their %d events handled %s after dbworker's start (%.0f events/s, its start and the 1 s log polling included); load %s",
			n, n, wrote.Round(time.Millisecond), 2*n/wrote.Seconds(), 2*n, took.Round(time.Millisecond), 2*n/took.Seconds(), strings.Fields(string(load))[0])
	})

	s.phase(t, "kill the gearmands with events waiting", func(t *testing.T) {
		const n = 100
		s.compose(3*time.Minute, "stop", "dbworker")
		w := &written{}
		w.writeN(t, db, "queued", n)
		// The articles' events wait in the outbox (the relay runs in
		// dbworker), the comments' in gearmand-binlog's memory queue: the
		// bridge published them and waits for their answers.
		await(t, 3*time.Minute, fmt.Sprintf("the bridge's jobs of %d comment events queued in gearmand", n), func() bool {
			st := s.gearmanStatus()
			return st["rowgear.Comment.insert"].Total+st["rowgear.Comment.batch"].Total >= (n+composeBatch-1)/composeBatch
		})
		// SIGKILL: the memory queues lose every job they held.
		for _, g := range s.gearmands() {
			s.compose(time.Minute, "kill", g)
		}
		for _, g := range s.gearmands() {
			s.compose(3*time.Minute, "start", g)
		}
		s.compose(3*time.Minute, "start", "dbworker")
		s.awaitHandled(w, 5*time.Minute)
		t.Logf("every gearmand killed with %d comment events queued and %d article events in the outbox: all handled after their restart (the outbox relayed, the bridge sent again what was lost)", n, n)

		// The pipeline runs on after the kill: the relay and the bridge
		// reconnect to the new gearmands; the doorbell never waits, so no
		// write is refused or held.
		after := &written{}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for i := 0; i < 20; i++ {
			if err := after.write(ctx, db, "after-kill", i); err != nil {
				t.Fatalf("write %d after the gearmand restart: %v", i, err)
			}
		}
		s.awaitHandled(after, 3*time.Minute)
		t.Logf("after the gearmand restart: 20 articles and 20 comments written, none refused, all handled")
	})

	s.phase(t, "kill one of two gearmands under load", func(t *testing.T) {
		if !slices.Contains(s.gearmands(), "gearmand-binlog") {
			t.Fatalf("docker-compose.yml has no gearmand-binlog (gearmands: %v)", s.gearmands())
		}
		// gearmand-binlog is the bridge's server, gearmand the UDF's first:
		// with either one down, no strict write may be refused (the UDF
		// moves to the other within the write's deadline), and every
		// committed row is handled.
		s.killUnderLoad(t, db, "gearmand-binlog", true)
		s.killUnderLoad(t, db, "gearmand", false)
	})

	s.phase(t, "down -v", func(t *testing.T) {
		s.compose(5*time.Minute, "down", "-v", "--remove-orphans")
		for _, kind := range []string{"containers", "networks", "volumes"} {
			left, err := dockerList(kind, s.project)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) > 0 {
				t.Errorf("after down -v, %s of project %s remain: %v", kind, s.project, left)
			}
		}
	})
}

// phase runs one step of the test; when it fails, the services' logs are
// shown before the next step changes the stack, and the test stops.
func (s *stack) phase(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	parent := s.t
	ok := t.Run(name, func(t *testing.T) {
		s.t = t // the stack's helpers fail the phase, from its goroutine
		defer func() { s.t = parent }()
		f(t)
	})
	if ok {
		return
	}
	out, _ := s.try(time.Minute, "ps")
	t.Logf("docker-compose ps:\n%s", out)
	out, _ = s.try(time.Minute, "logs", "--no-color", "--tail=40")
	t.Logf("last lines of every service:\n%s", out)
	t.FailNow()
}

// killUnderLoad kills svc (SIGKILL) while a writer inserts, starts it 200
// rows later, and checks that every row written reached its handler and
// that dbworker (and binlogbridge, when it is the bridge's server) logged
// svc down and back. A refused strict write fails the test.
func (s *stack) killUnderLoad(t *testing.T, db *sql.DB, svc string, bridges bool) {
	t.Helper()
	bw := startWriter(db, "kill-"+svc)
	await(t, time.Minute, "50 rows written before the kill", func() bool { return bw.rows() >= 50 })
	s.compose(time.Minute, "kill", svc) // SIGKILL
	atKill := bw.rows()
	await(t, 2*time.Minute, "200 rows written with "+svc+" down", func() bool { return bw.rows() >= atKill+200 })
	s.compose(3*time.Minute, "start", svc)
	atStart := bw.rows()
	await(t, 2*time.Minute, "100 rows written after the restart", func() bool { return bw.rows() >= atStart+100 })
	w := bw.stop(t)
	arts, coms := w.snapshot()
	h := s.awaitHandled(w, 5*time.Minute)
	t.Logf("%s killed after %d rows, back after %d, %d in all: every article and comment handled (%d and %d more than once); slowest write %s",
		svc, atKill, atStart, len(arts), dups(h.ids["Article"], arts), dups(h.ids["Comment"], coms), bw.slowest())
	// The logs say which server went down, and when it was back.
	await(t, time.Minute, "dbworker to log its reconnection to "+svc, func() bool {
		return strings.Contains(s.logs("dbworker"), `msg="gearman worker connected again" server=`+svc+`:4730`)
	})
	if bridges {
		await(t, time.Minute, "the active bridge to log "+svc+" down and up again", func() bool {
			l := s.bridgeLogs()
			return strings.Contains(l, `msg="gearman server down" server=`+svc+`:4730`) &&
				strings.Contains(l, `msg="gearman server up" server=`+svc+`:4730`)
		})
	}
}

// awaitReady waits until dbworker took the row-event functions in gearmand
// and binlogbridge streams the binlog.
func (s *stack) awaitReady(t *testing.T) {
	t.Helper()
	await(t, 3*time.Minute, "dbworker registered with gearmand", func() bool {
		st := s.gearmanStatus()
		return st["rowgear.Article.insert"].Available > 0 && st["rowgear.Comment.insert"].Available > 0
	})
	await(t, 3*time.Minute, "a bridge streaming", func() bool {
		l := s.bridgeLogs()
		return strings.Count(l, "binlog bridge starting") > strings.Count(l, "binlog bridge stopped")
	})
}

// composeBatch is binlog.batch of models/config/gearman.yml: the
// most Comment events the bridge puts in one job.
const composeBatch = 100

// gearmands are the stack's gearmand services (gearmand, and others whose
// name starts so).
func (s *stack) gearmands() []string {
	s.t.Helper()
	var out []string
	for _, svc := range strings.Fields(s.compose(time.Minute, "config", "--services")) {
		if strings.HasPrefix(svc, "gearmand") {
			out = append(out, svc)
		}
	}
	return out
}

// gearmanStatus is the admin status of every running gearmand of the
// stack, summed per function (gearadmin inside each container: no port
// needs publishing). A gearmand that does not answer counts as empty.
func (s *stack) gearmanStatus() map[string]testenv.FuncStatus {
	s.t.Helper()
	sum := map[string]testenv.FuncStatus{}
	for _, svc := range s.gearmands() {
		out, err := s.try(time.Minute, "exec", "-T", svc, "gearadmin", "--status", "-h", "127.0.0.1", "-p", "4730")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(out, "\n") {
			f := strings.Split(strings.TrimSpace(l), "\t")
			if len(f) != 4 {
				continue
			}
			st := sum[f[0]]
			var total, running, avail int
			fmt.Sscan(f[1], &total)
			fmt.Sscan(f[2], &running)
			fmt.Sscan(f[3], &avail)
			st.Function = f[0]
			st.Total += total
			st.Running += running
			st.Available += avail
			sum[f[0]] = st
		}
	}
	return sum
}

// appDSN is the DSN of the account the application writes with: the
// stack's generated app account when its password file exists in the
// mariadb container, else the single rowgear account (ROWGEAR_DB_PASSWORD,
// default rowgear).
func (s *stack) appDSN() string {
	s.t.Helper()
	if out, err := s.try(time.Minute, "exec", "-T", "mariadb", "cat", "/run/rowgear-secrets/app/password"); err == nil {
		if pw := strings.TrimSpace(out); pw != "" && !strings.Contains(pw, "\n") {
			return fmt.Sprintf("rowgear_app:%s@tcp(%s)/rowgear", pw, s.mysql)
		}
	}
	pw := os.Getenv("ROWGEAR_DB_PASSWORD")
	if pw == "" {
		pw = "rowgear"
	}
	return fmt.Sprintf("rowgear:%s@tcp(%s)/rowgear", pw, s.mysql)
}

func dups(seen map[uint64]int, ids []uint64) int {
	n := 0
	for _, id := range ids {
		if seen[id] > 1 {
			n++
		}
	}
	return n
}

// docker is an HTTP client of the Docker API at DOCKER_HOST (default the
// usual unix socket); the test needs no docker CLI.
func docker() (*http.Client, string, error) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, "", fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	switch u.Scheme {
	case "unix":
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", u.Path)
			},
		}}, "http://docker", nil
	case "tcp", "http":
		return &http.Client{Timeout: 30 * time.Second}, "http://" + u.Host, nil
	}
	return nil, "", fmt.Errorf("DOCKER_HOST %q: only unix:// and tcp:// are supported", host)
}

func dockerGet(path string, v any) error {
	c, base, err := docker()
	if err != nil {
		return err
	}
	resp, err := c.Get(base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if v == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func dockerPing() error { return dockerGet("/_ping", nil) }

// dockerList names the containers, networks or volumes labelled with the
// compose project.
func dockerList(kind, project string) ([]string, error) {
	f, _ := json.Marshal(map[string][]string{"label": {"com.docker.compose.project=" + project}})
	q := "?filters=" + url.QueryEscape(string(f))
	var names []string
	switch kind {
	case "containers":
		var cs []struct{ Names []string }
		if err := dockerGet("/containers/json"+q+"&all=1", &cs); err != nil {
			return nil, err
		}
		for _, c := range cs {
			names = append(names, strings.Join(c.Names, ","))
		}
	case "networks":
		var ns []struct{ Name string }
		if err := dockerGet("/networks"+q, &ns); err != nil {
			return nil, err
		}
		for _, n := range ns {
			names = append(names, n.Name)
		}
	case "volumes":
		var vs struct{ Volumes []struct{ Name string } }
		if err := dockerGet("/volumes"+q, &vs); err != nil {
			return nil, err
		}
		for _, v := range vs.Volumes {
			names = append(names, v.Name)
		}
	}
	return names, nil
}
