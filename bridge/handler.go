package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
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
	p := Position{File: pos.Name, Pos: pos.Pos}
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
		return nil
	}
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
		id := eventID(pos, i/step)
		for _, m := range models {
			if !m.events[e.Action] {
				continue
			}
			env := meta.envelope(m, e.Action, before, after)
			if env == nil {
				continue // an update that changed none of the model's columns
			}
			env.ID, env.Pos, env.TS = id, pos, ts
			payload, err := events.Encode(env)
			if err != nil {
				return fmt.Errorf("%w: %s at %s: %w", errFatal, e.Table, pos, err)
			}
			shard := meta.shard(env)
			j := &job{fn: events.FuncName(h.b.namespace, m.name, e.Action), id: id, pos: pos, payload: payload,
				key: strconv.FormatUint(shard, 16)}
			h.b.tracker.add(j, e.Header.Timestamp)
			if err := h.b.subs.enqueue(h.ctx, shard, j); err != nil {
				return err
			}
		}
	}
	return nil
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

// eventID is "<file>:<logpos>:<row index>": deterministic, so a replayed
// event keeps its id. Hashed in the unlikely case it passes gearman's
// 64-byte unique-key limit.
func eventID(pos string, row int) string {
	id := pos + ":" + strconv.Itoa(row)
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
