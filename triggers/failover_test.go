package triggers_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/triggers"
)

// TestTriggersSurviveLosingOneOfTwoGearmands runs strict triggers whose UDF
// has two gearmands (ROWGEAR_GEARMAN_SERVERS=a,b), kills -9 the one in use
// in the middle of a 50,000-row write load and restarts it after the load:
// no statement fails (the UDF moves to the other server), and every
// committed change reaches a worker on both servers at least once — those
// the killed server had queued from its SQLite queue after the restart.
func TestTriggersSurviveLosingOneOfTwoGearmands(t *testing.T) {
	g1 := testenv.StartGearmand(t, "--queue-type=libsqlite3",
		"--libsqlite3-db="+filepath.Join(t.TempDir(), "queue.sqlite"))
	g2 := testenv.StartGearmand(t)
	m := testenv.StartMariaDB(t, testenv.WithUDF(""), testenv.WithoutBinlog(),
		testenv.WithServerEnv("ROWGEAR_GEARMAN_SERVERS="+g1.Addr+","+g2.Addr, "ROWGEAR_GEARMAN_TIMEOUT_MS=2000"))
	db := m.DB("app")
	ctx := context.Background()
	if err := migrations.UpRowgear(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE items (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)"); err != nil {
		t.Fatal(err)
	}
	tab, err := sqlschema.LoadTable(ctx, db, "", "items")
	if err != nil {
		t.Fatal(err)
	}
	ns := testenv.Name(t, "ns")
	trs, err := triggers.Generate(triggers.Spec{Namespace: ns, Mode: triggers.Strict, Model: "Item", Table: "items",
		Events: []string{"insert", "update"}}, tab)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trs {
		if _, err := db.Exec(tr.Create); err != nil {
			t.Fatalf("%s: %v", tr.Name, err)
		}
	}

	// A worker on both servers keeps, per row, the ops in arrival order.
	var mu sync.Mutex
	ids := map[string]bool{}
	ops := map[string][]string{}
	w := gearman.NewWorker([]string{g1.Addr, g2.Addr}, gearman.WithConcurrency(4),
		gearman.WithLogger(slog.New(slog.DiscardHandler)))
	for _, op := range []string{"insert", "update"} {
		w.Register(events.FuncName(ns, "Item", op), func(_ context.Context, j *gearman.Job) (any, error) {
			env, err := events.Decode(j.Workload)
			if err != nil {
				t.Errorf("undecodable payload %q: %v", j.Workload, err)
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			if !ids[env.ID] {
				ids[env.ID] = true
				k := string(env.PK["id"])
				ops[k] = append(ops[k], env.Op)
			}
			return nil, nil
		})
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done })
	distinct := func() int { mu.Lock(); defer mu.Unlock(); return len(ids) }

	// 40,000 inserts and 10,000 updates, 100 rows a statement; g1 (the
	// first server, the UDF's start) is killed after 5,000 rows.
	const inserts, updates, per = 40000, 10000, 100
	failed := 0
	upd := 0
	for i := 0; i < inserts; i += per {
		if i == 5000 {
			g1.Kill()
		}
		q := "INSERT INTO items (id) VALUES "
		for j := i; j < i+per; j++ {
			if j > i {
				q += ","
			}
			q += fmt.Sprintf("(%d)", j)
		}
		if _, err := db.Exec(q); err != nil {
			failed++
			t.Errorf("insert of rows %d..%d failed while %s was up: %v", i, i+per-1, g2.Addr, err)
			continue
		}
		if (i/per)%4 == 3 && upd < updates {
			if _, err := db.Exec("UPDATE items SET n = n + 1 WHERE id >= ? AND id < ?", upd, upd+per); err != nil {
				failed++
				t.Errorf("update of rows %d..%d failed while %s was up: %v", upd, upd+per-1, g2.Addr, err)
			}
			upd += per
		}
		if failed > 3 {
			t.FailNow()
		}
	}
	atEnd := distinct()
	g1.Start()
	testenv.Eventually(t, 300*time.Second, "every committed change handled", func() bool {
		return distinct() >= inserts+updates
	})
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != inserts+updates {
		t.Errorf("%d distinct events, want %d", len(ids), inserts+updates)
	}
	inv := 0
	for _, o := range ops {
		if len(o) == 2 && o[0] == "update" {
			inv++
		}
	}
	t.Logf("g1 killed after 5,000 rows, restarted after the load (%d events handled by then); %d distinct events, %d rows whose update arrived before their insert",
		atEnd, len(ids), inv)
}
