package bridge

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/internal/testenv"

	_ "github.com/go-sql-driver/mysql"
)

// BenchmarkBridgeVsCanal measures, on one binlog of benchRows inserts, the
// rows/s go-mysql alone decodes, the rows/s the bridge publishes
// (acknowledged by gearmand, no worker draining), and their ratio; then the
// rows/s a snapshot of the same table publishes (chunks of 1000).
// Run: go test ./bridge -run '^$' -bench BridgeVsCanal -benchtime 1x
func BenchmarkBridgeVsCanal(b *testing.B) {
	const benchRows = 50000
	m := testenv.StartMariaDB(b)
	g := testenv.StartGearmand(b)
	db := m.DB("app")
	if _, err := db.Exec("CREATE TABLE items (id INT PRIMARY KEY, title VARCHAR(100), body TEXT, n INT, price DECIMAL(10,2), at DATETIME(6))"); err != nil {
		b.Fatal(err)
	}
	var start Position
	if err := db.QueryRow("SHOW BINLOG STATUS").Scan(&start.File, &start.Pos, new(string), new(string)); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchRows; i += 500 {
		var vals []string
		for j := i; j < i+500; j++ {
			vals = append(vals, fmt.Sprintf("(%d, 'title %d', 'a body of some length for row %d', %d, %d.25, NOW(6))", j, j, j, j, j))
		}
		if _, err := db.Exec("INSERT INTO items VALUES " + strings.Join(vals, ",")); err != nil {
			b.Fatal(err)
		}
	}
	if err := CreateSnapshotTable(db); err != nil {
		b.Fatal(err)
	}
	var canalRate, bridgeRate, snapRate float64
	for i := 0; i < b.N; i++ {
		cfg := &config.Config{Namespace: fmt.Sprintf("bench%d_%d", i, rand.IntN(1<<30)),
			Servers:  map[string][]string{"default": {g.Addr}},
			Models:   map[string]config.Model{"Item": {Table: "items", Source: "binlog"}},
			Database: config.Database{DSN: m.DSN + "app"},
			Binlog: config.Binlog{ServerID: uint32(100000 + rand.IntN(1<<30)), Flavor: "mariadb",
				Position: "file:" + filepath.Join(b.TempDir(), "pos.json"), Concurrency: 4},
		}
		br, err := New(context.Background(), cfg, WithStart(&start), WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			b.Fatal(err)
		}
		canalRate = measureCanal(b, br, start, benchRows)
		bridgeRate = measureBridge(b, br, benchRows)
		snapRate = measureSnapshot(b, br, db, benchRows)
		br.Close()
	}
	b.ReportMetric(canalRate, "canal_rows/s")
	b.ReportMetric(bridgeRate, "bridge_rows/s")
	b.ReportMetric(bridgeRate/canalRate, "ratio")
	b.ReportMetric(snapRate, "snapshot_rows/s")
	b.Logf("%d rows: canal alone %.0f rows/s, bridge published %.0f rows/s, ratio %.2f; snapshot %.0f rows/s",
		benchRows, canalRate, bridgeRate, bridgeRate/canalRate, snapRate)
}

// measureCanal is the rate at which go-mysql alone reads and decodes the
// rows (the bridge's own reader, without publishing).
func measureCanal(b *testing.B, br *Bridge, start Position, rows int) float64 {
	cfg, err := br.syncerConfig()
	if err != nil {
		b.Fatal(err)
	}
	s := replication.NewBinlogSyncer(cfg)
	defer s.Close()
	t0 := time.Now()
	st, err := s.StartSync(mysql.Position{Name: start.File, Pos: start.Pos})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for n := 0; n < rows; {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			b.Fatalf("after %d rows: %v", n, err)
		}
		if e, ok := ev.Event.(*replication.RowsEvent); ok {
			n += len(e.Rows)
		}
	}
	return float64(rows) / time.Since(t0).Seconds()
}

func measureBridge(b *testing.B, br *Bridge, rows int) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- br.Run(ctx) }()
	testenv.Eventually(b, 5*time.Minute, "the bridge to publish every row", func() bool {
		return br.Stats().Published >= int64(rows)
	})
	rate := float64(rows) / time.Since(t0).Seconds()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return rate
}

// writerLatency runs single-row UPDATEs of the table, 200 a second, until
// stop is closed, and returns their slowest and 99th-percentile durations.
func writerLatency(db *sql.DB, rows int, stop <-chan struct{}) (maxD, p99 time.Duration) {
	var ds []time.Duration
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			slices.Sort(ds)
			if len(ds) == 0 {
				return 0, 0
			}
			return ds[len(ds)-1], ds[len(ds)*99/100]
		case <-tick.C:
		}
		t0 := time.Now()
		db.Exec("UPDATE items SET n = n + 1 WHERE id = ?", (i*7919)%rows)
		ds = append(ds, time.Since(t0))
	}
}

// measureSnapshot runs the bridge again and snapshots the table: rows
// published per second, and a writer's latency before and during it.
func measureSnapshot(b *testing.B, br *Bridge, db *sql.DB, rows int) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	stop := make(chan struct{})
	time.AfterFunc(2*time.Second, func() { close(stop) })
	maxBefore, p99Before := writerLatency(db, rows, stop)
	stop = make(chan struct{})
	type lat struct{ max, p99 time.Duration }
	during := make(chan lat, 1)
	go func() { m, p := writerLatency(db, rows, stop); during <- lat{m, p} }()
	t0 := time.Now()
	id, err := RequestSnapshot(ctx, db, "Item", 1000)
	if err != nil {
		b.Fatal(err)
	}
	var snapRows int64
	testenv.Eventually(b, 5*time.Minute, "the snapshot to end", func() bool {
		all, err := Snapshots(ctx, db)
		for _, s := range all {
			if s.ID == id && s.Status == "done" {
				snapRows = s.RowsDone
				return true
			}
		}
		return err != nil
	})
	rate := float64(snapRows) / time.Since(t0).Seconds()
	close(stop)
	d := <-during
	b.ReportMetric(float64(maxBefore.Microseconds())/1000, "writer_max_ms_before")
	b.ReportMetric(float64(d.max.Microseconds())/1000, "writer_max_ms_during")
	b.Logf("writer UPDATE before the snapshot: max %v p99 %v; during it: max %v p99 %v", maxBefore, p99Before, d.max, d.p99)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return rate
}
