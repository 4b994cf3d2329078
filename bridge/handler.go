package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/sqlschema"
)

// model is one configured model the bridge publishes.
type model struct {
	name       string
	schema     string
	table      string
	events     map[string]bool
	columns    map[string]bool // nil: all
	snapshotAs string          // events.OpSnapshot, or events.OpInsert (models.<Model>.snapshot)
}

// handler turns binlog events into jobs and checkpoints. The stream loop
// (stream.go) calls it from one goroutine.
type handler struct {
	ctx         context.Context
	b           *Bridge
	file        string                      // current binlog file: rows events carry only LogPos
	metas       map[string]*tableMeta       // by "schema.table": its last version seen
	cur         map[string]*sqlschema.Table // current schemas, by "schema.table"; dropped on DDL
	epoch       int                         // bumped on DDL: metas built before use stale hints
	noKeyWarned map[string]bool             // tables without a primary key warned about

	lastTS  atomic.Uint32 // header timestamp of the last event handled
	handled atomic.Int64  // events handled, for the lag estimate
}

func (h *handler) String() string { return "rowgear-bridge" }

func (h *handler) OnRotate(_ *replication.EventHeader, e *replication.RotateEvent) error {
	h.file = string(e.NextLogName)
	return nil
}

// schemaChanged forgets the current schemas read so far: a DDL went by.
func (h *handler) schemaChanged() {
	clear(h.cur)
	h.epoch++
}

// OnPosSynced marks a transaction boundary (XID, DDL, rotate).
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

// action names the row operation of a rows event type.
func action(t replication.EventType) (string, bool) {
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		return events.OpInsert, true
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		return events.OpDelete, true
	case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.PARTIAL_UPDATE_ROWS_EVENT,
		replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1:
		return events.OpUpdate, true
	}
	return "", false
}

// OnRows publishes the rows of one rows event, each labelled with the
// columns of its own TABLE_MAP.
func (h *handler) OnRows(header *replication.EventHeader, e *replication.RowsEvent) error {
	if e.Table == nil {
		return nil
	}
	key := string(e.Table.Schema) + "." + string(e.Table.Table)
	if key == h.b.signalKey {
		return h.onSignal(header, e)
	}
	models := h.b.models[key]
	watched := h.b.snaps.watching(key)
	if len(models) == 0 && !watched {
		if string(e.Table.Table) == HeartbeatTable && string(e.Table.Schema) == h.b.dsn.DBName {
			h.onHeartbeat(header, e)
		}
		return nil
	}
	read := time.Now()
	h.seen(header)
	act, ok := action(header.EventType)
	pos := h.file + ":" + strconv.FormatUint(uint64(header.LogPos), 10)
	if !ok {
		return fmt.Errorf("%w: %s at %s: rows event type %s is not supported", errFatal, key, pos, header.EventType)
	}
	step := 1
	if act == events.OpUpdate {
		step = 2 // [before, after] pairs
	}
	meta, err := h.meta(e.Table)
	if errors.Is(err, errTransient) || err != nil && !errors.Is(err, errPoison) && !errors.Is(err, errNoKey) {
		return fmt.Errorf("%s at %s: %w", key, pos, err)
	}
	if err != nil { // every row of the event: none can be labelled
		for i := 0; i+step <= len(e.Rows); i += step {
			before, after := images(act, e.Rows, i)
			h.reject(models, act, pos, i/step, e.Table, before, after, err)
		}
		return nil
	}
	ts := time.Unix(int64(header.Timestamp), 0).UTC()
	for i := 0; i+step <= len(e.Rows); i += step {
		rawBefore, rawAfter := images(act, e.Rows, i)
		before, after, err := meta.encodeImages(rawBefore, rawAfter)
		if err != nil {
			h.reject(models, act, pos, i/step, e.Table, rawBefore, rawAfter, err)
			continue
		}
		if watched {
			h.b.snaps.observe(key, meta, [][]json.RawMessage{before, after})
		}
		id, seq := h.ids(pos, header.LogPos, i/step)
		for _, m := range models {
			for _, env := range meta.envelopes(m, act, before, after) {
				env.ID, env.Pos, env.TS, env.Seq, env.ReadAt = id, pos, ts, seq, read
				if env.Op != act { // a half of a split primary-key change
					env.ID = splitID(id, env.Op)
				}
				payload, err := events.Encode(env)
				if err != nil {
					h.reject([]*model{m}, act, pos, i/step, e.Table, rawBefore, rawAfter, fmt.Errorf("%w: %w", errPoison, err))
					continue
				}
				if err := h.publish(m.name, env, payload, meta.shard(env), header.Timestamp); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// images returns the raw before and after images of the row change at i.
func images(act string, rows [][]any, i int) (before, after []any) {
	switch act {
	case events.OpInsert:
		return nil, rows[i]
	case events.OpDelete:
		return rows[i], nil
	}
	return rows[i], rows[i+1]
}

// encodeImages encodes a row change's images (nil stays nil).
func (m *tableMeta) encodeImages(before, after []any) (b, a []json.RawMessage, err error) {
	if before != nil {
		if b, err = m.image(before); err != nil {
			return nil, nil, err
		}
	}
	if after != nil {
		if a, err = m.image(after); err != nil {
			return nil, nil, err
		}
	}
	return b, a, nil
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

// meta returns the metadata of the rows tm describes, built once per table
// version (a TABLE_MAP precedes each transaction's rows).
func (h *handler) meta(tm *replication.TableMapEvent) (*tableMeta, error) {
	key := string(tm.Schema) + "." + string(tm.Table)
	if m := h.metas[key]; m != nil && m.same(tm, h.epoch) {
		return m, nil
	}
	cur, ok := h.cur[key]
	if !ok {
		var err error
		if cur, err = loadCurrent(h.ctx, h.b.db, string(tm.Schema), string(tm.Table)); err != nil {
			return nil, err
		}
		h.cur[key] = cur
	}
	m, err := newMeta(tm, cur, h.epoch, h.charsetOf)
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
	return capID(pos + ":" + strconv.Itoa(row) + "@" + strconv.FormatUint(uint64(serverID), 10) + "." + history)
}

// capID keeps an id (a gearman unique key) within events.MaxIDLen bytes:
// a longer one is replaced by its hash.
func capID(id string) string {
	if len(id) > events.MaxIDLen {
		sum := sha256.Sum256([]byte(id))
		id = "h:" + hex.EncodeToString(sum[:])[:events.MaxIDLen-2]
	}
	return id
}

// image encodes one row image, column by column in table order. A row
// whose width is not its TABLE_MAP's is refused: labelling it would guess.
func (m *tableMeta) image(row []any) ([]json.RawMessage, error) {
	if len(row) != len(m.cols) {
		return nil, fmt.Errorf("%w: a row of %d values for %d columns", errPoison, len(row), len(m.cols))
	}
	out := make([]json.RawMessage, len(m.cols))
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
	var k strings.Builder
	for _, i := range m.pk {
		k.Write(env.PK[m.cols[i].name])
		k.WriteByte(0)
	}
	return shardOf(env.Schema, env.Table, k.String())
}

// shardOf hashes a table and a key (tableMeta.key) to a submit queue.
func shardOf(schema, table, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(schema + "." + table))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum64()
}

// publish hands one event to its row's submit queue, counted in the open
// batch of the tracker.
func (h *handler) publish(model string, env *events.Envelope, payload []byte, shard uint64, ts uint32) error {
	j := &job{fn: events.FuncName(h.b.namespace, model, env.Op), id: env.ID, pos: env.Pos, payload: payload,
		table: env.Table, op: env.Op, read: env.ReadAt, key: strconv.FormatUint(shard, 16)}
	if h.b.batch > 1 { // no batch function to name otherwise
		j.group = events.FuncName(h.b.namespace, model, events.OpBatch)
	}
	h.b.tracker.add(j, ts)
	return h.b.subs.enqueue(h.ctx, shard, j)
}
