package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// High availability: several bridges of one source (the same binlog.server_id
// and database), one active. The lease is a row of LeaseTable in the source
// database, not GET_LOCK: a stopped or cut-off holder keeps a GET_LOCK
// until the server's wait_timeout (8 h by default) while a row's deadline
// passes on its own; the lock is bound to one connection that a silent
// reconnect loses; and the row carries an epoch, bumped at every election,
// that every position save must match (fencing), so a bridge woken from a
// pause can never overwrite its successor's position.

// LeaseTable holds the lease of each bridge group (migration 00060).
const LeaseTable = "rowgear_binlog_lease"

// BridgesTable holds each bridge's last report, active or standby, for
// status (migration 00060).
const BridgesTable = "rowgear_binlog_bridges"

// ErrLeaseLost: the active bridge could not renew its lease in time (or
// another bridge holds it now): it stops publishing and stands by.
var ErrLeaseLost = errors.New("bridge: lease lost")

// DefaultLeaseTTL is the lease's time to live: a standby takes over at most
// this long after the active bridge's last renewal.
const DefaultLeaseTTL = 3 * time.Second

// WithHA turns high availability on (binlog.ha): Run waits for the lease
// before it publishes, renews it every ttl/3, and stops publishing as soon
// as it cannot trust it any more. ttl 0 is DefaultLeaseTTL.
func WithHA(ttl time.Duration) Option {
	return check("WithHA", ttl, ttl >= 0, "a lease TTL ≥ 0", func(b *Bridge) {
		b.ha = true
		if ttl > 0 {
			b.leaseTTL = ttl
		}
	})
}

// WithInstance names this bridge in the lease and in status (default
// host:pid:random).
func WithInstance(name string) Option {
	return check("WithInstance", `""`, name != "", "a name", func(b *Bridge) { b.instance = name })
}

// Role is what a bridge of a group does: Active or Standby (or Stopped).
type Role string

// The roles.
const (
	Active  Role = "active"
	Standby Role = "standby"
	Stopped Role = "stopped"
)

// LeaseObserver is an Observer that is also told the bridge's role (package
// metrics: rowgear_bridge_active, rowgear_bridge_lease_epoch).
type LeaseObserver interface {
	Lease(role Role, epoch int64)
}

// lease is one bridge's view of its group's lease.
type lease struct {
	b        *Bridge
	group    uint32 // binlog.server_id
	instance string
	ttl      time.Duration

	mu     sync.Mutex
	epoch  int64
	until  time.Time // local trust: monotonic, from the attempt's start
	lost   bool
	fence  context.Context // canceled when the lease is lost
	cancel context.CancelCauseFunc
}

func newInstanceName() string {
	host, _ := os.Hostname()
	var r [3]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(r[:]))
}

// margin is how much sooner than the server the holder stops trusting its
// lease: it covers the time between a submit's check and its write, and
// clock rate differences.
func (l *lease) margin() time.Duration { return l.ttl / 3 }

func (l *lease) micros() int64 { return l.ttl.Microseconds() }

// valid reports whether the holder may still publish.
func (l *lease) valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.lost && time.Now().Before(l.until)
}

// gate is checked before every submit: publishing stops the moment the
// local trust ends, before the server lets anyone else take the lease.
func (l *lease) gate() error {
	if l.valid() {
		return nil
	}
	l.markLost()
	return ErrLeaseLost
}

func (l *lease) markLost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lost {
		l.lost = true
		if l.cancel != nil {
			l.cancel(ErrLeaseLost)
		}
	}
}

func (l *lease) isLost() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func (l *lease) currentEpoch() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// ensureTables creates the lease tables if `migrate up` did not.
func (l *lease) ensureTables(ctx context.Context) error {
	db := l.b.db
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "+
		"AND TABLE_NAME IN (?, ?)", LeaseTable, BridgesTable).Scan(&n)
	if err != nil {
		return fmt.Errorf("%w: looking for the lease tables: %w", ErrStore, err)
	}
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS `" + LeaseTable + "` (server_id INT UNSIGNED NOT NULL PRIMARY KEY, " +
			"holder VARCHAR(191) NOT NULL, epoch BIGINT UNSIGNED NOT NULL, expires_at TIMESTAMP(6) NOT NULL, " +
			"acquired_at TIMESTAMP(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		"CREATE TABLE IF NOT EXISTS `" + BridgesTable + "` (server_id INT UNSIGNED NOT NULL, instance VARCHAR(191) NOT NULL, " +
			"role VARCHAR(16) NOT NULL, epoch BIGINT UNSIGNED NOT NULL DEFAULT 0, position TEXT NOT NULL, " +
			"seen_at TIMESTAMP(6) NOT NULL, PRIMARY KEY (server_id, instance)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
	} {
		if n == 2 {
			break // an account without CREATE needs them made by migrate up
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%w: creating the lease tables (or run `migrate up`): %w", ErrStore, err)
		}
	}
	_, err = db.ExecContext(ctx, "INSERT IGNORE INTO `"+LeaseTable+"` (server_id, holder, epoch, expires_at, acquired_at) "+
		"VALUES (?, '', 0, '1970-01-02 00:00:00', NOW(6))", l.group)
	if err != nil {
		return fmt.Errorf("%w: lease row: %w", ErrStore, err)
	}
	return nil
}

// tryAcquire takes the lease if it has expired (compare-and-set on the
// server's clock) and returns whether it did.
func (l *lease) tryAcquire(ctx context.Context) (bool, error) {
	start := time.Now()
	res, err := l.b.db.ExecContext(ctx, "UPDATE `"+LeaseTable+"` SET holder = ?, epoch = LAST_INSERT_ID(epoch + 1), "+
		"expires_at = NOW(6) + INTERVAL ? MICROSECOND, acquired_at = NOW(6) WHERE server_id = ? AND expires_at < NOW(6)",
		l.instance, l.micros(), l.group)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	epoch, err := res.LastInsertId()
	if err != nil {
		return false, err
	}
	fence, cancel := context.WithCancelCause(context.Background())
	l.mu.Lock()
	l.epoch, l.until, l.lost, l.fence, l.cancel = epoch, start.Add(l.ttl-l.margin()), false, fence, cancel
	l.mu.Unlock()
	return true, nil
}

// renew extends the lease; ok is false when another bridge holds it now.
func (l *lease) renew(ctx context.Context) (ok bool, err error) {
	start := time.Now()
	res, err := l.b.db.ExecContext(ctx, "UPDATE `"+LeaseTable+"` SET expires_at = NOW(6) + INTERVAL ? MICROSECOND "+
		"WHERE server_id = ? AND holder = ? AND epoch = ?", l.micros(), l.group, l.instance, l.currentEpoch())
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	l.mu.Lock()
	if !l.lost {
		l.until = start.Add(l.ttl - l.margin())
	}
	l.mu.Unlock()
	return true, nil
}

// release gives the lease up at a clean stop, so a standby takes over at
// its next poll rather than after the ttl.
func (l *lease) release(ctx context.Context) {
	_, err := l.b.db.ExecContext(ctx, "UPDATE `"+LeaseTable+"` SET expires_at = '1970-01-02 00:00:00' "+
		"WHERE server_id = ? AND holder = ? AND epoch = ?", l.group, l.instance, l.currentEpoch())
	if err != nil {
		l.b.log.Warn("releasing the lease failed; a standby takes over once it expires", "error", err)
	}
}

// report upserts this bridge's row of BridgesTable.
func (l *lease) report(ctx context.Context, role Role, pos string) {
	_, err := l.b.db.ExecContext(ctx, "INSERT INTO `"+BridgesTable+"` (server_id, instance, role, epoch, position, seen_at) "+
		"VALUES (?, ?, ?, ?, ?, NOW(6)) ON DUPLICATE KEY UPDATE role = VALUES(role), epoch = VALUES(epoch), "+
		"position = VALUES(position), seen_at = VALUES(seen_at)", l.group, l.instance, string(role), l.currentEpoch(), pos)
	if err != nil && ctx.Err() == nil {
		l.b.log.Debug("bridge report failed", "error", err)
	}
	if o, ok := l.b.observer.(LeaseObserver); ok {
		o.Lease(role, l.currentEpoch())
	}
}

// holder names the current holder of the lease, for the standby's log.
func (l *lease) holder(ctx context.Context) (string, int64) {
	var h string
	var e int64
	l.b.db.QueryRowContext(ctx, "SELECT holder, epoch FROM `"+LeaseTable+"` WHERE server_id = ?", l.group).Scan(&h, &e)
	return h, e
}

// wait stands by until this bridge holds the lease (or ctx ends).
func (l *lease) wait(ctx context.Context) error {
	poll := min(l.ttl/10, 250*time.Millisecond)
	var lastReport time.Time
	var lastHolder string
	l.b.standing.Store(true)
	defer l.b.standing.Store(false)
	for {
		ok, err := l.tryAcquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			l.b.log.Warn("standby: cannot reach the lease; retrying", "error", err)
		}
		if ok {
			return nil
		}
		if time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			saved := ""
			if p, found, err := l.b.store.Load(ctx); err == nil && found {
				saved = p.String()
			}
			l.report(ctx, Standby, saved)
			if h, e := l.holder(ctx); h != lastHolder {
				lastHolder = h
				l.b.log.Info("standing by: another bridge holds the lease", "active", h, "epoch", e, "instance", l.instance)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// keep renews the lease every ttl/3 while the bridge runs, and cancels the
// run (cause ErrLeaseLost) when it cannot trust the lease any more.
func (l *lease) keep(ctx context.Context, stop context.CancelCauseFunc) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	lost := func(why string, err error) {
		l.markLost()
		l.b.log.Error("lease lost: publishing stopped, standing by", "why", why, "error", err, "epoch", l.currentEpoch())
		stop(ErrLeaseLost)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !l.valid() { // a pause longer than the trust (SIGSTOP, a stalled VM)
			lost("the lease's local trust ended before a renewal", nil)
			return
		}
		l.mu.Lock()
		left := time.Until(l.until)
		l.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, left)
		ok, err := l.renew(rctx)
		cancel()
		switch {
		case err == nil && !ok:
			lost("another bridge holds the lease", nil)
			return
		case err != nil && !l.valid():
			lost("renewal failed until the local trust ended", err)
			return
		case err != nil:
			l.b.log.Warn("lease renewal failed; retrying", "error", err)
		}
		pos := ""
		if l.b.obs.running.Load() { // set once runOnce made its tracker
			p, _, _ := l.b.tracker.advance()
			pos = p.String()
		}
		l.report(ctx, Active, pos)
	}
}

// haServerID is the server_id the active bridge of epoch reads the binlog
// as: its own per election, so a paused predecessor's replication
// connection and this one never evict each other (ERROR 4052), in the
// upper half of the id space, away from real replicas' small ids.
func haServerID(group uint32, epoch int64) uint32 {
	return 1<<31 | (group<<12+uint32(epoch))&(1<<31-1)
}

// replicaID is the server_id the binlog connection uses.
func (b *Bridge) replicaID() uint32 {
	if b.lease != nil {
		return haServerID(b.lease.group, b.lease.currentEpoch())
	}
	return b.serverID()
}

// submitContext is the context the submitters run under: it outlives the
// run's (they drain what was read), but not the lease.
func (b *Bridge) submitContext(ctx context.Context) context.Context {
	if b.lease != nil {
		b.lease.mu.Lock()
		defer b.lease.mu.Unlock()
		return b.lease.fence
	}
	return context.WithoutCancel(ctx)
}

// submitGate is checked before each submit (nil: always open).
func (b *Bridge) submitGate() func() error {
	if b.lease != nil {
		return b.lease.gate
	}
	return nil
}

// runHA stands by for the lease, runs as the active bridge while it holds
// it, and stands by again when it loses it.
func (b *Bridge) runHA(ctx context.Context) error {
	ts, ok := b.store.(*TableStore)
	if !ok {
		return fmt.Errorf("%w: binlog.ha needs the position in the database (binlog.position: table, gtid or file), "+
			"shared by every bridge of the group", ErrConfig)
	}
	if b.instance == "" {
		b.instance = newInstanceName()
	}
	l := &lease{b: b, group: b.serverID(), instance: b.instance, ttl: b.leaseTTL}
	if err := l.ensureTables(ctx); err != nil {
		return err
	}
	inner := b.store
	defer func() { b.store = inner }()
	b.store = &fencedStore{TableStore: ts, lease: l}
	defer func() {
		// The last word in status: this bridge is gone.
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		l.report(c, Stopped, "")
	}()
	for {
		b.log.Info("standing by for the lease", "instance", l.instance, "group", l.group, "ttl", l.ttl)
		waitStart := time.Now()
		if err := l.wait(ctx); err != nil {
			return nil // ctx ended
		}
		b.log.Info("lease acquired: this bridge is active", "instance", l.instance, "epoch", l.currentEpoch(),
			"waited", time.Since(waitStart).Round(time.Millisecond), "binlog_server_id", haServerID(l.group, l.currentEpoch()))
		b.lease = l
		l.report(ctx, Active, "")
		runCtx, stop := context.WithCancelCause(ctx)
		kept := make(chan struct{})
		go func() { defer close(kept); l.keep(runCtx, stop) }()
		err := b.runOnce(runCtx)
		stop(nil)
		<-kept
		b.lease = nil
		if l.isLost() {
			if err != nil && !errors.Is(err, ErrLeaseLost) {
				b.log.Warn("the run ended with an error after the lease was lost", "error", err)
			}
			l.report(ctx, Standby, "")
			continue
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		l.release(rctx)
		cancel()
		return err
	}
}

// fencedStore saves the position only while this bridge's epoch is the
// lease's: a bridge that lost the lease (paused, cut off) cannot overwrite
// what its successor saved.
type fencedStore struct {
	*TableStore
	lease *lease
}

func (s *fencedStore) Save(ctx context.Context, p Position) error {
	res, err := s.db.ExecContext(ctx, "INSERT INTO `"+PositionTable+"` (server_id, binlog_file, binlog_pos, gtid_set, history) "+
		"SELECT ?, ?, ?, ?, ? FROM `"+LeaseTable+"` WHERE server_id = ? AND holder = ? AND epoch = ? "+
		"ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), binlog_pos = VALUES(binlog_pos), "+
		"gtid_set = VALUES(gtid_set), history = VALUES(history)",
		s.serverID, p.File, p.Pos, p.GTID, p.History, s.lease.group, s.lease.instance, s.lease.currentEpoch())
	if err != nil {
		return fmt.Errorf("%w: save: %w", ErrStore, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	// Nothing written: the same position again, or the lease moved on.
	var holder string
	var epoch int64
	err = s.db.QueryRowContext(ctx, "SELECT holder, epoch FROM `"+LeaseTable+"` WHERE server_id = ?", s.lease.group).Scan(&holder, &epoch)
	if err != nil {
		return fmt.Errorf("%w: save: %w", ErrStore, err)
	}
	if holder != s.lease.instance || epoch != s.lease.currentEpoch() {
		s.lease.markLost()
		return fmt.Errorf("%w: position not saved: %s holds the lease now (epoch %d, ours %d)", ErrLeaseLost, holder, epoch, s.lease.currentEpoch())
	}
	return nil
}

var _ Store = (*fencedStore)(nil)
