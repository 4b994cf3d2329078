package dispatch_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
)

// TestBadClientOptions: a bad option is the error of each of the client's
// calls, naming the option, before anything is sent (no gearmand here).
func TestBadClientOptions(t *testing.T) {
	gc := gearman.NewClient([]string{"127.0.0.1:1"})
	defer gc.Close()
	reg := dispatch.NewRegistry()
	ok := dispatch.NewClient(gc, reg, "app")
	for name, c := range map[string]*dispatch.Client{
		"WithConfig": dispatch.NewClient(gc, reg, "app", dispatch.WithConfig(nil)),
		"Priority":   ok.With(dispatch.Priority(7)),
		"Unique":     ok.With(dispatch.Unique(strings.Repeat("k", 65))),
	} {
		if _, err := c.TaskBackground(context.Background(), struct{}{}, "publish"); err == nil || !strings.Contains(err.Error(), name+"(") {
			t.Errorf("%s: TaskBackground: %v, want the option named", name, err)
		}
		if _, _, err := c.Prepare(struct{}{}, "publish"); err == nil || !strings.Contains(err.Error(), name+"(") {
			t.Errorf("%s: Prepare: %v, want the option named", name, err)
		}
	}
	if _, _, err := ok.Prepare(struct{}{}, "publish"); err == nil || strings.Contains(err.Error(), "Priority(") {
		t.Errorf("With changed the client it copied: %v", err)
	}
}
