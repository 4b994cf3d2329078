package bridge

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// runBinlog reads the binlog from pos until ctx ends or the stream fails,
// handing each event to the handler. It reads with go-mysql's BinlogSyncer
// rather than its canal: canal labels rows with the table's current schema
// and hides the TABLE_MAP that names the row's own columns.
func (b *Bridge) runBinlog(ctx context.Context, pos Position) error {
	cfg, err := b.syncerConfig()
	if err != nil {
		return fmt.Errorf("%w: %w", errFatal, err)
	}
	syncer := replication.NewBinlogSyncer(cfg)
	defer syncer.Close()
	cur := mysql.Position{Name: pos.File, Pos: pos.Pos}
	var gset mysql.GTIDSet
	var st *replication.BinlogStreamer
	if pos.GTID != "" {
		if gset, err = mysql.ParseGTIDSet(b.flavor(), pos.GTID); err != nil {
			return fmt.Errorf("%w: GTID set %q: %w", errFatal, pos.GTID, err)
		}
		st, err = syncer.StartSyncGTID(gset.Clone())
	} else {
		st, err = syncer.StartSync(cur)
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	h := b.handler
	h.file = pos.File
	for {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := h.handle(ev, &cur, &gset); err != nil {
			return err
		}
	}
}

// handle dispatches one binlog event and tracks the position the way canal
// did: a transaction boundary (XID, a non-BEGIN query, a rotate) advances
// it, and only there can a restart resume.
func (h *handler) handle(ev *replication.BinlogEvent, cur *mysql.Position, gset *mysql.GTIDSet) error {
	next := *cur
	next.Pos = ev.Header.LogPos
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		if ev.Header.Timestamp == 0 && string(e.NextLogName) == cur.Name {
			return nil // the server's fake rotate naming the file we are in
		}
		next = mysql.Position{Name: string(e.NextLogName), Pos: uint32(e.Position)}
		if err := h.OnRotate(ev.Header, e); err != nil {
			return err
		}
	case *replication.RowsEvent:
		return h.OnRows(ev.Header, e)
	case *replication.TransactionPayloadEvent:
		for _, sub := range e.Events {
			if err := h.handle(sub, cur, gset); err != nil {
				return err
			}
		}
		return nil
	case *replication.MariadbGTIDEvent:
		if at := h.b.switchAt; at != nil && cur.Name != "" && !binlogBefore(cur.Name, cur.Pos, at.File, at.Pos) {
			return errSwitchGTID // this transaction is past what an earlier bridge could have published
		}
		h.b.beginTrx(e)
		return nil
	case *replication.XIDEvent:
		if e.GSet != nil {
			*gset = e.GSet
		}
	case *replication.QueryEvent:
		q := strings.ToUpper(strings.TrimSpace(string(e.Query)))
		if q == "BEGIN" || strings.HasPrefix(q, "SAVEPOINT") || strings.HasPrefix(q, "XA START") {
			return nil
		}
		if q != "COMMIT" {
			h.schemaChanged() // DDL (or anything else logged as a statement)
		}
		if e.GSet != nil {
			*gset = e.GSet
		}
	default:
		return nil
	}
	*cur = next
	if err := h.OnPosSynced(ev.Header, next, *gset, true); err != nil {
		return err
	}
	if at := h.b.switchAt; at != nil && !binlogBefore(cur.Name, cur.Pos, at.File, at.Pos) {
		return errSwitchGTID // at the end of the binlog as it was at start: GTID positions from here
	}
	return nil
}

// syncerConfig is the replication client's configuration. Value forms of
// events/doc.go: DECIMAL as go-mysql's exact string (not UseDecimal's
// trimmed one), times as strings (not ParseTime), TIMESTAMP rendered in UTC.
func (b *Bridge) syncerConfig() (replication.BinlogSyncerConfig, error) {
	host, port, err := net.SplitHostPort(b.addr())
	if err != nil {
		return replication.BinlogSyncerConfig{}, fmt.Errorf("database address %q: %w", b.addr(), err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return replication.BinlogSyncerConfig{}, fmt.Errorf("database address %q: %w", b.addr(), err)
	}
	if b.dsn.Net == "unix" {
		host, p = b.dsn.Addr, 0
	}
	return replication.BinlogSyncerConfig{
		ServerID:                b.replicaID(),
		Flavor:                  b.flavor(),
		Host:                    host,
		Port:                    uint16(p),
		User:                    b.dsn.User,
		Password:                b.dsn.Passwd,
		Charset:                 "utf8mb4",
		UseDecimal:              false,
		ParseTime:               false,
		TimestampStringLocation: timeUTC,
		HeartbeatPeriod:         heartbeatPeriod,
		EventCacheCount:         eventCache,
		ReadTimeout:             readTimeout,
		MaxReconnectAttempts:    5, // then Run restarts the stream from the last checkpoint
		Logger:                  b.replicationLogger(),
		// Rows of tables nobody publishes are not decoded at all.
		RowsEventDecodeFunc: func(e *replication.RowsEvent, data []byte) error {
			pos, err := e.DecodeHeader(data)
			if err != nil {
				return err
			}
			if e.Table == nil || !b.decodes(string(e.Table.Schema)+"."+string(e.Table.Table)) {
				return nil
			}
			return e.DecodeData(pos, data)
		},
	}, nil
}

// decodes reports whether rows of the table key matter: a published model's,
// the snapshot table, a table a snapshot reads, or the heartbeat table.
func (b *Bridge) decodes(key string) bool {
	return b.models[key] != nil || key == b.signalKey || b.snaps.watching(key) ||
		b.obs.hbOn.Load() && key == b.dsn.DBName+"."+HeartbeatTable
}

// checkServer refuses a server whose binlog the bridge cannot decode
// faithfully.
func (b *Bridge) checkServer(ctx context.Context) error {
	var format, image, metadata string
	err := b.db.QueryRowContext(ctx, "SELECT @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image, @@GLOBAL.binlog_row_metadata").
		Scan(&format, &image, &metadata)
	if err != nil {
		if strings.Contains(err.Error(), "binlog_row_metadata") {
			return fmt.Errorf("%w: the server has no binlog_row_metadata (MariaDB ≥ 10.5 or MySQL ≥ 8.0.1 needed): "+
				"the bridge decodes each row with the column names its TABLE_MAP carries", ErrConfig)
		}
		return fmt.Errorf("binlog settings: %w", err)
	}
	// Without full images `old` and `modified` would be wrong, silently.
	if !strings.EqualFold(format, "ROW") {
		return fmt.Errorf("%w: the server has binlog_format=%s, the bridge needs ROW", ErrConfig, format)
	}
	if !strings.EqualFold(image, "FULL") {
		return fmt.Errorf("%w: the server has binlog_row_image=%s, the bridge needs FULL", ErrConfig, image)
	}
	if !strings.EqualFold(metadata, "FULL") {
		return fmt.Errorf("%w: the server has binlog_row_metadata=%s, the bridge needs FULL so that each row is decoded "+
			"with the columns it was written with: SET GLOBAL binlog_row_metadata = FULL, and put "+
			"binlog-row-metadata = FULL in the server's [mariadbd] (or [mysqld]) configuration", ErrConfig, metadata)
	}
	return nil
}
