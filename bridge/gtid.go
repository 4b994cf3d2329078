package bridge

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
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

// GTID positions (binlog.position: gtid, MariaDB). A MariaDB GTID names a
// transaction the same way on every server of the replication topology
// (with log_slave_updates), so in this mode an event's id is
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

// checkGTIDMode refuses what GTID mode cannot follow.
func (b *Bridge) checkGTIDMode(start Position) error {
	if !b.gtidMode {
		return nil
	}
	if b.flavor() != mysql.MariaDBFlavor {
		return fmt.Errorf("%w: binlog.position: gtid follows MariaDB GTIDs only", ErrConfig)
	}
	if start.GTID == "" {
		return fmt.Errorf("%w: binlog.position: gtid, but the start position %s has no GTID set: "+
			"start with --start=current or --start=gtid:SET (SELECT BINLOG_GTID_POS('FILE', POS) gives the set of a file position)",
			ErrConfig, start.String())
	}
	return nil
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
	next := Position{GTID: ms.String(), History: newHistory()}
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
