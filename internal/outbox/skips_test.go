package outbox

import (
	"slices"
	"testing"
	"time"
)

func TestSkips(t *testing.T) {
	var s skips
	t0 := time.Now()
	s.add(10, 14, t0) // 11, 12, 13
	s.add(14, 15, t0) // none: consecutive
	got := s.due(t0, true, time.Minute)
	slices.Sort(got)
	if !slices.Equal(got, []uint64{11, 12, 13}) {
		t.Fatalf("young ids %v, want 11 12 13", got)
	}
	if got := s.due(t0.Add(time.Millisecond), true, time.Minute); got != nil {
		t.Errorf("a look 1 ms after the last: %v, want none before youngEvery", got)
	}
	s.found(map[uint64]bool{12: true})
	later := t0.Add(2 * time.Second)
	if got := s.due(later, true, time.Minute); len(got) != 0 {
		t.Errorf("young ids 2 s later: %v, want none (the poll's now)", got)
	}
	got = s.due(later, false, time.Minute)
	slices.Sort(got)
	if !slices.Equal(got, []uint64{11, 13}) {
		t.Errorf("the poll's ids %v, want 11 13 (12 found)", got)
	}
	s.retry([]uint64{20}, later)
	if got := s.due(t0.Add(61*time.Second), false, time.Minute); !slices.Equal(got, []uint64{20}) {
		t.Errorf("after forget: %v, want only the retried 20", got)
	}
}

func TestSkipsCapped(t *testing.T) {
	var s skips
	now := time.Now()
	s.add(0, maxSkips+11, now)
	if len(s.list) != maxSkips || s.list[0].id != 11 || s.live != maxSkips {
		t.Errorf("%d ids kept (live %d), first %d; want the newest %d", len(s.list), s.live, s.list[0].id, maxSkips)
	}
}
