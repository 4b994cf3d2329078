package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
// every job in it and in all earlier batches is handled.
type batch struct {
	pending atomic.Int64 // jobs not yet handled
	closed  bool         // pos and ts are final; no more jobs join (guarded by tracker.mu)
	pos     Position
	ts      uint32 // commit timestamp of the transaction that ends here
	firstTS uint32 // timestamp of its first change (guarded by tracker.mu)
	next    *batch
}

// tracker orders batches and computes the position that is safe to save:
// the minimum handled point across all submitters. ("acked" below means
// handled: a worker answered the job, see submitters.)
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

// submitters are N lanes, each submitting its own queue in order. A row
// always goes to the same queue (by table and primary key), so the changes
// of one row reach gearmand in commit order.
//
// Jobs are foreground jobs: a lane waits only for JOB_CREATED before it
// submits the next one, and keeps up to window events in flight, their
// results coming back asynchronously on the client's connections. An
// event is handled, and its batch's pending count drops, only when a
// worker answered its job: WORK_COMPLETE, or WORK_FAIL after the worker's
// WORK_WARNING (rowgear's worker sends its error so; under the retry guard
// it answers only once the failure is stored as a retry or a dead letter,
// and leaves the job to gearmand when it cannot store it). A job whose
// result cannot come any more (the connection or gearmand went away:
// gearman.ErrLostResult; gearmand drops a lost client's foreground jobs,
// and a killed gearmand with its memory queue loses them all) is submitted
// again with the same unique key, in its lane's order, until a worker
// answers it. A bare WORK_FAIL (no worker message: gearmand's own retry
// limit, -j, after workers died holding the job, or a worker of another
// kind) is resent too, and after bareFailResends such answers stored as a
// dead letter of its function (rowgear_failed_jobs; `dead retry` sends it
// again) so that one poison job cannot hold the position for ever.
type submitters struct {
	client   *gearman.Client
	lanes    []*lane
	maxBatch int // the most jobs of one group sent as one batch job
	window   int // events a lane keeps in flight (accepted, not yet handled)
	log      *slog.Logger
	verbose  bool
	wg       sync.WaitGroup // lanes and their jobs' waits

	published atomic.Int64 // events accepted by gearmand (JOB_CREATED), counted once each
	handled   atomic.Int64 // events a worker answered (their position may be saved)
	failed    atomic.Int64 // of those, events whose job the worker failed (WORK_FAIL)
	resent    atomic.Int64 // jobs submitted again after a lost result or a bare WORK_FAIL
	inflight  atomic.Int64 // events enqueued, not yet handled
	failing   atomic.Bool  // gearmand refused the last submit
	observer  Observer
	gate      func() error // checked before each submit: the HA lease (nil: open)
	// deadLetter stores a job as a dead letter of fn (nil: never; the job
	// is resent for ever).
	deadLetter func(ctx context.Context, fn, unique, reason string, payload []byte) error
}

const queueLen = 512

// ackWindow is how many events a lane keeps accepted but not yet handled:
// it bounds the bridge's memory and gearmand's, and a worker that is slow
// or away holds the binlog reader back (through the queues) as a slow
// gearmand does. A batch job may take it over by its size.
const ackWindow = 1000

// bareFailResends is how many bare WORK_FAILs a job gets before the bridge
// stores it as a dead letter.
const bareFailResends = 5

// HandledObserver is an Observer that also hears when a worker answered
// an event's job (package metrics' rowgear_bridge_events_handled_total):
// d after the bridge read the event. Published, by contrast, is gearmand's
// acceptance (JOB_CREATED).
type HandledObserver interface {
	Handled(table, op string, d time.Duration)
}

// lane is one queue and the jobs it has in flight; only its goroutine
// touches flying and inWin.
type lane struct {
	q          chan *job
	done, lost chan *flight       // from the jobs' waits: answered; to submit again
	flying     map[string]*flight // by unique key: accepted, not yet answered
	inWin      int                // events in flying
	seq        uint64
}

// flight is one gearman job in flight: a single event or a batch job.
type flight struct {
	jobs            []*job // handled when it completes: its group, and re-reads of it attached meanwhile
	fn, unique, key string
	payload         []byte
	seq             uint64 // order of first submission in its lane: resends keep it
	bareFails       int
	err             error     // the last answer's failure (set by its wait)
	workerFailed    bool      // answered WORK_FAIL with the worker's message
	sent            time.Time // when the accepted attempt went out, for the log
	published       bool
}

func newSubmitters(c *gearman.Client, n, batch int, log *slog.Logger, verbose bool) *submitters {
	s := &submitters{client: c, log: log, verbose: verbose, maxBatch: max(batch, 1), window: ackWindow}
	for range n {
		s.lanes = append(s.lanes, &lane{q: make(chan *job, queueLen), flying: map[string]*flight{},
			done: make(chan *flight, ackWindow), lost: make(chan *flight, ackWindow)})
	}
	return s
}

// start runs the lanes until their queues are closed and everything they
// took is handled, or ctx ends (what is left then is simply not handled).
func (s *submitters) start(ctx context.Context) {
	for _, l := range s.lanes {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, l)
		}()
	}
}

// run is one lane: it submits its queue in order, keeps at most the window
// in flight, takes the answers, and resubmits lost jobs (before any new
// one, in their first order) with backoff.
func (s *submitters) run(ctx context.Context, l *lane) {
	var next *job // taken from the queue, not yet submitted
	open := true
	var lost []*flight
	backoff := 50 * time.Millisecond
	take := func(f *flight, isLost bool) {
		if isLost {
			lost = append(lost, f)
			return
		}
		s.finish(l, f)
		backoff = 50 * time.Millisecond
	}
	drain := func() {
		for {
			select {
			case f := <-l.done:
				take(f, false)
			case f := <-l.lost:
				take(f, true)
			default:
				return
			}
		}
	}
	for {
		drain()
		if len(lost) > 0 {
			// The other jobs of a broken connection report their loss
			// meanwhile, so that they go again in their order.
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			drain()
			slices.SortFunc(lost, func(a, b *flight) int { return cmp.Compare(a.seq, b.seq) })
			again := lost
			lost = nil
			for _, f := range again {
				if !s.resend(ctx, l, f) {
					return
				}
			}
			continue
		}
		if next != nil && l.inWin < s.window {
			group, nx := s.gather(l.q, next)
			next = nx
			if !s.submit(ctx, l, group) {
				return
			}
			continue
		}
		if !open && next == nil && l.inWin == 0 {
			return
		}
		var q chan *job
		if open && next == nil && l.inWin < s.window {
			q = l.q
		}
		select {
		case f := <-l.done:
			take(f, false)
		case f := <-l.lost:
			take(f, true)
		case j, ok := <-q:
			if !ok {
				open = false
			} else {
				next = j
			}
		case <-ctx.Done():
			return
		}
	}
}

// enqueue blocks while the queue is full: that is the backpressure that
// stops the binlog reader while gearmand (or the workers) are slow or down.
func (s *submitters) enqueue(ctx context.Context, shard uint64, j *job) error {
	s.inflight.Add(1)
	select {
	case s.lanes[shard%uint64(len(s.lanes))].q <- j:
		return nil
	case <-ctx.Done():
		s.inflight.Add(-1)
		return ctx.Err()
	}
}

// close lets the submitters finish their queues.
func (s *submitters) close() {
	for _, l := range s.lanes {
		close(l.q)
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

// submit sends one job (or a batch job of a group's jobs, in their order)
// and returns once gearmand created it; false if ctx ended or the lease
// was lost first. A job whose unique key is in flight already (the same
// events read again after the stream restarted) is not sent twice: on one
// connection gearman-go would drop the first one's result. Its events are
// handled with that job.
func (s *submitters) submit(ctx context.Context, l *lane, group []*job) bool {
	j := group[0]
	f := &flight{jobs: group, fn: j.fn, unique: j.id, key: j.key, payload: j.payload}
	if len(group) > 1 {
		// The unique key names the batch's first event and its size, so a
		// batch read again after a restart is coalesced with itself only.
		f.fn, f.unique = j.group, capID(fmt.Sprintf("%s+%d", j.id, len(group)))
		envs := make([][]byte, len(group))
		for i, g := range group {
			envs[i] = g.payload
		}
		f.payload = eventwire.EncodeBatch(envs)
	}
	l.inWin += len(group)
	if in := l.flying[f.unique]; in != nil {
		in.jobs = append(in.jobs, group...)
		s.accepted(group, f.fn, in.sent)
		return true
	}
	l.seq++
	f.seq = l.seq
	l.flying[f.unique] = f
	return s.send(ctx, l, f)
}

// resend submits a lost job again, or stores it as a dead letter once
// gearmand failed it bareFailResends times.
func (s *submitters) resend(ctx context.Context, l *lane, f *flight) bool {
	if f.bareFails >= bareFailResends && s.deadLetter != nil {
		reason := fmt.Sprintf("failed %d times with no worker's message (gearmand's retry limit, or a worker that sends a bare WORK_FAIL): %v",
			f.bareFails, f.err)
		err := s.deadLetter(context.WithoutCancel(ctx), f.fn, f.unique, reason, f.payload)
		if err == nil {
			s.log.Error("job stored as a dead letter (see `dead list`)", "fn", f.fn, "id", f.unique, "reason", reason)
			f.err, f.workerFailed = nil, false
			s.finish(l, f)
			return true
		}
		s.log.Error("storing the dead letter failed; sending the job again", "fn", f.fn, "id", f.unique, "error", err)
	}
	s.resent.Add(1)
	s.log.Warn("job lost before a worker answered; sending it again", "fn", f.fn, "id", f.unique, "error", f.err)
	return s.send(ctx, l, f)
}

// send retries with backoff until gearmand creates the job, then leaves
// its result to a goroutine (wait) that reports to the lane.
func (s *submitters) send(ctx context.Context, l *lane, f *flight) bool {
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if s.gate != nil && s.gate() != nil {
			return false // the lease is lost: publish nothing more
		}
		created, early := make(chan struct{}), make(chan error, 1)
		f.sent = time.Now()
		s.wg.Add(1)
		go s.wait(ctx, l, f, created, early)
		var err error
		select {
		case <-created:
			if s.failing.Swap(false) {
				s.log.Info("gearmand accepts jobs again", "fn", f.fn, "id", f.unique)
			}
			if !f.published {
				f.published = true
				s.accepted(f.jobs, f.fn, f.sent)
			}
			return true
		case err = <-early:
		case <-ctx.Done():
			return false
		}
		if ctx.Err() != nil {
			return false
		}
		if !s.failing.Swap(true) || attempt%20 == 0 {
			level := slog.LevelWarn
			if !errors.Is(err, gearman.ErrUnavailable) {
				level = slog.LevelError
			}
			s.log.Log(ctx, level, "submit failed; retrying without advancing", "fn", f.fn, "id", f.unique,
				"attempt", attempt+1, "error", err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// wait runs one foreground submit: until JOB_CREATED the lane waits on
// created (closed) or early (the submit's error); then it waits for the
// worker's answer and hands the flight to the lane, answered or lost.
func (s *submitters) wait(ctx context.Context, l *lane, f *flight, created chan struct{}, early chan error) {
	defer s.wg.Done()
	isCreated := false
	_, err := s.client.Task(ctx, f.fn, f.payload, gearman.Normal, gearman.Unique(f.unique), gearman.Key(f.key),
		gearman.OnCreated(func(string) { isCreated = true; close(created) }))
	if !isCreated {
		early <- err
		return
	}
	if ctx.Err() != nil {
		return // the lane is gone; what it held is not handled
	}
	ch := l.done
	var je *gearman.JobError
	switch {
	case err == nil:
		f.err, f.workerFailed = nil, false
	case errors.As(err, &je) && je.Msg != "":
		// The worker answered with its error: it is handled (under the
		// retry guard, stored as a retry or a dead letter).
		f.err, f.workerFailed = err, true
	case errors.As(err, &je):
		f.err, f.bareFails = err, f.bareFails+1
		ch = l.lost
	default: // gearman.ErrLostResult: no answer will come
		f.err = err
		ch = l.lost
	}
	select {
	case ch <- f:
	case <-ctx.Done():
	}
}

// accepted counts events gearmand accepted (once each) and logs them.
func (s *submitters) accepted(group []*job, fn string, sent time.Time) {
	for _, j := range group {
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
}

// finish marks a flight's events handled: their batches may pass.
func (s *submitters) finish(l *lane, f *flight) {
	delete(l.flying, f.unique)
	l.inWin -= len(f.jobs)
	ho, _ := s.observer.(HandledObserver)
	for _, j := range f.jobs {
		j.batch.pending.Add(-1)
		s.inflight.Add(-1)
		s.handled.Add(1)
		if ho != nil {
			ho.Handled(j.table, j.op, time.Since(j.read))
		}
	}
	if f.workerFailed {
		s.failed.Add(int64(len(f.jobs)))
	}
	if s.verbose {
		args := []any{"fn", f.fn, "id", f.unique, "events", len(f.jobs)}
		if f.err != nil {
			args = append(args, "worker_error", f.err)
		}
		s.log.Info("handled", args...)
	}
}
