package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/rowmap"
)

// Client sends record and table jobs from application code: the seed's
// $article->taskBackground('publish', …) and
// Doctrine_Core::getTable('Article')->taskBackground('buildFeed').
type Client struct {
	gc        *gearman.Client
	reg       *Registry
	namespace string
	cfg       *config.Config

	prio   gearman.Priority
	submit []gearman.SubmitOption
	err    error // the first bad option: every call's error
}

// ClientOption configures a Client. An option checks its argument: a bad
// one is the error of each of the client's calls (Task, TaskBackground,
// Prepare).
type ClientOption func(*Client) error

// WithConfig names jobs and picks their serializer as gearman.yml says:
// with naming: plugin, <Model>.<job>@<namespace> (sfGearmanPlugin's names);
// with serializer: php for the function, a PHP-serialized workload
// {arguments: [...], pk: {...}}, which the plugin's PHP workers and
// rowgear's Go workers both read. Its namespace replaces NewClient's.
func WithConfig(cfg *config.Config) ClientOption {
	return func(c *Client) (err error) {
		if cfg == nil {
			err = errors.New("dispatch: WithConfig(nil): want a loaded gearman.yml")
		}
		c.cfg = cfg
		return err
	}
}

// NewClient returns a client submitting through gc to functions under
// namespace (config.Config.Namespace). The registry tells it each type's
// model and checks the arguments before anything is sent.
func NewClient(gc *gearman.Client, reg *Registry, namespace string, opts ...ClientOption) *Client {
	c := &Client{gc: gc, reg: reg, namespace: namespace}
	c.apply(opts)
	return c
}

// apply runs options, keeping the first error for the client's calls.
func (c *Client) apply(opts []ClientOption) {
	for _, o := range opts {
		if err := o(c); err != nil && c.err == nil {
			c.err = err
		}
	}
}

// Priority submits the jobs at p (default gearman.Normal), as the seed's
// sfGearman::HIGH and LOW: for every job when given to NewClient, for a
// copy's jobs when given to With.
func Priority(p gearman.Priority) ClientOption {
	return func(c *Client) error {
		if p != gearman.Low && p != gearman.Normal && p != gearman.High {
			return fmt.Errorf("dispatch: Priority(%d): want gearman.Low, Normal or High", int(p))
		}
		c.prio = p
		return nil
	}
}

// Unique sets the jobs' unique key (at most 64 bytes): gearmand coalesces
// jobs with the same key, even while one runs (see gearman.Unique). By
// default each job gets a random one.
func Unique(key string) ClientOption {
	return func(c *Client) error {
		if len(key) > 64 {
			return fmt.Errorf("dispatch: Unique(%q): want at most 64 bytes", key)
		}
		c.submit = append(c.submit, gearman.Unique(key))
		return nil
	}
}

// With returns a copy of c whose jobs are submitted with opts:
//
//	jobs.With(dispatch.Priority(gearman.High), dispatch.Unique("publish-42")).TaskBackground(ctx, a, "publish", false, true)
func (c *Client) With(opts ...ClientOption) *Client {
	cp := *c
	cp.submit = slices.Clone(c.submit)
	cp.apply(opts)
	return &cp
}

// TaskBackground submits job on target in the background and returns its
// handle. target is a record (*Article: the job runs on that row, loaded by
// primary key) or a table value (ArticleTable{} or *ArticleTable).
func (c *Client) TaskBackground(ctx context.Context, target any, job string, args ...any) (string, error) {
	fn, payload, opts, err := c.prepare(target, job, args)
	if err != nil {
		return "", err
	}
	return c.gc.Background(ctx, fn, payload, c.prio, opts...)
}

// Task runs job on target and waits for its result (see TaskBackground);
// the worker's SendData and SendStatus reach the result's Updates.
func (c *Client) Task(ctx context.Context, target any, job string, args ...any) (*gearman.Result, error) {
	fn, payload, opts, err := c.prepare(target, job, args)
	if err != nil {
		return nil, err
	}
	return c.gc.Task(ctx, fn, payload, c.prio, opts...)
}

// Prepare returns the function name and the payload that Task would send:
// for a test kit or a custom transport.
func (c *Client) Prepare(target any, job string, args ...any) (fn string, payload []byte, err error) {
	fn, payload, _, err = c.payload(target, job, args)
	return fn, payload, err
}

func (c *Client) prepare(target any, job string, args []any) (fn string, payload []byte, opts []gearman.SubmitOption, err error) {
	fn, payload, php, err := c.payload(target, job, args)
	opts = c.submit
	if php {
		opts = append(slices.Clone(opts), gearman.WithJobCodec(gearman.PHP))
	}
	return fn, payload, opts, err
}

func (c *Client) payload(target any, job string, args []any) (string, []byte, bool, error) {
	if c.err != nil {
		return "", nil, false, c.err
	}
	t := reflect.TypeOf(target)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	m := c.reg.byType[t]
	if m == nil {
		return "", nil, false, fmt.Errorf("%w: %T is neither a registered model nor a table type", ErrRegister, target)
	}
	jb := m.jobs[job]
	isTable := t != m.typ
	if jb == nil || jb.table != isTable {
		kind := "record"
		if isTable {
			kind = "table"
		}
		return "", nil, false, fmt.Errorf("%w: model %s has no %s job %q", ErrRegister, m.name, kind, job)
	}
	if len(args) != len(jb.args) {
		return "", nil, false, fmt.Errorf("%w: %s.%s takes %d arguments, got %d", ErrPayload, m.name, job, len(jb.args), len(args))
	}
	var p jobPayload
	for i, a := range args {
		if a != nil && !reflect.TypeOf(a).AssignableTo(jb.args[i]) {
			return "", nil, false, fmt.Errorf("%w: %s.%s argument %d is %T, want %v", ErrPayload, m.name, job, i+1, a, jb.args[i])
		}
		raw, err := json.Marshal(a)
		if err != nil {
			return "", nil, false, fmt.Errorf("%w: %s.%s argument %d: %w", ErrPayload, m.name, job, i+1, err)
		}
		p.Args = append(p.Args, raw)
	}
	if p.Args == nil {
		p.Args = []json.RawMessage{}
	}
	if !isTable {
		pk, err := rowmap.PK(target)
		if err != nil {
			return "", nil, false, err
		}
		p.PK = pk
	}
	fn := events.FuncName(c.namespace, m.name, job)
	if c.cfg != nil {
		fn = c.cfg.JobFunction(m.name, job)
		if c.cfg.SerializerFor("", "", fn) == "php" {
			pp := map[string]any{"arguments": slices.Clone(args)}
			if args == nil {
				pp["arguments"] = []any{}
			}
			if p.PK != nil {
				pk := map[string]any{}
				for k, raw := range p.PK {
					dec := json.NewDecoder(bytes.NewReader(raw))
					dec.UseNumber()
					var v any
					if err := dec.Decode(&v); err != nil {
						return "", nil, false, fmt.Errorf("%w: %s.%s key %s: %w", ErrPayload, m.name, job, k, err)
					}
					pk[k] = v
				}
				pp["pk"] = pk
			}
			data, err := gearman.PHP.Encode(pp)
			if err != nil {
				return "", nil, false, fmt.Errorf("%w: %s.%s: %w", ErrPayload, m.name, job, err)
			}
			return fn, data, true, nil
		}
	}
	data, err := json.Marshal(p)
	if err != nil {
		return "", nil, false, err
	}
	return fn, data, false, nil
}

// Codecs returns gearman.yml's choice of codec for each function of a
// worker or client connected through server (a server: name, "" for
// default) serving set: pass it to gearman.WithWorkerCodecFor or
// gearman.WithCodecFor.
func Codecs(cfg *config.Config, server, set string) func(fn string) gearman.Codec {
	return func(fn string) gearman.Codec {
		// The config accepts only these two names.
		if cfg.SerializerFor(server, set, fn) == gearman.PHP.Name() {
			return gearman.PHP
		}
		return gearman.JSON
	}
}
