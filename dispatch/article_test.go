package dispatch_test

import (
	"context"
	"fmt"
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

func (a *Article) report(ctx context.Context, what string, attrs ...any) {
	a.log.InfoContext(ctx, "Article."+what, append([]any{"id", a.ID, "title", a.Title}, attrs...)...)
}

func (a *Article) TriggerInsert(ctx context.Context) error {
	a.report(ctx, "TriggerInsert", "event", a.Event().ID)
	return nil
}

func (a *Article) TriggerUpdate(ctx context.Context, modified []string) error {
	a.report(ctx, "TriggerUpdate", "modified", modified, "event", a.Event().ID)
	return nil
}

func (a *Article) TriggerDelete(ctx context.Context) error {
	a.report(ctx, "TriggerDelete", "event", a.Event().ID)
	return nil
}

// Publish is a record job.
func (a *Article) Publish(ctx context.Context, tweet, ping bool) (time.Time, error) {
	if err := a.Refresh(ctx); err != nil {
		return time.Time{}, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := a.DB().ExecContext(ctx, "UPDATE articles SET published_at = ? WHERE id = ?", now, a.ID); err != nil {
		return time.Time{}, fmt.Errorf("publish article %d: %w", a.ID, err)
	}
	a.report(ctx, "Publish", "tweet", tweet, "ping", ping)
	return now, nil
}

type ArticleTable struct {
	dispatch.Table
}

type FeedItem struct {
	ID    uint64 `json:"id"`
	Title string `json:"title"`
}

// BuildFeed is a table job: the published articles.
func (t *ArticleTable) BuildFeed(ctx context.Context) ([]FeedItem, error) {
	rows, err := t.DB().QueryContext(ctx, "SELECT id, title FROM "+t.Name()+" WHERE published_at IS NOT NULL ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	feed := []FeedItem{}
	for rows.Next() {
		var it FeedItem
		if err := rows.Scan(&it.ID, &it.Title); err != nil {
			return nil, err
		}
		feed = append(feed, it)
	}
	return feed, rows.Err()
}

func registerArticle(reg *dispatch.Registry) error {
	log := reg.Logger()
	return dispatch.Register[Article](reg, "Article",
		dispatch.Constructor(func() *Article { return &Article{log: log} }),
		dispatch.RecordJob("publish", (*Article).Publish),
		dispatch.TableJob("buildFeed", (*ArticleTable).BuildFeed))
}
