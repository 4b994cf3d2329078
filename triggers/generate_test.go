package triggers

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/internal/sqlschema"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the generator's output")

// golden compares got with testdata/name.golden (rewriting it with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the generator's output; run go test ./triggers -update and review the diff\n--- got:\n%s", path, got)
	}
}

// articles is the example schema's table (migrations/00001).
func articles() *sqlschema.Table {
	return &sqlschema.Table{Schema: "app", Name: "articles", PK: []string{"id"}, Columns: []sqlschema.Column{
		{Name: "id", DataType: "bigint", Unsigned: true},
		{Name: "title", DataType: "varchar"},
		{Name: "body", DataType: "text"},
		{Name: "published_at", DataType: "datetime", Precision: 6},
		{Name: "created_at", DataType: "datetime", Precision: 6},
	}}
}

// hostile has names that break naive quoting.
func hostile() *sqlschema.Table {
	return &sqlschema.Table{Schema: "app", Name: "we`i'rd\"t\\b;le", PK: []string{"i`d", "k'ey"}, Columns: []sqlschema.Column{
		{Name: "i`d", DataType: "int"},
		{Name: "k'ey", DataType: "varchar"},
		{Name: `back\slash "q"`, DataType: "text"},
		{Name: "ünï €", DataType: "timestamp", Precision: 3},
		{Name: "--", DataType: "blob"},
	}}
}

func generateAll(t *testing.T, spec Spec, tab *sqlschema.Table) []Trigger {
	t.Helper()
	trs, err := Generate(spec, tab)
	if err != nil {
		t.Fatal(err)
	}
	return trs
}

func TestGolden(t *testing.T) {
	golden(t, "articles", Migration(generateAll(t, Spec{Namespace: "rowgear", Mode: Strict, Model: "Article", Table: "articles"}, articles())))
	golden(t, "articles_lenient_columns", Migration(generateAll(t, Spec{Namespace: "app", Mode: Lenient, Model: "Article",
		Table: "articles", Events: []string{"update", "insert"}, Columns: []string{"title", "published_at"}}, articles())))
	golden(t, "hostile", Migration(generateAll(t, Spec{Namespace: "ns", Mode: Strict, Model: "Hostile", Table: hostile().Name}, hostile())))
	golden(t, "articles_outbox", Migration(generateAll(t, Spec{Namespace: "rowgear", Mode: Outbox, Model: "Article", Table: "articles"}, articles())))
}

func TestGenerateIsDeterministic(t *testing.T) {
	spec := Spec{Namespace: "rowgear", Model: "Article", Table: "articles", Events: []string{"delete", "update", "insert"}}
	a := Migration(generateAll(t, spec, articles()))
	for range 5 {
		if b := Migration(generateAll(t, spec, articles())); string(a) != string(b) {
			t.Fatal("two runs differ")
		}
	}
	trs := generateAll(t, spec, articles())
	if len(trs) != 3 || trs[0].Event != "insert" || trs[1].Event != "update" || trs[2].Event != "delete" {
		t.Fatalf("triggers not in insert, update, delete order: %+v", trs)
	}
}

func TestGenerateErrors(t *testing.T) {
	noPK := articles()
	noPK.PK = nil
	odd := articles()
	odd.Columns = append(odd.Columns, sqlschema.Column{Name: "shape", DataType: "mystery"})
	nl := articles()
	nl.Columns = append(nl.Columns, sqlschema.Column{Name: "a\nb", DataType: "int"})
	for _, tc := range []struct {
		name string
		spec Spec
		tab  *sqlschema.Table
		want string
	}{
		{"no pk", Spec{Namespace: "n", Model: "A"}, noPK, "no primary key"},
		{"bad mode", Spec{Namespace: "n", Model: "A", Mode: "loose"}, articles(), "want strict, lenient, outbox"},
		{"bad event", Spec{Namespace: "n", Model: "A", Events: []string{"upsert"}}, articles(), `unknown event "upsert"`},
		{"unknown column", Spec{Namespace: "n", Model: "A", Columns: []string{"nope"}}, articles(), "column nope is not in table"},
		{"unsupported type", Spec{Namespace: "n", Model: "A"}, odd, "type mystery is not supported"},
		{"control char", Spec{Namespace: "n", Model: "A"}, nl, "control character"},
		{"no namespace", Spec{Model: "A"}, articles(), "no namespace"},
		{"bad function name", Spec{Namespace: "n", Model: "Mo'del"}, articles(), "bad function name"},
	} {
		_, err := Generate(tc.spec, tc.tab)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestName(t *testing.T) {
	if got := Name("articles", "update"); got != "rowgear_articles_update" {
		t.Errorf("Name = %q", got)
	}
	long := strings.Repeat("é", 64)
	a, b := Name(long, "update"), Name(long[:len(long)-2]+"x", "update")
	if n := len([]rune(a)); n != 64 {
		t.Errorf("long name has %d characters, want 64: %q", n, a)
	}
	if a == b || !strings.HasSuffix(a, "_update") {
		t.Errorf("long names %q and %q: want distinct, ending in _update", a, b)
	}
}

func TestQuoteString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":  "'plain'",
		"it's":   "'it''s'",
		`a\b`:    "CONVERT(X'615C62' USING utf8mb4)",
		"a\nb":   "CONVERT(X'610A62' USING utf8mb4)",
		"😀":      "'😀'",
		"":       "''",
		"x`y":    "'x`y'",
		"\xff\n": "CONVERT(X'FF0A' USING utf8mb4)",
	} {
		if got := sqlschema.QuoteString(in); got != want {
			t.Errorf("sqlschema.QuoteString(%q) = %s, want %s", in, got, want)
		}
	}
	if got := sqlschema.QuoteIdent("a`b"); got != "`a``b`" {
		t.Errorf("quoteIdent = %s", got)
	}
}

func TestNextMigration(t *testing.T) {
	now := time.Date(2026, 11, 26, 23, 0, 1, 0, time.UTC)
	dir := t.TempDir()
	if p, v, err := NextMigration(dir, "x", now); err != nil || p != filepath.Join(dir, "00001_x.sql") || v != 1 {
		t.Errorf("empty dir: %s %d, %v", p, v, err)
	}
	for _, f := range []string{"00001_a.sql", "00003_b.sql", "notes.txt", "00009_c.go.txt"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	if p, v, _ := NextMigration(dir, "x", now); p != filepath.Join(dir, "00004_x.sql") || v != 4 {
		t.Errorf("numbered dir: %s %d", p, v)
	}
	os.WriteFile(filepath.Join(dir, "20250101000000_d.sql"), nil, 0o644)
	if p, v, _ := NextMigration(dir, "x", now); p != filepath.Join(dir, "20261126230001_x.sql") || v != 20261126230001 {
		t.Errorf("timestamped dir: %s %d", p, v)
	}
	if _, _, err := NextMigration(filepath.Join(dir, "missing"), "x", now); err == nil {
		t.Error("a missing directory: no error")
	}
}
