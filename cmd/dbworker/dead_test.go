package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
)

func TestDeadListRetryPurge(t *testing.T) {
	db, dsn := testenv.DB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	g := testenv.StartGearmand(t)
	cfg := filepath.Join(t.TempDir(), "gearman.yml")
	os.WriteFile(cfg, []byte("all:\n  server: {default: \""+g.Addr+"\"}\n  database: {dsn: \""+dsn+"\"}\n"), 0o644)
	fn := "rowgear.Article.publish"
	ins := `INSERT INTO rowgear_failed_jobs (state, function, job_key, attempts, errors, payload, due_at, updated_at)
		VALUES ('dead', ?, ?, 5, '[{"at":"2026-11-26T00:00:00Z","attempt":5,"error":"search engine down"}]', ?, NOW(6), NOW(6) - INTERVAL ? DAY)`
	if _, err := db.Exec(ins, fn, "evt-recent", `{"pk":{"id":1},"args":[]}`, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ins, fn, "evt-old", `{"pk":{"id":2},"args":[]}`, 40); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(dbworker(t), append([]string{"dead"}, append(args, "--file", cfg)...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dead %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("list")
	for _, want := range []string{"evt-recent", "evt-old", "Article", "search engine down", fn} {
		if !strings.Contains(out, want) {
			t.Fatalf("dead list lacks %q:\n%s", want, out)
		}
	}
	if out := run("purge", "--older-than=720h"); !strings.Contains(out, "purged 1") {
		t.Fatalf("purge: %s", out)
	}
	if out := run("list"); strings.Contains(out, "evt-old") || !strings.Contains(out, "evt-recent") {
		t.Fatalf("after purge:\n%s", out)
	}
	if out := run("retry", "--all"); !strings.Contains(out, "re-submitted 1") {
		t.Fatalf("retry: %s", out)
	}
	st, err := testenv.Status(ctx, g.Addr)
	if err != nil || st[fn].Total != 1 {
		t.Fatalf("gearmand has %+v (%v), want the re-submitted job", st[fn], err)
	}
	var n int
	db.QueryRow("SELECT COUNT(*) FROM rowgear_failed_jobs").Scan(&n)
	if n != 0 {
		t.Fatalf("%d rows left after retry", n)
	}
}
