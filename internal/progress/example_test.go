package progress_test

import (
	"os"

	"github.com/rowgear/rowgear/internal/progress"
)

// Not on a terminal (here, the example's captured output), a reporter
// writes a plain line every interval and one at the end.
func Example() {
	p := progress.New(os.Stdout, "dead retry", 3, progress.WithTerminal(false))
	for range 3 {
		p.Add(1) // one step done
	}
	p.Done() // "dead retry: 3/3 (100%), …/s, done in …"
}
