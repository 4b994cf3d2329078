package dispatch_test

import (
	"context"
	"fmt"
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

// Middleware wraps every function Mount registers; the first added is the
// outermost.
func ExampleRegistry_Use() {
	trace := func(name string) dispatch.Middleware {
		return func(next gearman.Handler) gearman.Handler {
			return func(ctx context.Context, job *gearman.Job) (any, error) {
				fmt.Println(name, "before", job.Function)
				out, err := next(ctx, job)
				fmt.Println(name, "after", job.Function)
				return out, err
			}
		}
	}
	reg := dispatch.NewRegistry()
	reg.Use(trace("outer"), trace("inner"))
	reg.HandleFunc("Worker1.reverse", func(ctx context.Context, job *gearman.Job) (any, error) {
		fmt.Println("handler")
		return nil, nil
	})
	cfg, err := config.Parse("gearman.yml", []byte("all:\n  worker:\n    example1:\n      reverse: [Worker1, reverse]\n"), "")
	if err != nil {
		log.Fatal(err)
	}
	mounted := mountTable{}
	if _, err := reg.Mount(mounted, cfg, "example1", nil); err != nil {
		log.Fatal(err)
	}
	mounted["reverse"](context.Background(), &gearman.Job{Function: "reverse"})
	// Output:
	// outer before reverse
	// inner before reverse
	// handler
	// inner after reverse
	// outer after reverse
}

// mountTable keeps what Mount registers, in place of a gearman worker.
type mountTable map[string]gearman.Handler

func (m mountTable) Register(fn string, h gearman.Handler) { m[fn] = h }

// Search is an application's service that handlers need.
type Search struct{ Index string }

// Doc's handlers reach the search service through a field its constructor
// sets: no package globals.
type Doc struct {
	dispatch.Record
	search *Search
	ID     uint64 `db:"id,pk"`
}

func (d *Doc) TriggerInsert(ctx context.Context) error {
	fmt.Printf("index doc %d in %s\n", d.ID, d.search.Index)
	return nil
}

// A constructor gives each record its dependencies before the row is
// decoded over it.
func ExampleConstructor() {
	search := &Search{Index: "docs-v2"}
	reg := dispatch.NewRegistry()
	err := dispatch.Register[Doc](reg, "Doc",
		dispatch.Constructor(func() *Doc { return &Doc{search: search} }))
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := config.Parse("gearman.yml", []byte("all:\n  models:\n    Doc: {table: docs, events: [insert]}\n"), "")
	if err != nil {
		log.Fatal(err)
	}
	mounted := mountTable{}
	if _, err := reg.Mount(mounted, cfg, "", nil); err != nil {
		log.Fatal(err)
	}
	ev := []byte(`{"v":1,"id":"e1","source":"trigger","schema":"app","table":"docs","model":"Doc","op":"insert",` +
		`"pk":{"id":42},"row":{"id":42},"modified":["id"],"ts":"2026-11-28T08:00:00.000000Z"}`)
	if _, err := mounted["rowgear.Doc.insert"](context.Background(), &gearman.Job{Function: "rowgear.Doc.insert", Workload: ev}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// index doc 42 in docs-v2
}
