package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
)

// BenchmarkOverview: the overview page with 10,000 dead letters over 200
// functions that gearmand lists (a worker has them), status collected
// afresh every time (no cache), as an operator's first load.
func BenchmarkOverview(b *testing.B) {
	srv, db, cfg := newConsole(b, "t")
	const fns, dead = 200, 10000
	w := gearman.NewWorker(cfg.Servers["default"], gearman.WithIdleTimeout(-1), gearman.WithMaxJobs(0))
	for i := range fns {
		w.Register(fmt.Sprintf("%s.M%03d.insert", cfg.Namespace, i), func(context.Context, *gearman.Job) (any, error) { return nil, nil })
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	if _, err := db.Exec(fmt.Sprintf(`INSERT INTO rowgear_failed_jobs (state, function, job_key, attempts, errors, payload, due_at)
		SELECT 'dead', CONCAT(?, '.M', LPAD(seq %% %d, 3, '0'), '.insert'), CONCAT('binlog.000001:', seq), 3,
		'[{"at":"2026-01-01T00:00:00Z","attempt":3,"error":"handler failed: deadlock found"}]',
		CONCAT('{"v":1,"id":"e', seq, '","model":"M","op":"insert","pk":{"id":', seq, '},"row":{"id":', seq, ',"title":"a row of some length"}}'), NOW(6)
		FROM seq_0_to_%d`, fns, dead-1), cfg.Namespace); err != nil {
		b.Fatal(err)
	}
	c := srv.Config.Handler.(*Console)
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %s", path, resp.Status)
		}
		return string(body)
	}
	testenv.Eventually(b, 30*time.Second, "gearmand to list the 200 functions", func() bool {
		c.statusMu.Lock()
		c.statusRep = nil
		c.statusMu.Unlock()
		return strings.Count(get("/"), `data-workers="1"`) == fns
	})
	b.Run("overview", func(b *testing.B) {
		for b.Loop() {
			c.statusMu.Lock()
			c.statusRep = nil // no cache: Collect every time
			c.statusMu.Unlock()
			get("/")
		}
	})
	b.Run("dead-letters", func(b *testing.B) {
		for b.Loop() {
			get("/dead?model=M007")
		}
	})
}
