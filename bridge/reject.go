package bridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/charset"
	"github.com/rowgear/rowgear/internal/retryguard"
)

// RejectObserver is an Observer that also counts the row changes the
// bridge did not publish (package metrics'
// rowgear_bridge_events_rejected_total): outcome "dead_lettered" (stored in
// rowgear_failed_jobs, see Quarantine) or "skipped_no_primary_key".
type RejectObserver interface {
	Rejected(table, op, outcome string)
}

// Outcomes of a rejected row change.
const (
	RejectDeadLettered = "dead_lettered"
	RejectNoKey        = "skipped_no_primary_key"
)

type rejected struct {
	dead, noKey atomic.Int64
}

// Quarantined is the workload of a dead letter the bridge wrote for a row
// change it could not publish: the raw row as the binlog gave it, where,
// and why. Values are strings: text and bytes as "b64:" and their base64,
// numbers and times in go-mysql's text; null for NULL. For a snapshot row
// (Quarantined "snapshot") they are the base64 of each column's JSON text
// as the server wrote it, in Columns' order.
//
// `dead retry` of such a letter re-submits this document, which is no
// event: rowgear's worker refuses it as a bad payload (permanent) and it is
// a dead letter again. Fix the row and snapshot it (or let its next change
// carry it), then `dead purge` the letter.
type Quarantined struct {
	Quarantined string   `json:"quarantined"` // "binlog" or "snapshot"
	Reason      string   `json:"reason"`
	ID          string   `json:"id"`  // the event id it would have had
	Pos         string   `json:"pos"` // "file:logpos" of its rows event
	Row         int      `json:"row"` // index in the rows event
	Schema      string   `json:"schema"`
	Table       string   `json:"table"`
	Op          string   `json:"op"`
	Columns     []string `json:"columns,omitempty"` // as the TABLE_MAP names them
	Before      []any    `json:"before,omitempty"`
	After       []any    `json:"after,omitempty"`
}

func rawValues(row []any) []any {
	if row == nil {
		return nil
	}
	out := make([]any, len(row))
	for i, v := range row {
		switch x := v.(type) {
		case nil:
		case string:
			out[i] = "b64:" + base64.StdEncoding.EncodeToString([]byte(x))
		case []byte:
			out[i] = "b64:" + base64.StdEncoding.EncodeToString(x)
		default:
			out[i] = fmt.Sprint(x)
		}
	}
	return out
}

// charsetOf resolves a collation id with the server's table, read again
// once when an id is not in it (a collation added since start-up).
func (h *handler) charsetOf(id uint64) (*charset.Charset, error) {
	name, ok := h.b.collations[id]
	if !ok {
		m, err := charset.LoadCollations(h.ctx, h.b.db)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errTransient, err)
		}
		h.b.collations = m
		if name, ok = m[id]; !ok {
			return nil, fmt.Errorf("collation id %d is not one the server has", id)
		}
	}
	return charset.Get(name)
}

// reject handles a row change that cannot be published: a table without a
// primary key is skipped and counted (warned about once per table version);
// anything else becomes a dead letter of each model's function.
func (h *handler) reject(models []*model, act, pos string, row int, tm *replication.TableMapEvent, before, after []any, reason error) {
	table := string(tm.Schema) + "." + string(tm.Table)
	obs, _ := h.b.observer.(RejectObserver)
	if errors.Is(reason, errNoKey) {
		h.b.rejected.noKey.Add(1)
		if obs != nil {
			obs.Rejected(string(tm.Table), act, RejectNoKey)
		}
		if !h.noKeyWarned[table] {
			h.noKeyWarned[table] = true
			h.b.log.Warn("table without a primary key: its row changes are skipped (counted in rowgear_bridge_events_rejected_total); "+
				"add one (ALTER TABLE … ADD PRIMARY KEY) or move the model to source: trigger", "table", table, "pos", pos)
		}
		return
	}
	id := eventID(pos, row, h.b.sourceID, h.b.history)
	q := Quarantined{Quarantined: events.SourceBinlog, Reason: reason.Error(), ID: id, Pos: pos, Row: row,
		Schema: string(tm.Schema), Table: string(tm.Table), Op: act, Columns: tm.ColumnNameString(),
		Before: rawValues(before), After: rawValues(after)}
	payload, _ := json.Marshal(q) // strings only: cannot fail
	for _, m := range models {
		fn := events.FuncName(h.b.namespace, m.name, act)
		h.b.rejected.dead.Add(1)
		if obs != nil {
			obs.Rejected(string(tm.Table), act, RejectDeadLettered)
		}
		h.b.log.Error("row change not published: stored as a dead letter (see `dead list`)", "function", fn, "id", id,
			"pos", pos, "reason", reason)
		h.storeDead(fn, id, reason.Error(), payload)
	}
}

// rejectSnapshot stores a snapshot row that does not encode as a dead
// letter; its values are the server's JSON text of each column, in base64.
func (h *handler) rejectSnapshot(md *model, env *events.Envelope, reason error) {
	q := Quarantined{Quarantined: "snapshot", Reason: reason.Error(), ID: env.ID, Pos: env.Pos,
		Schema: env.Schema, Table: env.Table, Op: env.Op}
	for _, c := range slices.Sorted(maps.Keys(env.Row)) {
		q.Columns = append(q.Columns, c)
		q.After = append(q.After, "b64:"+base64.StdEncoding.EncodeToString(env.Row[c]))
	}
	payload, _ := json.Marshal(q)
	fn := events.FuncName(h.b.namespace, md.name, env.Op)
	h.b.rejected.dead.Add(1)
	if obs, ok := h.b.observer.(RejectObserver); ok {
		obs.Rejected(env.Table, env.Op, RejectDeadLettered)
	}
	h.b.log.Error("snapshot row not published: stored as a dead letter (see `dead list`)", "function", fn, "id", env.ID,
		"pos", env.Pos, "reason", reason)
	h.storeDead(fn, env.ID, reason.Error(), payload)
}

// storeDead writes a dead letter, retrying while the database is away.
// Without the table (rowgear's migrations not run) the log line with the
// whole quarantined row is all there is.
func (h *handler) storeDead(fn, id, reason string, payload []byte) {
	store := retryguard.NewStore(h.b.db)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := store.Quarantine(h.ctx, fn, id, reason, payload)
		if err == nil {
			return
		}
		var me *gomysql.MySQLError
		if errors.As(err, &me) && me.Number == 1146 || attempt >= 8 || h.ctx.Err() != nil {
			h.b.log.Error("storing the dead letter failed: the row change is only in this log", "function", fn,
				"id", id, "error", err, "quarantined", string(payload))
			return
		}
		select {
		case <-time.After(wait):
		case <-h.ctx.Done():
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// checkTables names, at start-up, the published tables without a primary
// key, and warns when the dead-letter table is missing.
func (b *Bridge) checkTables(ctx context.Context) error {
	b.keyless = nil
	for key, ms := range b.models {
		var n int
		err := b.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS "+
			"WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_TYPE = 'PRIMARY KEY'", ms[0].schema, ms[0].table).Scan(&n)
		if err != nil {
			return fmt.Errorf("primary keys: %w", err)
		}
		if n == 0 {
			b.keyless = append(b.keyless, key)
		}
	}
	for _, t := range b.keyless {
		b.log.Warn("table without a primary key (or not there yet): its row changes will be skipped, counted; "+
			"add a primary key (ALTER TABLE … ADD PRIMARY KEY) or move its model to source: trigger", "table", t)
	}
	if b.dsn.DBName != "" {
		var n int
		err := b.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'rowgear_failed_jobs'",
			b.dsn.DBName).Scan(&n)
		if err == nil && n == 0 {
			b.log.Warn("no rowgear_failed_jobs table (run rowgear's migrations): a row change the bridge cannot publish will only be logged")
		}
	}
	return nil
}
