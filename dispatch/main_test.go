package dispatch_test

import (
	"testing"

	"github.com/rowgear/rowgear/internal/testenv"
)

// TestMain fails the package when a test leaves a goroutine running.
func TestMain(m *testing.M) {
	testenv.RunWithoutLeaks(m, nil)
}
