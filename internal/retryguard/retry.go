// Package retryguard keeps failed jobs from being lost. gearmand forgets a
// background job once its worker answers WORK_FAIL, and requeues it forever
// when a worker dies holding it. A Guard wraps each handler: a failure is
// written to the database with its error history and re-submitted after an
// exponential backoff; after the last attempt (or a permanent error) it
// lands in the dead-letter table; a job that keeps killing the worker
// process is caught by a crash journal and ends there too.
//
// rowgear's worker (package rowgear), its commands and its console build
// the guard; applications only mark errors with retry.Permanent.
package retryguard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/progress"
	"github.com/rowgear/rowgear/retry"
)

var errCrashed = errors.New("the worker process died while running this job")

// ErrTimeout: a run outlived its policy's timeout.
var ErrTimeout = errors.New("retry: job timed out")

// Failure is one failed run in a job's history.
type Failure struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
}

// header travels in front of a re-submitted job's workload; handlers never
// see it. Its magic starts with a NUL byte, which no JSON workload does.
type header struct {
	Key     string    `json:"key"` // the first run's unique key (event id)
	Attempt int       `json:"attempt"`
	Errors  []Failure `json:"errors"`
}

var magic = []byte("\x00RGR1")

func encode(h header, payload []byte) []byte {
	b, _ := json.Marshal(h) // cannot fail: plain fields
	out := make([]byte, 0, len(magic)+len(b)+1+len(payload))
	out = append(append(append(out, magic...), b...), '\n')
	return append(out, payload...)
}

// decode splits a workload into its header (zero for a first run) and the
// handler's payload.
func decode(w []byte) (header, []byte, error) {
	if !bytes.HasPrefix(w, magic) {
		return header{}, w, nil
	}
	rest := w[len(magic):]
	i := bytes.IndexByte(rest, '\n')
	var h header
	if i < 0 {
		return h, w, errors.New("retry: truncated retry header")
	}
	if err := json.Unmarshal(rest[:i], &h); err != nil {
		return h, w, fmt.Errorf("retry: bad retry header: %w", err)
	}
	return h, rest[i+1:], nil
}

// retryKey is the unique key of attempt n: never the failed run's own, so
// gearmand does not coalesce the retry with it, and at most 64 bytes.
func retryKey(key string, attempt int) string {
	s := fmt.Sprintf(":r%d", attempt)
	if len(key)+len(s) > 64 {
		key = key[:64-len(s)]
	}
	return key + s
}

// backoff is the wait before attempt n+1 (n >= 1): exponential, capped,
// with jitter in [d/2, d] so a burst of failures does not retry in step.
func backoff(p config.RetryPolicy, n int) time.Duration {
	d := p.Backoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Guard wraps handlers with retries, dead letters and crash detection, and
// runs the loop that re-submits due retries.
type Guard struct {
	store     *Store
	client    *gearman.Client
	policy    func(fn string) config.RetryPolicy
	permanent []error
	journal   *Journal
	log       *slog.Logger
	interval  time.Duration
	resend    time.Duration // a resubmitted retry's row is due again after this
	observe   func(fn string, o Outcome)
	stored    func(ctx context.Context, fn string, payload []byte, o Outcome, wait time.Duration)

	mu      sync.Mutex
	crashes map[crashKey]int
}

type crashKey struct{ function, unique string }

// journaledKey marks a context whose job the journal holds.
type journaledKey struct{}

// storedKey marks a context whose run is a stored retry's.
type storedKey struct{}

func isStored(ctx context.Context) bool { b, _ := ctx.Value(storedKey{}).(bool); return b }

// Option configures a Guard.
type Option func(*Guard)

// WithPermanentErrors lists errors (matched with errors.Is) that skip the
// retries, such as a payload that cannot be decoded.
func WithPermanentErrors(errs ...error) Option {
	return func(g *Guard) { g.permanent = append(g.permanent, errs...) }
}

// WithJournal enables crash detection through j.
func WithJournal(j *Journal) Option { return func(g *Guard) { g.journal = j } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(g *Guard) { g.log = l } }

// DefaultResendAfter is how long a resubmitted retry's row waits for its
// run to end before it is resubmitted again (gearmand lost the job, with
// its memory queue): longer than a job waits in the queue and runs.
const DefaultResendAfter = 5 * time.Minute

// WithResendAfter sets how long a resubmitted retry waits for its run to
// end before it is resubmitted again (default DefaultResendAfter).
func WithResendAfter(d time.Duration) Option { return func(g *Guard) { g.resend = d } }

// WithPollInterval sets how often Run looks for due retries (default 250ms).
func WithPollInterval(d time.Duration) Option { return func(g *Guard) { g.interval = d } }

// Outcome is what the guard did with a failed run.
type Outcome string

// Outcomes reported to an observer (WithObserver).
const (
	Retried      Outcome = "retried"       // stored, re-submitted after its backoff
	DeadLettered Outcome = "dead_lettered" // stored as a dead letter
)

// WithObserver calls f each time a failed run of function fn is stored as
// a retry or a dead letter (not when the store failed and the job was left
// to gearmand): metrics count outcomes through it. f must be quick and safe
// for concurrent use.
func WithObserver(f func(fn string, o Outcome)) Option { return func(g *Guard) { g.observe = f } }

// WithStoredHook calls f after a failed run of fn was stored as a retry
// due after wait, or as a dead letter (wait 0), with the handler's payload:
// the worker holds a trigger event's outbox row back meanwhile, so that the
// relay does not send it again beside its retries (package ordering).
func WithStoredHook(f func(ctx context.Context, fn string, payload []byte, o Outcome, wait time.Duration)) Option {
	return func(g *Guard) { g.stored = f }
}

func (g *Guard) observed(fn string, o Outcome) {
	if g.observe != nil {
		g.observe(fn, o)
	}
}

// NewGuard returns a guard storing in store, re-submitting through client,
// with policy giving each function's retry policy (config.Config.RetryFor).
func NewGuard(store *Store, client *gearman.Client, policy func(fn string) config.RetryPolicy, opts ...Option) *Guard {
	g := &Guard{store: store, client: client, policy: policy, log: slog.Default(),
		interval: 250 * time.Millisecond, resend: DefaultResendAfter, crashes: map[crashKey]int{}}
	for _, o := range opts {
		o(g)
	}
	return g
}

// Close removes the guard's journal: after a clean stop no job is running,
// so nothing is left for the next worker to recover.
func (g *Guard) Close() error {
	if g.journal == nil {
		return nil
	}
	return g.journal.Close()
}

// Recover records the jobs that were running in dead workers' journals as
// crashes and loads the crash counts. Call it before the worker runs.
func (g *Guard) Recover(ctx context.Context) error {
	if g.journal != nil {
		for _, c := range g.journal.Orphans() {
			g.log.Warn("a worker died running a job", "function", c.Function, "unique", c.Unique)
			if err := g.store.RecordCrash(ctx, c.Function, c.Unique); err != nil {
				return err
			}
		}
		if err := g.journal.RemoveOrphans(); err != nil {
			return err
		}
	}
	return g.loadCrashes(ctx)
}

func (g *Guard) loadCrashes(ctx context.Context) error {
	m, err := g.store.Crashes(ctx)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.crashes = m
	g.mu.Unlock()
	return nil
}

// Middleware guards next as Wrap does, for the function the job names: the
// guard as a dispatch.Middleware (Registry.Use).
func (g *Guard) Middleware(next gearman.Handler) gearman.Handler {
	return func(ctx context.Context, job *gearman.Job) (any, error) {
		return g.Wrap(job.Function, next)(ctx, job)
	}
}

// Wrap returns h guarded for function fn.
func (g *Guard) Wrap(fn string, h gearman.Handler) gearman.Handler {
	return func(ctx context.Context, job *gearman.Job) (any, error) {
		hdr, payload, herr := decode(job.Workload)
		// A run with a header is a stored retry's (resubmitted, or a
		// replay): its row stays until the run has ended.
		stored := herr == nil && hdr.Key != ""
		ctx = context.WithValue(ctx, storedKey{}, stored)
		if hdr.Key == "" {
			hdr.Key = job.Unique
			if hdr.Key == "" {
				hdr.Key = job.Handle
			}
			hdr.Attempt = 1
		}
		pol := g.policy(fn)
		if herr != nil {
			return nil, g.fail(ctx, fn, hdr, payload, pol, retry.Permanent(herr))
		}
		// gearmand gives a job whose worker died to the next worker at once;
		// the crash count, kept per event across attempts, ends the loop.
		crashes := g.crashCount(fn, hdr.Key)
		for i := range crashes { // into the history, should this run fail too
			hdr.Errors = append(hdr.Errors, Failure{At: time.Now().UTC(), Attempt: i + 1, Error: errCrashed.Error()})
		}
		if crashes >= pol.Attempts {
			hdr.Attempt = crashes
			err := g.dead(ctx, fn, hdr, payload, fmt.Errorf("%w %d times", errCrashed, crashes))
			g.clearCrashes(ctx, fn, hdr.Key)
			return nil, err
		}
		// A run inside another guarded run (an event of a batch job) is
		// covered by that run's journal entry: a crash counts against the
		// job gearmand hands out again, the batch.
		var seq uint64
		journaled := g.journal != nil && ctx.Value(journaledKey{}) == nil
		if journaled {
			seq = g.journal.Start(fn, hdr.Key)
			ctx = context.WithValue(ctx, journaledKey{}, true)
		}
		out, err := g.call(ctx, h, job, payload, pol)
		if err != nil {
			err = g.fail(ctx, fn, hdr, payload, pol, err)
		} else if stored {
			if serr := g.store.Settle(context.WithoutCancel(ctx), fn, hdr.Key); serr != nil {
				// The row stays: its job runs again at its resend time
				// (at least once).
				g.log.Warn("cannot delete a retry that succeeded; it will run again", "function", fn, "key", hdr.Key, "err", serr)
			}
		}
		if journaled { // the run ended, answered or left to gearmand
			g.journal.End(seq)
		}
		if crashes > 0 && !errors.Is(err, gearman.ErrRequeue) {
			g.clearCrashes(ctx, fn, hdr.Key) // it ran to an end: the crashes are history
		}
		return out, err
	}
}

// call runs the handler on the payload alone, under the policy's timeout.
// A handler that ignores its context is left to finish on its own: the job
// is failed at the deadline all the same.
//
// A panic is a failed run like an error: it is recovered here, so that it is
// retried or dead-lettered, not only reported to gearmand (which forgets a
// failed background job).
func (g *Guard) call(ctx context.Context, h gearman.Handler, job *gearman.Job, payload []byte, pol config.RetryPolicy) (any, error) {
	inner := *job
	inner.Workload = payload
	if pol.Timeout <= 0 {
		return g.protect(ctx, h, &inner)
	}
	ctx, cancel := context.WithTimeout(ctx, pol.Timeout)
	defer cancel()
	type res struct {
		out any
		err error
	}
	ch := make(chan res, 1)
	go func() {
		out, err := g.protect(ctx, h, &inner)
		ch <- res{out, err}
	}()
	select {
	case r := <-ch:
		return r.out, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w after %s", ErrTimeout, pol.Timeout)
	}
}

// protect runs h, turning a panic into an error.
func (g *Guard) protect(ctx context.Context, h gearman.Handler, job *gearman.Job) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("job panicked", "function", job.Function, "handle", job.Handle,
				"panic", r, "stack", string(debug.Stack()))
			out, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return h(ctx, job)
}

func (g *Guard) crashCount(fn, key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.crashes[crashKey{fn, key}]
}

func (g *Guard) clearCrashes(ctx context.Context, fn, key string) {
	g.mu.Lock()
	delete(g.crashes, crashKey{fn, key})
	g.mu.Unlock()
	if err := g.store.ClearCrash(context.WithoutCancel(ctx), fn, key); err != nil {
		g.log.Error("cannot clear crash record", "function", fn, "key", key, "err", err)
	}
}

func (g *Guard) isPermanent(err error) bool {
	if errors.Is(err, retry.ErrPermanent) {
		return true
	}
	for _, p := range g.permanent {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// fail records a failed run: a retry after its backoff, or a dead letter.
// It returns the error the worker reports; when the database cannot take
// the record, gearman.ErrRequeue, so that gearmand keeps the job.
func (g *Guard) fail(ctx context.Context, fn string, hdr header, payload []byte, pol config.RetryPolicy, cause error) error {
	hdr.Errors = append(hdr.Errors, Failure{At: time.Now().UTC(), Attempt: hdr.Attempt, Error: cause.Error()})
	if g.isPermanent(cause) || hdr.Attempt >= pol.Attempts {
		return g.dead(ctx, fn, hdr, payload, cause)
	}
	wait := backoff(pol, hdr.Attempt)
	next := hdr
	next.Attempt++
	if err := g.store.Schedule(context.WithoutCancel(ctx), fn, next, payload, wait, isStored(ctx)); err != nil {
		g.log.Error("cannot schedule the retry; leaving the job to gearmand", "function", fn, "key", hdr.Key, "err", err)
		return fmt.Errorf("%w: %w", gearman.ErrRequeue, err)
	}
	g.observed(fn, Retried)
	if g.stored != nil {
		g.stored(context.WithoutCancel(ctx), fn, payload, Retried, wait)
	}
	g.log.Warn("job failed, retry scheduled", "function", fn, "key", hdr.Key,
		"attempt", hdr.Attempt, "of", pol.Attempts, "retry_in", wait, "err", cause)
	return cause
}

// dead writes the dead letter (hdr carries the whole history).
func (g *Guard) dead(ctx context.Context, fn string, hdr header, payload []byte, cause error) error {
	if err := g.store.Dead(context.WithoutCancel(ctx), fn, hdr, payload, isStored(ctx)); err != nil {
		g.log.Error("cannot write the dead letter; leaving the job to gearmand", "function", fn, "key", hdr.Key, "err", err)
		return fmt.Errorf("%w: %w", gearman.ErrRequeue, err)
	}
	g.observed(fn, DeadLettered)
	if g.stored != nil {
		g.stored(context.WithoutCancel(ctx), fn, payload, DeadLettered, 0)
	}
	g.log.Error("job dead-lettered", "function", fn, "key", hdr.Key, "attempts", hdr.Attempt, "err", cause)
	return cause
}

// Run re-submits due retries until ctx ends, and keeps the crash counts
// fresh so that a job that crashed another worker is caught here too.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	refresh := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := g.ResubmitDue(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("re-submitting retries", "err", err)
		}
		if time.Since(refresh) > 2*time.Second {
			refresh = time.Now()
			if err := g.loadCrashes(ctx); err != nil && ctx.Err() == nil {
				g.log.Warn("loading crash counts", "err", err)
			}
		}
	}
}

// ResubmitDue re-submits the retries whose backoff has passed and returns
// how many went out. A row is deleted only in the transaction that saw
// gearmand acknowledge its job.
func (g *Guard) ResubmitDue(ctx context.Context) (int, error) {
	// The transaction outlives a stop, so the rows of jobs gearmand already
	// took are deleted even when ctx ends mid-batch.
	return g.store.takeDue(context.WithoutCancel(ctx), 100, g.resend, func(e Entry) error {
		h := header{Key: e.Key, Attempt: e.Attempts, Errors: e.Errors}
		_, err := g.client.Background(ctx, e.Function, encode(h, e.Payload), gearman.Normal,
			gearman.Unique(retryKey(e.Key, e.Attempts)))
		return err
	})
}

// Replay re-submits dead letters (all of them when ids is empty) with a
// fresh budget of attempts, keeping their error history, and deletes each
// once gearmand acknowledged it. It returns how many went out.
func (g *Guard) Replay(ctx context.Context, ids ...int64) (int, error) {
	return g.replay(ctx, nil, ids)
}

// ReplayProgress is Replay reporting its progress to w (package progress:
// a redrawn line on a terminal, plain lines elsewhere).
func (g *Guard) ReplayProgress(ctx context.Context, w io.Writer, ids ...int64) (int, error) {
	total := int64(len(ids))
	if total == 0 {
		counts, err := g.store.CountDead(ctx)
		if err != nil {
			return 0, err
		}
		for _, n := range counts {
			total += n
		}
	}
	r := progress.New(w, "dead retry", total)
	defer r.Done()
	return g.replay(ctx, r, ids)
}

func (g *Guard) replay(ctx context.Context, r *progress.Reporter, ids []int64) (int, error) {
	return g.store.takeDead(ctx, ids, g.resend, func(e Entry) error {
		h := header{Key: e.Key, Attempt: 1, Errors: e.Errors}
		_, err := g.client.Background(ctx, e.Function, encode(h, e.Payload), gearman.Normal,
			gearman.Unique(retryKey(e.Key, 100+len(e.Errors))))
		if err == nil && r != nil {
			r.Add(1)
		}
		return err
	})
}
