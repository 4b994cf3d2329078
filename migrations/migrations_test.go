package migrations

import (
	"context"
	"database/sql"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rowgear/rowgear/internal/testenv"
)

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

// TestUDFMigrationIsInstallSQL keeps 00099 and 00100 (rowgear_ring) in step
// with udf/install.sql and udf/uninstall.sql, which the udf package owns.
func TestUDFMigrationIsInstallSQL(t *testing.T) {
	var creates, drops []string
	for _, f := range []string{"00099_gearman_udf.sql", "00100_gearman_ring.sql"} {
		up, down, ok := strings.Cut(read(t, f), "-- +goose Down")
		if !ok {
			t.Fatalf("%s has no Down", f)
		}
		// Up wraps install.sql's statements in a block that runs them only
		// when a function is missing; the statements themselves are the same.
		for _, l := range statements(t, up) {
			if strings.HasPrefix(l, "CREATE FUNCTION ") {
				creates = append(creates, l)
			}
		}
		drops = append(drops, statements(t, down)...)
	}
	if got, want := creates, statements(t, read(t, "../udf/install.sql")); !slices.Equal(got, want) {
		t.Errorf("00099 and 00100 Up:\n%s\nudf/install.sql:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := drops, statements(t, read(t, "../udf/uninstall.sql")); !slices.Equal(got, want) {
		t.Errorf("00099 and 00100 Down:\n%s\nudf/uninstall.sql:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func version(t *testing.T, db *sql.DB, s Set) int64 {
	t.Helper()
	p, err := s.Provider(db)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.GetDBVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func tables(t *testing.T, db *sql.DB, names ...string) (n int) {
	t.Helper()
	q := "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('" +
		strings.Join(names, "', '") + "')"
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// app is an application's set: its own numbering from 00001, its own table.
var app = Set{Name: "app", Table: AppTable, FS: fstest.MapFS{
	"00001_notes.sql": {Data: []byte("-- +goose Up\nCREATE TABLE notes (id INT PRIMARY KEY);\n-- +goose Down\nDROP TABLE notes;\n")},
	"00002_more.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE more_notes (id INT PRIMARY KEY);\n-- +goose Down\nDROP TABLE more_notes;\n")},
}}

// TestBothSetsUpStatusDown: rowgear's migrations and an application's, both
// numbered from 00001, go up together and keep separate versions. It runs
// on the shared server, so it never rolls rowgear's 00099 (the server-wide
// UDFs) back.
func TestBothSetsUpStatusDown(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t) // no parseTime: Status must cope
	ctx := context.Background()
	own := Rowgear()
	// Teams add rowgear migrations of their own numbers: count what is there.
	p, err := own.Provider(db)
	if err != nil {
		t.Fatal(err)
	}
	srcs := p.ListSources()
	nOwn, latest := len(srcs), srcs[len(srcs)-1].Version
	var sb strings.Builder
	if err := Status(ctx, db, &sb, own, app); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(sb.String(), "Pending"); n != nOwn+2 {
		t.Errorf("status before Up: %d pending, want %d:\n%s", n, nOwn+2, sb.String())
	}
	res, err := Up(ctx, db, own, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != nOwn+2 || version(t, db, own) != latest || version(t, db, app) != 2 {
		t.Fatalf("Up ran %d migrations; versions rowgear %d, app %d; want %d, %d, 2", len(res), version(t, db, own), version(t, db, app), nOwn+2, latest)
	}
	if n := tables(t, db, "notes", "more_notes", "rowgear_failed_jobs", "rowgear_job_crashes", "rowgear_binlog_position",
		"rowgear_gate", "rowgear_row_seq", "rowgear_applied", "rowgear_snapshots"); n != 9 {
		t.Errorf("after Up: %d of 9 tables", n)
	}
	sb.Reset()
	if err := Status(ctx, db, &sb, own, app); err != nil {
		t.Fatal(err)
	}
	if out := sb.String(); strings.Contains(out, "Pending") || !strings.Contains(out, "rowgear  00099_gearman_udf.sql") ||
		!strings.Contains(out, "app      00001_notes.sql") {
		t.Errorf("status after Up:\n%s", out)
	}
	if res, err := Up(ctx, db, own, app); err != nil || len(res) != 0 {
		t.Errorf("second Up: ran %d, err %v; want nothing to do", len(res), err)
	}
	if err := DownTo(ctx, db, app, 0); err != nil {
		t.Fatal(err)
	}
	if version(t, db, app) != 0 || version(t, db, own) != latest || tables(t, db, "notes", "more_notes") != 0 {
		t.Errorf("after the app's DownTo(0): versions app %d, rowgear %d", version(t, db, app), version(t, db, own))
	}
}

// TestDownToZeroOnPrivateServer runs rowgear's migrations up and all the
// way down on a MariaDB of its own, whose UDFs nobody else uses.
func TestDownToZeroOnPrivateServer(t *testing.T) {
	t.Parallel()
	// A MariaDB of its own, whose plugin dir holds a copy of the UDF.
	db := testenv.StartMariaDB(t, testenv.WithUDF(""), testenv.WithoutBinlog()).DB("app")
	ctx := context.Background()
	funcs := func() []string {
		return testenv.Strings(t, db, "SELECT name FROM mysql.func WHERE name LIKE 'gman\\_%' OR name = 'rowgear_ring' ORDER BY name")
	}
	for round := range 2 { // the second round shows Down left nothing behind
		if err := UpRowgear(ctx, db); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if f := funcs(); len(f) != 8 || tables(t, db, "rowgear_failed_jobs", "rowgear_binlog_position") != 2 {
			t.Fatalf("round %d after Up: functions %v", round, f)
		}
		// The UDF is callable, rowgear_ring too (nothing listens: dropped, 0).
		var res sql.NullString
		if err := db.QueryRow("SELECT gman_last_error()").Scan(&res); err != nil {
			t.Fatalf("calling the UDF: %v", err)
		}
		var rang sql.NullInt64
		if err := db.QueryRow("SELECT rowgear_ring('rowgear.outbox')").Scan(&rang); err != nil || !rang.Valid {
			t.Fatalf("calling rowgear_ring: %v, %v", rang, err)
		}
		if err := DownTo(ctx, db, Rowgear(), 0); err != nil {
			t.Fatal(err)
		}
		if f := funcs(); len(f) != 0 || tables(t, db, "rowgear_failed_jobs", "rowgear_binlog_position") != 0 || version(t, db, Rowgear()) != 0 {
			t.Fatalf("round %d after DownTo(0): functions %v", round, f)
		}
	}
}

// TestWithoutUDF: an application with no trigger-sourced model migrates a
// server that has no UDF library.
func TestWithoutUDF(t *testing.T) {
	t.Parallel()
	db := testenv.StartMariaDB(t, testenv.WithoutBinlog()).DB("app")
	ctx := context.Background()
	if err := UpRowgear(ctx, db); err == nil || !strings.Contains(err.Error(), "00099_gearman_udf.sql") {
		t.Fatalf("Up with the UDF on a server without its library: %v, want an error naming 00099", err)
	}
	res, err := Up(ctx, db, Rowgear().WithoutUDF())
	if err != nil {
		t.Fatal(err)
	}
	if tables(t, db, "rowgear_failed_jobs", "rowgear_binlog_position", "rowgear_row_seq") != 3 {
		t.Errorf("tables missing after Up without the UDF (ran %d)", len(res))
	}
	var sb strings.Builder
	if err := Status(ctx, db, &sb, Rowgear().WithoutUDF()); err != nil || strings.Contains(sb.String(), "udf") || strings.Contains(sb.String(), "gearman_ring") || strings.Contains(sb.String(), "Pending") {
		t.Errorf("status without the UDF (%v):\n%s", err, sb.String())
	}
}
