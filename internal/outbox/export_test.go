package outbox

import "time"

// AloneFor sets how long r must go without finding a cursor moved by
// another relay before it publishes while it claims (aloneFor), and
// whether it has gone that long already.
func AloneFor(r *Relay, d time.Duration, already bool) {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	r.aloneFor = d
	r.started = time.Now()
	if already {
		r.started = r.started.Add(-d)
	}
	clear(r.taken)
}

// Alone reports whether r publishes table t's rows while it claims them.
func Alone(r *Relay, t string) bool { return r.alone(t) }
