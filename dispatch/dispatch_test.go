package dispatch_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/ids"
	"github.com/rowgear/rowgear/internal/rowmap"
	"github.com/rowgear/rowgear/internal/testenv"
)

// logs captures what the example models report.
type logs struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, m)
	l.mu.Unlock()
	return nil
}

// wait returns the first record with message msg whose attrs match.
func (l *logs) wait(t *testing.T, msg string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var found map[string]any
	testenv.Eventually(t, 60*time.Second, msg, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, r := range l.recs {
			if r["msg"] == msg && match(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// Note is a test model whose handlers report to a channel.
type Note struct {
	dispatch.Record
	Owner string `db:"owner,pk"`
	Num   int64  `db:"num,pk"`
	Text  string `db:"text"`
}

var noteCalls = make(chan *Note, 10)

func (n *Note) TriggerUpdate(ctx context.Context, modified []string) error {
	switch n.Text {
	case "panic":
		panic("note handler panicked")
	case "fail":
		return errors.New("note handler failed")
	case "refresh":
		if err := n.Refresh(ctx); err != nil {
			return err
		}
	}
	noteCalls <- n
	return nil
}

type env struct {
	t      *testing.T
	db     *sql.DB
	cfg    *config.Config
	addr   string
	ns     string
	logs   *logs
	client *gearman.Client
	jobs   *dispatch.Client
	reg    *dispatch.Registry
}

func setup(t *testing.T, yml string) *env {
	t.Helper()
	e := &env{t: t, addr: testenv.Gearman(t), logs: &logs{}}
	var dsn string
	_, dsn = testenv.DB(t)
	db, err := dispatch.OpenDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	for _, ddl := range []string{articlesDDL,
		"CREATE TABLE notes (owner VARCHAR(20) NOT NULL, num BIGINT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (owner, num))"} {
		if _, err := db.Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	e.ns = testenv.Name(t, "ns")
	full := fmt.Sprintf("all:\n  namespace: %s\n  server: {default: %q}\n  models:\n    Article: {table: articles}\n    Note: {table: notes, events: [update]}\n%s", e.ns, e.addr, yml)
	e.cfg, err = config.Parse("test.yml", []byte(full), "")
	if err != nil {
		t.Fatal(err)
	}
	e.reg = dispatch.NewRegistry(dispatch.WithLogger(slog.New(e.logs)))
	if err := registerArticle(e.reg); err != nil {
		t.Fatal(err)
	}
	if err := dispatch.Register[Note](e.reg, "Note"); err != nil {
		t.Fatal(err)
	}
	e.client = gearman.NewClient([]string{e.addr})
	t.Cleanup(func() { e.client.Close() })
	e.jobs = dispatch.NewClient(e.client, e.reg, e.ns)
	return e
}

// run mounts set on a worker and runs it until the test ends.
func (e *env) run(set string) []string {
	e.t.Helper()
	w := gearman.NewWorker([]string{e.addr}, gearman.WithConcurrency(2))
	fns, err := e.reg.Mount(w, e.cfg, set, e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return fns
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// send submits a row event for rec as a source would.
func (e *env) send(model, op string, rec any, old any, modified ...string) string {
	e.t.Helper()
	row, err := events.RowOf(rec)
	if err != nil {
		e.t.Fatal(err)
	}
	pk, _ := rowmap.PK(rec)
	ev := &events.Envelope{V: events.Version, ID: ids.New(), Source: events.SourceTrigger,
		Schema: "test", Table: "t", Model: model, Op: op, PK: pk, Row: row, Modified: modified,
		TS: time.Now().UTC()}
	if old != nil {
		ev.Old, _ = events.RowOf(old)
	}
	if modified == nil {
		ev.Modified = []string{}
	}
	data, err := events.Encode(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.client.Background(e.ctx(), events.FuncName(e.ns, model, op), data, gearman.Normal, gearman.Unique(ev.ID)); err != nil {
		e.t.Fatal(err)
	}
	return ev.ID
}

func (e *env) insertArticle(title string) *Article {
	e.t.Helper()
	res, err := e.db.Exec("INSERT INTO articles (title, body) VALUES (?, 'body')", title)
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	a := &Article{ID: uint64(id)}
	if err := e.db.QueryRow("SELECT title, body, created_at FROM articles WHERE id = ?", id).Scan(&a.Title, &a.Body, &a.CreatedAt); err != nil {
		e.t.Fatal(err)
	}
	return a
}

func TestRowEventsReachArticleHandlers(t *testing.T) {
	e := setup(t, "  doctrine:\n    example2:\n      Article: ~\n")
	e.run("example2")
	a := e.insertArticle("first")
	id := e.send("Article", events.OpInsert, a, nil, "id", "title", "body", "published_at", "created_at")
	e.logs.wait(t, "Article.TriggerInsert", func(r map[string]any) bool { return r["event"] == id && r["title"] == "first" })

	old := *a
	a.Title = "second"
	id = e.send("Article", events.OpUpdate, a, &old, "title")
	r := e.logs.wait(t, "Article.TriggerUpdate", func(r map[string]any) bool { return r["event"] == id })
	if r["title"] != "second" || fmt.Sprint(r["modified"]) != "[title]" || r["id"] != a.ID {
		t.Fatalf("TriggerUpdate got %v", r)
	}
	id = e.send("Article", events.OpDelete, a, nil)
	e.logs.wait(t, "Article.TriggerDelete", func(r map[string]any) bool { return r["event"] == id && r["id"] == a.ID })
}

func TestRefreshAndGhost(t *testing.T) {
	e := setup(t, "  dbworker:\n    notes:\n      Note: ~\n")
	e.run("notes")
	if _, err := e.db.Exec("INSERT INTO notes VALUES ('ann', 7, 'committed text')"); err != nil {
		t.Fatal(err)
	}
	e.send("Note", events.OpUpdate, &Note{Owner: "ann", Num: 7, Text: "refresh"}, &Note{Owner: "ann", Num: 7}, "text")
	select {
	case n := <-noteCalls:
		if n.Text != "committed text" || n.Owner != "ann" || n.Num != 7 {
			t.Fatalf("Refresh loaded %+v", n)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no call")
	}
	// Refresh on a deleted row: ErrNotFound, which fails the job.
	if _, err := e.db.Exec("DELETE FROM notes"); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Task(e.ctx(), events.FuncName(e.ns, "Note", "update"), mustEnvelope(t, &Note{Owner: "ann", Num: 7, Text: "refresh"}), gearman.Normal)
	var je *gearman.JobError
	if !errors.As(err, &je) || !strings.Contains(je.Msg, "record not found") {
		t.Fatalf("Refresh of a deleted row: %v", err)
	}
}

func mustEnvelope(t *testing.T, n *Note) []byte {
	row, _ := events.RowOf(n)
	pk, _ := rowmap.PK(n)
	data, err := events.Encode(&events.Envelope{V: 1, ID: ids.New(), Source: "binlog", Schema: "s", Table: "notes",
		Model: "Note", Op: "update", PK: pk, Row: row, Old: row, Modified: []string{}, TS: time.Now(), Pos: "binlog.000001:4"})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBadJobsFailAndWorkerGoesOn(t *testing.T) {
	e := setup(t, "  dbworker:\n    notes:\n      Note: ~\n")
	e.run("notes")
	fn := events.FuncName(e.ns, "Note", "update")
	for _, tc := range []struct {
		payload []byte
		want    string
	}{
		{[]byte("not json"), "malformed"},
		{[]byte(`{"v":2}`), "version"},
		{mustEnvelope(t, &Note{Owner: "x", Num: 1, Text: "panic"}), "panic: note handler panicked"},
		{mustEnvelope(t, &Note{Owner: "x", Num: 1, Text: "fail"}), "note handler failed"},
	} {
		_, err := e.client.Task(e.ctx(), fn, tc.payload, gearman.Normal)
		var je *gearman.JobError
		if !errors.As(err, &je) || !strings.Contains(je.Msg, tc.want) {
			t.Fatalf("payload %.30q: err %v, want a failed job mentioning %q", tc.payload, err, tc.want)
		}
	}
	// An event sent to the wrong function names its id.
	data := mustEnvelope(t, &Note{Owner: "x", Num: 1, Text: "ok"})
	ev, _ := events.Decode(data)
	ev.Model = "Article"
	data, _ = events.Encode(ev)
	if _, err := e.client.Task(e.ctx(), fn, data, gearman.Normal); err == nil || !strings.Contains(err.Error(), ev.ID) {
		t.Fatalf("misrouted event: %v", err)
	}
	// An outbox trigger's event with no row, which only package ordering
	// completes, fails naming what is missing.
	ev, _ = events.Decode(mustEnvelope(t, &Note{Owner: "x", Num: 1, Text: "ok"}))
	ev.Source, ev.Pos, ev.ReadAt, ev.Row, ev.Old, ev.ReadRow = events.SourceTrigger, "", time.Time{}, nil, nil, true
	data, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Task(e.ctx(), fn, data, gearman.Normal); err == nil || !strings.Contains(err.Error(), "read_row") {
		t.Fatalf("read_row event without ordering: %v, want a failure naming read_row", err)
	}
	if _, err := e.client.Task(e.ctx(), fn, mustEnvelope(t, &Note{Owner: "x", Num: 1, Text: "ok"}), gearman.Normal); err != nil {
		t.Fatalf("good event after bad ones: %v", err)
	}
	<-noteCalls
}

func TestRecordAndTableJobs(t *testing.T) {
	e := setup(t, "  doctrine:\n    example2:\n      Article: [buildFeed, publish, ~]\n")
	e.run("example2")
	ctx := e.ctx()
	a := e.insertArticle("to publish")
	res, err := e.jobs.Task(ctx, a, "publish", false, true)
	if err != nil {
		t.Fatal(err)
	}
	var at time.Time
	if err := res.Decode(&at); err != nil || at.IsZero() {
		t.Fatalf("publish result %q: %v", res.Data, err)
	}
	var stored time.Time
	if err := e.db.QueryRow("SELECT published_at FROM articles WHERE id = ?", a.ID).Scan(&stored); err != nil || !stored.Equal(at) {
		t.Fatalf("published_at = %v (%v), job said %v", stored, err, at)
	}
	e.logs.wait(t, "Article.Publish", func(r map[string]any) bool { return r["id"] == a.ID && r["tweet"] == false && r["ping"] == true })

	b := e.insertArticle("in background")
	if _, err := e.jobs.TaskBackground(ctx, b, "publish", true, false); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "background publish", func() bool {
		var n int
		e.db.QueryRow("SELECT COUNT(*) FROM articles WHERE id = ? AND published_at IS NOT NULL", b.ID).Scan(&n)
		return n == 1
	})
	res, err = e.jobs.Task(ctx, &ArticleTable{}, "buildFeed")
	if err != nil {
		t.Fatal(err)
	}
	var feed []FeedItem
	if err := res.Decode(&feed); err != nil {
		t.Fatal(err)
	}
	if len(feed) != 2 || !slices.ContainsFunc(feed, func(f FeedItem) bool { return f.ID == a.ID && f.Title == "to publish" }) {
		t.Fatalf("feed = %+v", feed)
	}
	// Publishing a deleted article: the job fails, naming why.
	if _, err := e.db.Exec("DELETE FROM articles WHERE id = ?", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.jobs.Task(ctx, a, "publish", false, false); !errors.Is(err, gearman.ErrJobFailed) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("publish of a deleted article: %v", err)
	}
	// Client-side checks: wrong arity, wrong type, unknown job.
	for _, call := range []func() error{
		func() error { _, err := e.jobs.TaskBackground(ctx, b, "publish", true); return err },
		func() error { _, err := e.jobs.TaskBackground(ctx, b, "publish", "yes", false); return err },
		func() error { _, err := e.jobs.TaskBackground(ctx, b, "publsh", true, false); return err },
		func() error {
			_, err := e.jobs.TaskBackground(ctx, ArticleTable{}, "publish", true, false)
			return err
		},
	} {
		if err := call(); err == nil {
			t.Fatal("a bad job call was sent")
		}
	}
}

// The config forms register exactly the right functions, as gearmand sees.
func TestConfigFormsRegisterExactFunctions(t *testing.T) {
	e := setup(t, `  doctrine:
    allEvents:
      Article: ~
    withPublish:
      Article: [publish, ~]
    withFeed:
      Article: [buildFeed, publish, ~]
    onlyUpdate:
      Article: [update]
`)
	fn := func(s ...string) []string {
		var out []string
		for _, x := range s {
			out = append(out, e.ns+".Article."+x)
		}
		if s[0] == "+notes" {
			out = append(out[1:], e.ns+".Note.update", e.ns+".Note.batch")
		}
		slices.Sort(out)
		return out
	}
	for set, want := range map[string][]string{
		// A model whose events a set mounts also gets its batch function.
		"allEvents":   fn("insert", "update", "delete", "batch"),
		"withPublish": fn("insert", "update", "delete", "publish", "batch"),
		"withFeed":    fn("insert", "update", "delete", "publish", "buildFeed", "batch"),
		"onlyUpdate":  fn("update", "batch"),
		"":            fn("+notes", "insert", "update", "delete", "publish", "buildFeed", "batch"), // every model, event and job
	} {
		w := gearman.NewWorker([]string{e.addr})
		got, err := e.reg.Mount(w, e.cfg, set, e.db)
		if err != nil {
			t.Fatalf("set %q: %v", set, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("set %q mounted %v, want %v", set, got, want)
		}
	}
	// gearmand sees exactly those functions, one running worker at a time.
	for _, set := range []string{"allEvents", "withPublish", "withFeed", ""} {
		w := gearman.NewWorker([]string{e.addr})
		want, err := e.reg.Mount(w, e.cfg, set, e.db)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		served := func() []string {
			st, err := testenv.Status(e.ctx(), e.addr)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for f, s := range st {
				if strings.HasPrefix(f, e.ns+".") && s.Available > 0 {
					got = append(got, f)
				}
			}
			slices.Sort(got)
			return got
		}
		testenv.Eventually(t, 60*time.Second, "gearmand to list set "+set, func() bool { return slices.Equal(served(), want) })
		cancel()
		<-done
		testenv.Eventually(t, 60*time.Second, "the worker of set "+set+" to leave", func() bool { return len(served()) == 0 })
	}
}

func TestMountRefusesDisagreement(t *testing.T) {
	e := setup(t, `  doctrine:
    typo:
      Article: [publsh, ~]
    ghost:
      Ghost: ~
`)
	for set, want := range map[string]string{
		"typo":    `no job "publsh"`,
		"ghost":   "model Ghost has no Go type",
		"missing": "unknown worker set",
	} {
		_, err := e.reg.Mount(gearman.NewWorker(nil), e.cfg, set, e.db)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("set %s: err %v, want %q", set, err, want)
		}
	}
	// The config emits delete, the Go type has no handler for it: refused.
	cfg, err := config.Parse("x.yml", []byte("all:\n  models:\n    Note: {table: notes, events: [update, delete]}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Mount(gearman.NewWorker(nil), cfg, "", e.db); !errors.Is(err, dispatch.ErrMismatch) || !strings.Contains(err.Error(), "TriggerDelete") {
		t.Fatalf("missing handler: %v", err)
	}
	// A handler for an event the config does not emit: refused.
	cfg, _ = config.Parse("x.yml", []byte("all:\n  models:\n    Article: {table: articles, events: [update]}\n"), "")
	if _, err := e.reg.Mount(gearman.NewWorker(nil), cfg, "", e.db); !errors.Is(err, dispatch.ErrMismatch) || !strings.Contains(err.Error(), "TriggerInsert") {
		t.Fatalf("extra handler: %v", err)
	}
}

func TestRegisterRejectsBadJobs(t *testing.T) {
	reg := dispatch.NewRegistry()
	type noRecord struct {
		ID int `db:"id,pk"`
	}
	if err := dispatch.Register[noRecord](reg, "X"); !errors.Is(err, dispatch.ErrRegister) {
		t.Fatalf("model without Record: %v", err)
	}
	bad := func(*Note, int) error { return nil }
	if err := dispatch.Register[Note](reg, "N", dispatch.RecordJob("j", bad)); !errors.Is(err, dispatch.ErrRegister) {
		t.Fatalf("job without context: %v", err)
	}
	noErr := func(*Note, context.Context) int { return 0 }
	if err := dispatch.Register[Note](reg, "N2", dispatch.RecordJob("j", noErr)); !errors.Is(err, dispatch.ErrRegister) {
		t.Fatalf("job without error result: %v", err)
	}
	good := func(*Note, context.Context) error { return nil }
	for _, name := range []string{"update", "batch"} { // the functions of row events and of batches
		if err := dispatch.Register[Note](reg, "N3", dispatch.RecordJob(name, good)); !errors.Is(err, dispatch.ErrRegister) {
			t.Fatalf("job named %s: %v", name, err)
		}
	}
}
