package rowgeartest_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/rowgeartest"
)

// Post is an application's model; its handlers use no database here.
type Post struct {
	dispatch.Record
	ID    int64  `db:"id,pk"`
	Title string `db:"title"`
}

func (p *Post) TriggerInsert(context.Context) error {
	fmt.Printf("insert of post %d %q (source %s)\n", p.ID, p.Title, p.Event().Source)
	return nil
}

var errNoTitle = errors.New("a post needs a title")

func (p *Post) TriggerUpdate(_ context.Context, modified []string) error {
	if p.Title == "" {
		return errNoTitle
	}
	fmt.Printf("update of post %d: %v\n", p.ID, modified)
	return nil
}

// PostTable is the posts table, for table jobs.
type PostTable struct{ dispatch.Table }

func (PostTable) Count(_ context.Context, prefix string) (string, error) {
	return prefix + ": 2 posts", nil
}

func registerPosts(reg *dispatch.Registry) error {
	return dispatch.Register[Post](reg, "Post", dispatch.TableJob("count", (*PostTable).Count))
}

// A test runs a model's handlers on row changes built from Go values, and
// gets each handler's error.
func Example() {
	cfg, err := config.Parse("gearman.yml", []byte(`
all:
  namespace: blog
  dbworker:
    posts: {Post: [count, ~]}
  models:
    Post: {table: posts, events: [insert, update], source: binlog}
`), "")
	if err != nil {
		log.Fatal(err)
	}
	reg := dispatch.NewRegistry()
	if err := registerPosts(reg); err != nil {
		log.Fatal(err)
	}
	w, err := rowgeartest.New(cfg, reg, nil) // a test passes its *sql.DB
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	fmt.Println(w.Insert(ctx, "Post", &Post{ID: 1, Title: "Hello"}))
	fmt.Println(w.Update(ctx, "Post", &Post{ID: 1, Title: "Hello"}, &Post{ID: 1, Title: "Hello, world"}))
	err = w.Update(ctx, "Post", &Post{ID: 1, Title: "Hello"}, &Post{ID: 1})
	fmt.Println(errors.Is(err, errNoTitle))
	err = w.Delete(ctx, "Post", &Post{ID: 1}) // models.Post.events has no delete
	fmt.Println(errors.Is(err, rowgeartest.ErrNotMounted))
	// Output:
	// insert of post 1 "Hello" (source binlog)
	// <nil>
	// update of post 1: [title]
	// <nil>
	// true
	// true
}

// A table job runs as dispatch.Client.Task would send it, and returns the
// method's result.
func ExampleWorker_Job() {
	cfg, err := config.Parse("gearman.yml", []byte(`
all:
  dbworker:
    posts: {Post: [count]}
  models:
    Post: {table: posts, events: [insert, update]}
`), "")
	if err != nil {
		log.Fatal(err)
	}
	reg := dispatch.NewRegistry()
	if err := registerPosts(reg); err != nil {
		log.Fatal(err)
	}
	w, err := rowgeartest.New(cfg, reg, nil)
	if err != nil {
		log.Fatal(err)
	}
	res, err := w.Job(context.Background(), PostTable{}, "count", "today")
	fmt.Println(res, err)
	// Output:
	// today: 2 posts <nil>
}
