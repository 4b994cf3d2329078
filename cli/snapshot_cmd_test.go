package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/cli"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/internal/replica"
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
	code, out := runCLI(t, "bridge", "snapshot", "Item", "--chunk", "10", "--file", f, "--dsn", dsn)
	if code != 0 || !strings.Contains(out, "snapshot 1 of Item requested") || !strings.Contains(out, "1\tItem\trequested\t0/0 rows") {
		t.Fatalf("request: exit %d\n%s", code, out)
	}
	var chunk, rate int
	if err := db.QueryRow("SELECT chunk_size, rows_per_second FROM rowgear_snapshots WHERE id = 1").Scan(&chunk, &rate); err != nil || chunk != 10 || rate != 0 {
		t.Errorf("chunk_size %d, rows_per_second %d, %v", chunk, rate, err)
	}
	code, out = runCLI(t, "bridge", "snapshot", "--rate", "400", "--chunk", "100", "Item", "--file", f, "--dsn", dsn)
	if code != 0 || !strings.Contains(out, "2\tItem\trequested\t0/0 rows\t≤ 400 rows/s") {
		t.Fatalf("paced request: exit %d\n%s", code, out)
	}
	if code, out := runCLI(t, "bridge", "snapshot", "--rate", "-1", "Item", "--file", f, "--dsn", dsn); code != 2 || !strings.Contains(out, "--rate -1: want 0 (unpaced) or more") {
		t.Errorf("negative rate: exit %d\n%s", code, out)
	}
	if code, out := runCLI(t, "bridge", "snapshot", "--file", f, "--dsn", dsn); code != 0 || !strings.Contains(out, "1\tItem\trequested") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	if code, out := runCLI(t, "bridge", "snapshot", "Nope", "--file", f, "--dsn", dsn); code != 2 || !strings.Contains(out, "model Nope is not in the models: section") {
		t.Errorf("unknown model: exit %d\n%s", code, out)
	}
}

// plainItem has no TriggerSnapshot.
type plainItem struct {
	dispatch.Record
	ID int64 `db:"id,pk"`
}

// TestSnapshotCommandChecksHandlers: an application's `bridge snapshot`
// refuses a model whose Go type would take none of the snapshot's rows,
// before requesting anything.
func TestSnapshotCommandChecksHandlers(t *testing.T) {
	db, dsn := testenv.DB(t)
	if _, err := migrations.Up(context.Background(), db, migrations.Rowgear()); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	app, err := cli.New(cli.WithName("app"), cli.WithOutput(&buf, &buf),
		cli.WithRegister(func(reg *dispatch.Registry) error {
			if err := replica.Register(reg, "Item", &replica.Counts{}); err != nil {
				return err
			}
			return dispatch.Register[plainItem](reg, "Plain")
		}))
	if err != nil {
		t.Fatal(err)
	}
	f := writeFile(t, "all:\n  models:\n    Item: {table: items, source: binlog}\n    Plain: {table: others, source: binlog}\n")
	if code := app.Exit(context.Background(), []string{"bridge", "snapshot", "Plain", "--file", f, "--dsn", dsn}); code != 2 ||
		!strings.Contains(buf.String(), "has no TriggerSnapshot") {
		t.Errorf("Plain: exit %d\n%s", code, buf.String())
	}
	buf.Reset()
	if code := app.Exit(context.Background(), []string{"bridge", "snapshot", "Item", "--file", f, "--dsn", dsn}); code != 0 ||
		!strings.Contains(buf.String(), "snapshot 1 of Item requested") {
		t.Errorf("Item: exit %d\n%s", code, buf.String())
	}
}
