// Command demo is rowgear's demo writer: the application side of the
// example. It writes articles (whose row events come from triggers) and
// comments (whose row events come from the binlog, via binlogbridge), then
// runs the Article record job publish and the ArticleTable job buildFeed
// through dispatch.Client, as application code would, and prints what it did
// and what the jobs returned. A dbworker running the example2 set
// (`dbworker --config=example2 --count=0 --timeout=-1 --verbose`) does the
// work; its log shows the handlers.
//
// scripts/demo runs it against the private services; docker-compose runs it
// with `docker-compose --profile demo run --rm demo`.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/models"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	file := fs.String("file", envOr("ROWGEAR_CONFIG", "config/gearman.yml"), "path of gearman.yml (env ROWGEAR_CONFIG)")
	env := fs.String("env", envOr("ROWGEAR_ENV", "prod"), "environment section merged over all: (env ROWGEAR_ENV)")
	dsn := fs.String("dsn", "", "database DSN (default: database.dsn of gearman.yml)")
	server := fs.String("server", "default", "gearman connection name from the server: section")
	timeout := fs.Duration("timeout", 30*time.Second, "give up waiting for the worker after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*file, *env)
	if err != nil {
		return err
	}
	if *dsn == "" {
		*dsn = cfg.Database.DSN
	}
	if *dsn == "" {
		return fmt.Errorf("%s: database.dsn is not set and there is no --dsn", cfg.File)
	}
	servers, err := cfg.ServerAddrs(*server)
	if err != nil {
		return err
	}
	db, err := dispatch.OpenDB(*dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	d := &demo{db: db, out: out}

	fmt.Fprintln(out, "== writing rows: articles (events from triggers), comments (events from the binlog)")
	a1, err := d.insert(ctx, "article", "INSERT INTO articles (title, body) VALUES (?, ?)", "Hello rowgear", "Row changes become gearman jobs.")
	if err != nil {
		return err
	}
	a2, err := d.insert(ctx, "article", "INSERT INTO articles (title, body) VALUES (?, ?)", "Second article", "Draft.")
	if err != nil {
		return err
	}
	if err := d.exec(ctx, fmt.Sprintf("updated article %d: title", a1), "UPDATE articles SET title = ? WHERE id = ?", "Hello again, rowgear", a1); err != nil {
		return err
	}
	if err := d.exec(ctx, fmt.Sprintf("updated article %d: body", a2), "UPDATE articles SET body = ? WHERE id = ?", "Final text.", a2); err != nil {
		return err
	}
	c1, err := d.insert(ctx, "comment", "INSERT INTO comments (article_id, author, body) VALUES (?, ?, ?)", a1, "ann", "First!")
	if err != nil {
		return err
	}
	c2, err := d.insert(ctx, "comment", "INSERT INTO comments (article_id, author, body) VALUES (?, ?, ?)", a1, "bob", "Nice.")
	if err != nil {
		return err
	}
	if err := d.exec(ctx, fmt.Sprintf("updated comment %d: body", c1), "UPDATE comments SET body = ? WHERE id = ?", "First! (edited)", c1); err != nil {
		return err
	}
	if err := d.exec(ctx, fmt.Sprintf("deleted comment %d", c2), "DELETE FROM comments WHERE id = ?", c2); err != nil {
		return err
	}

	reg := dispatch.NewRegistry()
	if err := models.Register(reg); err != nil {
		return err
	}
	gc := gearman.NewClient(servers)
	defer gc.Close()
	jobs := dispatch.NewClient(gc, reg, cfg.Namespace)
	wait := fmt.Sprintf("(is `dbworker --config=example2` running against %v?)", servers)

	fmt.Fprintf(out, "== jobs from application code (gearman %v, namespace %s)\n", servers, cfg.Namespace)
	// The seed's $article->taskBackground('publish', array(false, true)).
	h, err := jobs.TaskBackground(ctx, &models.Article{ID: a1}, "publish", false, true)
	if err != nil {
		return fmt.Errorf("publish article %d in the background: %w", a1, err)
	}
	fmt.Fprintf(out, "publish article %d: queued in the background, handle %s\n", a1, h)
	// The same job in the foreground: its result is the publication time.
	res, err := jobs.Task(ctx, &models.Article{ID: a2}, "publish", true, false)
	if err != nil {
		return fmt.Errorf("publish article %d: %w %s", a2, err, wait)
	}
	var at time.Time
	if err := res.Decode(&at); err != nil {
		return fmt.Errorf("publish article %d: result %q: %w", a2, res.Data, err)
	}
	fmt.Fprintf(out, "publish article %d: published at %s\n", a2, at.Format(time.RFC3339Nano))
	// Let the background publish land before the feed is built.
	if err := waitPublished(ctx, db, a1); err != nil {
		return fmt.Errorf("background publish of article %d: %w %s", a1, err, wait)
	}
	// The seed's Doctrine_Core::getTable('Article')->task('buildFeed').
	res, err = jobs.Task(ctx, &models.ArticleTable{}, "buildFeed")
	if err != nil {
		return fmt.Errorf("buildFeed: %w %s", err, wait)
	}
	var feed []models.FeedItem
	if err := res.Decode(&feed); err != nil {
		return fmt.Errorf("buildFeed: result %q: %w", res.Data, err)
	}
	fmt.Fprintf(out, "buildFeed: %d items\n", len(feed))
	for _, it := range feed {
		fmt.Fprintf(out, "  #%d %s\n", it.ID, it.Title)
	}
	return nil
}

type demo struct {
	db  *sql.DB
	out io.Writer
}

func (d *demo) insert(ctx context.Context, what, q string, args ...any) (uint64, error) {
	r, err := d.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("insert %s: %w", what, err)
	}
	id, err := r.LastInsertId()
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(d.out, "inserted %s %d\n", what, id)
	return uint64(id), nil
}

func (d *demo) exec(ctx context.Context, what, q string, args ...any) error {
	if _, err := d.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	fmt.Fprintln(d.out, what)
	return nil
}

func waitPublished(ctx context.Context, db *sql.DB, id uint64) error {
	for {
		var at sql.NullTime
		err := db.QueryRowContext(ctx, "SELECT published_at FROM articles WHERE id = ?", id).Scan(&at)
		if err != nil {
			return err
		}
		if at.Valid {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
