package gearman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Job is a job a worker is running: the seed's GearmanJob.
type Job struct {
	Function string
	Handle   string
	Unique   string
	Workload []byte

	conn   *wconn
	worker *Worker
	codec  Codec
}

// Decode unserializes the workload into v with the function's codec (see
// Unserialize for JSON, PHP for sfGearmanPlugin's).
func (j *Job) Decode(v any) error {
	if err := j.Codec().Decode(j.Workload, v); err != nil {
		return fmt.Errorf("%s (%s): %w", j.Function, j.Handle, err)
	}
	return nil
}

// Codec is the codec of the job's function: its workload's and result's.
func (j *Job) Codec() Codec {
	if j.codec == nil {
		return JSON
	}
	return j.codec
}

// SendData sends a partial result (WORK_DATA) to a waiting client.
func (j *Job) SendData(data []byte) error { return j.conn.send(ptWorkData, []byte(j.Handle), data) }

// SendWarning sends a warning (WORK_WARNING) to a waiting client.
func (j *Job) SendWarning(msg string) error {
	return j.conn.send(ptWorkWarning, []byte(j.Handle), []byte(msg))
}

// SendStatus reports progress (WORK_STATUS numerator/denominator).
func (j *Job) SendStatus(num, den uint32) error {
	return j.conn.send(ptWorkStatus, []byte(j.Handle), fmt.Appendf(nil, "%d", num), fmt.Appendf(nil, "%d", den))
}

// Notify logs a trace line for the job, with its workload when the worker is
// verbose: the seed's notifyEventJob.
func (j *Job) Notify(msg string, args ...any) {
	args = append(args, "function", j.Function, "handle", j.Handle)
	if j.worker != nil && j.worker.verbose {
		args = append(args, "workload", truncate(j.Workload))
	}
	j.worker.logger().Info(msg, args...)
}

func truncate(b []byte) string {
	const max = 512
	if len(b) > max {
		return fmt.Sprintf("%s… (%d bytes)", b[:max], len(b))
	}
	return string(b)
}

// Handler runs a job. Its result is serialized as by Serialize and sent to
// the client; an error (or a panic) fails the job and the worker goes on.
type Handler func(ctx context.Context, job *Job) (any, error)

// Worker runs registered handlers for jobs from gearmand: the seed's
// gearman:worker task.
type Worker struct {
	servers     []string
	funcs       map[string]Handler
	concurrency int
	maxJobs     int64
	idle        time.Duration
	jobTimeout  time.Duration
	verbose     bool
	log         *slog.Logger
	id          string
	onConn      func(ConnEvent)
	codecFor    func(fn string) Codec
	suffix      string
	drain       bool
	onIdle      func()
	err         error // the first bad option: Run's error

	idled    atomic.Bool  // Run stopped for want of a job
	drainErr atomic.Value // error: a server WithDrain could not reach
	started  atomic.Int64 // jobs reserved (counted against maxJobs)
	done     atomic.Int64
	running  atomic.Int64
	lastBusy atomic.Int64 // unix nanos of the last job start or end
}

// WorkerOption configures a Worker. An option checks its argument: a bad
// one is Run's error, before it connects.
type WorkerOption func(*Worker) error

// set is an option that cannot be wrong.
func set(f func(*Worker)) WorkerOption {
	return func(w *Worker) error {
		f(w)
		return nil
	}
}

// WithConcurrency sets how many jobs run at once (default 1; at least 1).
func WithConcurrency(n int) WorkerOption {
	return func(w *Worker) error {
		if n < 1 {
			return fmt.Errorf("gearman: WithConcurrency(%d): want 1 or more", n)
		}
		w.concurrency = n
		return nil
	}
}

// WithMaxJobs stops the worker after n jobs (0: never), as the seed's --count.
func WithMaxJobs(n int) WorkerOption {
	return func(w *Worker) error {
		if n < 0 {
			return fmt.Errorf("gearman: WithMaxJobs(%d): want 0 (never) or more", n)
		}
		w.maxJobs = int64(n)
		return nil
	}
}

// WithIdleTimeout stops the worker after d without a job (0 or less:
// never), as the seed's --timeout.
func WithIdleTimeout(d time.Duration) WorkerOption { return set(func(w *Worker) { w.idle = d }) }

// WithDrain makes each connection stop once gearmand has no job for it
// (NO_JOB), and Run return when all have: the worker drains the queue and
// exits, as the seed's worker did with a timeout of 0. A server it cannot
// reach is Run's error then, not redialled.
func WithDrain() WorkerOption { return WithDrainIf(true) }

// WithDrainIf is WithDrain when drain is true.
func WithDrainIf(drain bool) WorkerOption { return set(func(w *Worker) { w.drain = drain }) }

// WithIdleStop calls f when Run returns because no job came: the idle
// timeout passed, or WithDrain found the queue empty.
func WithIdleStop(f func()) WorkerOption { return set(func(w *Worker) { w.onIdle = f }) }

// WithJobTimeout cancels a handler's context after d (0: no limit). It is
// enforced here, not with gearmand's CAN_DO_TIMEOUT, which requeues the job.
func WithJobTimeout(d time.Duration) WorkerOption {
	return func(w *Worker) error {
		if d < 0 {
			return fmt.Errorf("gearman: WithJobTimeout(%s): want 0 (no limit) or more", d)
		}
		w.jobTimeout = d
		return nil
	}
}

// WithVerbose logs every job with its workload.
func WithVerbose(v bool) WorkerOption { return set(func(w *Worker) { w.verbose = v }) }

// WithLogger sets the worker's logger (nil: slog.Default()).
func WithLogger(l *slog.Logger) WorkerOption { return set(func(w *Worker) { w.log = l }) }

// WithClientID sets the id gearmand shows in its admin "workers" list.
func WithClientID(id string) WorkerOption { return set(func(w *Worker) { w.id = id }) }

// ConnEvent is a worker connection coming up or going down.
type ConnEvent struct {
	Server    string
	Up        bool // true: connected and ready; false: an up connection was lost
	Reconnect bool // Up again after a loss (or failed dials) on the same slot
}

// WithConnObserver calls f each time one of the worker's connections comes
// up or an up connection goes down (failed dials are not reported): metrics
// (reconnects) and readiness checks follow the connections through it. f
// must be quick and safe for concurrent use.
func WithConnObserver(f func(ConnEvent)) WorkerOption {
	return set(func(w *Worker) { w.onConn = f })
}

// WithWorkerCodecFor picks the codec of a function's workloads and results
// by its name as registered (before WithWorkerFunctionSuffix); nil or a nil
// result means JSON.
func WithWorkerCodecFor(f func(fn string) Codec) WorkerOption {
	return set(func(w *Worker) { w.codecFor = f })
}

// WithWorkerCodec sets the codec of every function.
func WithWorkerCodec(c Codec) WorkerOption {
	return func(w *Worker) error {
		if c == nil {
			return errors.New("gearman: WithWorkerCodec(nil): want a codec (JSON, PHP)")
		}
		w.codecFor = func(string) Codec { return c }
		return nil
	}
}

// WithWorkerFunctionSuffix registers every function under its name plus
// suffix: "@shop" makes Register("reverse", …) serve reverse@shop, as
// sfGearmanPlugin's namespace does.
func WithWorkerFunctionSuffix(suffix string) WorkerOption {
	return func(w *Worker) error {
		if err := checkSuffix("WithWorkerFunctionSuffix", suffix); err != nil {
			return err
		}
		w.suffix = suffix
		return nil
	}
}

// NewWorker returns a worker for the given "host:port" servers.
func NewWorker(servers []string, opts ...WorkerOption) *Worker {
	w := &Worker{servers: servers, funcs: map[string]Handler{}, concurrency: 1}
	for _, o := range opts {
		if err := o(w); err != nil && w.err == nil {
			w.err = err
		}
	}
	return w
}

func (w *Worker) logger() *slog.Logger {
	if w == nil || w.log == nil {
		return slog.Default()
	}
	return w.log
}

// Register adds a function. Call it before Run.
// With WithWorkerFunctionSuffix, gearmand sees fn plus the suffix.
func (w *Worker) Register(fn string, h Handler) { w.funcs[fn+w.suffix] = h }

func (w *Worker) codec(fn string) Codec {
	if w.codecFor != nil {
		if c := w.codecFor(strings.TrimSuffix(fn, w.suffix)); c != nil {
			return c
		}
	}
	return JSON
}

// Functions lists the registered function names, sorted.
func (w *Worker) Functions() []string {
	names := make([]string, 0, len(w.funcs))
	for n := range w.funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Done returns how many jobs the worker has finished.
func (w *Worker) Done() int64 { return w.done.Load() }

// Run works until ctx is cancelled, the job count is reached or the idle
// timeout passes; a bad option is its error at once. It then stops taking jobs, lets running ones finish and
// report, and returns nil. Lost connections are redialled with backoff.
func (w *Worker) Run(ctx context.Context) error {
	if w.err != nil {
		return w.err
	}
	if len(w.funcs) == 0 {
		return errors.New("gearman: worker has no functions")
	}
	if len(w.servers) == 0 {
		return errors.New("gearman: worker has no servers")
	}
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	w.lastBusy.Store(time.Now().UnixNano())
	sem := make(chan struct{}, w.concurrency)
	var wg sync.WaitGroup
	for _, addr := range w.servers {
		for i := 0; i < w.concurrency; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.loop(stop, cancel, addr, sem, i)
			}()
		}
	}
	if w.idle > 0 {
		go w.watchIdle(stop, cancel)
	}
	wg.Wait()
	if err, _ := w.drainErr.Load().(error); err != nil {
		return err
	}
	if w.drain && ctx.Err() == nil && (w.maxJobs <= 0 || w.done.Load() < w.maxJobs) {
		w.idled.Store(true)
	}
	if w.idled.Load() && w.onIdle != nil {
		w.onIdle()
	}
	return nil
}

// errDrained ends a connection's loop under WithDrain: gearmand has no job.
var errDrained = errors.New("gearman: no job left")

func (w *Worker) watchIdle(ctx context.Context, cancel context.CancelFunc) {
	t := time.NewTicker(w.idle / 20)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if w.running.Load() == 0 && time.Since(time.Unix(0, w.lastBusy.Load())) >= w.idle {
				w.logger().Info("worker idle, stopping", "idle", w.idle)
				w.idled.Store(true)
				cancel()
				return
			}
		}
	}
}

// reserve claims one job of the count before grabbing, so exactly maxJobs
// jobs are ever taken.
func (w *Worker) reserve() bool {
	if w.maxJobs <= 0 {
		return true
	}
	if w.started.Add(1) > w.maxJobs {
		w.started.Add(-1)
		return false
	}
	return true
}

func (w *Worker) unreserve() {
	if w.maxJobs > 0 {
		w.started.Add(-1)
	}
}

// loop is one connection taking one job at a time. Because it grabs only
// when it can run the job at once, stopping is simply not grabbing again.
//
// A job left to gearmand (ErrRequeue) comes straight back from gearmand, so
// the loop waits before it reconnects, longer each time in a row, until a
// job is answered again: a handler whose database is down does not run in a
// tight loop.
func (w *Worker) loop(ctx context.Context, cancel context.CancelFunc, addr string, sem chan struct{}, slot int) {
	const minWait, maxWait = 50 * time.Millisecond, 5 * time.Second
	backoff, requeueWait := minWait, minWait
	var downSince time.Time // of the first failed dial in a row
	for first := true; ctx.Err() == nil; first = false {
		c, err := w.connect(addr, slot)
		if err != nil && w.drain {
			// Draining is a one-off run: an unreachable server is its
			// failure, not something to wait out.
			w.drainErr.CompareAndSwap(nil, fmt.Errorf("gearman: draining %s: %w", addr, err))
			return
		}
		if err != nil {
			if downSince.IsZero() {
				downSince = time.Now()
			}
			w.logger().Warn("gearman worker cannot connect", "server", addr, "err", err, "retry_in", backoff)
			sleepCtx(ctx, backoff)
			backoff = min(backoff*2, maxWait)
			continue
		}
		if !downSince.IsZero() {
			w.logger().Info("gearman worker connected again", "server", addr,
				"down_for", time.Since(downSince).Round(time.Millisecond))
			downSince = time.Time{}
		}
		backoff = minWait
		w.observeConn(ConnEvent{Server: addr, Up: true, Reconnect: !first})
		answered := false
		err = w.serve(ctx, cancel, c, sem, &answered)
		c.close()
		w.observeConn(ConnEvent{Server: addr})
		if errors.Is(err, errDrained) {
			return
		}
		if answered {
			requeueWait = minWait
		}
		if err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrRequeue) {
				w.logger().Warn("gearman worker left a job to gearmand", "server", addr, "err", err, "retry_in", requeueWait)
				sleepCtx(ctx, requeueWait)
				requeueWait = min(requeueWait*2, maxWait)
				continue
			}
			w.logger().Warn("gearman worker connection lost", "server", addr, "err", err)
		}
	}
}

func (w *Worker) observeConn(e ConnEvent) {
	if w.onConn != nil {
		w.onConn(e)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (w *Worker) connect(addr string, slot int) (*wconn, error) {
	c, err := dialWorker(addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if w.id != "" {
		if err := c.send(ptSetClientID, []byte(w.id)); err != nil {
			c.close()
			return nil, err
		}
	}
	c.fns, c.turn = w.Functions(), slot
	c.abilities()
	if err := c.flush(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// turnEvery is how often a connection turns the order of its functions.
// gearmand hands a worker a job of the function it registered last
// whenever that one has jobs: without turns, a function whose queue never
// empties (updates under a steady load) starves the others (a snapshot's
// jobs, whose bridge then stands still). Each connection starts at its own
// place in the order and moves on by one every turnEvery: a job waits at
// most about (functions / connections) × turnEvery behind busier queues.
const turnEvery = 100 * time.Millisecond

// abilities queues (CAN_DO) c's functions, the one of this turn last.
func (c *wconn) abilities() {
	n := len(c.fns)
	for i := range n {
		c.later(ptCanDo, []byte(c.fns[(c.turn+1+i)%n]))
	}
	c.turnedAt = time.Now()
}

// turn moves c's order on by one when turnEvery has passed; the packets
// go with the next GRAB.
func (c *wconn) turnAbilities() {
	if len(c.fns) < 2 || time.Since(c.turnedAt) < turnEvery {
		return
	}
	c.turn++
	c.later(ptResetAbility)
	c.abilities()
}

// serve runs jobs on c until an error or a stop; answered is set once a job
// was answered (completed or failed).
func (w *Worker) serve(ctx context.Context, cancel context.CancelFunc, c *wconn, sem chan struct{}, answered *bool) (err error) {
	// A finished job's WORK_COMPLETE waits in c's pending packets for the
	// next GRAB (one write for both); every other way out of the loop, and
	// any wait for a slot, writes it first.
	defer func() {
		if ferr := c.flush(); err == nil {
			err = ferr
		}
	}()
	// A stop interrupts a sleeping read by closing the connection; it never
	// closes it during a grab or a job, whose result would then be lost.
	var mu sync.Mutex
	sleeping, stopping := false, false
	stopped := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		stopping = true
		if sleeping {
			c.close()
		}
	})
	defer stopped()
	for {
		select {
		case sem <- struct{}{}:
		default:
			if err := c.flush(); err != nil {
				return err
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
		}
		if ctx.Err() != nil {
			<-sem
			return nil
		}
		if !w.reserve() {
			<-sem
			cancel()
			return nil
		}
		c.turnAbilities()
		job, err := c.grab()
		if err != nil || job == nil {
			w.unreserve()
			<-sem
			if err != nil {
				return err
			}
			if w.drain {
				return errDrained
			}
			mu.Lock()
			if stopping {
				mu.Unlock()
				return nil
			}
			sleeping = true
			mu.Unlock()
			err := c.sleep()
			mu.Lock()
			sleeping = false
			mu.Unlock()
			if err != nil {
				return err
			}
			continue
		}
		err = w.run(ctx, job)
		<-sem
		if err == nil {
			*answered = true
		}
		if w.maxJobs > 0 && w.done.Load() >= w.maxJobs {
			cancel()
		}
		if err != nil {
			return err
		}
	}
}

// run executes one job and reports its result. The handler's context is not
// cancelled by a stop: running jobs finish.
func (w *Worker) run(ctx context.Context, job *Job) error {
	job.worker = w
	job.codec = w.codec(job.Function)
	w.running.Add(1)
	w.lastBusy.Store(time.Now().UnixNano())
	defer func() {
		w.running.Add(-1)
		w.lastBusy.Store(time.Now().UnixNano())
		w.done.Add(1)
	}()
	jctx := context.WithoutCancel(ctx)
	if w.jobTimeout > 0 {
		var cancel context.CancelFunc
		jctx, cancel = context.WithTimeout(jctx, w.jobTimeout)
		defer cancel()
	}
	start := time.Now()
	if w.verbose {
		w.logger().Info("job start", "function", job.Function, "handle", job.Handle,
			"unique", job.Unique, "workload", truncate(job.Workload))
	}
	out, err := w.call(jctx, job)
	var data []byte
	if err == nil {
		data, err = job.codec.Encode(out)
	}
	if errors.Is(err, ErrRequeue) {
		// No answer: closing this connection makes gearmand requeue the job.
		w.logger().Error("job left to gearmand", "function", job.Function, "handle", job.Handle, "err", err)
		return err
	}
	if err != nil {
		w.logger().Error("job failed", "function", job.Function, "handle", job.Handle,
			"unique", job.Unique, "duration", time.Since(start), "err", err)
		if werr := job.SendWarning(err.Error()); werr != nil {
			return werr
		}
		return job.conn.send(ptWorkFail, []byte(job.Handle))
	}
	if w.verbose {
		w.logger().Info("job done", "function", job.Function, "handle", job.Handle,
			"duration", time.Since(start))
	}
	// Sent with the connection's next packet (the next GRAB), or flushed
	// before the loop waits or stops.
	job.conn.later(ptWorkComplete, []byte(job.Handle), data)
	return nil
}

// ErrRequeue, returned (wrapped) by a handler, sends gearmand no answer:
// the worker drops the job's connection, and gearmand gives the job to a
// worker again. For a failure that must not be reported as final.
var ErrRequeue = errors.New("gearman: requeue the job")

// ErrUnknownFunction: gearmand assigned a job for a function this worker
// did not register.
var ErrUnknownFunction = errors.New("gearman: unknown function")

func (w *Worker) call(ctx context.Context, job *Job) (out any, err error) {
	h := w.funcs[job.Function]
	if h == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownFunction, job.Function)
	}
	defer func() {
		if r := recover(); r != nil {
			w.logger().Error("job panicked", "function", job.Function, "handle", job.Handle,
				"panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return h(ctx, job)
}
