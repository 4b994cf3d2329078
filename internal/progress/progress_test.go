package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// clock is a fake clock the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest(tty bool, total int64) (*Reporter, *bytes.Buffer, *clock) {
	var buf bytes.Buffer
	c := &clock{time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	r := New(&buf, "dead retry", total, WithTerminal(tty), WithInterval(10*time.Second))
	r.now = c.now
	r.start, r.last = c.t, c.t
	return r, &buf, c
}

func TestPlainLinesEveryInterval(t *testing.T) {
	r, buf, c := newTest(false, 100)
	for range 40 { // 40 steps over 20 s: one line at 10 s, one at 20 s
		c.t = c.t.Add(500 * time.Millisecond)
		r.Add(1)
	}
	r.Done()
	r.Done()
	want := "dead retry: 20/100 (20%), 2/s, about 40s left\n" +
		"dead retry: 40/100 (40%), 2/s, about 30s left\n" +
		"dead retry: 40/100 (40%), 2/s, done in 20s\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestTerminalRedrawsOneLine(t *testing.T) {
	r, buf, c := newTest(true, 0)
	for range 5 {
		c.t = c.t.Add(50 * time.Millisecond)
		r.Add(10)
	}
	r.Done()
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\r\033[Kdead retry: 50, 200/s, done in 250ms\n") {
		t.Errorf("terminal output %q", out)
	}
	if n := strings.Count(out, "\r"); n != 3 { // at 100 ms, 200 ms, and the end
		t.Errorf("%d redraws in %q, want 3", n, out)
	}
}
