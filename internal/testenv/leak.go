package testenv

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// RunWithoutLeaks is a TestMain: it runs the package's tests, then fails
// the package if goroutines outlive them. It waits up to 30 s for them to
// end, not goleak's own 2: a gearman client whose gearmand was killed ends
// its goroutines only after its response timeout, and later still on a
// loaded machine; a real leak outlives any wait. cleanup, if not nil, runs
// last.
func RunWithoutLeaks(m *testing.M, cleanup func()) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(30 * time.Second)
		err := goleak.Find()
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			err = goleak.Find()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines outlived the tests by 30 s: %v\n", err)
			code = 1
		}
	}
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}
