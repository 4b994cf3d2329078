package observe_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/latency"
	"github.com/rowgear/rowgear/internal/observe"
	"github.com/rowgear/rowgear/internal/retryguard"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

// Item is the test model: inserts succeed, updates always fail.
type Item struct {
	dispatch.Record
	ID int64 `db:"id,pk"`
	N  int64 `db:"n"`
}

var inserts atomic.Int64

func (it *Item) TriggerInsert(context.Context) error { inserts.Add(1); return nil }
func (it *Item) TriggerUpdate(context.Context, []string) error {
	return errors.New("update handler always fails")
}

// scrape returns the samples of url's metrics by "name{labels}".
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range vec {
			m := s.Metric.Clone()
			delete(m, model.MetricNameLabel)
			key := string(s.Metric[model.MetricNameLabel])
			if key == "" {
				key = name
			}
			if len(m) > 0 {
				key += m.String()
			}
			out[key] = float64(s.Value)
		}
	}
	return out
}

// bPos is the server's current binlog position, FILE:POS.
func bPos(t *testing.T, db *sql.DB) string {
	t.Helper()
	var f, a, b string
	var p int64
	if err := db.QueryRow("SHOW BINLOG STATUS").Scan(&f, &p, &a, &b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s:%d", f, p)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// itemsEnv is a fresh database with rowgear's tables and a table items,
// and a config publishing model Item from the binlog to gearmand gm.
func itemsEnv(t *testing.T, gm string) (*sql.DB, *config.Config, string) {
	t.Helper()
	db, dsn := testenv.DB(t)
	if err := migrations.UpRowgear(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE items (id BIGINT PRIMARY KEY, n INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	ns := testenv.Name(t, "ns")
	yml := fmt.Sprintf(`all:
  namespace: %s
  server: {default: %s}
  models:
    Item: {table: items, source: binlog, events: [insert, update]}
  database: {dsn: '%s'}
  binlog: {server_id: %d, position: 'file:%s'}
  retry:
    Item.update: {attempts: 3, backoff: 10ms, max_backoff: 20ms}
`, ns, gm, dsn, 100000+rand.IntN(1<<30), filepath.Join(t.TempDir(), "pos.json"))
	cfg, err := config.Parse("test.yml", []byte(yml), "")
	if err != nil {
		t.Fatal(err)
	}
	return db, cfg, ns
}

// TestMetricsMoveByTheRightAmounts runs bridge → gearmand → worker with
// metrics, health and latency on, and scrapes /metrics: N inserts are N
// events published and N jobs done, each with a commit→handler latency;
// an always-failing update of a 3-attempt policy counts failed 3,
// retried 2, dead-lettered 1.
func TestMetricsMoveByTheRightAmounts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gm := testenv.Gearman(t)
	db, cfg, ns := itemsEnv(t, gm)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.Default()
	}

	// The bridge, with its metrics and health.
	ob, err := observe.NewBridge()
	if err != nil {
		t.Fatal(err)
	}
	br, err := bridge.New(ctx, cfg, bridge.WithLogger(log), bridge.WithObserver(ob.Metrics),
		bridge.WithHeartbeat(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	bAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if err := ob.Start(ctx, observe.Flags{MetricsAddr: bAddr, HealthAddr: bAddr}, br, log); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, "http://"+bAddr+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("bridge /readyz before Run: %d %s, want 503", code, body)
	}
	bctx, stopBridge := context.WithCancel(ctx)
	bdone := make(chan error, 1)
	go func() { bdone <- br.Run(bctx) }()
	defer func() { stopBridge(); <-bdone }()

	// The worker, mounted as the worker command does.
	servers := []string{gm}
	ow, err := observe.NewWorker(servers, db, latency.WithResolveInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	reg := dispatch.NewRegistry()
	if err := dispatch.Register[Item](reg, "Item"); err != nil {
		t.Fatal(err)
	}
	w := gearman.NewWorker(servers, append(ow.WorkerOptions(), gearman.WithLogger(log), gearman.WithConcurrency(2))...)
	client := gearman.NewClient(servers)
	defer client.Close()
	guard := retryguard.NewGuard(retryguard.NewStore(db), client, cfg.RetryFor,
		append(ow.RetryOptions(), retryguard.WithLogger(log), retryguard.WithPollInterval(20*time.Millisecond))...)
	// As the worker command does: the observation outermost, then the guard.
	reg.Use(ow.Middleware, guard.Middleware, ow.HandlerStart)
	if _, err := reg.Mount(w, cfg, "", db); err != nil {
		t.Fatal(err)
	}
	wAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	hAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if err := ow.Start(ctx, observe.Flags{MetricsAddr: wAddr, HealthAddr: hAddr}, log); err != nil {
		t.Fatal(err)
	}
	go guard.Run(ctx)
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(ctx) }()

	testenv.Eventually(t, 60*time.Second, "worker and bridge ready", func() bool {
		c1, _ := get(t, "http://"+hAddr+"/readyz")
		c2, _ := get(t, "http://"+bAddr+"/readyz")
		return c1 == 200 && c2 == 200
	})
	if code, _ := get(t, "http://"+hAddr+"/healthz"); code != 200 {
		t.Errorf("worker /healthz: %d", code)
	}

	const n = 25
	for i := range n {
		if _, err := db.Exec("INSERT INTO items VALUES (?, 0)", i); err != nil {
			t.Fatal(err)
		}
	}
	insertFn, updateFn := ns+".Item.insert", ns+".Item.update"
	wm := func() map[string]float64 { return scrape(t, "http://"+wAddr+"/metrics") }
	bm := func() map[string]float64 { return scrape(t, "http://"+bAddr+"/metrics") }
	done := fmt.Sprintf(`rowgear_worker_jobs_total{function=%q, outcome="done"}`, insertFn)
	lat := `rowgear_commit_to_handler_seconds_count{source="binlog"}`
	conns := fmt.Sprintf(`rowgear_worker_gearmand_connections{server=%q}`, gm)
	// Everything asserted below, waited for: each metric moves at its own
	// moment (the second connection may come up after the first jobs ran).
	testenv.Eventually(t, 60*time.Second, "n inserts done, their latency resolved and 2 connections up", func() bool {
		m := wm()
		return m[done] >= n && m[lat] >= n && m[conns] >= 2
	})
	m := wm()
	if m[done] != n || m[lat] != n {
		t.Errorf("done %v, latency samples %v, want %d each", m[done], m[lat], n)
	}
	if got := inserts.Load(); got != n {
		t.Errorf("handler ran %d times, want %d", got, n)
	}
	if s := m[`rowgear_commit_to_handler_seconds_sum{source="binlog"}`]; s <= 0 || s/n > 5 {
		t.Errorf("mean commit→handler latency %.4fs: want > 0 and < 5s", s/n)
	}
	if c := m[conns]; c != 2 {
		t.Errorf("connections up %v, want 2 (--concurrency 2)", c)
	}
	// The bridge counts an event, then times it: wait for both.
	published, durations := `rowgear_bridge_events_published_total{op="insert", table="items"}`, `rowgear_bridge_publish_duration_seconds_count`
	testenv.Eventually(t, 60*time.Second, "bridge counts and times n published", func() bool {
		b := bm()
		return b[published] >= n && b[durations] >= n
	})
	if b := bm(); b[published] != n || b[durations] != n {
		t.Errorf("published %v, publish duration samples %v, want %d each", b[published], b[durations], n)
	}
	testenv.Eventually(t, 60*time.Second, "the bridge's lag and distance to the server's end known", func() bool {
		b := bm()
		return b[`rowgear_bridge_lag_seconds`] >= 0 && b[`rowgear_bridge_behind_bytes`] >= 0 && b[`rowgear_bridge_position{file="`+
			strings.Split(bPos(t, db), ":")[0]+`"}`] > 0
	})

	// One update: its handler fails every run of its 3 attempts.
	if _, err := db.Exec("UPDATE items SET n = 1 WHERE id = 0"); err != nil {
		t.Fatal(err)
	}
	key := func(outcome string) string {
		return fmt.Sprintf(`rowgear_worker_jobs_total{function=%q, outcome=%q}`, updateFn, outcome)
	}
	durKey := fmt.Sprintf(`rowgear_worker_handler_duration_seconds_count{function=%q}`, updateFn)
	// The guard counts the dead letter before the middleware around it
	// counts the third failed run and its duration: wait for all of them.
	testenv.Eventually(t, 60*time.Second, "the update to be dead-lettered after 3 failed runs", func() bool {
		m := wm()
		return m[key("dead_lettered")] >= 1 && m[key("failed")] >= 3 && m[key("retried")] >= 2 && m[durKey] >= 3
	})
	m = wm()
	for outcome, want := range map[string]float64{"failed": 3, "retried": 2, "dead_lettered": 1, "done": 0} {
		if m[key(outcome)] != want {
			t.Errorf("%s: %v, want %v", key(outcome), m[key(outcome)], want)
		}
	}
	if c := m[durKey]; c != 3 {
		t.Errorf("update duration samples %v, want 3", c)
	}
	var dead int
	db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead'").Scan(&dead)
	if dead != 1 {
		t.Errorf("%d dead letters in the table, want 1", dead)
	}

	cancel()
	<-wdone
}

// TestWorkerReadinessFollowsGearmand: /readyz fails naming the gearmand the
// worker lost (kill -9), and passes again once it is back.
func TestWorkerReadinessFollowsGearmand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := testenv.StartGearmand(t)
	servers := []string{g.Addr}
	ow, err := observe.NewWorker(servers, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := gearman.NewWorker(servers, append(ow.WorkerOptions(), gearman.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))...)
	w.Register("noop", ow.Middleware(func(context.Context, *gearman.Job) (any, error) { return nil, nil }))
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if err := ow.Start(ctx, observe.Flags{MetricsAddr: addr, HealthAddr: addr}, slog.Default()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	ready := func() (int, string) { return get(t, "http://"+addr+"/readyz") }
	testenv.Eventually(t, 60*time.Second, "ready", func() bool { c, _ := ready(); return c == 200 })
	g.Kill()
	testenv.Eventually(t, 60*time.Second, "not ready once gearmand is gone", func() bool {
		c, body := ready()
		return c == 503 && strings.Contains(body, "no connection to gearmand "+g.Addr)
	})
	g.Start()
	testenv.Eventually(t, 60*time.Second, "ready again", func() bool { c, _ := ready(); return c == 200 })
	m := scrape(t, "http://"+addr+"/metrics")
	if r := m[fmt.Sprintf(`rowgear_worker_gearmand_reconnects_total{server=%q}`, g.Addr)]; r < 1 {
		t.Errorf("reconnects %v, want ≥ 1", r)
	}
}

// TestBridgeReadinessFollowsGearmand: the bridge's /readyz fails naming
// gearmand while its submits fail, and passes again once gearmand is back.
func TestBridgeReadinessFollowsGearmand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := testenv.StartGearmand(t)
	db, cfg, _ := itemsEnv(t, g.Addr)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ob, err := observe.NewBridge()
	if err != nil {
		t.Fatal(err)
	}
	br, err := bridge.New(ctx, cfg, bridge.WithLogger(log), bridge.WithObserver(ob.Metrics), bridge.WithHeartbeat(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if err := ob.Start(ctx, observe.Flags{HealthAddr: addr}, br, log); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	defer func() { cancel(); <-done }()
	ready := func() (int, string) { return get(t, "http://"+addr+"/readyz") }
	testenv.Eventually(t, 60*time.Second, "ready", func() bool { c, _ := ready(); return c == 200 })
	g.Kill()
	if _, err := db.Exec("INSERT INTO items VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "not ready while submits fail", func() bool {
		c, body := ready()
		return c == 503 && strings.Contains(body, "bridge: gearmand: submits are failing")
	})
	g.Start()
	testenv.Eventually(t, 60*time.Second, "ready again", func() bool { c, _ := ready(); return c == 200 })
}
