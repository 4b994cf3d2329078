package rowgear_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

// TestSnapshotCommand: `bridge snapshot Model` requests a snapshot, the bare
// command lists the requests, an unknown model is a usage error.
func TestSnapshotCommand(t *testing.T) {
	db, dsn := testenv.DB(t)
	if _, err := migrations.Up(context.Background(), db, migrations.Rowgear()); err != nil {
		t.Fatal(err)
	}
	f := writeFile(t, "all:\n  models:\n    Item: {table: items, source: binlog}\n")
	code, out := cli(t, "bridge", "snapshot", "Item", "--chunk", "10", "--file", f, "--dsn", dsn)
	if code != 0 || !strings.Contains(out, "snapshot 1 of Item requested") || !strings.Contains(out, "1\tItem\trequested\t0/0 rows") {
		t.Fatalf("request: exit %d\n%s", code, out)
	}
	var chunk int
	if err := db.QueryRow("SELECT chunk_size FROM rowgear_snapshots WHERE id = 1").Scan(&chunk); err != nil || chunk != 10 {
		t.Errorf("chunk_size %d, %v", chunk, err)
	}
	if code, out := cli(t, "bridge", "snapshot", "--file", f, "--dsn", dsn); code != 0 || !strings.Contains(out, "1\tItem\trequested") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	if code, out := cli(t, "bridge", "snapshot", "Nope", "--file", f, "--dsn", dsn); code != 2 || !strings.Contains(out, "model Nope is not in the models: section") {
		t.Errorf("unknown model: exit %d\n%s", code, out)
	}
}
