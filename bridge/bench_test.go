package bridge

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
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
		snapRate = measureSnapshot(b, br, db)
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

// measureSnapshot runs the bridge again and snapshots the table: rows
// published per second.
func measureSnapshot(b *testing.B, br *Bridge, db *sql.DB) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	t0 := time.Now()
	id, err := RequestSnapshot(ctx, db, "Item", 1000)
	if err != nil {
		b.Fatal(err)
	}
	var rows int64
	testenv.Eventually(b, 5*time.Minute, "the snapshot to end", func() bool {
		all, err := Snapshots(ctx, db)
		for _, s := range all {
			if s.ID == id && s.Status == "done" {
				rows = s.RowsDone
				return true
			}
		}
		return err != nil
	})
	rate := float64(rows) / time.Since(t0).Seconds()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return rate
}
