package bridge_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"

	gomysql "github.com/go-sql-driver/mysql"
)

// env is one test's world: a database, a gearman namespace, a config.
type env struct {
	t       *testing.T
	db      *sql.DB
	dsn     string
	gearman string
	ns      string
	posFile string
	yml     string
}

// newEnv uses the shared MariaDB and gearmand; models maps a model name to
// its table (source: binlog, all events).
func newEnv(t *testing.T, models map[string]string) *env {
	db, dsn := testenv.DB(t)
	return newEnvOn(t, db, dsn, testenv.Gearman(t), models)
}

func newEnvOn(t *testing.T, db *sql.DB, dsn, gm string, models map[string]string) *env {
	// rowgear's tables, the position table among them (not the UDF: a
	// private server may not have its library).
	if err := migrations.UpTo(context.Background(), db, migrations.Rowgear(), 20); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, dsn: dsn, gearman: gm, ns: testenv.Name(t, "ns"),
		posFile: filepath.Join(t.TempDir(), "position.json")}
	e.yml = fmt.Sprintf("all:\n  namespace: %s\n  server:\n    default: %s\n  models:\n", e.ns, gm)
	for m, table := range models {
		e.yml += fmt.Sprintf("    %s: {table: %s, source: binlog}\n", m, table)
	}
	// A server id of its own: the server drops a replica connection when
	// another one registers with the same id.
	e.yml += fmt.Sprintf("  database:\n    dsn: '%s'\n  binlog:\n    server_id: %d\n    position: file:%s\n    stats_interval: 1s\n",
		dsn, 100000+rand.IntN(1<<30), e.posFile)
	return e
}

func (e *env) config() *config.Config {
	e.t.Helper()
	cfg, err := config.Parse("test.yml", []byte(e.yml), "")
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

func (e *env) exec(q string, args ...any) sql.Result {
	e.t.Helper()
	r, err := e.db.Exec(q, args...)
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return r
}

// running is a bridge running in the test process.
type running struct {
	b    *bridge.Bridge
	stop func() error
}

// startBridge runs a bridge and waits until it has fixed its start
// position (so every later write is published).
func (e *env) startBridge(opts ...bridge.Option) *running {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts = append([]bridge.Option{bridge.WithLogger(testLogger(e.t))}, opts...)
	b, err := bridge.New(ctx, e.config(), opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(60 * time.Second):
				runErr = fmt.Errorf("bridge did not stop")
			}
			b.Close()
		})
		return runErr
	}
	e.t.Cleanup(func() { stop() })
	testenv.Eventually(e.t, 60*time.Second, "the bridge to fix its start position", func() bool {
		select {
		case err := <-done:
			e.t.Fatalf("bridge stopped: %v", err)
		default:
		}
		return e.positionSaved()
	})
	return &running{b: b, stop: stop}
}

// positionSaved reports whether the bridge saved a position: in e.posFile,
// or, with the position in the database, in its row.
func (e *env) positionSaved() bool {
	if !strings.Contains(e.yml, "position: file:") {
		var n int
		err := e.db.QueryRow("SELECT COUNT(*) FROM "+bridge.PositionTable+" WHERE server_id = ?", e.config().Binlog.ServerID).Scan(&n)
		return err == nil && n == 1
	}
	_, err := os.Stat(e.posFile)
	return err == nil
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// collector is a raw gearman worker that decodes and keeps every envelope
// of the given model functions.
type collector struct {
	mu    sync.Mutex
	all   []*events.Envelope
	byID  map[string]*events.Envelope
	count int
}

func (e *env) collect(models ...string) *collector {
	return e.collectOn(e.gearman, models...)
}

func (e *env) collectOn(addr string, models ...string) *collector {
	e.t.Helper()
	return e.collectOnServers([]string{addr}, models...)
}

// collectOnServers collects from every one of servers.
func (e *env) collectOnServers(servers []string, models ...string) *collector {
	e.t.Helper()
	c := &collector{byID: map[string]*events.Envelope{}}
	w := gearman.NewWorker(servers, gearman.WithConcurrency(8), gearman.WithLogger(slog.New(slog.DiscardHandler)))
	for _, m := range models {
		for _, op := range []string{"insert", "update", "delete", "snapshot"} {
			w.Register(events.FuncName(e.ns, m, op), func(_ context.Context, j *gearman.Job) (any, error) {
				env, err := events.Decode(j.Workload)
				if err != nil {
					e.t.Errorf("undecodable payload %q: %v", j.Workload, err)
					return nil, err
				}
				if env.ID != j.Unique {
					e.t.Errorf("unique key %q != event id %q", j.Unique, env.ID)
				}
				c.mu.Lock()
				c.all = append(c.all, env)
				c.byID[env.ID] = env
				c.count++
				c.mu.Unlock()
				return nil, nil
			})
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return c
}

// recorder is a middleware that keeps every envelope in a collector and
// passes the job on.
func (e *env) recorder() (*collector, dispatch.Middleware) {
	c := &collector{byID: map[string]*events.Envelope{}}
	return c, func(next gearman.Handler) gearman.Handler {
		return func(ctx context.Context, j *gearman.Job) (any, error) {
			if env, err := events.Decode(j.Workload); err == nil {
				c.mu.Lock()
				c.all = append(c.all, env)
				c.byID[env.ID] = env
				c.count++
				c.mu.Unlock()
			}
			return next(ctx, j)
		}
	}
}

// distinct is the number of distinct event ids received.
func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

func (c *collector) received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// events returns the envelopes received so far, in arrival order.
func (c *collector) events() []*events.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*events.Envelope(nil), c.all...)
}

// wait waits until n distinct events arrived and returns them in arrival
// order (duplicates dropped).
func (c *collector) wait(t *testing.T, n int, timeout time.Duration) []*events.Envelope {
	t.Helper()
	testenv.Eventually(t, timeout, fmt.Sprintf("%d distinct events", n), func() bool { return c.distinct() >= n })
	seen := map[string]bool{}
	var out []*events.Envelope
	for _, e := range c.events() {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

func bridgeConcurrency(n int) bridge.Option { return bridge.WithConcurrency(n) }

// dbName is the test database's name.
func (e *env) dbName() string {
	cfg, err := gomysql.ParseDSN(e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg.DBName
}
