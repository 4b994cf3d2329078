package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/eventwire"
)

// job is one envelope to submit.
type job struct {
	fn, id, pos string
	group       string // the model's batch function: jobs with the same may travel together
	key         string // the row's: picks its gearmand when there are several
	payload     []byte
	batch       *batch
	table, op   string    // for the observer
	read        time.Time // when the bridge read it
}

// batch groups the jobs of the binlog between two synced positions (one
// transaction, usually). Its position may be saved once it is closed and
// every job in it and in all earlier batches is acknowledged.
type batch struct {
	pending atomic.Int64 // jobs not yet acknowledged
	closed  bool         // pos and ts are final; no more jobs join (guarded by tracker.mu)
	pos     Position
	ts      uint32 // commit timestamp of the transaction that ends here
	firstTS uint32 // timestamp of its first change (guarded by tracker.mu)
	next    *batch
}

// tracker orders batches and computes the position that is safe to save:
// the minimum acknowledged point across all submitters.
type tracker struct {
	mu         sync.Mutex
	head, tail *batch   // head: oldest batch not yet passed; tail: open batch
	acked      Position // everything up to here is acknowledged
	ackedTS    uint32
	read       Position // last closed position: where a restarted stream resumes
}

func newTracker(start Position) *tracker {
	b := &batch{}
	return &tracker{head: b, tail: b, acked: start, read: start}
}

// add attaches a new job to the open batch.
func (t *tracker) add(j *job, ts uint32) {
	t.mu.Lock()
	j.batch = t.tail
	if t.tail.firstTS == 0 {
		t.tail.firstTS = ts
	}
	t.tail.pending.Add(1)
	t.mu.Unlock()
}

// close ends the open batch at p and opens the next one.
func (t *tracker) close(p Position, ts uint32) {
	t.mu.Lock()
	t.tail.pos, t.tail.ts, t.tail.closed = p, ts, true
	t.tail.next = &batch{}
	t.tail = t.tail.next
	t.read = p
	t.mu.Unlock()
}

// advance passes every finished batch at the head and returns the safe
// position, the commit time of its transaction, and the time of the oldest
// change not yet acknowledged (0 if none).
func (t *tracker) advance() (acked Position, ackedTS, oldestTS uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.head != t.tail && t.head.closed && t.head.pending.Load() == 0 {
		t.acked, t.ackedTS = t.head.pos, t.head.ts
		t.head = t.head.next
	}
	if t.head.pending.Load() > 0 { // the loop stopped at unacknowledged work
		oldestTS = t.head.firstTS
	}
	return t.acked, t.ackedTS, oldestTS
}

func (t *tracker) readPos() Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.read
}

// submitters are N goroutines, each submitting its own queue in order. A
// row always goes to the same queue (by table and primary key), so the
// changes of one row reach gearmand in commit order.
type submitters struct {
	client   *gearman.Client
	queues   []chan *job
	maxBatch int // the most jobs of one group sent as one batch job
	log      *slog.Logger
	verbose  bool
	wg       sync.WaitGroup

	published atomic.Int64 // jobs acknowledged by gearmand
	inflight  atomic.Int64 // jobs enqueued, not yet acknowledged
	failing   atomic.Bool  // gearmand refused the last submit
	observer  Observer
	gate      func() error // checked before each submit: the HA lease (nil: open)
}

const queueLen = 512

func newSubmitters(c *gearman.Client, n, batch int, log *slog.Logger, verbose bool) *submitters {
	s := &submitters{client: c, log: log, verbose: verbose, maxBatch: max(batch, 1)}
	for range n {
		s.queues = append(s.queues, make(chan *job, queueLen))
	}
	return s
}

// start runs the submitters until their queues are closed and drained, or
// ctx ends (what is left then is simply not acknowledged).
func (s *submitters) start(ctx context.Context) {
	for _, q := range s.queues {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			var next *job // taken from the queue, not of the last group
			for {
				j := next
				if j == nil {
					var ok bool
					if j, ok = <-q; !ok {
						return
					}
				}
				var group []*job
				group, next = s.gather(q, j)
				if !s.submit(ctx, group) {
					return
				}
			}
		}()
	}
}

// enqueue blocks while the queue is full: that is the backpressure that
// stops the binlog reader while gearmand is slow or down.
func (s *submitters) enqueue(ctx context.Context, shard uint64, j *job) error {
	s.inflight.Add(1)
	select {
	case s.queues[shard%uint64(len(s.queues))] <- j:
		return nil
	case <-ctx.Done():
		s.inflight.Add(-1)
		return ctx.Err()
	}
}

// close lets the submitters finish their queues.
func (s *submitters) close() {
	for _, q := range s.queues {
		close(q)
	}
}

// gather returns j with the jobs of its group already waiting behind it in
// q, up to the batch size, and the first job of another group it took, if
// any. It never waits: a batch forms only from a backlog, so an event that
// finds the queue empty goes out alone at once.
func (s *submitters) gather(q chan *job, j *job) (group []*job, next *job) {
	group = []*job{j}
	for len(group) < s.maxBatch && j.group != "" {
		select {
		case k, ok := <-q:
			if !ok {
				return group, nil
			}
			if k.group != j.group {
				return group, k
			}
			group = append(group, k)
		default:
			return group, nil
		}
	}
	return group, nil
}

// submit retries one job (or a batch job of a group's jobs, in their order)
// with backoff until gearmand acknowledges it; it returns false if ctx
// ended first.
func (s *submitters) submit(ctx context.Context, group []*job) bool {
	j := group[0]
	fn, unique, payload := j.fn, j.id, j.payload
	if len(group) > 1 {
		// The unique key names the batch's first event and its size, so a
		// batch read again after a restart is coalesced with itself only.
		fn, unique = j.group, capID(fmt.Sprintf("%s+%d", j.id, len(group)))
		envs := make([][]byte, len(group))
		for i, g := range group {
			envs[i] = g.payload
		}
		payload = eventwire.EncodeBatch(envs)
	}
	backoff := 50 * time.Millisecond
	var sent time.Time // when the accepted attempt went out, for the log
	for attempt := 0; ; attempt++ {
		if s.gate != nil && s.gate() != nil {
			return false // the lease is lost: publish nothing more
		}
		sent = time.Now()
		_, err := s.client.Background(ctx, fn, payload, gearman.Normal, gearman.Unique(unique), gearman.Key(j.key))
		if err == nil {
			if s.failing.Swap(false) {
				s.log.Info("gearmand accepts jobs again", "fn", fn, "id", unique)
			}
			break
		}
		if ctx.Err() != nil {
			return false
		}
		if !s.failing.Swap(true) || attempt%20 == 0 {
			level := slog.LevelWarn
			if !errors.Is(err, gearman.ErrUnavailable) {
				level = slog.LevelError
			}
			s.log.Log(ctx, level, "submit failed; retrying without advancing", "fn", fn, "id", unique,
				"attempt", attempt+1, "error", err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	for _, j := range group {
		j.batch.pending.Add(-1)
		s.inflight.Add(-1)
		s.published.Add(1)
		if s.observer != nil {
			s.observer.Published(j.table, j.op, time.Since(j.read))
		}
		if s.verbose {
			// sent, not the log line's time: a bridge paused while it
			// waited for gearmand's answer logs it only when it resumes.
			s.log.Info("published", "fn", j.fn, "id", j.id, "pos", j.pos, "in", fn, "sent", sent)
		}
	}
	return true
}
