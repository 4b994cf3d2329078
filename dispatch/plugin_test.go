package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/gearmanadmin"
	"github.com/rowgear/rowgear/internal/testenv"
)

// With naming: plugin and serializer: php, a Go worker serves record and
// table jobs under sfGearmanPlugin's names (Article.publish@ns), called by
// PHP the way the plugin's Doctrine template calls them (a serialize()d
// {arguments: [...]}, a record named by its primary key) and by
// dispatch.Client.
func TestPluginNamedJobs(t *testing.T) {
	php := testenv.PHP(t)
	e := setup(t, "  naming: plugin\n  serializer: php\n  doctrine:\n    example2:\n      Article: [buildFeed, publish]\n")
	if e.cfg.FunctionSuffix != "@"+e.ns || len(e.cfg.Notes) != 0 {
		t.Fatalf("suffix %q, notes %v", e.cfg.FunctionSuffix, e.cfg.Notes)
	}
	w := gearman.NewWorker([]string{e.addr}, gearman.WithWorkerCodecFor(dispatch.Codecs(e.cfg, "", "example2")))
	fns, err := e.reg.Mount(w, e.cfg, "example2", e.db)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Article.buildFeed@" + e.ns, "Article.publish@" + e.ns}
	if !slices.Equal(fns, want) {
		t.Fatalf("mounted %v, want %v", fns, want)
	}
	startWorker(t, w)
	ctx := e.ctx()
	a := e.insertArticle("from php")

	script := fmt.Sprintf(`$c = new GearmanClient(); $c->addServer("%s", %s); $c->setTimeout(20000);
$r = $c->doNormal("Article.publish@%s", serialize(["arguments" => [true, false], "pk" => ["id" => %d]]));
if ($c->returnCode() != GEARMAN_SUCCESS) { fwrite(STDERR, "publish: ".$c->error()); exit(1); }
$feed = unserialize($c->doNormal("Article.buildFeed@%[3]s", serialize(["arguments" => []])));
echo json_encode(["published" => unserialize($r), "feed" => $feed]);`,
		strings.Split(e.addr, ":")[0], strings.Split(e.addr, ":")[1], e.ns, a.ID)
	cmd := exec.CommandContext(ctx, php, "-r", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("php: %v %s", err, stderr.String())
	}
	var got struct {
		Published time.Time  `json:"published"`
		Feed      []FeedItem `json:"feed"`
	}
	if err := json.Unmarshal(out, &got); err != nil || got.Published.IsZero() || len(got.Feed) != 1 || got.Feed[0].ID != a.ID {
		t.Fatalf("php got %s (%v)", out, err)
	}
	e.logs.wait(t, "Article.Publish", func(r map[string]any) bool { return r["id"] == a.ID && r["tweet"] == true && r["ping"] == false })

	// dispatch.Client with the config sends the same workload to the same names.
	jobs := dispatch.NewClient(e.client, e.reg, "", dispatch.WithConfig(e.cfg))
	b := e.insertArticle("from go")
	res, err := jobs.Task(ctx, b, "publish", false, true)
	if err != nil {
		t.Fatal(err)
	}
	var at time.Time
	if err := res.Decode(&at); err != nil || at.IsZero() {
		t.Fatalf("publish result %q: %v", res.Data, err)
	}
	if !strings.HasPrefix(string(res.Data), "s:") {
		t.Errorf("result %q is not PHP-serialized", res.Data)
	}
}

// dispatch.Client's Priority and Unique reach gearmand: two jobs with one
// unique key are one job, and a High job queued after a Low one runs first.
func TestClientPriorityAndUnique(t *testing.T) {
	e := setup(t, "  doctrine:\n    example2:\n      Article: [publish]\n")
	ctx := e.ctx()
	low, high := e.insertArticle("low"), e.insertArticle("high")
	fn := e.cfg.JobFunction("Article", "publish")
	for _, a := range []*Article{low, low} {
		if _, err := e.jobs.With(dispatch.Priority(gearman.Low), dispatch.Unique(fmt.Sprintf("low-%d", a.ID))).TaskBackground(ctx, a, "publish", false, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.jobs.With(dispatch.Priority(gearman.High)).TaskBackground(ctx, high, "publish", false, false); err != nil {
		t.Fatal(err)
	}
	st, err := gearmanadmin.Status(ctx, e.addr)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(st, func(s gearmanadmin.FuncStatus) bool { return s.Function == fn })
	if i < 0 || st[i].Queued != 2 {
		t.Fatalf("gearmand holds %+v for %s, want 2 jobs (the unique pair coalesced)", st, fn)
	}
	w := gearman.NewWorker([]string{e.addr}) // one job at a time
	if _, err := e.reg.Mount(w, e.cfg, "example2", e.db); err != nil {
		t.Fatal(err)
	}
	startWorker(t, w)
	var lowAt, highAt time.Time
	testenv.Eventually(t, 20*time.Second, "both published", func() bool {
		e.db.QueryRow("SELECT published_at FROM articles WHERE id = ?", low.ID).Scan(&lowAt)
		e.db.QueryRow("SELECT published_at FROM articles WHERE id = ?", high.ID).Scan(&highAt)
		return !lowAt.IsZero() && !highAt.IsZero()
	})
	if !highAt.Before(lowAt) {
		t.Errorf("high job ran at %v, low at %v: want high first", highAt, lowAt)
	}
}

func startWorker(t *testing.T, w *gearman.Worker) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// With naming: plugin, a worker: set's functions get the @namespace
// suffix; a set under both worker: and doctrine: (the plugin's
// gearman.yml.sample) mounts both.
func TestPluginNamedWorkerSet(t *testing.T) {
	e := setup(t, "  naming: plugin\n  worker:\n    example:\n      reverse: [Worker1, reverse]\n  doctrine:\n    example:\n      Article: [publish]\n")
	e.reg.HandleFunc("Worker1.reverse", func(context.Context, *gearman.Job) (any, error) { return "", nil })
	w := gearman.NewWorker([]string{e.addr})
	fns, err := e.reg.Mount(w, e.cfg, "example", e.db)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Article.publish@" + e.ns, "reverse@" + e.ns}; !slices.Equal(fns, want) {
		t.Fatalf("mounted %v, want %v", fns, want)
	}
}
