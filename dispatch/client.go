package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
)

// Client sends record and table jobs from application code: the seed's
// $article->taskBackground('publish', …) and
// Doctrine_Core::getTable('Article')->taskBackground('buildFeed').
type Client struct {
	gc        *gearman.Client
	reg       *Registry
	namespace string
}

// NewClient returns a client submitting through gc to functions under
// namespace (config.Config.Namespace). The registry tells it each type's
// model and checks the arguments before anything is sent.
func NewClient(gc *gearman.Client, reg *Registry, namespace string) *Client {
	return &Client{gc: gc, reg: reg, namespace: namespace}
}

// TaskBackground submits job on target in the background and returns its
// handle. target is a record (*Article: the job runs on that row, loaded by
// primary key) or a table value (ArticleTable{} or *ArticleTable).
func (c *Client) TaskBackground(ctx context.Context, target any, job string, args ...any) (string, error) {
	fn, payload, err := c.prepare(target, job, args)
	if err != nil {
		return "", err
	}
	return c.gc.Background(ctx, fn, payload, gearman.Normal)
}

// Task runs job on target and waits for its result (see TaskBackground).
func (c *Client) Task(ctx context.Context, target any, job string, args ...any) (*gearman.Result, error) {
	fn, payload, err := c.prepare(target, job, args)
	if err != nil {
		return nil, err
	}
	return c.gc.Task(ctx, fn, payload, gearman.Normal)
}

// Prepare returns the function name and the payload that Task would send:
// for a test kit or a custom transport.
func (c *Client) Prepare(target any, job string, args ...any) (fn string, payload []byte, err error) {
	return c.prepare(target, job, args)
}

func (c *Client) prepare(target any, job string, args []any) (string, []byte, error) {
	t := reflect.TypeOf(target)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	m := c.reg.byType[t]
	if m == nil {
		return "", nil, fmt.Errorf("%w: %T is neither a registered model nor a table type", ErrRegister, target)
	}
	jb := m.jobs[job]
	isTable := t != m.typ
	if jb == nil || jb.table != isTable {
		kind := "record"
		if isTable {
			kind = "table"
		}
		return "", nil, fmt.Errorf("%w: model %s has no %s job %q", ErrRegister, m.name, kind, job)
	}
	if len(args) != len(jb.args) {
		return "", nil, fmt.Errorf("%w: %s.%s takes %d arguments, got %d", ErrPayload, m.name, job, len(jb.args), len(args))
	}
	var p jobPayload
	for i, a := range args {
		if a != nil && !reflect.TypeOf(a).AssignableTo(jb.args[i]) {
			return "", nil, fmt.Errorf("%w: %s.%s argument %d is %T, want %v", ErrPayload, m.name, job, i+1, a, jb.args[i])
		}
		raw, err := json.Marshal(a)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %s.%s argument %d: %w", ErrPayload, m.name, job, i+1, err)
		}
		p.Args = append(p.Args, raw)
	}
	if p.Args == nil {
		p.Args = []json.RawMessage{}
	}
	if !isTable {
		pk, err := events.PK(target)
		if err != nil {
			return "", nil, err
		}
		p.PK = pk
	}
	data, err := json.Marshal(p)
	if err != nil {
		return "", nil, err
	}
	return events.FuncName(c.namespace, m.name, job), data, nil
}
