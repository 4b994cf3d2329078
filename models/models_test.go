package models_test

import (
	"context"
	"flag"
	"io/fs"
	"os"
	"testing"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/models"
	"github.com/rowgear/rowgear/triggers"
)

var update = flag.Bool("update", false, "rewrite migrations/"+triggersFile+" from the generator")

const triggersFile = "00002_article_triggers.sql"

// TestTriggersMigrationIsGenerated: the bundled models' 00002 is what `dbworker
// triggers generate` makes of config/gearman.yml's Article against the
// schema of its 00001.
func TestTriggersMigrationIsGenerated(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	sub, err := fs.Sub(models.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	app := migrations.Set{Name: "blog", FS: sub, Table: migrations.AppTable}
	if err := migrations.UpTo(ctx, db, app, 1); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("config/gearman.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := triggers.Specs(cfg, "Article")
	if err != nil {
		t.Fatal(err)
	}
	var all []triggers.Trigger
	for _, s := range specs {
		tab, err := sqlschema.LoadTable(ctx, db, "", s.Table)
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
	path := "migrations/" + triggersFile
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is not what the generator makes of config/gearman.yml now; run go test ./models -run Generated -update and review", path)
	}
}
