package outbox

import (
	"slices"
	"sync"
	"time"
)

// skips are the ids a table's cursor passed without a row: a writer's
// that had not committed (or rolled back, or a row deleted before the
// read: most of them, when several namespaces share the table). The relay
// looks for them again for a while: the ones skipped in the last second at
// most every youngEvery (a writer whose commit came just after the read),
// all of them at each poll; after forget they are the sweep's.
type skips struct {
	mu        sync.Mutex
	list      []skip // by when skipped, oldest first
	live      int    // entries of list not found yet
	lookedNew time.Time
}

type skip struct {
	id uint64 // 0: found since
	at time.Time
}

const (
	// maxSkips caps the ids looked for; past it the oldest are the sweep's.
	maxSkips = 100_000
	// youngFor is how long a skipped id counts as young.
	youngFor = time.Second
	// youngEvery spaces the looks for the young ones.
	youngEvery = 5 * time.Millisecond
	// lookMax caps the ids of one look.
	lookMax = 1000
)

// add notes the ids between after and before, both excluded.
func (s *skips) add(after, before uint64, now time.Time) {
	if before-after < 2 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Only the newest maxSkips of a wider gap would be kept.
	from := max(after+1, before-min(before, maxSkips))
	for id := from; id < before; id++ {
		s.list = append(s.list, skip{id, now})
	}
	s.added(int(before - from))
}

// added counts the n entries just appended and drops the oldest past
// maxSkips.
func (s *skips) added(n int) {
	s.live += n
	if n := len(s.list) - maxSkips; n > 0 {
		s.drop(n)
	}
}

// drop forgets the n oldest entries.
func (s *skips) drop(n int) {
	for _, x := range s.list[:n] {
		if x.id != 0 {
			s.live--
		}
	}
	s.list = slices.Delete(s.list, 0, n)
}

// due returns the ids to look for now: with young, up to lookMax of the
// ones skipped within youngFor, newest first, unless a look for them was
// less than youngEvery ago; else every one not older than forget. It
// forgets the older ones.
func (s *skips) due(now time.Time, young bool, forget time.Duration) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := 0
	for old < len(s.list) && now.Sub(s.list[old].at) > forget {
		old++
	}
	s.drop(old)
	if s.live < len(s.list)/2 { // mostly found: compact
		s.list = slices.DeleteFunc(s.list, func(x skip) bool { return x.id == 0 })
	}
	var ids []uint64
	if young {
		if now.Sub(s.lookedNew) < youngEvery {
			return nil
		}
		s.lookedNew = now
		for i := len(s.list) - 1; i >= 0 && len(ids) < lookMax && now.Sub(s.list[i].at) <= youngFor; i-- {
			if s.list[i].id != 0 {
				ids = append(ids, s.list[i].id)
			}
		}
		return ids
	}
	for _, x := range s.list {
		if x.id != 0 {
			ids = append(ids, x.id)
		}
	}
	return ids
}

// found marks ids as found: not looked for again.
func (s *skips) found(ids map[uint64]bool) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.list {
		if ids[s.list[i].id] {
			s.list[i].id = 0
			s.live--
		}
	}
}

// retry notes ids to look for again from now (rows whose submit failed).
func (s *skips) retry(ids []uint64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.list = append(s.list, skip{id, now})
	}
	s.added(len(ids))
}
