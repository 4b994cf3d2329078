// Package progress shows how far a long operation got (dead-letter replay,
// migrations, snapshots): on a terminal one line redrawn in place, at most
// every 100 ms; elsewhere (a log file, a pipe, a container's output) a plain
// line every interval (default 10 s) and one at the end, so that logs stay
// readable.
//
//	p := progress.New(os.Stderr, "dead retry", total)
//	for … { …; p.Add(1) }
//	p.Done()
//
// Lines read "dead retry: 340/1000 (34%), 120/s, about 5s left"; with an
// unknown total (0), "dead retry: 340, 120/s".
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Reporter reports the progress of one operation. It is safe for
// concurrent use.
type Reporter struct {
	w        io.Writer
	what     string
	total    int64
	tty      bool
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	done  int64
	start time.Time
	last  time.Time // last line written
	ended bool
}

// Option configures a Reporter.
type Option func(*Reporter)

// WithInterval sets how often a plain (not terminal) line is written.
func WithInterval(d time.Duration) Option { return func(r *Reporter) { r.interval = d } }

// WithTerminal overrides the terminal detection.
func WithTerminal(tty bool) Option { return func(r *Reporter) { r.tty = tty } }

// New returns a reporter of what, out of total steps (0: unknown), writing
// to w. A w that is a character device (*os.File on a terminal) gets the
// redrawn line.
func New(w io.Writer, what string, total int64, opts ...Option) *Reporter {
	r := &Reporter{w: w, what: what, total: total, interval: 10 * time.Second, now: time.Now}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			r.tty = true
		}
	}
	for _, o := range opts {
		o(r)
	}
	r.start = r.now()
	r.last = r.start
	return r
}

// SetTotal changes the total, once it is known.
func (r *Reporter) SetTotal(total int64) {
	r.mu.Lock()
	r.total = total
	r.mu.Unlock()
}

// Add counts n more steps done.
func (r *Reporter) Add(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done += n
	now := r.now()
	every := r.interval
	if r.tty {
		every = 100 * time.Millisecond
	}
	if now.Sub(r.last) >= every {
		r.write(now, false)
	}
}

// Done writes the final line. Later calls do nothing.
func (r *Reporter) Done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.ended = true
	r.write(r.now(), true)
}

func (r *Reporter) write(now time.Time, final bool) {
	r.last = now
	el := now.Sub(r.start)
	line := r.what + ": "
	if r.total > 0 {
		line += fmt.Sprintf("%d/%d (%d%%)", r.done, r.total, r.done*100/r.total)
	} else {
		line += fmt.Sprint(r.done)
	}
	if el >= time.Second || final {
		rate := float64(r.done) / max(el.Seconds(), 1e-9)
		line += fmt.Sprintf(", %.0f/s", rate)
		if !final && r.total > 0 && rate > 0 && r.done < r.total {
			left := time.Duration(float64(r.total-r.done) / rate * float64(time.Second))
			line += fmt.Sprintf(", about %s left", left.Round(time.Second))
		}
	}
	if final {
		line += fmt.Sprintf(", done in %s", el.Round(time.Millisecond))
	}
	switch {
	case r.tty && final:
		fmt.Fprintf(r.w, "\r\033[K%s\n", line)
	case r.tty:
		fmt.Fprintf(r.w, "\r\033[K%s", line)
	default:
		fmt.Fprintln(r.w, line)
	}
}
