package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/canal"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/go-mysql-org/go-mysql/schema"

	"github.com/rowgear/rowgear/events"
)

// model is one configured model the bridge publishes.
type model struct {
	name    string
	schema  string
	table   string
	events  map[string]bool
	columns map[string]bool // nil: all
}

// handler turns canal's callbacks into jobs and checkpoints. Canal calls it
// from one goroutine.
type handler struct {
	canal.DummyEventHandler
	ctx   context.Context
	b     *Bridge
	file  string // current binlog file: canal passes only LogPos to OnRow
	metas map[string]*tableMeta

	lastTS  atomic.Uint32 // header timestamp of the last event handled
	handled atomic.Int64  // events handled, for the lag estimate
}

func (h *handler) String() string { return "rowgear-bridge" }

func (h *handler) OnRotate(_ *replication.EventHeader, e *replication.RotateEvent) error {
	h.file = string(e.NextLogName)
	return nil
}

// OnPosSynced marks a transaction boundary (XID, DDL, rotate). Close calls
// it with a nil header: that position is not tied to what was enqueued, so
// it is ignored.
func (h *handler) OnPosSynced(header *replication.EventHeader, pos mysql.Position, set mysql.GTIDSet, _ bool) error {
	if header == nil {
		return nil
	}
	if header.EventType == replication.ROTATE_EVENT && header.Timestamp == 0 {
		// The server's fake rotate at the start of a stream: it names the
		// file but is no transaction boundary (its pos is 4, not ours).
		return nil
	}
	p := Position{File: pos.Name, Pos: pos.Pos, History: h.b.history}
	if set != nil {
		p.GTID = set.String()
	}
	h.b.tracker.close(p, header.Timestamp)
	h.seen(header)
	return nil
}

func (h *handler) seen(header *replication.EventHeader) {
	if header.Timestamp != 0 {
		h.lastTS.Store(header.Timestamp)
	}
	h.handled.Add(1)
}

func (h *handler) OnRow(e *canal.RowsEvent) error {
	models := h.b.models[e.Table.Schema+"."+e.Table.Name]
	if len(models) == 0 {
		if e.Table.Name == HeartbeatTable && e.Table.Schema == h.b.dsn.DBName {
			h.onHeartbeat(e)
		}
		return nil
	}
	read := time.Now()
	h.seen(e.Header)
	meta, err := h.meta(e.Table)
	if err != nil {
		return err
	}
	step := 1
	if e.Action == canal.UpdateAction {
		step = 2 // [before, after] pairs
	}
	pos := h.file + ":" + strconv.FormatUint(uint64(e.Header.LogPos), 10)
	ts := time.Unix(int64(e.Header.Timestamp), 0).UTC()
	for i := 0; i+step <= len(e.Rows); i += step {
		var before, after []json.RawMessage
		switch e.Action {
		case canal.InsertAction:
			after, err = meta.image(e.Rows[i])
		case canal.DeleteAction:
			before, err = meta.image(e.Rows[i])
		default:
			if before, err = meta.image(e.Rows[i]); err == nil {
				after, err = meta.image(e.Rows[i+1])
			}
		}
		if err != nil {
			return fmt.Errorf("%s at %s: %w", e.Table, pos, err)
		}
		id := eventID(pos, i/step, h.b.sourceID, h.b.history)
		seq := eventSeq(h.b.history, h.file, e.Header.LogPos, i/step)
		for _, m := range models {
			for _, env := range meta.envelopes(m, e.Action, before, after) {
				env.ID, env.Pos, env.TS, env.Seq, env.ReadAt = id, pos, ts, seq, read
				if env.Op != e.Action { // a half of a split primary-key change
					env.ID = splitID(id, env.Op)
				}
				payload, err := events.Encode(env)
				if err != nil {
					return fmt.Errorf("%w: %s at %s: %w", errFatal, e.Table, pos, err)
				}
				shard := meta.shard(env)
				j := &job{fn: events.FuncName(h.b.namespace, m.name, env.Op), id: env.ID, pos: pos, payload: payload,
					table: e.Table.Name, op: env.Op, read: read, key: strconv.FormatUint(shard, 16)}
				h.b.tracker.add(j, e.Header.Timestamp)
				if err := h.b.subs.enqueue(h.ctx, shard, j); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// envelopes returns the events of one row change for model md: none when
// md does not take op or an update changed none of its columns; a delete
// of the old key and an insert of the new one for an update that changed
// the primary key, when md takes both (package ordering orders by key).
func (m *tableMeta) envelopes(md *model, op string, before, after []json.RawMessage) []*events.Envelope {
	if op == events.OpUpdate && md.events[events.OpInsert] && md.events[events.OpDelete] && m.pkChanged(before, after) {
		return []*events.Envelope{m.envelope(md, events.OpDelete, before, nil), m.envelope(md, events.OpInsert, nil, after)}
	}
	if !md.events[op] {
		return nil
	}
	if env := m.envelope(md, op, before, after); env != nil {
		return []*events.Envelope{env}
	}
	return nil
}

func (m *tableMeta) pkChanged(before, after []json.RawMessage) bool {
	for _, i := range m.pk {
		if i < len(before) && i < len(after) && string(before[i]) != string(after[i]) {
			return true
		}
	}
	return false
}

// splitID is the id of one half of a split primary-key change.
func splitID(id, op string) string {
	id += ":" + op[:1]
	if len(id) > events.MaxIDLen {
		sum := sha256.Sum256([]byte(id))
		id = "h:" + hex.EncodeToString(sum[:])[:events.MaxIDLen-2]
	}
	return id
}

// eventSeq orders the events of one row:
// "<history start>:<file number>:<pos>:<row>", fixed width so that byte
// order is commit order, across binlog files and across histories (after
// RESET MASTER positions start again from the beginning; the new history's
// later start keeps its events after the old ones). 40 bytes.
func eventSeq(history, file string, pos uint32, row int) string {
	n := file[strings.LastIndexByte(file, '.')+1:]
	if len(n) < 10 {
		n = strings.Repeat("0", 10-len(n)) + n
	}
	return fmt.Sprintf("%.*s:%s:%010d:%06d", historyStartLen, history, n, pos, row)
}

// meta returns the metadata of canal's current version of t.
func (h *handler) meta(t *schema.Table) (*tableMeta, error) {
	key := t.Schema + "." + t.Name
	if m := h.metas[key]; m != nil && m.src == t {
		return m, nil
	}
	m, err := loadMeta(h.ctx, h.b.db, t)
	if err != nil {
		return nil, err
	}
	h.metas[key] = m
	return m, nil
}

// eventID is "<file>:<logpos>:<row index>@<server_id>.<history>":
// deterministic, so a replayed event keeps its id; the server's id and the
// history (see Position.History) keep it unique when binlog file names and
// offsets repeat (RESET MASTER, a rebuilt server, a failover to a server
// whose files have the same names), which gearmand would otherwise merge
// with a still-queued job of the same unique key. Hashed in the unlikely
// case it passes gearman's 64-byte unique-key limit.
func eventID(pos string, row int, serverID uint32, history string) string {
	id := pos + ":" + strconv.Itoa(row) + "@" + strconv.FormatUint(uint64(serverID), 10) + "." + history
	if len(id) > events.MaxIDLen {
		sum := sha256.Sum256([]byte(id))
		id = "h:" + hex.EncodeToString(sum[:])[:events.MaxIDLen-2]
	}
	return id
}

// image encodes one row image, column by column in table order. Canal
// decodes old events with the table's current schema: after an ADD COLUMN
// the image is shorter than the column list (the missing columns are left
// out), after a DROP COLUMN longer (the extra values are dropped).
func (m *tableMeta) image(row []any) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, min(len(row), len(m.cols)))
	for i := range out {
		v, err := m.cols[i].encode(row[i])
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// envelope builds the event of one row change for model md, or nil for an
// update that changed none of its columns.
func (m *tableMeta) envelope(md *model, op string, before, after []json.RawMessage) *events.Envelope {
	env := &events.Envelope{V: events.Version, Source: events.SourceBinlog, Schema: md.schema,
		Table: md.table, Model: md.name, Op: op}
	img := after
	if op == events.OpDelete {
		img = before
	}
	env.Row = m.row(md, img)
	env.PK = events.Row{}
	for _, i := range m.pk {
		if i < len(img) {
			env.PK[m.cols[i].name] = img[i]
		}
	}
	switch op {
	case events.OpInsert:
		env.Modified = m.names(md, img, nil)
	case events.OpUpdate:
		env.Old = m.row(md, before)
		env.Modified = m.names(md, img, before)
		if len(env.Modified) == 0 {
			return nil
		}
	}
	return env
}

func (m *tableMeta) row(md *model, img []json.RawMessage) events.Row {
	r := make(events.Row, len(img))
	for i, v := range img {
		if md.columns == nil || md.columns[m.cols[i].name] {
			r[m.cols[i].name] = v
		}
	}
	return r
}

// names lists the model's columns of img in table order; with old, only
// those whose value differs (NULL-safe: nil is NULL).
func (m *tableMeta) names(md *model, img, old []json.RawMessage) []string {
	var out []string
	for i, v := range img {
		name := m.cols[i].name
		if md.columns != nil && !md.columns[name] {
			continue
		}
		if old != nil && i < len(old) && (v == nil) == (old[i] == nil) && string(v) == string(old[i]) {
			continue
		}
		out = append(out, name)
	}
	return out
}

// shard picks the submit queue of a row: by table and primary key.
func (m *tableMeta) shard(env *events.Envelope) uint64 {
	h := fnv.New64a()
	h.Write([]byte(env.Schema + "." + env.Table))
	for _, i := range m.pk {
		if i < len(m.cols) {
			h.Write([]byte{0})
			h.Write(env.PK[m.cols[i].name])
		}
	}
	return h.Sum64()
}
