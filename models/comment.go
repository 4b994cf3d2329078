package models

import (
	"context"
	"log/slog"
	"time"

	"github.com/rowgear/rowgear/dispatch"
)

// Comment is a row of the comments table. Its row events come from the
// binlog (models.Comment.source: binlog in gearman.yml, published by
// binlogbridge), not from triggers: the handlers cannot tell the difference.
type Comment struct {
	dispatch.Record
	log *slog.Logger // set by Register's constructor

	ID        uint64    `db:"id,pk"`
	ArticleID uint64    `db:"article_id"`
	Author    string    `db:"author"`
	Body      string    `db:"body"`
	CreatedAt time.Time `db:"created_at"`
}

// TriggerInsert runs for each new comment.
func (c *Comment) TriggerInsert(ctx context.Context) error {
	c.log.InfoContext(ctx, "Comment.TriggerInsert", "id", c.ID, "article_id", c.ArticleID,
		"author", c.Author, "source", c.Event().Source, "event", c.Event().ID)
	return nil
}

// TriggerUpdate runs for each changed comment; modified names the changed
// columns.
func (c *Comment) TriggerUpdate(ctx context.Context, modified []string) error {
	c.log.InfoContext(ctx, "Comment.TriggerUpdate", "id", c.ID, "article_id", c.ArticleID,
		"author", c.Author, "modified", modified, "source", c.Event().Source, "event", c.Event().ID)
	return nil
}

// TriggerDelete runs for each deleted comment (a ghost record: it carries
// the deleted row).
func (c *Comment) TriggerDelete(ctx context.Context) error {
	c.log.InfoContext(ctx, "Comment.TriggerDelete", "id", c.ID, "article_id", c.ArticleID,
		"author", c.Author, "source", c.Event().Source, "event", c.Event().ID)
	return nil
}
