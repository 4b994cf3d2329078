package console

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/metrics"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

func TestQuantile(t *testing.T) {
	// 100 observations: 50 ≤ 1, 40 in (1, 2], 10 in (2, 4].
	b := map[float64]float64{1: 50, 2: 90, 4: 100, math.Inf(1): 100}
	for q, want := range map[float64]float64{0.5: 1, 0.7: 1.5, 0.95: 3, 0.25: 0.5} {
		if got := quantile(b, q); math.Abs(got-want) > 1e-9 {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	if got := quantile(map[float64]float64{1: 0, math.Inf(1): 0}, 0.5); !math.IsNaN(got) {
		t.Errorf("no observations: %v, want NaN", got)
	}
}

// TestScrapeReadsWhatTheRegistryHas: the text format carries the +Inf
// bucket that a registry leaves implicit; both give the same totals.
func TestScrapeReadsWhatTheRegistryHas(t *testing.T) {
	reg := prometheus.NewRegistry()
	w, err := metrics.NewWorker(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := w.Middleware(func(ctx context.Context, job *gearman.Job) (any, error) { return nil, nil })
	for range 7 {
		h(context.Background(), &gearman.Job{Function: "ns.M.insert"})
	}
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: mCommitLatency, Buckets: []float64{0.001, 0.01, 0.1}}, []string{"source"})
	reg.MustRegister(hist)
	for _, v := range []float64{0.0005, 0.002, 0.003, 0.05, 7} {
		hist.WithLabelValues("binlog").Observe(v)
	}
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	now := time.Now()
	a, b := gather(reg, now), gather(Scrape(srv.URL), now)
	if !a.ok || !b.ok {
		t.Fatalf("gather: %v, scrape: %v", a.err, b.err)
	}
	if a.worker != 7 || b.worker != 7 {
		t.Errorf("worker runs: registry %v, scrape %v, want 7", a.worker, b.worker)
	}
	if fmt.Sprint(a.buckets) != fmt.Sprint(b.buckets) || a.buckets[math.Inf(1)] != 5 {
		t.Errorf("buckets: registry %v, scrape %v", a.buckets, b.buckets)
	}
	if got := quantile(b.buckets, 0.5); got <= 0.001 || got > 0.01 {
		t.Errorf("median %v, want in (0.001, 0.01]", got)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	defer gone.Close()
	if bad := gather(Scrape(gone.URL), now); bad.ok || bad.err == nil {
		t.Errorf("a 404 gathered: %+v", bad)
	}
}

func TestSamplerRates(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: mBridgeEvents}, []string{"table", "op"})
	reg.MustRegister(c)
	s := newSampler([]Source{{"r", reg}}, time.Second, 3*time.Second)
	t0 := time.Now()
	s.sample(t0)
	c.WithLabelValues("t", "insert").Add(20)
	s.sample(t0.Add(2 * time.Second))
	c.WithLabelValues("t", "insert").Add(5)
	s.sample(t0.Add(3 * time.Second))
	s.sample(t0.Add(4 * time.Second))
	ss := s.samples()
	if len(ss) != 3 { // the window keeps 3
		t.Fatalf("%d samples, want 3", len(ss))
	}
	if ss[0].BridgeRate != 10 || ss[1].BridgeRate != 5 || ss[2].BridgeRate != 0 || !math.IsNaN(ss[0].WorkerRate) {
		t.Errorf("rates %+v", ss)
	}
}

func TestAdviseNamesWhatToDo(t *testing.T) {
	for p, want := range map[string]string{
		"3 dead letter(s) of ns.M.update (see `dead list`)":                                    "/dead?function=ns.M.update",
		"trigger drift: tasks: trigger x missing (run `triggers generate`, then `migrate up`)": "triggers generate",
		"gearmand default (127.0.0.1:4730) unreachable: dial tcp: refused":                     "Start or restart that gearmand",
		"bridge lagging: 2m0s behind (threshold 1m0s); newest heartbeat read back is that old": "binlogbridge running",
		"bridge (server_id 1001): no saved position: sql: no rows":                             "has not saved a position",
		"database unreachable: dial tcp":                                                       "database.dsn",
	} {
		a := advise(p, "ns.M.update")
		if !strings.Contains(a.Do+a.Link, want) {
			t.Errorf("%q: %+v, want %q", p, a, want)
		}
	}
}

// newConsole serves a console over a fresh, migrated database.
func newConsole(t testing.TB, token string) (*httptest.Server, *sql.DB, *config.Config) {
	t.Helper()
	db, dsn := testenv.DB(t)
	if err := migrations.UpRowgear(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	ns := testenv.Name(t, "con")
	cfg, err := config.Parse("gearman.yml", []byte(fmt.Sprintf("all:\n  namespace: %s\n  server:\n    default: %s\n  database:\n    dsn: '%s'\n",
		ns, testenv.Gearman(t), dsn)), "prod")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := New(ctx, Options{Config: cfg, DB: db, Token: token, AllowedHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv, db, cfg
}

func post(t *testing.T, u string, form url.Values, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestActionsNeedTheTokenFromTheSameOrigin: every refusal, and the one
// way through.
func TestActionsNeedTheTokenFromTheSameOrigin(t *testing.T) {
	srv, db, _ := newConsole(t, "right-token")
	if _, err := db.Exec(`INSERT INTO rowgear_failed_jobs (state, function, job_key, attempts, errors, payload, due_at, updated_at)
		VALUES ('dead', 'ns.M.update', 'k1', 2, '[]', '{}', NOW(6), NOW(6) - INTERVAL 2 HOUR)`); err != nil {
		t.Fatal(err)
	}
	purge := url.Values{"older_than": {"1h"}}
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL}
	for name, c := range map[string]struct {
		form url.Values
		hdr  map[string]string
		code int
		want string
	}{
		"no token":         {purge, same, 403, "needs the console&#39;s token"},
		"wrong token":      {purge, map[string]string{"X-Console-Token": "wrong", "Sec-Fetch-Site": "same-origin"}, 403, "wrong token"},
		"cross-site":       {purge, map[string]string{"X-Console-Token": "right-token", "Sec-Fetch-Site": "cross-site"}, 403, "cross-origin"},
		"same-site":        {purge, map[string]string{"X-Console-Token": "right-token", "Sec-Fetch-Site": "same-site"}, 403, "cross-origin"},
		"foreign origin":   {purge, map[string]string{"X-Console-Token": "right-token", "Origin": "http://evil.example"}, 403, "cross-origin"},
		"rebinding host":   {purge, map[string]string{"X-Console-Token": "right-token", "Host": "evil.example"}, 421, "not this console"},
		"token in form ok": {url.Values{"older_than": {"1h"}, "token": {"right-token"}}, same, 200, "purged 1 dead letter(s) older than 1h0m0s"},
	} {
		code, body := post(t, srv.URL+"/dead/purge", c.form, c.hdr)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d %q", name, code, body, c.code, c.want)
		}
	}

	ro, _, _ := newConsole(t, "")
	if code, body := post(t, ro.URL+"/dead/purge", purge, map[string]string{"X-Console-Token": "anything"}); code != 403 || !strings.Contains(body, "read-only") {
		t.Errorf("read-only console: %d %s", code, body)
	}
	resp, err := http.Get(ro.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "read-only") || strings.Contains(string(b), "tcp(") {
		t.Errorf("read-only overview: %d, read-only badge and no DSN expected", resp.StatusCode)
	}
}
