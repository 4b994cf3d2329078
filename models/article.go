package models

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/rowgear/rowgear/dispatch"
)

// Article is a row of the articles table.
type Article struct {
	dispatch.Record
	log *slog.Logger // set by Register's constructor

	ID          uint64     `db:"id,pk"`
	Title       string     `db:"title"`
	Body        string     `db:"body"`
	PublishedAt *time.Time `db:"published_at"`
	CreatedAt   time.Time  `db:"created_at"`
}

// TriggerInsert runs for each new article.
func (a *Article) TriggerInsert(ctx context.Context) error {
	a.log.InfoContext(ctx, "Article.TriggerInsert", "id", a.ID, "title", a.Title, "event", a.Event().ID)
	return nil
}

// TriggerUpdate runs for each changed article; modified names the changed
// columns. Only a new title needs the search index refreshed.
func (a *Article) TriggerUpdate(ctx context.Context, modified []string) error {
	reindex := slices.Contains(modified, "title")
	a.log.InfoContext(ctx, "Article.TriggerUpdate", "id", a.ID, "title", a.Title,
		"modified", modified, "reindex", reindex, "event", a.Event().ID)
	return nil
}

// TriggerDelete runs for each deleted article. The record is a ghost: it
// carries the deleted row, and Refresh would find nothing.
func (a *Article) TriggerDelete(ctx context.Context) error {
	a.log.InfoContext(ctx, "Article.TriggerDelete", "id", a.ID, "title", a.Title, "event", a.Event().ID)
	return nil
}

// Publish is a custom record job: it marks the article published, and
// would tweet and ping when asked. It returns the publication time.
func (a *Article) Publish(ctx context.Context, tweet, ping bool) (time.Time, error) {
	if err := a.Refresh(ctx); err != nil {
		return time.Time{}, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := a.DB().ExecContext(ctx, "UPDATE articles SET published_at = ? WHERE id = ?", now, a.ID); err != nil {
		return time.Time{}, fmt.Errorf("publish article %d: %w", a.ID, err)
	}
	a.PublishedAt = &now
	a.log.InfoContext(ctx, "Article.Publish", "id", a.ID, "title", a.Title, "tweet", tweet, "ping", ping)
	return now, nil
}

// ArticleTable is the articles table: the seed's ArticleTable class.
type ArticleTable struct {
	dispatch.Table
	log *slog.Logger
}

// FeedItem is one entry of the article feed.
type FeedItem struct {
	ID    uint64 `json:"id"`
	Title string `json:"title"`
}

// BuildFeed is a table job: the 20 latest published articles.
func (t *ArticleTable) BuildFeed(ctx context.Context) ([]FeedItem, error) {
	rows, err := t.DB().QueryContext(ctx, "SELECT id, title FROM "+t.Name()+
		" WHERE published_at IS NOT NULL ORDER BY published_at DESC, id DESC LIMIT 20")
	if err != nil {
		return nil, fmt.Errorf("build feed: %w", err)
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
	t.log.InfoContext(ctx, "ArticleTable.BuildFeed", "items", len(feed))
	return feed, rows.Err()
}

// Register binds the example application to reg: the seed's Worker1
// functions, the Comment model and the Article model with its jobs. The
// handlers log through reg.Logger(), which their constructors hand them.
func Register(reg *dispatch.Registry) error {
	log := reg.Logger()
	reg.HandleFunc("Worker1.reverse", Reverse)
	reg.HandleFunc("Worker1.hash", Hash)
	if err := dispatch.Register[Comment](reg, "Comment",
		dispatch.Constructor(func() *Comment { return &Comment{log: log} })); err != nil {
		return err
	}
	return dispatch.Register[Article](reg, "Article",
		dispatch.Constructor(func() *Article { return &Article{log: log} }),
		dispatch.Constructor(func() *ArticleTable { return &ArticleTable{log: log} }),
		dispatch.RecordJob("publish", (*Article).Publish),
		dispatch.TableJob("buildFeed", (*ArticleTable).BuildFeed))
}
