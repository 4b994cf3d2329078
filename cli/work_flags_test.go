package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowgear/rowgear/cli"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

// flagItem is a model with a row event and a record job.
type flagItem struct {
	dispatch.Record
	ID int64 `db:"id,pk"`
}

func (*flagItem) TriggerInsert(context.Context) error { return nil }

func (*flagItem) Touch(context.Context) error { return nil }

// runWorkerCLI runs the application's command line in-process with a
// counting reverse function and the flagItem model, and returns its exit
// code and stderr (errors, notices and the worker's log).
func runWorkerCLI(t *testing.T, ran *atomic.Int64, args ...string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	app, err := cli.New(cli.WithName("app"), cli.WithOutput(io.Discard, &buf),
		cli.WithRegister(func(reg *dispatch.Registry) error {
			reg.HandleFunc("Worker1.reverse", func(context.Context, *gearman.Job) (any, error) {
				ran.Add(1)
				return "ok", nil
			})
			return dispatch.Register[flagItem](reg, "Item", dispatch.RecordJob("touch", (*flagItem).Touch))
		}))
	if err != nil {
		t.Fatal(err)
	}
	return app.Exit(context.Background(), args), buf.String()
}

// TestWorkerPluginFlags: --timeout=0 works off the queued jobs and exits
// (the plugin's GearmanWorker timeout 0); the plugin's flags rowgear has no
// use for are accepted with one notice each.
func TestWorkerPluginFlags(t *testing.T) {
	gm := testenv.Gearman(t)
	ns := testenv.Name(t, "flags")
	f := writeFile(t, fmt.Sprintf("all:\n  namespace: %s\n  server: {default: '%s'}\n  worker:\n    plain:\n      %s_reverse: [Worker1, reverse]\n", ns, gm, ns))
	gc := gearman.NewClient([]string{gm})
	defer gc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := gc.Background(ctx, ns+"_reverse", fmt.Appendf(nil, "job %d", i), gearman.Normal); err != nil {
			t.Fatal(err)
		}
	}
	var ran atomic.Int64
	start := time.Now()
	code, out := runWorkerCLI(t, &ran, "--file", f, "--config=plain", "--timeout=0", "--count=0",
		"--connection=doctrine", "--application=frontend", "--debug", "--queue=__mysql_trigger")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	t.Logf("drained in %s", time.Since(start))
	if ran.Load() != 3 {
		t.Errorf("ran %d jobs, want the 3 queued\n%s", ran.Load(), out)
	}
	for _, n := range []string{"--connection: ignored; rowgear has one database, database.dsn of gearman.yml or --dsn",
		"--application: ignored", "--debug: ignored; use --verbose", "--queue: ignored"} {
		if c := strings.Count(out, "app: notice: "+n); c != 1 {
			t.Errorf("notice %q printed %d times, want once:\n%s", n, c, out)
		}
	}
	// Nothing queued now: --timeout=0 returns at once.
	if code, out := runWorkerCLI(t, &ran, "--file", f, "--config=plain", "--timeout=0"); code != 0 || strings.Contains(out, "notice") {
		t.Fatalf("empty queue: exit %d\n%s", code, out)
	}
}

// TestWorkerModelFlags: --model and --methods restrict what a dbworker set
// registers; a model or method not in it is a usage error naming it.
func TestWorkerModelFlags(t *testing.T) {
	db, dsn := testenv.DB(t)
	if _, err := migrations.Up(context.Background(), db, migrations.Rowgear().WithoutUDF()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE items (id BIGINT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	gm := testenv.Gearman(t)
	ns := testenv.Name(t, "model")
	f := writeFile(t, fmt.Sprintf("all:\n  namespace: %s\n  server: {default: '%s'}\n  dbworker:\n    items: {Item: [touch, ~]}\n"+
		"  models:\n    Item: {table: items, events: [insert], source: binlog}\n  database: {dsn: '%s'}\n", ns, gm, dsn))
	var ran atomic.Int64
	base := []string{"--file", f, "--config=items", "--timeout=0", "--state-dir", t.TempDir()}
	code, out := runWorkerCLI(t, &ran, append(base, "--model=Item", "--methods=touch")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if !strings.Contains(out, ns+".Item.touch") || strings.Contains(out, ns+".Item.insert") {
		t.Errorf("--methods=touch: the worker's functions are not Item.touch alone:\n%s", out)
	}
	code, out = runWorkerCLI(t, &ran, append(base, "--model=Item", "--methods=triggerInsert")...)
	if code != 0 || !strings.Contains(out, ns+".Item.insert") || strings.Contains(out, ns+".Item.touch") {
		t.Errorf("--methods=triggerInsert: exit %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model=Article"}, "has no model Article"},
		{[]string{"--model=Item", "--methods=touch,publish"}, "model Item has no method publish"},
		{[]string{"--methods=touch"}, "--methods=touch needs --model"},
	} {
		code, out := runWorkerCLI(t, &ran, append(base, c.args...)...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s", c.args, code, c.want, out)
		}
	}
}

// TestWorkerDrainUnreachable: --timeout=0 is a one-off run: a gearmand it
// cannot reach fails it (exit 1, naming the server) instead of waiting.
func TestWorkerDrainUnreachable(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) // nothing listens
	f := writeFile(t, fmt.Sprintf("all:\n  server: {default: '%s'}\n  worker:\n    plain:\n      reverse: [Worker1, reverse]\n", addr))
	var ran atomic.Int64
	code, out := runWorkerCLI(t, &ran, "--file", f, "--config=plain", "--timeout=0")
	if code != 1 || !strings.Contains(out, "draining "+addr) {
		t.Errorf("exit %d, want 1 naming %s\n%s", code, addr, out)
	}
}
