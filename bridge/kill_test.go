package bridge_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/internal/testenv"
)

// TestKill9UnderLoad kills the binlogbridge process (SIGKILL) in the middle
// of a 50,000-row write load and restarts it: every committed change reaches
// the handler at least once.
func TestKill9UnderLoad(t *testing.T) {
	e, g, start := procEnv(t)
	db := e.db
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20), n INT NOT NULL DEFAULT 0)")
	got := e.collectOn(g.Addr, "Item")
	cmd := start()
	testenv.Eventually(t, 60*time.Second, "the bridge to save its start position", func() bool {
		var n int
		return db.QueryRow("SELECT COUNT(*) FROM "+bridge.PositionTable).Scan(&n) == nil && n == 1
	})

	// 40,000 inserts and 10,000 updates, 100 rows per transaction.
	const inserts, updates = 40000, 10000
	var writing atomic.Bool
	writing.Store(true)
	writerDone := make(chan error, 1)
	go func() {
		defer writing.Store(false)
		writerDone <- writeLoad(db, inserts, updates)
	}()

	testenv.Eventually(t, 60*time.Second, "5,000 events before the kill", func() bool { return got.distinct() >= 5000 })
	stillWriting := writing.Load()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	atKill := got.distinct()
	cmd = start()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	got.wait(t, inserts+updates, 120*time.Second)
	if n := got.distinct(); n != inserts+updates {
		t.Errorf("%d distinct event ids, want %d", n, inserts+updates)
	}
	ins, upd := 0, 0
	for _, ev := range got.events() {
		switch ev.Op {
		case "insert":
			ins++
		case "update":
			upd++
		}
	}
	t.Logf("killed at %d distinct events (writer still running: %v); after restart: %d distinct, %d received (%d redelivered), 0 missing",
		atKill, stillWriting, got.distinct(), got.received(), got.received()-got.distinct())
	if ins < inserts || upd < updates {
		t.Errorf("inserts %d (want ≥ %d), updates %d (want ≥ %d)", ins, inserts, upd, updates)
	}

	// SIGTERM: flush, save, exit 0.
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("bridge exit after SIGTERM: %v", err)
	}
}

// procEnv is a world for the binlogbridge binary: a MariaDB and a gearmand
// of its own, model Item on items, the default position store (a table in
// the source database), and a function that starts the binary (killed at
// the end of the test), logging to a file of the test's.
func procEnv(t *testing.T) (*env, *testenv.Gearmand, func() *exec.Cmd) {
	testenv.Integration(t) // before the build, which a skipped test does not need
	dir := t.TempDir()
	bin := testenv.Build(t, "github.com/rowgear/rowgear/cmd/binlogbridge")
	t.Cleanup(testenv.RemoveBuilds)
	m := testenv.StartMariaDB(t)
	g := testenv.StartGearmand(t)
	e := newEnvOn(t, m.DB("app"), m.DSN+"app", g.Addr, map[string]string{"Item": "items"})
	e.yml = fmt.Sprintf("all:\n  namespace: %s\n  server:\n    default: %s\n  models:\n    Item: {table: items, source: binlog}\n"+
		"  database:\n    dsn: '%s'\n  binlog:\n    server_id: %d\n    stats_interval: 1s\n",
		e.ns, g.Addr, m.DSN+"app", 100000+rand.IntN(1<<30))
	cfgPath := filepath.Join(dir, "gearman.yml")
	if err := os.WriteFile(cfgPath, []byte(e.yml), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "bridge.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() { // the bridge's last words say where it stood
			if data, err := os.ReadFile(logf.Name()); err == nil {
				lines := strings.Split(strings.TrimSpace(string(data)), "\n")
				t.Logf("bridge log, last lines:\n%s", strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
	})
	return e, g, func() *exec.Cmd {
		cmd := exec.Command(bin, "--file", cfgPath, "--concurrency", "4")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
}

func writeLoad(db *sql.DB, inserts, updates int) error {
	const per = 100
	upd := 0
	for i := 0; i < inserts; i += per {
		q := "INSERT INTO items (id, v) VALUES "
		for j := i; j < i+per; j++ {
			if j > i {
				q += ","
			}
			q += fmt.Sprintf("(%d, 'v%d')", j, j)
		}
		if _, err := db.Exec(q); err != nil {
			return err
		}
		// Every fourth batch, update 100 rows already written.
		if (i/per)%4 == 3 && upd < updates {
			if _, err := db.Exec("UPDATE items SET n = n + 1 WHERE id >= ? AND id < ?", upd, upd+per); err != nil {
				return err
			}
			upd += per
		}
	}
	if upd != updates {
		return fmt.Errorf("wrote %d updates, want %d", upd, updates)
	}
	return nil
}
