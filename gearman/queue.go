package gearman

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rowgear/rowgear/internal/funcname"
	"github.com/rowgear/rowgear/internal/phpser"
)

// Queue is the seed's sfGearmanQueue: messages are background jobs of the
// function queue.<name>, taken one at a time by Get.
type Queue struct {
	client *Client
}

// NewQueue returns a queue over the client's servers.
func NewQueue(c *Client) *Queue { return &Queue{client: c} }

// Put adds a message; High messages are fetched first. The message is
// serialized with the codec the client picks for queue.<name>: JSON as by
// Serialize, or PHP, where even a string is serialized
// (s:9:"a message";), as sfGearmanQueue::put does.
func (q *Queue) Put(ctx context.Context, name string, msg any, p Priority) error {
	fn := funcname.Queue(name)
	var opts []SubmitOption
	if q.client.codec(fn).Name() == "php" {
		opts = append(opts, WithJobCodec(phpQueueCodec{}))
	}
	_, err := q.client.Background(ctx, fn, msg, p, opts...)
	return err
}

// phpQueueCodec is sfGearmanQueue's: serialize() for every value.
type phpQueueCodec struct{ phpCodec }

func (phpQueueCodec) Encode(v any) ([]byte, error) {
	b, err := phpser.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("gearman: serialize %T: %w", v, err)
	}
	return b, nil
}

// Message is a message taken from a queue.
type Message struct {
	Queue string
	Data  []byte

	codec Codec
}

// Decode unserializes the message into v with the queue's codec (see
// Unserialize for JSON).
func (m *Message) Decode(v any) error {
	if m.codec != nil {
		return m.codec.Decode(m.Data, v)
	}
	return Unserialize(m.Data, v)
}

// Get takes one message, waiting up to timeout (0: until ctx ends); it
// returns an error matching ErrTimeout when none came. A message is removed
// from gearmand before Get returns it (WORK_COMPLETE, then an echo),
// and a message assigned while Get gives up is not completed: gearmand puts
// it back when the connection closes. So no message is lost, and none is
// delivered twice.
func (q *Queue) Get(ctx context.Context, name string, timeout time.Duration) (*Message, error) {
	if q.client.err != nil {
		return nil, q.client.err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	fn := funcname.Queue(name)
	cd := q.client.codec(fn)
	fn += q.client.suffix
	servers := q.client.servers
	type got struct {
		msg *Message
		err error
	}
	results := make(chan got, len(servers))
	var (
		mu  sync.Mutex
		won bool
	)
	// Only one server's job may be completed: the first to claim the win.
	claim := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if won || ctx.Err() != nil {
			return false
		}
		won = true
		return true
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, addr := range servers {
		go func() {
			m, err := getOne(gctx, addr, fn, claim)
			results <- got{m, err}
		}()
	}
	var errs []error
	for range servers {
		r := <-results
		if r.msg != nil {
			r.msg.Queue, r.msg.codec = name, cd
			return r.msg, nil
		}
		if r.err != nil && gctx.Err() == nil {
			errs = append(errs, r.err)
		}
		if len(errs) == len(servers) {
			return nil, fmt.Errorf("%w: queue %s: %v", ErrUnavailable, name, errs)
		}
	}
	if ctx.Err() == context.DeadlineExceeded && timeout > 0 {
		return nil, fmt.Errorf("%w: no message in queue %s after %s", ErrTimeout, name, timeout)
	}
	return nil, ctx.Err()
}

func getOne(ctx context.Context, addr, fn string, claim func() bool) (*Message, error) {
	c, err := dialWorker(addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.close()
	stop := context.AfterFunc(ctx, func() { c.close() })
	defer stop()
	if err := c.send(ptCanDo, []byte(fn)); err != nil {
		return nil, err
	}
	for {
		job, err := c.grab()
		if err != nil {
			return nil, err
		}
		if job == nil {
			if err := c.sleep(); err != nil {
				return nil, err
			}
			continue
		}
		if !claim() {
			return nil, nil // closing the connection gives the job back
		}
		if !stop() {
			return nil, nil // the timeout is closing the connection: the job goes back
		}
		if err := c.send(ptWorkComplete, []byte(job.Handle), nil); err != nil {
			return nil, err
		}
		// The echo confirms gearmand took the completion. Should it fail, the
		// completion may or may not have landed: hand the message over all the
		// same, so it is at worst delivered twice, never lost.
		c.echo()
		return &Message{Data: job.Workload}, nil
	}
}
