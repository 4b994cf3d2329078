package bridge

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	gomysql "github.com/go-sql-driver/mysql"
)

// GTID positions (MariaDB: binlog.position table, the default, or gtid).
// A MariaDB GTID names a transaction the same way on every server of the
// replication topology (with log_slave_updates), so in this mode an
// event's id is
// "<domain>-<server>-<seq>:<row>@<history>" — row counts the published rows
// of the transaction — and its seq is "<history start>:9<seq>:<row>": a
// change replayed from another server after a failover keeps its id and
// seq, and the promoted server's transactions, which continue the domain's
// sequence, order after the old primary's. Seqs compare within one GTID
// domain: a row written in two domains is not ordered across them.

// gtidTrx is the transaction being read, in GTID mode.
type gtidTrx struct {
	gtid       string // "d-s-n"; empty before the first GTID event
	seqNo      uint64
	base, next int    // row index of the current rows event's first row; next free index
	lastPos    uint32 // log pos of the current rows event
}

// beginTrx notes the GTID of the transaction that starts.
func (b *Bridge) beginTrx(e *replication.MariadbGTIDEvent) {
	b.gt = gtidTrx{gtid: fmt.Sprintf("%d-%d-%d", e.GTID.DomainID, e.GTID.ServerID, e.GTID.SequenceNumber), seqNo: e.GTID.SequenceNumber}
}

// ids returns the id and seq of row (the index among the rows event's
// changes) of the rows event at logPos (pos is "file:logpos").
func (h *handler) ids(pos string, logPos uint32, row int) (id, seq string) {
	b := h.b
	if !b.gtidMode || b.gt.gtid == "" {
		return eventID(pos, row, b.sourceID, b.history), eventSeq(b.history, h.file, logPos, row)
	}
	g := &b.gt
	if logPos != g.lastPos {
		g.base, g.lastPos = g.next, logPos
	}
	r := g.base + row
	g.next = max(g.next, r+1)
	return capID(fmt.Sprintf("%s:%d@%s", g.gtid, r, b.history)), gtidSeq(b.history, g.seqNo, r)
}

// seqAt is the seq of a snapshot row ordered at the transaction read last
// (its high watermark's).
func (h *handler) seqAt(logPos uint32, row int) string {
	if h.b.gtidMode && h.b.gt.gtid != "" {
		return gtidSeq(h.b.history, h.b.gt.seqNo, row)
	}
	return eventSeq(h.b.history, h.file, logPos, row)
}

// gtidSeq is "<history start>:9<seq, 19 digits>:<row, 7 digits>", 40
// bytes (digits and colons, as events requires): the 9 sorts it after the
// file number (10 digits, far below 9,000,000,000) of a file:pos seq of the
// same history.
func gtidSeq(history string, seqNo uint64, row int) string {
	return fmt.Sprintf("%.*s:9%019d:%07d", historyStartLen, history, seqNo, row)
}

// The modes binlog.position asks for.
const (
	modeAuto = "auto" // table (the default) and file:PATH: GTID positions on MariaDB, file positions on MySQL
	modeGTID = "gtid" // gtid: GTID positions, MariaDB only
	modeFile = "file" // file: file positions (ids "file:pos:row@server_id.history"), as before GTID positions
)

// positionMode is the mode binlog.position v asks for. file:PATH names a
// JSON file for the position; its ids stay file positions, as before.
func positionMode(v string) string {
	switch {
	case v == "gtid":
		return modeGTID
	case v == "file", strings.HasPrefix(v, "file:"):
		return modeFile
	}
	return modeAuto
}

// wantGTID reports whether events are identified by GTID: binlog.position
// gtid, or its default on MariaDB, whose binlog always carries GTIDs. On
// MySQL the default keeps file positions (resumed by the GTID set when
// gtid_mode is ON, as before).
func (b *Bridge) wantGTID() bool {
	switch b.posMode {
	case modeGTID:
		return true
	case modeFile:
		return false
	}
	return b.flavor() == mysql.MariaDBFlavor
}

// gtidHistoryMark ends the History of a GTID position (hex digits never
// do): it tells a saved GTID position from a file one, which a bridge
// moving to GTID positions catches up on first (resolveMode).
const gtidHistoryMark = "g"

func isGTIDHistory(h string) bool { return strings.HasSuffix(h, gtidHistoryMark) }

// newGTIDHistory is a new history of GTID positions, ordered after prev
// (the history it follows, if any) even when this host's clock is behind
// the one that started prev: its seqs must compare greater.
func newGTIDHistory(prev string) string {
	h := newHistory()
	if len(prev) >= historyStartLen && h[:historyStartLen] <= prev[:historyStartLen] {
		var start uint64
		fmt.Sscan(prev[:historyStartLen], &start)
		h = fmt.Sprintf("%0*d", historyStartLen, start+1) + h[historyStartLen:]
	}
	return h + gtidHistoryMark
}

// errSwitchGTID stops the stream at the first transaction at or after
// switchAt: the bridge moves to GTID positions there (switchInStream).
var errSwitchGTID = errors.New("bridge: moving to GTID positions")

// resolveMode decides how this run identifies events, from the mode asked
// for and the start position, and returns the position to start from.
//
// A saved position of file positions (a bridge before GTID positions were
// the default, or binlog.position: file) moves to GTID positions without
// losing, skipping or renaming anything: the events it may have published
// after its saved position lie before the current end of the binlog, so
// the bridge publishes up to there with file positions (a replay keeps
// its id and seq), waits for gearmand to acknowledge all of it, saves the
// GTID position of that point under a new history (whose seqs order after
// every file seq of the old one) and only then publishes by GTID.
func (b *Bridge) resolveMode(ctx context.Context, start Position) (Position, error) {
	b.gtidMode, b.switchAt = false, nil
	if !b.wantGTID() {
		if isGTIDHistory(start.History) {
			// Its file seqs would compare below the GTID seqs of the same
			// history: the ordering middleware would skip new changes.
			return Position{}, fmt.Errorf("%w: binlog.position: %s asks for file positions, but the saved position %s "+
				"is a GTID one (history %s): drop that setting, or delete the saved position and start afresh (--start=current)",
				ErrConfig, b.cfg.Binlog.Position, start.String(), start.History)
		}
		return start, nil
	}
	if b.flavor() != mysql.MariaDBFlavor {
		return Position{}, fmt.Errorf("%w: binlog.position: gtid follows MariaDB GTIDs only", ErrConfig)
	}
	if isGTIDHistory(start.History) {
		b.gtidMode = true
		if start.GTID == "" {
			return Position{}, fmt.Errorf("%w: the saved GTID position %s has no GTID set: "+
				"delete it and start with --start=current or --start=gtid:SET", ErrConfig, start.String())
		}
		return start, nil
	}
	end, err := b.currentPosition(ctx)
	if err != nil {
		return Position{}, err
	}
	if start.File == "" || binlogBefore(start.File, start.Pos, end.File, end.Pos) {
		b.switchAt = &end
		b.log.Info("file positions saved: publishing with them up to the end of the binlog, then moving to GTID positions",
			"from", start.String(), "until", end.File+":"+fmt.Sprint(end.Pos))
		return start, nil
	}
	return b.switchToGTID(ctx, start)
}

// switchToGTID saves the GTID position of at, a transaction boundary up to
// which everything read was acknowledged, under a new history, and makes
// this run identify events by GTID from there. Without a GTID at that
// point (a binlog with no transaction yet) it tries again at the next
// boundary.
func (b *Bridge) switchToGTID(ctx context.Context, at Position) (Position, error) {
	set, err := b.gtidAt(ctx, at)
	if err != nil {
		return Position{}, err
	}
	if set == "" {
		b.switchAt = &Position{File: at.File, Pos: at.Pos}
		return at, nil
	}
	b.switchAt = nil
	p := Position{File: at.File, Pos: at.Pos, GTID: set, History: newGTIDHistory(at.History)}
	b.saveMu.Lock()
	defer b.saveMu.Unlock()
	if err := b.store.Save(ctx, p); err != nil {
		return Position{}, err
	}
	b.history, b.gtidMode = p.History, true
	if t := b.tracker; t != nil {
		t.mu.Lock()
		t.acked, t.read = p, p
		t.mu.Unlock()
	}
	b.log.Info("moved to GTID positions: events are identified by GTID from here (binlog.position: file keeps file positions)",
		"from", at.File+":"+fmt.Sprint(at.Pos), "old_history", at.History, "gtid", set, "history", p.History)
	return p, nil
}

// switchInStream is switchToGTID at switchAt, once gearmand acknowledged
// everything read before it.
func (b *Bridge) switchInStream(ctx context.Context) error {
	for {
		acked, _, _ := b.tracker.advance()
		read := b.tracker.readPos()
		if acked.File == read.File && acked.Pos == read.Pos {
			_, err := b.switchToGTID(ctx, read)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// gtidAt is the GTID position of p: its set, else the server's
// BINLOG_GTID_POS of its file position.
func (b *Bridge) gtidAt(ctx context.Context, p Position) (string, error) {
	if p.GTID != "" || p.File == "" {
		return p.GTID, nil
	}
	var set sql.NullString
	if err := b.db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Pos).Scan(&set); err != nil {
		return "", fmt.Errorf("the GTID position of %s: BINLOG_GTID_POS: %w", p.String(), err)
	}
	if !set.Valid {
		return "", fmt.Errorf("%w: the server has no GTID position for %s (BINLOG_GTID_POS is NULL: binlog purged, "+
			"or not a transaction boundary); set binlog.position: file, or start afresh (--start=current)", ErrBinlogGone, p.String())
	}
	return set.String, nil
}

// binlogBefore reports whether file position a is before b: by the
// number after the file name's last dot, then the offset.
func binlogBefore(aFile string, aPos uint32, bFile string, bPos uint32) bool {
	an, bn := aFile[strings.LastIndexByte(aFile, '.')+1:], bFile[strings.LastIndexByte(bFile, '.')+1:]
	if len(an) != len(bn) {
		return len(an) < len(bn)
	}
	if an != bn {
		return an < bn
	}
	return aPos < bPos
}

// ---- several hosts in the DSN ----

// splitHosts takes the hosts out of a DSN "user@tcp(h1:p1,h2:p2)/db": it
// returns the DSN with the first one, and all of them (nil for one host).
func splitHosts(dsn string) (string, []string) {
	i := strings.Index(dsn, "@tcp(")
	if i < 0 {
		return dsn, nil
	}
	j := strings.IndexByte(dsn[i:], ')')
	if j < 0 {
		return dsn, nil
	}
	inner := dsn[i+5 : i+j]
	if !strings.Contains(inner, ",") {
		return dsn, nil
	}
	var hosts []string
	for _, h := range strings.Split(inner, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return dsn[:i+5] + hosts[0] + dsn[i+j:], hosts
}

// hostSet is the bridge's source hosts and the one in use.
type hostSet struct {
	mu   sync.Mutex
	all  []string
	cur  string
	name string // the driver network that dials cur
}

func (h *hostSet) current() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

// useHosts makes plain (the DSN the bridge's handle opens) dial the host
// in use, whichever it is at the time.
func (b *Bridge) useHosts(plain *gomysql.Config) {
	if len(b.hosts.all) < 2 {
		return
	}
	var r [4]byte
	rand.Read(r[:])
	b.hosts.cur, b.hosts.name = b.hosts.all[0], "rowgear-hosts-"+hex.EncodeToString(r[:])
	gomysql.RegisterDialContext(b.hosts.name, func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", b.hosts.current())
	})
	plain.Net = b.hosts.name
}

// addr is the address of the source server in use.
func (b *Bridge) addr() string {
	if len(b.hosts.all) > 1 {
		return b.hosts.current()
	}
	return b.dsn.Addr
}

// pickHost chooses, among several hosts, the first that answers and is a
// primary (not read_only, no replication configured), and switches to it.
// It reports whether the host changed.
func (b *Bridge) pickHost(ctx context.Context) bool {
	if len(b.hosts.all) < 2 {
		return false
	}
	var why []string
	for _, h := range b.hosts.all {
		ok, reason := b.isPrimary(ctx, h)
		if !ok {
			why = append(why, h+": "+reason)
			continue
		}
		if h == b.hosts.current() {
			return false
		}
		b.hosts.mu.Lock()
		old := b.hosts.cur
		b.hosts.cur = h
		b.hosts.mu.Unlock()
		// Pooled connections to the old host must not serve another query.
		b.db.SetMaxIdleConns(0)
		b.db.SetMaxIdleConns(2)
		var id uint32
		if err := b.db.QueryRowContext(ctx, "SELECT @@GLOBAL.server_id").Scan(&id); err == nil {
			b.sourceID = id
		}
		b.log.Warn("source failover: reading the binlog of another host", "from", old, "to", h, "server_id", id)
		return true
	}
	b.log.Warn("no primary among the source hosts; retrying", "hosts", strings.Join(why, "; "))
	return false
}

func (b *Bridge) isPrimary(ctx context.Context, host string) (bool, string) {
	c := b.dsn.Clone()
	c.Net, c.Addr, c.Timeout = "tcp", host, 2*time.Second
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		return false, err.Error()
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var ro int
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro); err != nil {
		return false, err.Error()
	}
	if ro != 0 {
		return false, "read_only"
	}
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return false, err.Error()
	}
	defer rows.Close()
	if rows.Next() {
		return false, "a replica (SHOW SLAVE STATUS)"
	}
	return true, ""
}

// ---- a GTID set the server cannot serve ----

var gtidInMessage = regexp.MustCompile(`GTID (\d+)-(\d+)-(\d+)`)

// gtidRecover handles ERROR 1236 in GTID mode for a position the server
// lacks because it never received the transactions at its end: the old
// primary's last transactions, lost in a failover. The server's
// gtid_slave_pos says where its copy of the old primary's history ends;
// the bridge reports the transactions between there and the position as
// lost (published, but not in the new primary's history), starts a new
// history so the promoted server's transactions (which reuse those seq
// numbers) order after them, and resumes from there. ok is false when
// that does not apply (purged binlogs, a server outside the topology).
func (b *Bridge) gtidRecover(ctx context.Context, pos Position, msg string) (Position, bool) {
	if !b.gtidMode || pos.GTID == "" {
		return Position{}, false
	}
	if ok, why := b.isPrimary(ctx, b.addr()); !ok {
		// A replica still catching up lacks them for now, not for good.
		b.log.Error("the server lacks transactions the bridge read, and is no primary: not treating them as lost", "server", b.addr(), "why", why)
		return Position{}, false
	}
	m := gtidInMessage.FindStringSubmatch(msg)
	if m == nil {
		return Position{}, false
	}
	domain, server, seq := m[1], m[2], m[3]
	set, err := mysql.ParseMariadbGTIDSet(pos.GTID)
	if err != nil {
		return Position{}, false
	}
	var slavePos string
	if err := b.db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_slave_pos").Scan(&slavePos); err != nil {
		return Position{}, false
	}
	have, err := mysql.ParseMariadbGTIDSet(slavePos)
	if err != nil {
		return Position{}, false
	}
	var common *mysql.MariadbGTID
	for _, g := range have.(*mysql.MariadbGTIDSet).Sets {
		if fmt.Sprint(g.DomainID) == domain {
			common = g
		}
	}
	var want uint64
	fmt.Sscan(seq, &want)
	if common == nil || common.SequenceNumber >= want {
		return Position{}, false
	}
	ms := set.(*mysql.MariadbGTIDSet)
	ms.Sets[common.DomainID] = common.Clone()
	lost := fmt.Sprintf("%s-%s-%d to %s-%s-%s", domain, server, common.SequenceNumber+1, domain, server, seq)
	n := want - common.SequenceNumber
	b.lostMu.Lock()
	b.lost = append(b.lost, lost)
	b.lostMu.Unlock()
	next := Position{GTID: ms.String(), History: newGTIDHistory(b.history)}
	b.log.Error("transactions lost in a source failover: the bridge published them from the old primary, "+
		"and this server never received them; their changes are not in its history",
		"lost", lost, "transactions", n, "resume_from", next.GTID, "new_history", next.History)
	b.history = next.History
	b.tracker.mu.Lock()
	b.tracker.read = next
	b.tracker.mu.Unlock()
	return next, true
}

// Lost lists the GTID ranges a source failover lost (published from the
// old primary, absent from the new one), since New.
func (b *Bridge) Lost() []string {
	b.lostMu.Lock()
	defer b.lostMu.Unlock()
	return append([]string(nil), b.lost...)
}
