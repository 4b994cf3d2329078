package migrations

import (
	"context"
	"database/sql"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/triggers"
)

var update = flag.Bool("update", false, "rewrite 00003_article_triggers.sql from the generator")

const triggersFile = "00003_article_triggers.sql"

// statements returns the SQL statements of a file, without comments.
func statements(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
			out = append(out, l)
		}
	}
	return out
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUDFMigrationIsInstallSQL keeps 00002 in step with udf/install.sql and
// udf/uninstall.sql, which the udf package owns.
func TestUDFMigrationIsInstallSQL(t *testing.T) {
	up, down, ok := strings.Cut(read(t, "00002_gearman_udf.sql"), "-- +goose Down")
	if !ok {
		t.Fatal("00002 has no Down")
	}
	if got, want := statements(t, up), statements(t, read(t, "../udf/install.sql")); !slices.Equal(got, want) {
		t.Errorf("00002 Up:\n%s\nudf/install.sql:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := statements(t, down), statements(t, read(t, "../udf/uninstall.sql")); !slices.Equal(got, want) {
		t.Errorf("00002 Down:\n%s\nudf/uninstall.sql:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func articleSpecs(t *testing.T) []triggers.Spec {
	t.Helper()
	cfg, err := config.Load("../config/gearman.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := triggers.Specs(cfg, "Article")
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

// TestTriggersMigrationIsGenerated: 00003 is what the generator makes of
// config/gearman.yml's Article against the schema of 00001.
func TestTriggersMigrationIsGenerated(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	ctx := context.Background()
	p, err := NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var all []triggers.Trigger
	for _, s := range articleSpecs(t) {
		tab, err := triggers.LoadTable(ctx, db, "", s.Table)
		if err != nil {
			t.Fatal(err)
		}
		trs, err := triggers.Generate(s, tab)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, trs...)
	}
	got := triggers.Migration(all)
	if *update {
		if err := os.WriteFile(triggersFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := read(t, triggersFile); string(got) != want {
		t.Errorf("%s is not what the generator makes of config/gearman.yml now; run go test ./migrations -run Generated -update and review", triggersFile)
	}
}

func version(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	p, err := NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.GetDBVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func installed(t *testing.T, db *sql.DB) []string {
	t.Helper()
	trs, err := triggers.Installed(context.Background(), db, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tr := range trs {
		names = append(names, tr.Name)
	}
	return names
}

// TestUpStatusDown runs on the shared server, so it never goes below
// version 2: the UDFs are server-wide and other tests are using them.
func TestUpStatusDown(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t) // no parseTime: Status must cope
	ctx := context.Background()
	p, err := NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	sources := p.ListSources() // others add migrations too
	latest := sources[len(sources)-1].Version
	var sb strings.Builder
	if err := Status(ctx, db, &sb); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(sb.String(), "Pending"); n != len(sources) {
		t.Errorf("status before Up: %d pending, want %d:\n%s", n, len(sources), sb.String())
	}
	if err := Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	if v := version(t, db); v != latest {
		t.Fatalf("version after Up = %d, want %d", v, latest)
	}
	sb.Reset()
	if err := Status(ctx, db, &sb); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sb.String(), "Pending") || !strings.Contains(sb.String(), triggersFile) {
		t.Errorf("status after Up:\n%s", sb.String())
	}
	drift, err := triggers.Check(ctx, db, articleSpecs(t)...)
	if err != nil || len(drift) != 0 {
		t.Errorf("after Up: drift %v, err %v", drift, err)
	}
	if got := installed(t, db); len(got) != 3 {
		t.Errorf("triggers after Up: %v", got)
	}

	if err := Down(ctx, db); err != nil {
		t.Fatal(err)
	}
	if v := version(t, db); v != sources[len(sources)-2].Version {
		t.Fatalf("version after Down = %d, want %d", v, sources[len(sources)-2].Version)
	}
	if err := DownTo(ctx, db, 2); err != nil {
		t.Fatal(err)
	}
	if got := installed(t, db); len(got) != 0 {
		t.Errorf("triggers after DownTo(2): %v", got)
	}
	if err := Up(ctx, db); err != nil { // and back
		t.Fatal(err)
	}
	if got := installed(t, db); len(got) != 3 {
		t.Errorf("triggers after DownTo(2), Up: %v", got)
	}
}

// TestDownToZeroOnPrivateServer runs every migration up and all the way
// down on a MariaDB of its own, whose UDFs nobody else uses.
func TestDownToZeroOnPrivateServer(t *testing.T) {
	t.Parallel()
	// A MariaDB of its own, whose plugin dir holds a copy of the UDF.
	db := testenv.StartMariaDB(t, testenv.WithUDF(""), testenv.WithoutBinlog()).DB("app")
	ctx := context.Background()
	funcs := func() []string {
		rows, err := db.Query("SELECT name FROM mysql.func WHERE name LIKE 'gman\\_%' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	tables := func() (n int) {
		db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('articles', 'comments')").Scan(&n)
		return n
	}
	for round := range 2 { // the second round shows Down left nothing behind
		if err := Up(ctx, db); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if f := funcs(); len(f) != 7 || installed(t, db) == nil || tables() != 2 {
			t.Fatalf("round %d after Up: functions %v, triggers %v, tables %d", round, f, installed(t, db), tables())
		}
		// The UDF is callable: a bad server list is refused by the UDF itself.
		var res sql.NullString
		if err := db.QueryRow("SELECT gman_last_error()").Scan(&res); err != nil {
			t.Fatalf("calling the UDF: %v", err)
		}
		if err := DownTo(ctx, db, 0); err != nil {
			t.Fatal(err)
		}
		if f, tr := funcs(), installed(t, db); len(f) != 0 || len(tr) != 0 || tables() != 0 || version(t, db) != 0 {
			t.Fatalf("round %d after DownTo(0): functions %v, triggers %v, tables %d", round, f, tr, tables())
		}
	}
}
