package models_test

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/models"
	"github.com/rowgear/rowgear/rowgeartest"
)

// TestArticleHandlers tests the bundled models' handlers as an application tests its
// own: with rowgeartest, on the bundled models' schema, with no gearmand and no
// worker. publish marks an article published and returns when; buildFeed
// lists it; a title change asks for a reindex.
func TestArticleHandlers(t *testing.T) {
	db, _ := testenv.DB(t)
	ctx := context.Background()
	sub, err := fs.Sub(models.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	// The schema only: the triggers (00002) would send every write to gearmand.
	if err := migrations.UpTo(ctx, db, migrations.Set{Name: "blog", FS: sub, Table: migrations.AppTable}, 1); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("config/gearman.yml", "")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	reg := dispatch.NewRegistry(dispatch.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err := models.Register(reg); err != nil {
		t.Fatal(err)
	}
	w, err := rowgeartest.New(cfg, reg, db, rowgeartest.WithSet("example2"))
	if err != nil {
		t.Fatal(err)
	}

	res, err := db.ExecContext(ctx, "INSERT INTO articles (title, body) VALUES ('Hello', 'Text.')")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	before := time.Now().UTC().Add(-time.Second)
	out, err := w.Job(ctx, &models.Article{ID: uint64(id)}, "publish", false, true)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	at, ok := out.(time.Time)
	if !ok || at.Before(before) {
		t.Fatalf("publish returned %v (%T)", out, out)
	}
	var stored string
	if err := db.QueryRowContext(ctx, "SELECT published_at FROM articles WHERE id = ?", id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if want := at.Format("2006-01-02 15:04:05.000000"); stored != want {
		t.Errorf("published_at %s, publish returned %s", stored, want)
	}
	if _, err := w.Job(ctx, &models.Article{ID: 999}, "publish", false, false); err == nil {
		t.Error("publish of a missing article: no error")
	}

	feed, err := w.Job(ctx, &models.ArticleTable{}, "buildFeed")
	if err != nil {
		t.Fatalf("buildFeed: %v", err)
	}
	if items := feed.([]models.FeedItem); len(items) != 1 || items[0].ID != uint64(id) || items[0].Title != "Hello" {
		t.Errorf("buildFeed: %+v", items)
	}

	old := &models.Article{ID: uint64(id), Title: "Hello", Body: "Text.", CreatedAt: before}
	renamed := *old
	renamed.Title = "Hello again"
	if err := w.Update(ctx, "Article", old, &renamed); err != nil {
		t.Fatalf("update: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "Article.TriggerUpdate") || !strings.Contains(l, "modified=[title]") || !strings.Contains(l, "reindex=true") {
		t.Errorf("the update handler logged:\n%s", l)
	}
}
