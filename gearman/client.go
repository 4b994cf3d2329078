package gearman

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	gc "github.com/mikespook/gearman-go/client"

	"github.com/rowgear/rowgear/internal/ids"
)

// ErrLostResult: the connection carrying a foreground job broke before its
// result came back; the job may still run.
var ErrLostResult = errors.New("gearman: connection lost before the job's result")

// Client submits jobs to gearmand. It is safe for concurrent use: each call
// borrows one of a pool of connections (gearman-go allows one submit in
// flight per connection). No connection is made until the first call, so a
// client can be created while gearmand is down.
//
// With several servers, each job goes to the server its key picks
// (rendezvous hashing of Key, else of its unique key): the jobs of one key
// keep to one server while that server is up, and spread evenly over the
// servers. A server that refuses a connection or breaks one is marked down
// and skipped (tried again after the retry interval); its jobs go to the
// next server of their key's order. Servers reports which are up.
type Client struct {
	servers   []string
	codecFor  func(fn string) Codec
	suffix    string
	timeout   time.Duration
	retryDown time.Duration
	log       *slog.Logger

	slots  chan struct{} // one per connection that may exist
	mu     sync.Mutex
	idle   map[string][]*cconn // by server
	health map[string]*health  // by server
	next   int                 // round-robin start for jobs without a key
	closed bool                // Close was called: connections are closed once unused
	err    error               // the first bad option: every call's error
}

// health is what the client knows of one server.
type health struct {
	down    bool
	since   time.Time // of the last change between up and down
	retryAt time.Time // a down server is tried again from then on
	err     error     // why it is down
}

// ServerStatus is a server as the client last found it.
type ServerStatus struct {
	Addr  string
	Up    bool      // not marked down (a server never tried counts as up)
	Since time.Time // when it went up or down (zero: never changed)
	Err   error     // why it is down
}

// ClientOption configures a Client. An option checks its argument: a bad
// one is the error of every call on the client (Task, Background, a
// Queue's Put and Get), so a misconfigured client fails its first job
// instead of running otherwise than asked.
type ClientOption func(*Client) error

// WithConnections sets how many connections the client may open (default
// 4; at least 1).
func WithConnections(n int) ClientOption {
	return func(c *Client) error {
		if n < 1 {
			return fmt.Errorf("gearman: WithConnections(%d): want 1 or more", n)
		}
		c.slots = make(chan struct{}, n)
		return nil
	}
}

// WithResponseTimeout bounds the wait for gearmand to acknowledge a submit
// (JOB_CREATED); default 5 s.
func WithResponseTimeout(d time.Duration) ClientOption {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("gearman: WithResponseTimeout(%s): want a positive duration", d)
		}
		c.timeout = d
		return nil
	}
}

// WithRetryDown sets how long a server found down is skipped before a job
// tries it again (default 1 s).
func WithRetryDown(d time.Duration) ClientOption {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("gearman: WithRetryDown(%s): want a positive duration", d)
		}
		c.retryDown = d
		return nil
	}
}

// WithClientLogger sets the logger for connection trouble (nil:
// slog.Default()).
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(c *Client) error {
		c.log = cmp.Or(l, slog.Default())
		return nil
	}
}

// WithCodec sets the codec of every function's workloads and results
// (default JSON).
func WithCodec(c Codec) ClientOption {
	return func(cl *Client) error {
		if c == nil {
			return errors.New("gearman: WithCodec(nil): want a codec (JSON, PHP)")
		}
		cl.codecFor = func(string) Codec { return c }
		return nil
	}
}

// WithCodecFor picks the codec by function name (as the caller writes it,
// before WithFunctionSuffix): gearman.yml's serializer per server, set or
// function. A nil result means JSON.
func WithCodecFor(f func(fn string) Codec) ClientOption {
	return func(cl *Client) error {
		cl.codecFor = f
		return nil
	}
}

// WithFunctionSuffix appends suffix to every function name the client
// submits to, queues included: "@shop" makes Task(ctx, "reverse", …) call
// reverse@shop, as sfGearmanPlugin's namespace does.
func WithFunctionSuffix(suffix string) ClientOption {
	return func(cl *Client) error {
		if err := checkSuffix("WithFunctionSuffix", suffix); err != nil {
			return err
		}
		cl.suffix = suffix
		return nil
	}
}

// checkSuffix refuses a NUL byte, which ends a name in the protocol.
func checkSuffix(option, suffix string) error {
	if strings.IndexByte(suffix, 0) >= 0 {
		return fmt.Errorf("gearman: %s(%q): a function name cannot hold a NUL byte", option, suffix)
	}
	return nil
}

func (c *Client) codec(fn string) Codec {
	if c.codecFor != nil {
		if cd := c.codecFor(fn); cd != nil {
			return cd
		}
	}
	return JSON
}

// NewClient returns a client for the given "host:port" servers; a job goes
// to the one its key picks, and to the next when that one is down.
func NewClient(servers []string, opts ...ClientOption) *Client {
	c := &Client{servers: servers, timeout: 5 * time.Second, retryDown: time.Second, log: slog.Default(),
		slots: make(chan struct{}, 4), idle: map[string][]*cconn{}, health: map[string]*health{}}
	for _, o := range opts {
		if err := o(c); err != nil && c.err == nil {
			c.err = err
		}
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
	for addr := range c.idle {
		unused = append(unused, c.dropUnused(addr)...)
	}
	c.mu.Unlock()
	for _, cc := range unused {
		cc.kill()
	}
	return nil
}

// SubmitOption adjusts one submit. A bad one is the submit's error.
type SubmitOption func(*submit) error

type submit struct {
	unique, key string
	codec       Codec
	created     func(handle string)
}

// Unique sets the job's unique key (at most 64 bytes, no NUL). gearmand
// coalesces jobs with the same key, even while one runs: use an event id,
// never a row's primary key. By default each job gets a random key.
func Unique(key string) SubmitOption {
	return func(s *submit) error {
		if len(key) > 64 || strings.IndexByte(key, 0) >= 0 {
			return fmt.Errorf("gearman: unique key %q: want at most 64 bytes and no NUL", key)
		}
		s.unique = key
		return nil
	}
}

// Key sets the key that picks the job's server when the client has several:
// the jobs of one key (a row, say) go to the same server while it is up, in
// the order they were submitted. By default the unique key picks it.
func Key(key string) SubmitOption {
	return func(s *submit) error {
		s.key = key
		return nil
	}
}

// OnCreated has Task call f with the job's handle as soon as gearmand has
// created the job (JOB_CREATED), before its result comes: a caller running
// Task in a goroutine learns when the job is queued, so that it can submit
// the next one in order while this one runs. f runs on the caller's
// goroutine and must not block. (Background returns at that point.)
func OnCreated(f func(handle string)) SubmitOption {
	return func(s *submit) error {
		if f == nil {
			return errors.New("gearman: OnCreated(nil)")
		}
		s.created = f
		return nil
	}
}

// Background submits a background job and returns its handle once gearmand
// has acknowledged (and, with a persistent queue, stored) it. The workload
// is serialized as by Serialize.
func (c *Client) Background(ctx context.Context, fn string, workload any, p Priority, opts ...SubmitOption) (string, error) {
	if c.err != nil {
		return "", c.err
	}
	data, s, err := prepare(c.codec(fn), workload, opts)
	if err != nil {
		return "", err
	}
	h, _, err := c.do(ctx, fn+c.suffix, data, s, p, nil)
	return h, err
}

// Result is what a foreground job returned.
type Result struct {
	Handle  string
	Data    []byte   // the WORK_COMPLETE payload
	Updates []Update // WORK_DATA and WORK_STATUS sent while it ran, in order

	codec Codec
}

// Update is a partial result (Job.SendData) or a progress report
// (Job.SendStatus) a worker sent while the job ran.
type Update struct {
	Data []byte // WORK_DATA payload; nil for a status
	// Status: Numerator of Denominator done (WORK_STATUS).
	Status                 bool
	Numerator, Denominator uint64
}

// Decode unserializes the result into v with the function's codec (see
// Unserialize for JSON).
func (r *Result) Decode(v any) error {
	if r.codec != nil {
		return r.codec.Decode(r.Data, v)
	}
	return Unserialize(r.Data, v)
}

// String returns the raw result.
func (r *Result) String() string { return string(r.Data) }

// Task submits a job and waits for its result: the seed's task().
func (c *Client) Task(ctx context.Context, fn string, workload any, p Priority, opts ...SubmitOption) (*Result, error) {
	if c.err != nil {
		return nil, c.err
	}
	cd := c.codec(fn)
	data, s, err := prepare(cd, workload, opts)
	if err != nil {
		return nil, err
	}
	if s.codec != nil {
		cd = s.codec
	}
	w := &waiter{done: make(chan struct{})}
	h, cc, err := c.do(ctx, fn+c.suffix, data, s, p, w.handle)
	if err != nil {
		return nil, err
	}
	defer c.taskDone(cc)
	if s.created != nil {
		s.created(h)
	}
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
	return &Result{Handle: h, Data: w.data, Updates: w.updates, codec: cd}, nil
}

// TaskAs runs Task and decodes its result into a T.
func TaskAs[T any](ctx context.Context, c *Client, fn string, workload any, p Priority, opts ...SubmitOption) (T, error) {
	var v T
	r, err := c.Task(ctx, fn, workload, p, opts...)
	if err != nil {
		return v, err
	}
	return v, r.Decode(&v)
}

// WithJobCodec encodes this job's workload (and decodes its result) with
// c instead of the function's codec.
func WithJobCodec(c Codec) SubmitOption {
	return func(s *submit) error {
		if c == nil {
			return errors.New("gearman: WithJobCodec(nil): want a codec (JSON, PHP)")
		}
		s.codec = c
		return nil
	}
}

func prepare(cd Codec, workload any, opts []SubmitOption) ([]byte, submit, error) {
	var s submit
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, s, err
		}
	}
	if s.unique == "" {
		s.unique = ids.New()
	}
	if s.key == "" {
		s.key = s.unique
	}
	if s.codec != nil {
		cd = s.codec
	}
	data, err := cd.Encode(workload)
	return data, s, err
}

// waiter collects a foreground job's responses; it runs on gearman-go's
// read loop, so it must never block or call the client.
type waiter struct {
	mu      sync.Mutex
	data    []byte
	updates []Update
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
		w.updates = append(w.updates, Update{Data: resp.Data})
	case gc.WorkStatus:
		if st, err := resp.Status(); err == nil {
			w.updates = append(w.updates, Update{Status: true, Numerator: st.Numerator, Denominator: st.Denominator})
		}
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

// do submits on a pooled connection to the first server of the key's
// order that takes the job. A connection that fails in any way is discarded
// (one whose caller gave up is kept if gearmand still answers); a submit
// that failed on a pooled connection is tried once more on a fresh one to
// the same server, so the first call after a gearmand restart stays there;
// a server that cannot be reached is marked down and the next one is tried.
func (c *Client) do(ctx context.Context, fn string, data []byte, s submit, p Priority, h gc.ResponseHandler) (string, *cconn, error) {
	var errs []error
	for _, addr := range c.order(s.key) {
		for attempt := 0; attempt < 2; attempt++ {
			cc, fresh, err := c.acquire(ctx, addr)
			if err != nil {
				if ctx.Err() != nil {
					return "", nil, ctx.Err()
				}
				c.markDown(addr, err)
				errs = append(errs, err)
				break
			}
			handle, late, err := cc.submit(ctx, fn, data, s.unique, p, h)
			if err == nil {
				c.markUp(addr)
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
			if ctx.Err() != nil || errors.Is(err, ErrServer) {
				return "", nil, err
			}
			errs = append(errs, err)
			if fresh {
				c.markDown(addr, err)
				break
			}
		}
	}
	return "", nil, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
}

// order is the servers in the order a job of key tries them: by rendezvous
// hash of key (round robin without a key), servers marked down last.
func (c *Client) order(key string) []string {
	srv := slices.Clone(c.servers)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(srv) < 2 {
		return srv
	}
	if key == "" {
		n := c.next % len(srv)
		c.next++
		srv = append(srv[n:], srv[:n]...)
	} else {
		score := make(map[string]uint64, len(srv))
		k := hash64(key)
		for _, a := range srv {
			score[a] = mix64(k ^ hash64(a))
		}
		slices.SortFunc(srv, func(a, b string) int { return cmp.Compare(score[b], score[a]) })
	}
	now := time.Now()
	skip := func(a string) bool { h := c.health[a]; return h != nil && h.down && now.Before(h.retryAt) }
	slices.SortStableFunc(srv, func(a, b string) int {
		sa, sb := skip(a), skip(b)
		switch {
		case sa == sb:
			return 0
		case sb:
			return -1
		}
		return 1
	})
	return srv
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// mix64 is murmur3's finalizer: FNV alone leaves the scores of similar
// server names (ports differing in a digit) correlated, and one server
// would win most keys.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// markDown notes that addr failed: it is tried last until the retry
// interval has passed, and its pooled connections are dropped.
func (c *Client) markDown(addr string, err error) {
	c.mu.Lock()
	h := c.health[addr]
	if h == nil {
		h = &health{}
		c.health[addr] = h
	}
	now := time.Now()
	was := h.down
	if !was {
		h.down, h.since = true, now
	}
	h.err, h.retryAt = err, now.Add(c.retryDown)
	unused := c.dropUnused(addr)
	c.mu.Unlock()
	for _, cc := range unused {
		cc.kill()
	}
	if !was {
		c.log.Warn("gearman server down", "server", addr, "err", err, "servers", len(c.servers))
	}
}

// markUp notes that addr took a job.
func (c *Client) markUp(addr string) {
	c.mu.Lock()
	h := c.health[addr]
	if h == nil || !h.down {
		c.mu.Unlock()
		return
	}
	downFor := time.Since(h.since)
	h.down, h.since, h.err = false, time.Now(), nil
	c.mu.Unlock()
	c.log.Info("gearman server up", "server", addr, "down_for", downFor.Round(time.Millisecond))
}

// dropUnused removes addr's pooled connections that no foreground job
// waits on and returns them, to be closed; c.mu is held.
func (c *Client) dropUnused(addr string) (unused []*cconn) {
	busy := c.idle[addr][:0]
	for _, cc := range c.idle[addr] {
		if cc.tasks > 0 { // its foreground results may still come
			busy = append(busy, cc)
		} else {
			unused = append(unused, cc)
		}
	}
	c.idle[addr] = busy
	return unused
}

// Servers reports each server as the client last found it, in the
// configured order.
func (c *Client) Servers() []ServerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ServerStatus, len(c.servers))
	for i, a := range c.servers {
		out[i] = ServerStatus{Addr: a, Up: true}
		if h := c.health[a]; h != nil {
			out[i].Up, out[i].Since, out[i].Err = !h.down, h.since, h.err
		}
	}
	return out
}

// acquire returns a pooled or new connection to addr, holding a slot.
func (c *Client) acquire(ctx context.Context, addr string) (cc *cconn, fresh bool, err error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	c.mu.Lock()
	for idle := c.idle[addr]; len(idle) > 0; idle = c.idle[addr] {
		cc = idle[len(idle)-1]
		c.idle[addr] = idle[:len(idle)-1]
		if cc.alive() {
			c.mu.Unlock()
			return cc, false, nil
		}
		cc.kill()
	}
	h := c.health[addr]
	probe := h != nil && h.down
	c.mu.Unlock()
	if probe {
		// gearman-go dials without a timeout: a server that was down is
		// probed with one first, so an unreachable host costs at most that.
		conn, err := (&net.Dialer{Timeout: c.timeout}).DialContext(ctx, "tcp", addr)
		if err != nil {
			<-c.slots
			return nil, false, err
		}
		conn.Close()
	}
	cc, err = c.dial(addr)
	if err != nil {
		<-c.slots
		return nil, false, err
	}
	return cc, true, nil
}

func (c *Client) release(cc *cconn) {
	c.mu.Lock()
	if c.closed && cc.tasks == 0 {
		c.mu.Unlock()
		cc.kill()
	} else {
		c.idle[cc.addr] = append(c.idle[cc.addr], cc)
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
	if i := slices.Index(c.idle[cc.addr], cc); i >= 0 {
		c.idle[cc.addr] = slices.Delete(c.idle[cc.addr], i, i+1)
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
