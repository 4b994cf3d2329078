package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/internal/status"
	"github.com/rowgear/rowgear/internal/testenv"
)

// haChanges is the size of TestHAStandbyTakesOver's load:
// ROWGEAR_HA_CHANGES, default 100,000 (20,000 with -short).
func haChanges(t *testing.T) int {
	if v := os.Getenv("ROWGEAR_HA_CHANGES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4000 {
			t.Fatalf("ROWGEAR_HA_CHANGES=%q: want a number ≥ 4000", v)
		}
		return n
	}
	if testing.Short() {
		return 20000
	}
	return 100000
}

// haProc is one binlogbridge process of the test, with its own log.
type haProc struct {
	name string
	cmd  *exec.Cmd
	log  string
}

// TestHAStandbyTakesOver runs two binlogbridge processes with binlog.ha
// under 4 writers; the active one is SIGKILLed three times (restarted as a
// standby each time) and SIGSTOPped once for longer than the lease. Every
// change arrives, per row in commit order by seq; no second sees events
// published by two processes; every takeover is under 5 s.
func TestHAStandbyTakesOver(t *testing.T) {
	changes := haChanges(t)
	dir := t.TempDir()
	bin := testenv.Build(t, "github.com/rowgear/rowgear/cmd/binlogbridge")
	t.Cleanup(testenv.RemoveBuilds)
	m := testenv.StartMariaDB(t)
	g := testenv.StartGearmand(t)
	db := m.DB("app")
	e := newEnvOn(t, db, m.DSN+"app", g.Addr, map[string]string{"Item": "items"})
	const ttl = 3 * time.Second
	yml := fmt.Sprintf("all:\n  namespace: %s\n  server:\n    default: %s\n  models:\n    Item: {table: items, source: binlog}\n"+
		"  database:\n    dsn: '%s'\n  binlog:\n    server_id: %d\n    ha: true\n    lease_ttl: %s\n    stats_interval: 5s\n",
		e.ns, g.Addr, m.DSN+"app", 1000+rand.IntN(1<<20), ttl)
	cfgPath := filepath.Join(dir, "gearman.yml")
	if err := os.WriteFile(cfgPath, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	e.exec("CREATE TABLE items (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)")
	got := e.collectOn(g.Addr, "Item")

	var mu sync.Mutex
	var procs []*haProc
	start := func(slot string) *haProc {
		mu.Lock()
		defer mu.Unlock()
		p := &haProc{name: fmt.Sprintf("%s%d", slot, len(procs)+1)}
		p.log = filepath.Join(dir, p.name+".log")
		f, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(bin, "--file", cfgPath, "--concurrency", "4", "--verbose")
		p.cmd.Stdout, p.cmd.Stderr = f, f
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGCONT); p.cmd.Process.Kill(); p.cmd.Wait(); f.Close() })
		procs = append(procs, p)
		return p
	}
	byPid := func(pid int) *haProc {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range procs {
			if p.cmd.Process.Pid == pid {
				return p
			}
		}
		return nil
	}
	// holder is the process holding an unexpired lease (nil: none).
	holder := func() *haProc {
		var h string
		err := db.QueryRow("SELECT holder FROM " + bridge.LeaseTable + " WHERE expires_at > NOW(6)").Scan(&h)
		if err != nil {
			return nil
		}
		parts := strings.Split(h, ":")
		if len(parts) != 3 {
			return nil
		}
		pid, _ := strconv.Atoi(parts[1])
		return byPid(pid)
	}
	standbys := func() int {
		var n int
		db.QueryRow("SELECT COUNT(*) FROM " + bridge.BridgesTable + " WHERE role = 'standby' AND seen_at > NOW(6) - INTERVAL 2 SECOND").Scan(&n)
		return n
	}
	slots := map[string]*haProc{"a": start("a"), "b": start("b")}
	var active *haProc
	testenv.Eventually(t, 30*time.Second, "one bridge to take the lease", func() bool { active = holder(); return active != nil })
	testenv.Eventually(t, 30*time.Second, "the other to stand by", func() bool { return standbys() == 1 })
	// status names the active bridge and the standby.
	cfg, err := config.Parse("ha.yml", []byte(yml), "")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "status to show one active bridge and one standby", func() bool {
		rep, err := status.Collect(context.Background(), cfg, db, status.Options{})
		if err != nil || rep.Bridge == nil {
			return false
		}
		roles := map[string]int{}
		for _, in := range rep.Bridge.Instances {
			roles[in.Role]++
			if in.Holder {
				roles["holder"]++
			}
		}
		if roles["active"] != 1 || roles["standby"] != 1 || roles["holder"] != 1 {
			return false
		}
		var buf bytes.Buffer
		rep.WriteText(&buf)
		t.Logf("status:\n%s", buf.String())
		return true
	})
	// The active bridge saved its start position: every later write is published.
	testenv.Eventually(t, 30*time.Second, "the start position", func() bool {
		var n int
		return db.QueryRow("SELECT COUNT(*) FROM "+bridge.PositionTable).Scan(&n) == nil && n == 1
	})

	// 4 writers, each on its own 250 rows: inserts, then updates of 50
	// rows per transaction, paced over about a minute.
	const writers, rows, per = 4, 250, 50
	quota := changes / writers
	txns := quota / per
	interval := time.Minute / time.Duration(txns)
	updates := make([]map[int]int, writers) // per writer: id → updates
	var wg sync.WaitGroup
	werr := make(chan error, writers)
	for w := range writers {
		updates[w] = map[int]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			base := w * rows
			for k := range txns {
				if d := time.Until(began.Add(time.Duration(k) * interval)); d > 0 {
					time.Sleep(d)
				}
				var err error
				if k < rows/per {
					q := "INSERT INTO items (id) VALUES "
					for i := range per {
						q += fmt.Sprintf("(%d),", base+k*per+i)
					}
					_, err = db.Exec(strings.TrimSuffix(q, ","))
				} else {
					lo := base + (k%(rows/per))*per
					_, err = db.Exec("UPDATE items SET n = n + 1 WHERE id >= ? AND id < ?", lo, lo+per)
					for i := lo; i < lo+per; i++ {
						updates[w][i]++
					}
				}
				if err != nil {
					werr <- err
					return
				}
			}
		}()
	}
	total := writers * txns * per

	var takeovers []time.Duration
	disrupt := func(at float64, stop bool) {
		testenv.Eventually(t, 5*time.Minute, fmt.Sprintf("%.0f%% of the events", at*100), func() bool {
			return got.distinct() >= int(at*float64(total))
		})
		old := holder()
		if old == nil {
			t.Fatal("no bridge holds the lease")
		}
		began := time.Now()
		if stop {
			old.cmd.Process.Signal(syscall.SIGSTOP)
		} else {
			old.cmd.Process.Signal(syscall.SIGKILL)
			old.cmd.Wait()
		}
		var next *haProc
		testenv.Eventually(t, 30*time.Second, "a standby to take over", func() bool {
			next = holder()
			return next != nil && next != old
		})
		d := time.Since(began)
		takeovers = append(takeovers, d)
		t.Logf("%s of %s at %d distinct events: %s active after %s", map[bool]string{true: "SIGSTOP", false: "SIGKILL"}[stop],
			old.name, got.distinct(), next.name, d.Round(time.Millisecond))
		if stop {
			if rest := ttl + 2*time.Second - time.Since(began); rest > 0 {
				time.Sleep(rest) // stopped for longer than the lease, on purpose
			}
			old.cmd.Process.Signal(syscall.SIGCONT)
			testenv.Eventually(t, 30*time.Second, old.name+" to notice it lost the lease", func() bool {
				b, _ := os.ReadFile(old.log)
				return strings.Contains(string(b), "lease lost")
			})
		} else {
			for s, p := range slots {
				if p == old {
					slots[s] = start(s)
				}
			}
		}
		testenv.Eventually(t, 30*time.Second, "a standby again", func() bool { return standbys() == 1 })
	}
	disrupt(0.15, false)
	disrupt(0.35, false)
	disrupt(0.55, false)
	disrupt(0.75, true)

	wg.Wait()
	close(werr)
	for err := range werr {
		t.Fatal(err)
	}
	got.wait(t, total, 5*time.Minute)
	if n := got.distinct(); n != total {
		t.Errorf("%d distinct events, want %d", n, total)
	}

	// Per row, the events sorted by seq are the commits in order: the
	// insert, then n = 1, 2, … each once.
	perRow := map[string][]string{}
	bySeq := map[string]int{}
	seen := map[string]bool{}
	for _, ev := range got.events() {
		if seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		if !gtidID.MatchString(ev.ID) {
			t.Fatalf("event id %q: want a GTID id, binlog.position's default on MariaDB", ev.ID)
		}
		id := string(ev.PK["id"])
		perRow[id] = append(perRow[id], ev.Seq)
		n, _ := strconv.Atoi(string(ev.Row["n"]))
		bySeq[id+"/"+ev.Seq] = n
		if ev.Op == "insert" {
			bySeq[id+"/"+ev.Seq] = 0
		}
	}
	for w := range writers {
		for i := w * rows; i < (w+1)*rows; i++ {
			id := strconv.Itoa(i)
			seqs := perRow[id]
			sort.Strings(seqs)
			if len(seqs) != 1+updates[w][i] {
				t.Fatalf("row %s: %d events, want %d", id, len(seqs), 1+updates[w][i])
			}
			for k, s := range seqs {
				if bySeq[id+"/"+s] != k {
					t.Fatalf("row %s: event %d by seq has n=%d, want %d (commit order)", id, k, bySeq[id+"/"+s], k)
				}
			}
		}
	}

	for _, p := range slots {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for s, p := range slots {
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("bridge %s (%s) after SIGTERM: %v", s, p.name, err)
		}
	}

	// Events published per process per second: never two in one second.
	perSec := map[string][]string{} // second → processes that published in it
	counts := map[string]int{}
	for _, p := range procs {
		secs := publishedSeconds(t, p.log)
		for s, n := range secs {
			perSec[s] = append(perSec[s], p.name)
			counts[p.name] += n
		}
	}
	var overlaps []string
	for s, ps := range perSec {
		if len(ps) > 1 {
			overlaps = append(overlaps, s+" "+strings.Join(ps, "+"))
		}
	}
	sort.Strings(overlaps)
	if len(overlaps) > 0 {
		t.Errorf("seconds in which two bridges published: %v", overlaps)
	}
	slices.Sort(takeovers)
	p50, worst := takeovers[len(takeovers)/2], takeovers[len(takeovers)-1]
	t.Logf("%d changes by %d writers, %d events received (%d again after takeovers); published per process %v; "+
		"%d seconds with publications, 0 with two bridges; takeover p50 %s, max %s (lease ttl %s)",
		total, writers, got.received(), got.received()-total, counts, len(perSec), p50.Round(time.Millisecond), worst.Round(time.Millisecond), ttl)
	if worst >= 5*time.Second {
		t.Errorf("takeover took %s, want < 5 s", worst)
	}
}

// publishedSeconds counts a bridge log's "published" lines per second.
func publishedSeconds(t *testing.T, path string) map[string]int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, " msg=published ") || !strings.HasPrefix(line, "time=") {
			continue
		}
		// When the job went out (sent=), not when its answer was logged: a
		// bridge SIGSTOPped while it waited for gearmand's answer logs the
		// line only after SIGCONT, for a job it published before the stop.
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if _, after, ok := strings.Cut(line, " sent="); ok {
			ts, _, _ = strings.Cut(after, " ")
		}
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		out[tm.UTC().Format("15:04:05")]++
	}
	return out
}
