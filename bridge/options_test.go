package bridge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
)

// TestOptionsCheckTheirValues: a bad option is New's error, naming the
// option, before New touches a database.
func TestOptionsCheckTheirValues(t *testing.T) {
	for _, c := range []struct {
		opt  bridge.Option
		want string
	}{
		{bridge.WithBatch(0), "WithBatch(0): want 1 to 1000 events per job"},
		{bridge.WithBatch(1001), "WithBatch(1001)"},
		{bridge.WithConcurrency(0), "WithConcurrency(0)"},
		{bridge.WithLogger(nil), "WithLogger(<nil>)"},
		{bridge.WithStore(nil), "WithStore(<nil>)"},
		{bridge.WithObserver(nil), "WithObserver(<nil>)"},
		{bridge.WithDSN(""), `WithDSN("")`},
		{bridge.WithInstance(""), `WithInstance("")`},
		{bridge.WithHA(-time.Second), "WithHA(-1s)"},
		{bridge.WithHeartbeat(-time.Second), "WithHeartbeat(-1s)"},
		{bridge.WithStallAfter(0), "WithStallAfter(0s)"},
		{bridge.WithSaveInterval(0), "WithSaveInterval(0s)"},
		{bridge.WithFlushTimeout(-time.Second), "WithFlushTimeout(-1s)"},
	} {
		_, err := bridge.New(context.Background(), &config.Config{}, c.opt)
		if !errors.Is(err, bridge.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New with a bad option: got %v, want ErrConfig saying %q", err, c.want)
		}
	}
}
