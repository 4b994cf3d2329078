package gearman_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/testenv"
)

// sqliteGearmand starts a private gearmand whose queue is a SQLite file, so
// that the jobs it acknowledged survive a kill -9 and a restart.
func sqliteGearmand(t *testing.T) *testenv.Gearmand {
	t.Helper()
	return testenv.StartGearmand(t, "--queue-type=libsqlite3",
		"--libsqlite3-db="+filepath.Join(t.TempDir(), "queue.sqlite"))
}

// seen records, per key, the sequence numbers handled ("key:seq" payloads)
// and which worker handled them.
type seen struct {
	mu    sync.Mutex
	seqs  map[string][]int
	by    map[string]map[string]bool // key -> worker names
	total int
}

func newSeen() *seen { return &seen{seqs: map[string][]int{}, by: map[string]map[string]bool{}} }

func (s *seen) handler(name string) gearman.Handler {
	return func(_ context.Context, j *gearman.Job) (any, error) {
		key, seq, _ := strings.Cut(string(j.Workload), ":")
		n, err := strconv.Atoi(seq)
		if err != nil {
			return nil, fmt.Errorf("workload %q: %w", j.Workload, err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.seqs[key] = append(s.seqs[key], n)
		if s.by[key] == nil {
			s.by[key] = map[string]bool{}
		}
		s.by[key][name] = true
		s.total++
		return nil, nil
	}
}

// missing counts the sequence numbers below n of each key never handled.
func (s *seen) missing(keys []string, n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	miss := 0
	for _, k := range keys {
		got := map[int]bool{}
		for _, q := range s.seqs[k] {
			got[q] = true
		}
		for q := range n {
			if !got[q] {
				miss++
			}
		}
	}
	return miss
}

// TestKeyedJobsKeepToOneServer checks that with two servers up, the jobs of
// one key all go to one server, and that the keys spread over both.
func TestKeyedJobsKeepToOneServer(t *testing.T) {
	g1, g2 := testenv.StartGearmand(t), testenv.StartGearmand(t)
	fn := testenv.Name(t, "keyed")
	s := newSeen()
	for name, addr := range map[string]string{"g1": g1.Addr, "g2": g2.Addr} {
		w := gearman.NewWorker([]string{addr})
		w.Register(fn, s.handler(name))
		startWorker(t, w)
	}
	c := gearman.NewClient([]string{g1.Addr, g2.Addr})
	defer c.Close()
	ctx := context.Background()
	var keys []string
	const perKey = 5
	for k := range 40 {
		key := fmt.Sprintf("row-%d", k)
		keys = append(keys, key)
		for q := range perKey {
			if _, err := c.Background(ctx, fn, key+":"+strconv.Itoa(q), gearman.Normal, gearman.Key(key)); err != nil {
				t.Fatal(err)
			}
		}
	}
	testenv.Eventually(t, 60*time.Second, "every keyed job handled", func() bool { return s.missing(keys, perKey) == 0 })
	s.mu.Lock()
	defer s.mu.Unlock()
	per := map[string]int{}
	for _, k := range keys {
		if len(s.by[k]) != 1 {
			t.Errorf("key %s went to %d servers, want 1: %v", k, len(s.by[k]), s.by[k])
		}
		for name := range s.by[k] {
			per[name]++
		}
	}
	if per["g1"] == 0 || per["g2"] == 0 {
		t.Errorf("keys per server %v: want both servers used", per)
	}
	for _, st := range c.Servers() {
		if !st.Up {
			t.Errorf("server %s reported down: %v", st.Addr, st.Err)
		}
	}
}

// TestKillOneOfTwoServers kills -9 one of two gearmands (SQLite queues) in
// the middle of a load of keyed background jobs, with one worker on both.
// Every submit must succeed (the other server is up), the client must
// report the dead server down and then up again once it is back, and every
// job must be handled at least once: those acknowledged by the killed server
// after its restart.
func TestKillOneOfTwoServers(t *testing.T) {
	g1, g2 := sqliteGearmand(t), sqliteGearmand(t)
	fn := testenv.Name(t, "failover")
	s := newSeen()
	var logs testenv.Buffer // the worker's and the client's
	log := slog.New(slog.NewTextHandler(&logs, nil))
	w := gearman.NewWorker([]string{g1.Addr, g2.Addr}, gearman.WithConcurrency(4), gearman.WithLogger(log))
	w.Register(fn, s.handler("w"))
	startWorker(t, w)

	// A long response timeout: a loaded machine must not pass for a dead server.
	c := gearman.NewClient([]string{g1.Addr, g2.Addr}, gearman.WithConnections(8),
		gearman.WithResponseTimeout(30*time.Second), gearman.WithClientLogger(log))
	defer c.Close()
	const nKeys, perKey = 50, 40 // 2,000 jobs
	var keys []string
	for k := range nKeys {
		keys = append(keys, fmt.Sprintf("row-%d", k))
	}
	ctx := context.Background()
	killed := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, nKeys)
	var submitted sync.WaitGroup
	submitted.Add(nKeys * perKey / 4)
	for _, key := range keys {
		wg.Add(1)
		go func() { // one submitter per key keeps its jobs in order
			defer wg.Done()
			for q := range perKey {
				if q == perKey/2 {
					<-killed
				}
				if _, err := c.Background(ctx, fn, key+":"+strconv.Itoa(q), gearman.Normal, gearman.Key(key)); err != nil {
					errs <- fmt.Errorf("key %s job %d: %w", key, q, err)
					return
				}
				if q < perKey/4 {
					submitted.Done()
				}
			}
		}()
	}
	submitted.Wait()
	g1.Kill()
	close(killed)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a submit failed while the other server was up: %v", err)
	}
	st := c.Servers()
	if st[0].Up || !st[1].Up {
		t.Fatalf("after the kill, Servers() = %+v: want %s down and %s up", st, g1.Addr, g2.Addr)
	}
	// Everything submitted after the kill went to g2 and is handled; what g1
	// acknowledged before waits in its SQLite queue.
	g1.Start()
	testenv.Eventually(t, 60*time.Second, "every job handled after the restart", func() bool {
		return s.missing(keys, perKey) == 0
	})
	// Jobs of keys that prefer g1 bring it back into use.
	testenv.Eventually(t, 60*time.Second, "the client to find "+g1.Addr+" up again", func() bool {
		for _, key := range keys {
			if _, err := c.Background(ctx, fn, key+":0", gearman.Normal, gearman.Key(key)); err != nil {
				t.Fatal(err)
			}
		}
		if c.Servers()[0].Up {
			return true
		}
		time.Sleep(200 * time.Millisecond) // past the client's retry interval soon
		return false
	})
	// The logs say which server went down and came back.
	testenv.Eventually(t, 60*time.Second, "the worker to log its reconnection to "+g1.Addr, func() bool {
		return strings.Contains(logs.String(), `msg="gearman worker connected again" server=`+g1.Addr)
	})
	for _, want := range []string{`msg="gearman server down" server=` + g1.Addr, `msg="gearman server up" server=` + g1.Addr} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the client's log has no %s", want)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := 0
	for _, k := range keys {
		q := s.seqs[k]
		for i := 1; i < len(q); i++ {
			if q[i] < q[i-1] {
				inv++
			}
		}
	}
	t.Logf("%d jobs handled (%d submitted), %d out-of-order pairs within keys (jobs of the killed server run after its restart)",
		s.total, nKeys*perKey, inv)
}
