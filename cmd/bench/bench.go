package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/internal/benchutil"
	"github.com/rowgear/rowgear/internal/latency"
	"github.com/rowgear/rowgear/migrations"
)

// bench is the state of one run.
type bench struct {
	rows    int
	bigRows int // section 7's transaction
	maxTime time.Duration
	verbose bool
	log     *slog.Logger
	machine machine

	dir    string  // temp dir: gearmand logs and queues, journals
	dsn    string  // DSN of the fresh database (UTC session)
	dbName string  // its name
	rootDB *sql.DB // no database
	db     *sql.DB
	gms    []*benchutil.Server

	figs       []*figure
	ceilings   map[string]float64 // section 1 figures by key, for later sections
	payload    []byte             // a representative envelope (section 1 and 4)
	latency    *latency.Tracker   // commit → handler, while end-to-end sections run
	snapRows   int                // rows of section 8's table
	snapBefore time.Duration      // section 8's writer measure before the snapshot
	snapRate   int                // section 8's pace, rows/s (0: unpaced)
	snapChunk  int                // section 8's chunk size
	batch      int                // section 3's binlog.batch
	batchConns int                // section 3's binlog.concurrency with batches
}

func newBench(ctx context.Context, rows int, maxTime time.Duration, verbose bool) (*bench, error) {
	b := &bench{rows: rows, maxTime: maxTime, verbose: verbose, log: discard(verbose),
		machine: thisMachine(), ceilings: map[string]float64{}}
	raw := os.Getenv("ROWGEAR_MYSQL_DSN")
	if raw == "" {
		return nil, fmt.Errorf("ROWGEAR_MYSQL_DSN is not set: run `eval \"$(scripts/services start)\"` first, or `make bench`")
	}
	cfg, err := mysql.ParseDSN(raw)
	if err != nil {
		return nil, fmt.Errorf("ROWGEAR_MYSQL_DSN: %w", err)
	}
	if b.rootDB, err = sql.Open("mysql", cfg.FormatDSN()); err != nil {
		return nil, err
	}
	if err := b.rootDB.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("mariadb at %s: %w (start it with `eval \"$(scripts/services start)\"`)", cfg.Addr, err)
	}
	var id [4]byte
	rand.Read(id[:])
	b.dbName = "rowgear_bench_" + hex.EncodeToString(id[:])
	if _, err := b.rootDB.ExecContext(ctx, "CREATE DATABASE `"+b.dbName+"` CHARACTER SET utf8mb4"); err != nil {
		return nil, err
	}
	cfg.DBName = b.dbName
	cfg.ParseTime = false
	cfg.Params = map[string]string{"time_zone": "'+00:00'"} // NOW(6) in UTC
	b.dsn = cfg.FormatDSN()
	if b.db, err = sql.Open("mysql", b.dsn); err != nil {
		b.close()
		return nil, err
	}
	b.db.SetMaxIdleConns(16)
	// The retry guard's tables and the UDF's functions, as dbworker has them.
	if err := migrations.UpRowgear(ctx, b.db); err != nil {
		b.close()
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if b.dir, err = os.MkdirTemp("", "rowgear-bench-"); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	for _, g := range b.gms {
		g.Stop()
	}
	if b.db != nil {
		b.db.Close()
	}
	if b.rootDB != nil {
		b.rootDB.Exec("DROP DATABASE IF EXISTS `" + b.dbName + "`")
		b.rootDB.Close()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// gearmand starts a private gearmand; queue is "memory", "sqlite" (the
// durable queue the stack uses: a write per job, no
// --store-queue-on-shutdown), "mysql" (a table in the bench database) or
// "redis" (a private redis-server with an append-only file synced every
// second).
func (b *bench) gearmand(queue string) (*benchutil.Server, error) {
	dir, err := os.MkdirTemp(b.dir, "gearmand-"+queue+"-")
	if err != nil {
		return nil, err
	}
	var extra []string
	switch queue {
	case "memory":
	case "sqlite":
		extra = []string{"-q", "libsqlite3", "--libsqlite3-db=" + filepath.Join(dir, "queue.sqlite")}
	case "mysql":
		cfg, _ := mysql.ParseDSN(b.dsn)
		host, port, _ := splitHostPort(cfg.Addr)
		extra = []string{"-q", "MySQL", "--mysql-host=" + host, "--mysql-port=" + port,
			"--mysql-user=" + cfg.User, "--mysql-db=" + b.dbName, "--mysql-table=gearman_queue_" + filepath.Base(dir)[len("gearmand-mysql-"):]}
		if cfg.Passwd != "" {
			extra = append(extra, "--mysql-password="+cfg.Passwd)
		}
	case "redis":
		r, err := benchutil.StartRedis(filepath.Join(dir, "redis"))
		if err != nil {
			return nil, err
		}
		b.gms = append(b.gms, r)
		host, port, _ := splitHostPort(r.Addr)
		extra = []string{"-q", "redis", "--redis-server=" + host, "--redis-port=" + port}
	default:
		return nil, fmt.Errorf("unknown queue %q", queue)
	}
	g, err := benchutil.StartGearmand(dir, extra...)
	if err != nil {
		return nil, err
	}
	b.gms = append(b.gms, g)
	return g, nil
}

// stopGearmand stops g now (its queue is no longer needed).
func (b *bench) stopGearmand(g *benchutil.Server) {
	g.Stop()
}

func splitHostPort(addr string) (string, string, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], nil
		}
	}
	return addr, "3306", nil
}

// waitFor polls cond every 2 ms until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// measureLatency runs a commit → handler latency tracker (package latency:
// the measure dbworker exports as rowgear_commit_to_handler_seconds) whose
// samples go to the current recorder; workers built by itemWorker until
// stop is called note their handler starts in it.
func (b *bench) measureLatency(ctx context.Context) (stop func(), err error) {
	t, err := latency.New(b.db, latency.WithSample(func(_ string, d time.Duration) { rec.Load().sample(d) }))
	if err != nil {
		return nil, err
	}
	b.latency = t
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); t.Run(rctx) }()
	return func() { cancel(); <-done; b.latency = nil }, nil
}

// awaitSamples waits until r holds n latency samples (binlog events are
// resolved once the heartbeat after them is read back).
func awaitSamples(ctx context.Context, r *recorder, n int64) {
	waitFor(ctx, 15*time.Second, func() bool { return int64(r.samples()) >= n })
}
