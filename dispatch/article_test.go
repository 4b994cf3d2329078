package dispatch_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/rowgear/rowgear/dispatch"
)

// The seed README's Article, as an application writes it: its handlers log
// through the logger its constructor gives them.
const articlesDDL = `CREATE TABLE articles (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  title VARCHAR(200) NOT NULL,
  body TEXT NOT NULL,
  published_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`

type Article struct {
	dispatch.Record
	log *slog.Logger

	ID          uint64     `db:"id,pk"`
	Title       string     `db:"title"`
	Body        string     `db:"body"`
	PublishedAt *time.Time `db:"published_at"`
	CreatedAt   time.Time  `db:"created_at"`
}

// report logs what a handler got; event is the row event's id.
func (a *Article) report(ctx context.Context, what string, attrs ...any) error {
	if ev := a.Event(); ev != nil {
		attrs = append(attrs, "event", ev.ID)
	}
	a.log.InfoContext(ctx, "Article."+what, append([]any{"id", a.ID, "title", a.Title}, attrs...)...)
	return nil
}

func (a *Article) TriggerInsert(ctx context.Context) error { return a.report(ctx, "TriggerInsert") }

func (a *Article) TriggerUpdate(ctx context.Context, modified []string) error {
	return a.report(ctx, "TriggerUpdate", "modified", modified)
}

func (a *Article) TriggerDelete(ctx context.Context) error { return a.report(ctx, "TriggerDelete") }

// Publish is a record job: it stamps published_at and returns the stamp.
func (a *Article) Publish(ctx context.Context, tweet, ping bool) (at time.Time, err error) {
	if err = a.Refresh(ctx); err == nil {
		at = time.Now().UTC().Truncate(time.Microsecond)
		_, err = a.DB().ExecContext(ctx, "UPDATE articles SET published_at = ? WHERE id = ?", at, a.ID)
	}
	if err == nil {
		err = a.report(ctx, "Publish", "tweet", tweet, "ping", ping)
	}
	return at, err
}

type ArticleTable struct {
	dispatch.Table
}

type FeedItem struct {
	ID    uint64 `json:"id"`
	Title string `json:"title"`
}

// BuildFeed is a table job: the published articles, as MariaDB lists them.
func (t *ArticleTable) BuildFeed(ctx context.Context) (json.RawMessage, error) {
	var feed json.RawMessage
	err := t.DB().QueryRowContext(ctx, "SELECT COALESCE(JSON_ARRAYAGG(JSON_OBJECT('id', id, 'title', title)), '[]') FROM "+
		t.Name()+" WHERE published_at IS NOT NULL").Scan(&feed)
	return feed, err
}

func registerArticle(reg *dispatch.Registry) error {
	log := reg.Logger()
	return dispatch.Register[Article](reg, "Article",
		dispatch.Constructor(func() *Article { return &Article{log: log} }),
		dispatch.RecordJob("publish", (*Article).Publish),
		dispatch.TableJob("buildFeed", (*ArticleTable).BuildFeed))
}
