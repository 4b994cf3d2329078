package dispatch_test

import (
	"context"
	"log"
	"slices"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
)

// Post maps the posts table; models.Post in gearman.yml says what it emits.
type Post struct {
	dispatch.Record
	ID    uint64 `db:"id,pk"`
	Title string `db:"title"`
}

// TriggerUpdate runs for every changed post.
func (p *Post) TriggerUpdate(ctx context.Context, modified []string) error {
	if slices.Contains(modified, "title") {
		// reindex the post
	}
	return nil
}

// Archive is a record job: the worker loads the post by its key.
func (p *Post) Archive(ctx context.Context, reason string) error {
	if err := p.Refresh(ctx); err != nil {
		return err // dispatch.ErrNotFound: the post is gone
	}
	_, err := p.DB().ExecContext(ctx, "UPDATE posts SET archived = 1 WHERE id = ?", p.ID)
	return err
}

// Register a model, mount what a dbworker set names, and run it.
func ExampleRegister() {
	ctx := context.Background()
	cfg, err := config.Load("config/gearman.yml", "prod") // models: Post: {table: posts, events: [update]}
	if err != nil {
		log.Fatal(err)
	}
	reg := dispatch.NewRegistry()
	if err := dispatch.Register[Post](reg, "Post", dispatch.RecordJob("archive", (*Post).Archive)); err != nil {
		log.Fatal(err)
	}
	db, err := dispatch.OpenDB(cfg.Database.DSN)
	if err != nil {
		log.Fatal(err)
	}
	servers, _ := cfg.ServerAddrs("default")
	w := gearman.NewWorker(servers)
	if _, err := reg.Mount(w, cfg, "", db); err != nil { // refuses a config that disagrees
		log.Fatal(err)
	}
	go w.Run(ctx)

	// Application code: archive post 7 in the background.
	jobs := dispatch.NewClient(gearman.NewClient(servers), reg, cfg.Namespace)
	if _, err := jobs.TaskBackground(ctx, &Post{ID: 7}, "archive", "spam"); err != nil {
		log.Fatal(err)
	}
}
