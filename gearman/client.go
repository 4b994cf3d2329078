package gearman

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	gc "github.com/mikespook/gearman-go/client"
)

// ErrLostResult: the connection carrying a foreground job broke before its
// result came back; the job may still run.
var ErrLostResult = errors.New("gearman: connection lost before the job's result")

// Client submits jobs to gearmand. It is safe for concurrent use: each call
// borrows one of a pool of connections (gearman-go allows one submit in
// flight per connection). No connection is made until the first call, so a
// client can be created while gearmand is down.
type Client struct {
	servers []string
	timeout time.Duration
	log     *slog.Logger

	slots  chan struct{} // one per connection that may exist
	mu     sync.Mutex
	idle   []*cconn
	next   int  // round-robin start among servers
	closed bool // Close was called: connections are closed once unused
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithConnections sets how many connections the client may open (default 4).
func WithConnections(n int) ClientOption {
	return func(c *Client) {
		if n > 0 {
			c.slots = make(chan struct{}, n)
		}
	}
}

// WithResponseTimeout bounds the wait for gearmand to acknowledge a submit
// (JOB_CREATED); default 5 s.
func WithResponseTimeout(d time.Duration) ClientOption {
	return func(c *Client) { c.timeout = d }
}

// WithClientLogger sets the logger for connection trouble.
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(c *Client) { c.log = l }
}

// NewClient returns a client for the given "host:port" servers; the first
// that answers takes a new connection, the others are fail-overs.
func NewClient(servers []string, opts ...ClientOption) *Client {
	c := &Client{servers: servers, timeout: 5 * time.Second, log: slog.Default(),
		slots: make(chan struct{}, 4)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Close closes the idle connections. Calls in progress finish on theirs,
// foreground jobs waiting for their results included; their connections
// are closed when the last of them ends.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	var unused []*cconn
	busy := c.idle[:0]
	for _, cc := range c.idle {
		if cc.tasks > 0 {
			busy = append(busy, cc)
		} else {
			unused = append(unused, cc)
		}
	}
	c.idle = busy
	c.mu.Unlock()
	for _, cc := range unused {
		cc.kill()
	}
	return nil
}

// SubmitOption adjusts one submit.
type SubmitOption func(*submit)

type submit struct{ unique string }

// Unique sets the job's unique key (at most 64 bytes, no NUL). gearmand
// coalesces jobs with the same key, even while one runs: use an event id,
// never a row's primary key. By default each job gets a random key.
func Unique(key string) SubmitOption { return func(s *submit) { s.unique = key } }

// Background submits a background job and returns its handle once gearmand
// has acknowledged (and, with a persistent queue, stored) it. The workload
// is serialized as by Serialize.
func (c *Client) Background(ctx context.Context, fn string, workload any, p Priority, opts ...SubmitOption) (string, error) {
	data, s, err := prepare(workload, opts)
	if err != nil {
		return "", err
	}
	h, _, err := c.do(ctx, fn, data, s.unique, p, nil)
	return h, err
}

// Result is what a foreground job returned.
type Result struct {
	Handle  string
	Data    []byte   // the WORK_COMPLETE payload
	Updates [][]byte // WORK_DATA payloads sent while it ran
}

// Decode unserializes the result into v (see Unserialize).
func (r *Result) Decode(v any) error { return Unserialize(r.Data, v) }

// String returns the raw result.
func (r *Result) String() string { return string(r.Data) }

// Task submits a job and waits for its result: the seed's task().
func (c *Client) Task(ctx context.Context, fn string, workload any, p Priority, opts ...SubmitOption) (*Result, error) {
	data, s, err := prepare(workload, opts)
	if err != nil {
		return nil, err
	}
	w := &waiter{done: make(chan struct{})}
	h, cc, err := c.do(ctx, fn, data, s.unique, p, w.handle)
	if err != nil {
		return nil, err
	}
	defer c.taskDone(cc)
	select {
	case <-w.done:
	case <-cc.dead:
		select { // the result may have raced the break
		case <-w.done:
		default:
			return nil, fmt.Errorf("%w: %s (%s)", ErrLostResult, fn, h)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed {
		return nil, &JobError{Function: fn, Handle: h, Msg: w.warning}
	}
	return &Result{Handle: h, Data: w.data, Updates: w.updates}, nil
}

// TaskAs runs Task and decodes its result into a T.
func TaskAs[T any](ctx context.Context, c *Client, fn string, workload any, p Priority) (T, error) {
	var v T
	r, err := c.Task(ctx, fn, workload, p)
	if err != nil {
		return v, err
	}
	return v, r.Decode(&v)
}

func prepare(workload any, opts []SubmitOption) ([]byte, submit, error) {
	var s submit
	for _, o := range opts {
		o(&s)
	}
	if s.unique == "" {
		s.unique = NewID()
	}
	if len(s.unique) > 64 {
		return nil, s, fmt.Errorf("gearman: unique key %q is longer than 64 bytes", s.unique)
	}
	data, err := Serialize(workload)
	return data, s, err
}

// NewID returns a random 32-hex-digit id.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// waiter collects a foreground job's responses; it runs on gearman-go's
// read loop, so it must never block or call the client.
type waiter struct {
	mu      sync.Mutex
	data    []byte
	updates [][]byte
	warning string
	failed  bool
	done    chan struct{}
	once    sync.Once
}

func (w *waiter) handle(resp *gc.Response) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch resp.DataType {
	case gc.WorkData:
		w.updates = append(w.updates, resp.Data)
	case gc.WorkWarning:
		w.warning = string(resp.Data)
	case gc.WorkComplete:
		w.data = resp.Data
		w.once.Do(func() { close(w.done) })
	case gc.WorkFail, gc.WorkException:
		w.failed = true
		w.once.Do(func() { close(w.done) })
	}
}

// do submits on a pooled connection. A connection that fails in any way is
// discarded (one whose caller gave up is kept if gearmand still answers),
// and a submit that failed on a connection that was already broken is
// tried once more on a fresh one, so the first call after a gearmand
// restart succeeds.
func (c *Client) do(ctx context.Context, fn string, data []byte, unique string, p Priority, h gc.ResponseHandler) (string, *cconn, error) {
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		cc, fresh, err := c.acquire(ctx)
		if err != nil {
			return "", nil, err
		}
		handle, late, err := cc.submit(ctx, fn, data, unique, p, h)
		if err == nil {
			if h != nil { // a foreground job: its result comes on cc
				c.mu.Lock()
				cc.tasks++
				c.mu.Unlock()
			}
			c.release(cc)
			return handle, cc, nil
		}
		if late != nil {
			// ctx ended while gearman-go waited for JOB_CREATED. The
			// connection may carry other callers' foreground jobs: keep it
			// (and its slot) until that wait ends, then pool it if healthy.
			go func() {
				if r := <-late; r.err == nil && cc.alive() {
					c.release(cc)
					return
				}
				cc.kill()
				<-c.slots
			}()
			return "", nil, err
		}
		cc.kill()
		<-c.slots
		lastErr = err
		if fresh || ctx.Err() != nil || errors.Is(err, ErrServer) {
			break
		}
	}
	return "", nil, lastErr
}

func (c *Client) acquire(ctx context.Context) (cc *cconn, fresh bool, err error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	c.mu.Lock()
	for len(c.idle) > 0 {
		cc = c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if cc.alive() {
			c.mu.Unlock()
			return cc, false, nil
		}
		cc.kill()
	}
	start := c.next
	c.next++
	c.mu.Unlock()
	var errs []error
	for i := range c.servers {
		addr := c.servers[(start+i)%len(c.servers)]
		cc, err := c.dial(addr)
		if err == nil {
			return cc, true, nil
		}
		errs = append(errs, err)
	}
	<-c.slots
	return nil, false, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
}

func (c *Client) release(cc *cconn) {
	c.mu.Lock()
	if c.closed && cc.tasks == 0 {
		c.mu.Unlock()
		cc.kill()
	} else {
		c.idle = append(c.idle, cc)
		c.mu.Unlock()
	}
	<-c.slots
}

// taskDone notes that a foreground job on cc has its answer (or that its
// caller gave up), and closes cc after Close once nothing waits on it.
func (c *Client) taskDone(cc *cconn) {
	c.mu.Lock()
	cc.tasks--
	if !c.closed || cc.tasks > 0 {
		c.mu.Unlock()
		return
	}
	if i := slices.Index(c.idle, cc); i >= 0 {
		c.idle = slices.Delete(c.idle, i, i+1)
		c.mu.Unlock()
		cc.kill()
		return
	}
	c.mu.Unlock() // in use: closed when released
}

func (c *Client) dial(addr string) (*cconn, error) {
	cc := &cconn{addr: addr, dead: make(chan struct{}), srvErr: make(chan error, 1), log: c.log,
		timeout: c.timeout}
	g, err := gc.New(gc.Network, addr)
	if err != nil {
		return nil, err
	}
	g.ResponseTimeout = c.timeout
	g.ErrorHandler = cc.onError
	cc.g = g
	return cc, nil
}

// cconn is one gearman-go client connection and what we know of its health.
type cconn struct {
	addr    string
	g       *gc.Client
	dead    chan struct{}
	once    sync.Once
	srvErr  chan error
	log     *slog.Logger
	timeout time.Duration
	tasks   int // foreground jobs waiting for their results; guarded by Client.mu
}

func (cc *cconn) alive() bool {
	select {
	case <-cc.dead:
		return false
	default:
		return len(cc.srvErr) == 0
	}
}

// onError runs on gearman-go's read loop: it must not block.
func (cc *cconn) onError(err error) {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.As(err, &ne) || errors.Is(err, net.ErrClosed) {
		cc.log.Warn("gearman connection lost", "server", cc.addr, "err", err)
		cc.kill()
		return
	}
	select {
	case cc.srvErr <- fmt.Errorf("%w: %s: %v", ErrServer, cc.addr, err):
	default:
	}
}

// kill marks the connection dead and closes it. gearman-go's read loop
// redials once after a read error, racing our Close; a second Close after
// its submit timeout ends that redial too, instead of leaking it.
func (cc *cconn) kill() {
	cc.once.Do(func() {
		close(cc.dead)
		go func() {
			cc.g.Close()
			time.AfterFunc(cc.timeout+time.Second, func() { cc.g.Close() })
		}()
	})
}

// submitted is the outcome of gearman-go's submit call.
type submitted struct {
	handle string
	err    error
}

// submit sends one job. When ctx ends first it returns ctx's error and the
// channel on which gearman-go's call, still waiting, will report.
func (cc *cconn) submit(ctx context.Context, fn string, data []byte, unique string, p Priority, h gc.ResponseHandler) (string, <-chan submitted, error) {
	flag := byte(gc.JobNormal)
	switch p {
	case High:
		flag = gc.JobHigh
	case Low:
		flag = gc.JobLow
	}
	type res = submitted
	ch := make(chan res, 1)
	go func() {
		var r res
		if h == nil {
			r.handle, r.err = cc.g.DoBgWithId(fn, data, flag, unique)
		} else {
			r.handle, r.err = cc.g.DoWithId(fn, data, flag, h, unique)
		}
		ch <- r
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return "", nil, fmt.Errorf("%w: submit %s to %s: %w", ErrUnavailable, fn, cc.addr, r.err)
		}
		return r.handle, nil, nil
	case err := <-cc.srvErr:
		return "", nil, fmt.Errorf("submit %s: %w", fn, err)
	case <-cc.dead:
		return "", nil, fmt.Errorf("%w: submit %s to %s: connection lost", ErrUnavailable, fn, cc.addr)
	case <-ctx.Done():
		return "", ch, ctx.Err()
	}
}
