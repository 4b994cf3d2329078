package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
)

// bigTransaction: section 7. One UPDATE of --big-rows rows (one
// transaction) through a real binlogbridge process: every event delivered
// to a worker (counted by event id; the bridge sends batches as --batch
// and --batch-conns say), the bridge's peak RSS (VmHWM of
// /proc/PID/status), and the position it saves after it.
func (b *bench) bigTransaction(ctx context.Context) error {
	const sec = "7"
	n := b.bigRows
	if _, err := b.db.ExecContext(ctx, "CREATE TABLE big_tx (id INT NOT NULL PRIMARY KEY, n INT NOT NULL DEFAULT 0, "+
		"body VARCHAR(64) NOT NULL DEFAULT 'a body of some length, as a row would have') ENGINE=InnoDB"); err != nil {
		return err
	}
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	const chunk = 100000
	if _, err := conn.ExecContext(ctx, "SET SESSION max_recursive_iterations = ?", chunk+1); err != nil {
		return err
	}
	for from := 0; from < n; from += chunk {
		if _, err := conn.ExecContext(ctx, "INSERT INTO big_tx (id) WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i < ?) SELECT i FROM s",
			from, min(from+chunk, n)-1); err != nil {
			return fmt.Errorf("filling big_tx: %w", err)
		}
	}
	g, err := b.gearmand("memory")
	if err != nil {
		return err
	}
	defer b.stopGearmand(g)
	bin := filepath.Join(b.dir, "binlogbridge")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/rowgear/rowgear/cmd/binlogbridge").CombinedOutput(); err != nil {
		return fmt.Errorf("go build binlogbridge: %w: %s", err, out)
	}
	ns := "bench_big"
	serverID := 200000 + rand.IntN(1<<30)
	yml := fmt.Sprintf("all:\n  namespace: %s\n  server:\n    default: %s\n  models:\n    Big: {table: big_tx, schema: %s, events: [update], source: binlog}\n"+
		"  database:\n    dsn: '%s'\n  binlog:\n    server_id: %d\n    flavor: mariadb\n    batch: %d\n    concurrency: %d\n",
		ns, g.Addr, b.dbName, b.dsn, serverID, b.batch, b.batchConns)
	cfgPath := filepath.Join(b.dir, "big.yml")
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(b.dir, "bridge.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--file", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}
	defer stop()
	saved := func() (file string, pos uint64) {
		b.db.QueryRowContext(ctx, "SELECT binlog_file, binlog_pos FROM rowgear_binlog_position WHERE server_id = ?", serverID).Scan(&file, &pos)
		return file, pos
	}
	if !waitFor(ctx, 30*time.Second, func() bool { f, _ := saved(); return f != "" }) {
		return fmt.Errorf("binlogbridge saved no position in 30 s (log: %s)", logf.Name())
	}
	// The worker: counts distinct event ids.
	var mu sync.Mutex
	seen := make(map[string]struct{}, n)
	w := gearman.NewWorker([]string{g.Addr}, gearman.WithConcurrency(4), gearman.WithLogger(b.log))
	w.Register(events.FuncName(ns, "Big", "update"), func(_ context.Context, j *gearman.Job) (any, error) {
		mu.Lock()
		seen[j.Unique] = struct{}{}
		mu.Unlock()
		return nil, nil
	})
	w.Register(events.FuncName(ns, "Big", events.OpBatch), func(_ context.Context, j *gearman.Job) (any, error) {
		envs, err := eventwire.SplitBatch(j.Workload)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(envs))
		for i, e := range envs {
			ev, err := events.Decode(e)
			if err != nil {
				return nil, err
			}
			ids[i] = ev.ID
		}
		mu.Lock()
		for _, id := range ids {
			seen[id] = struct{}{}
		}
		mu.Unlock()
		return nil, nil
	})
	stopWorker := runWorker(ctx, w)
	defer stopWorker()
	delivered := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }

	t0 := time.Now()
	if _, err := b.db.ExecContext(ctx, "UPDATE big_tx SET n = n + 1"); err != nil {
		return err
	}
	updated := time.Since(t0)
	var file string
	var pos uint64
	var skip any
	if err := b.db.QueryRowContext(ctx, "SHOW MASTER STATUS").Scan(&file, &pos, &skip, &skip); err != nil {
		return fmt.Errorf("SHOW MASTER STATUS: %w", err)
	}
	all := waitFor(ctx, 20*time.Minute, func() bool { return delivered() >= n })
	el := time.Since(t0)
	got := delivered()
	// Past the transaction, once its jobs are all acknowledged.
	posOK := waitFor(ctx, 30*time.Second, func() bool {
		f, p := saved()
		return f > file || f == file && p >= pos
	})
	sf, sp := saved()
	hwm, rss := procKB(cmd.Process.Pid, "VmHWM"), procKB(cmd.Process.Pid, "VmRSS")
	stop()
	b.add(sec, fmt.Sprintf("one UPDATE of %d rows (one transaction), MariaDB", n), updated.Seconds(), "s")
	b.add(sec, fmt.Sprintf("same, binlog → worker (batches of ≤ %d, %d bridge conns), every event (distinct ids)", b.batch, b.batchConns), float64(got)/el.Seconds(), "events/s").
		note(fmt.Sprintf("%d of %d delivered in %.1f s from the UPDATE's start", got, n, el.Seconds()))
	b.add(sec, "binlogbridge process peak RSS (VmHWM) during it", float64(hwm)/1024, "MB").vs("MB target", 256).
		note(fmt.Sprintf("VmRSS at the end %d MB", rss/1024))
	verdict := "past the transaction's commit by"
	if !posOK {
		verdict = "NOT past the transaction's commit"
	}
	past := 0.0
	if sf == file {
		past = float64(sp) - float64(pos)
	}
	b.add(sec, "position saved after it: "+verdict, past, "bytes").
		note(fmt.Sprintf("saved %s:%d, commit ended at %s:%d; heartbeats follow it", sf, sp, file, pos))
	if !all || !posOK {
		return fmt.Errorf("big transaction: %d of %d events delivered, saved position %s:%d, commit ended at %s:%d", got, n, sf, sp, file, pos)
	}
	return nil
}

// procKB reads a "Name:  123 kB" line of /proc/pid/status.
func procKB(pid int, name string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
