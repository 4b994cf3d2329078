package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func runTB(t *testing.T, f func(testing.TB)) string {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); f(tb) }()
	<-done
	return tb.msg
}

func TestProgressing(t *testing.T) {
	// Slow but moving: longer in all than stall, never stuck that long.
	n := int64(0)
	if msg := runTB(t, func(tb testing.TB) {
		Progressing(tb, 300*time.Millisecond, "slow", func() (int64, bool) { n++; return n, n >= 8 })
	}); msg != "" {
		t.Errorf("a wait that progresses failed: %s", msg)
	}
	// Stuck: fails after stall, saying where.
	start := time.Now()
	msg := runTB(t, func(tb testing.TB) {
		Progressing(tb, 300*time.Millisecond, "stuck", func() (int64, bool) { return 5, false })
	})
	if !strings.Contains(msg, "timed out waiting for stuck: no progress for 300ms (stuck at 5)") || time.Since(start) < 300*time.Millisecond {
		t.Errorf("stuck wait: %q after %s", msg, time.Since(start))
	}
}
