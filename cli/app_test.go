package cli_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
)

// notes is the application of ../testdata/app: its own module (a go.mod with a
// replace to this checkout), models on tables rowgear never names, its own
// migrations numbered from 00001 and its own main. Each test works on a copy
// of it, whose namespace is its own: the UDF of the shared MariaDB sends
// every trigger's job to the shared gearmand.
type notes struct {
	t   *testing.T
	dir string // the copy of the module
	bin string
	env []string
	db  *sql.DB
	gm  string
	ns  string
}

func newNotes(t *testing.T) *notes {
	t.Helper()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	n := &notes{t: t, dir: t.TempDir(), gm: testenv.Gearman(t), ns: testenv.Name(t, "notes")}
	if err := os.CopyFS(n.dir, os.DirFS("../testdata/app")); err != nil {
		t.Fatal(err)
	}
	replaceToCheckout(t, n.dir, repo)
	n.build()
	n.env = append(os.Environ(), "ROWGEAR_CONFIG="+filepath.Join(n.dir, "gearman.yml"), "NOTES_NAMESPACE="+n.ns,
		"ROWGEAR_GEARMAN="+n.gm, fmt.Sprintf("NOTES_SERVER_ID=%d", 100000+rand.IntN(1<<30)), "ROWGEAR_STATE_DIR="+t.TempDir())
	n.useDB()
	return n
}

// replaceToCheckout points the replace of dir/go.mod (a copy of
// testdata/app's, "=> ../..") at repo, this checkout.
func replaceToCheckout(t *testing.T, dir, repo string) {
	t.Helper()
	mod := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mod, []byte(strings.Replace(string(data), "=> ../..", "=> "+repo, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// build builds the copy, which embeds its migrations directory as it is now.
func (n *notes) build() {
	n.t.Helper()
	n.bin = filepath.Join(n.dir, "notes")
	cmd := exec.Command("go", "build", "-o", n.bin, ".")
	cmd.Dir = n.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("building the application: %v\n%s", err, out)
	}
}

// useDB points the application at a fresh database.
func (n *notes) useDB() {
	n.t.Helper()
	db, dsn := testenv.DB(n.t)
	n.db = db
	n.env = append(n.env, "NOTES_DSN="+dsn)
}

// generate installs the schema on a scratch database, generates the
// application's trigger migration into its migrations directory, and
// rebuilds it, as a developer does once.
func (n *notes) generate() {
	n.t.Helper()
	n.mustRun("migrate", "up")
	out := n.mustRun("triggers", "generate", "--out", filepath.Join(n.dir, "migrations"))
	if _, err := os.Stat(filepath.Join(n.dir, "migrations", "00002_rowgear_triggers.sql")); err != nil {
		n.t.Fatalf("triggers generate did not write the application's 00002: %v\n%s", err, out)
	}
	n.build()
	n.useDB()
}

func (n *notes) command(args ...string) *exec.Cmd {
	cmd := exec.Command(n.bin, args...)
	cmd.Env = n.env
	return cmd
}

// run runs the application to its end and returns its output.
func (n *notes) run(args ...string) (string, error) {
	n.t.Helper()
	out, err := n.command(args...).CombinedOutput()
	return string(out), err
}

func (n *notes) mustRun(args ...string) string {
	n.t.Helper()
	out, err := n.run(args...)
	if err != nil {
		n.t.Fatalf("notes %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// start runs the application in the background until the test ends.
func (n *notes) start(args ...string) *testenv.Proc {
	n.t.Helper()
	return testenv.StartProc(n.t, "notes "+strings.Join(args, " "), n.command(args...))
}

func (n *notes) exec(q string, args ...any) {
	n.t.Helper()
	if _, err := n.db.Exec(q, args...); err != nil {
		n.t.Fatalf("%s: %v", q, err)
	}
}

func (n *notes) count(q string, args ...any) int {
	n.t.Helper()
	var c int
	if err := n.db.QueryRow(q, args...).Scan(&c); err != nil {
		n.t.Fatalf("%s: %v", q, err)
	}
	return c
}

// handled waits for the application's handlers to have recorded an event.
func (n *notes) handled(model, op, source string, id int) {
	n.t.Helper()
	testenv.Eventually(n.t, 20*time.Second, fmt.Sprintf("%s.%s of row %d from the %s", model, op, id, source), func() bool {
		return n.count("SELECT COUNT(*) FROM handled WHERE model = ? AND op = ? AND source = ? AND row_id = ?", model, op, source, id) > 0
	})
}

// TestApplicationOutsideRowgear: an application in a module of its own
// installs its schema and triggers with one `migrate up`, and its row
// changes reach its handlers through both sources; a record job runs; a
// failing handler is retried, dead-lettered and replayed with `dead retry`.
func TestApplicationOutsideRowgear(t *testing.T) {
	n := newNotes(t)
	n.generate()
	out := n.mustRun("migrate", "up") // one migrate up: rowgear's tables, the schema, the triggers
	for _, m := range []string{"00001_failed_jobs.sql", "00099_gearman_udf.sql", "00001_schema.sql", "00002_rowgear_triggers.sql"} {
		if !strings.Contains(out, m) {
			t.Errorf("migrate up did not run %s:\n%s", m, out)
		}
	}
	if out := n.mustRun("triggers", "check"); !strings.Contains(out, "installed triggers match") {
		t.Errorf("triggers check: %s", out)
	}
	if out := n.mustRun("migrate", "up"); !strings.Contains(out, "no migrations to run") {
		t.Errorf("second migrate up: %s", out)
	}

	n.start("--config=everything", "--count=0", "--timeout=-1", "--concurrency=2")
	n.start("bridge")
	testenv.Eventually(t, 20*time.Second, "the bridge to save its start position", func() bool {
		return n.count("SELECT COUNT(*) FROM rowgear_binlog_position") == 1
	})

	n.exec("INSERT INTO tasks (title) VALUES ('write docs')")
	n.handled("Task", "insert", "trigger", 1)
	n.exec("INSERT INTO tickets (subject) VALUES ('printer')")
	n.handled("Ticket", "insert", "binlog", 1)

	// A record job, as any gearman client sends it: the task is loaded by
	// its primary key; its UPDATE then fires the task's trigger.
	c := gearman.NewClient([]string{n.gm})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Task(ctx, n.ns+".Task.complete", []byte(`{"pk":{"id":1},"args":["ann"]}`), gearman.Normal)
	if err != nil {
		t.Fatalf("record job: %v", err)
	}
	if got := res.String(); got != "write docs done by ann" {
		t.Errorf("record job returned %q", got)
	}
	n.handled("Task", "update", "trigger", 1)

	// A failing handler: retried once (attempts: 2), then a dead letter.
	n.exec("UPDATE settings SET helpdesk_down = 1")
	n.exec("UPDATE tickets SET subject = 'printer on fire' WHERE id = 1")
	testenv.Eventually(t, 30*time.Second, "the failing ticket update to be dead-lettered", func() bool {
		return n.count("SELECT COUNT(*) FROM rowgear_failed_jobs WHERE state = 'dead' AND function = ? AND attempts = 2", n.ns+".Ticket.update") == 1
	})
	if out := n.mustRun("dead", "list"); !strings.Contains(out, "help desk is down") || !strings.Contains(out, "Ticket") {
		t.Errorf("dead list:\n%s", out)
	}
	n.exec("UPDATE settings SET helpdesk_down = 0")
	if out := n.mustRun("dead", "retry", "--all"); !strings.Contains(out, "re-submitted 1") {
		t.Errorf("dead retry: %s", out)
	}
	n.handled("Ticket", "update", "binlog", 1)
	// The guard deletes the replayed row once the handler's run ended,
	// after the handler wrote what handled reads.
	testenv.Eventually(t, 30*time.Second, "the replayed dead letter's row to go", func() bool {
		return n.count("SELECT COUNT(*) FROM rowgear_failed_jobs") == 0
	})
}

// TestTriggersGenerateNumbersAfterTheApplied: generate writes the next free
// version of the application's directory, and refuses a directory behind
// what the database applied (migrate up would skip the file).
func TestTriggersGenerateNumbersAfterTheApplied(t *testing.T) {
	n := newNotes(t)
	n.generate()
	n.mustRun("migrate", "up")
	dir := filepath.Join(n.dir, "migrations")
	if out := n.mustRun("triggers", "generate", "--out", dir); !strings.Contains(out, "nothing written") {
		t.Errorf("generate with no drift: %s", out)
	}
	out := n.mustRun("triggers", "generate", "--out", dir, "--force")
	if _, err := os.Stat(filepath.Join(dir, "00003_rowgear_triggers.sql")); err != nil {
		t.Fatalf("generate --force did not write 00003: %v\n%s", err, out)
	}
	if out := n.mustRun("migrate", "up", "--dir", dir); !strings.Contains(out, "00003_rowgear_triggers.sql") {
		t.Errorf("migrate --dir up did not apply 00003:\n%s", out)
	}
	empty := t.TempDir()
	out, err := n.run("triggers", "generate", "--out", empty, "--force")
	if err == nil || !strings.Contains(out, "would be version 1") || !strings.Contains(out, "applied the application's migrations up to 3") {
		t.Errorf("generate into a directory behind the database: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("the refused generate wrote %v", entries)
	}
}
