package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/cli"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/gearmanadmin"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/status"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/triggers"
)

// TestStatusNamesEachProblem: a dead letter, a drifted trigger and a
// stopped gearmand each appear in `status --json`, and the command fails.
func TestStatusNamesEachProblem(t *testing.T) {
	ctx := context.Background()
	db, dsn := testenv.DB(t)
	if err := migrations.UpRowgear(ctx, db); err != nil {
		t.Fatal(err)
	}
	live := testenv.Gearman(t)
	stopped := testenv.StartGearmand(t)
	stopped.Stop()

	// things' triggers were generated for namespace old; the config says new.
	if _, err := db.Exec("CREATE TABLE things (id BIGINT PRIMARY KEY, name VARCHAR(20) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	nsOld, nsNew := testenv.Name(t, "old"), testenv.Name(t, "new")
	yml := func(ns string) string {
		return fmt.Sprintf(`all:
  namespace: %s
  server:
    default: %s
    spare: %s
  models:
    Thing: {table: things}
  database:
    dsn: '%s'
`, ns, live, stopped.Addr, dsn)
	}
	oldCfg, err := config.Parse("old.yml", []byte(yml(nsOld)), "")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := triggers.Specs(oldCfg)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := sqlschema.LoadTable(ctx, db, "", "things")
	if err != nil {
		t.Fatal(err)
	}
	trs, err := triggers.Generate(specs[0], tab)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trs {
		if _, err := db.Exec(tr.Create); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO rowgear_failed_jobs (state, function, job_key, attempts, errors, payload, due_at)
		VALUES ('dead', ?, 'ev-1', 3, '[]', '{}', NOW(6))`, nsNew+".Thing.update"); err != nil {
		t.Fatal(err)
	}
	// One job waits for a worker of this config's namespace.
	gc := gearman.NewClient([]string{live})
	defer gc.Close()
	if _, err := gc.Background(ctx, nsNew+".Thing.insert", "{}", gearman.Normal); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "gearman.yml")
	if err := os.WriteFile(file, []byte(yml(nsNew)), 0o644); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	app, err := cli.New(cli.WithName("app"), cli.WithOutput(&out, &errOut))
	if err != nil {
		t.Fatal(err)
	}
	if code := app.Exit(ctx, []string{"status", "--json", "--file", file}); code != 1 ||
		!strings.Contains(errOut.String(), "app: status: needs attention: 5 problem(s)") {
		t.Fatalf("status --json: exit %d, stderr %q; want 1 and the problem count; output:\n%s", code, errOut.String(), out.String())
	}
	var r status.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if r.DeadLetters[nsNew+".Thing.update"] != 1 {
		t.Errorf("dead letters %v, want %s.Thing.update: 1", r.DeadLetters, nsNew)
	}
	if len(r.Drift) != 3 {
		t.Errorf("drift %v, want the 3 triggers of things", r.Drift)
	}
	if r.UDFFailures == nil {
		t.Errorf("UDF failures unknown: notes %v", r.Notes)
	}
	udf := false
	for _, s := range r.Servers {
		if (s.Addr == stopped.Addr) != (s.Error != "") || s.Up != (s.Error == "") {
			t.Errorf("server %s: up %v, error %q", s.Addr, s.Up, s.Error)
		}
		// The services' mariadbd lists the live gearmand for the UDF.
		udf = udf || strings.Contains(s.Name, "udf") && s.Up
		if s.Addr == live && (len(s.Functions) != 1 || s.Functions[0] != (gearmanadmin.FuncStatus{Function: nsNew + ".Thing.insert", Queued: 1})) {
			t.Errorf("server %s: functions %+v, want only %s.Thing.insert with 1 queued", s.Addr, s.Functions, nsNew)
		}
	}
	if !udf {
		t.Errorf("no server of the UDF's list (gman_servers_set) up: %+v", r.Servers)
	}
	problems := strings.Join(r.Problems, "\n")
	for _, want := range []string{"1 dead letter(s) of " + nsNew + ".Thing.update", "trigger drift: differs trigger",
		"gearmand spare (" + stopped.Addr + ") unreachable"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
	if len(r.Problems) != 5 {
		t.Errorf("%d problems, want 5 (1 dead letter, 3 drifted triggers, 1 server):\n%s", len(r.Problems), problems)
	}

	// The text form says the same on one screen.
	out.Reset()
	if code := app.Exit(ctx, []string{"status", "--file", file}); code != 1 {
		t.Fatalf("status: exit %d", code)
	}
	for _, want := range []string{"spare " + stopped.Addr + " DOWN", " up ", nsNew + ".Thing.update  1", nsNew + ".Thing.insert", "5 problem(s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
	if testing.Verbose() {
		t.Log("\n" + out.String())
	}

	// Once fixed, it passes: no dead letter, triggers regenerated, one server.
	db.Exec("DELETE FROM rowgear_failed_jobs")
	newCfg, err := config.Parse("new.yml", []byte(strings.Replace(yml(nsNew), "    spare: "+stopped.Addr+"\n", "", 1)), "")
	if err != nil {
		t.Fatal(err)
	}
	specs, _ = triggers.Specs(newCfg)
	trs, _ = triggers.Generate(specs[0], tab)
	for _, tr := range trs {
		db.Exec(tr.Drop)
		if _, err := db.Exec(tr.Create); err != nil {
			t.Fatal(err)
		}
	}
	r2, err := status.Collect(ctx, newCfg, db, status.Options{})
	if err != nil || !r2.OK() {
		t.Fatalf("after the fixes: err %v, problems %v", err, r2.Problems)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(yml(nsNew), "    spare: "+stopped.Addr+"\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := app.Exit(ctx, []string{"status", "--file", file}); code != 0 || !strings.Contains(out.String(), "OK: nothing needs attention") {
		t.Errorf("status when all is well: exit %d:\n%s", code, out.String())
	}
}

// TestStatusNamesKeylessTables: a binlog model's table without a primary
// key is a problem, with what to do.
func TestStatusNamesKeylessTables(t *testing.T) {
	ctx := context.Background()
	db, dsn := testenv.DB(t)
	if err := migrations.UpRowgear(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE logs (at DATETIME, msg TEXT)", "CREATE TABLE items (id INT PRIMARY KEY)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse("k.yml", []byte(fmt.Sprintf(`all:
  namespace: k
  server:
    default: %s
  models:
    Log: {table: logs, source: binlog}
    Item: {table: items, source: binlog}
  database:
    dsn: '%s'
`, testenv.Gearman(t), dsn)), "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := status.Collect(ctx, cfg, db, status.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Bridge == nil || len(r.Bridge.Keyless) != 1 || !strings.HasSuffix(r.Bridge.Keyless[0], ".logs") {
		t.Fatalf("bridge %+v, want logs named keyless", r.Bridge)
	}
	found := false
	for _, p := range r.Problems {
		found = found || strings.Contains(p, "model Log") && strings.Contains(p, "no primary key") && strings.Contains(p, "ADD PRIMARY KEY")
	}
	if !found {
		t.Errorf("problems %v: none names the keyless table", r.Problems)
	}
}
