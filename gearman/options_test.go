package gearman_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/gearman"
)

// TestBadOptions: a bad option is the error of the client's calls and of
// the worker's Run, named, before anything is dialled (the address is
// unreachable on purpose).
func TestBadOptions(t *testing.T) {
	ctx := context.Background()
	servers := []string{"127.0.0.1:1"}
	for name, opt := range map[string]gearman.ClientOption{
		"WithConnections(0)":          gearman.WithConnections(0),
		"WithResponseTimeout(0s)":     gearman.WithResponseTimeout(0),
		"WithRetryDown(-1s)":          gearman.WithRetryDown(-1e9),
		"WithCodec(nil)":              gearman.WithCodec(nil),
		`WithFunctionSuffix("@\x00")`: gearman.WithFunctionSuffix("@\x00"),
	} {
		c := gearman.NewClient(servers, gearman.WithConnections(2), opt)
		_, err := c.Background(ctx, "f", "x", gearman.Normal)
		if err == nil || !strings.Contains(err.Error(), strings.SplitN(name, "(", 2)[0]) {
			t.Errorf("%s: Background: %v, want the option named", name, err)
		}
		if _, err := c.Task(ctx, "f", "x", gearman.Normal); err == nil {
			t.Errorf("%s: Task succeeded", name)
		}
		if _, err := gearman.NewQueue(c).Get(ctx, "q", 0); err == nil {
			t.Errorf("%s: Queue.Get succeeded", name)
		}
		c.Close()
	}
	c := gearman.NewClient(servers)
	if _, err := c.Background(ctx, "f", "x", gearman.Normal, gearman.Unique(strings.Repeat("k", 65))); err == nil || !strings.Contains(err.Error(), "unique key") {
		t.Errorf("a 65-byte unique key: %v", err)
	}
	c.Close()
	for name, opt := range map[string]gearman.WorkerOption{
		"WithConcurrency(0)":   gearman.WithConcurrency(0),
		"WithMaxJobs(-1)":      gearman.WithMaxJobs(-1),
		"WithJobTimeout(-1s)":  gearman.WithJobTimeout(-1e9),
		"WithWorkerCodec(nil)": gearman.WithWorkerCodec(nil),
	} {
		w := gearman.NewWorker(servers, opt)
		w.Register("f", func(context.Context, *gearman.Job) (any, error) { return nil, nil })
		if err := w.Run(ctx); err == nil || !strings.Contains(err.Error(), strings.SplitN(name, "(", 2)[0]) {
			t.Errorf("%s: Run: %v, want the option named", name, err)
		}
	}
}
