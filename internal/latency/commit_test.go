package latency

import (
	"testing"
	"time"
)

func TestCommitTime(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	beats := []beat{{pos: 1000, commit: ms(0)}, {pos: 2000, commit: ms(1000)}, {pos: 5000, commit: ms(2000)}}
	for _, c := range []struct {
		name  string
		pos   uint64
		bound time.Time
		want  time.Time
		ok    bool
	}{
		{"before the first heartbeat", 999, time.Time{}, time.Time{}, false},
		{"after the last heartbeat", 5000, time.Time{}, time.Time{}, false},
		{"at a heartbeat", 2000, time.Time{}, ms(1000), true},
		{"interpolated", 1250, time.Time{}, ms(250), true},
		{"interpolated, second interval", 3500, time.Time{}, ms(1500), true},
		{"read bound earlier than interpolation", 1750, ms(100), ms(100), true},
		{"read bound later: interpolation stands", 1250, ms(900), ms(250), true},
		{"read bound before the heartbeat before it", 1250, ms(-50), ms(0), true},
	} {
		got, ok := commitTime(beats, c.pos, c.bound)
		if ok != c.ok || !got.Equal(c.want) {
			t.Errorf("%s: commitTime(%d) = %v, %v; want %v, %v", c.name, c.pos, got, ok, c.want, c.ok)
		}
	}
}

func TestMinDelay(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	beats := map[string][]beat{
		"binlog.000001": {{commit: t0, readAt: t0.Add(3 * time.Millisecond)}, {commit: t0, readAt: t0.Add(time.Millisecond)}},
		"binlog.000002": {{commit: t0}}, // not read yet
	}
	if d, ok := minDelay(beats); !ok || d != time.Millisecond {
		t.Errorf("minDelay = %v, %v; want 1ms", d, ok)
	}
	if _, ok := minDelay(map[string][]beat{"f": {{commit: t0}}}); ok {
		t.Error("minDelay of unread heartbeats is known")
	}
}
