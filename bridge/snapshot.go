package bridge

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/internal/ids"
	"github.com/rowgear/rowgear/internal/jsonstr"
	"github.com/rowgear/rowgear/internal/sqlschema"
)

// SnapshotTable is the table of snapshot requests and their progress
// (migration 00040), in the bridge's database.
const SnapshotTable = "rowgear_snapshots"

// ErrSnapshot is wrapped by errors about a snapshot request.
var ErrSnapshot = errors.New("bridge: snapshot")

// RequestSnapshot asks the bridges publishing model to snapshot its table:
// it inserts a request into SnapshotTable of db (the bridge's database) and
// returns its id. chunkSize rows are read at a time (0: 1000). An
// application may insert the row itself.
func RequestSnapshot(ctx context.Context, db *sql.DB, model string, chunkSize int, opts ...SnapshotOption) (int64, error) {
	if model == "" {
		return 0, fmt.Errorf("%w: no model", ErrSnapshot)
	}
	if chunkSize <= 0 {
		chunkSize = 1000
	}
	var r snapshotRequest
	for _, o := range opts {
		if err := o(&r); err != nil {
			return 0, fmt.Errorf("%w of %s: %w", ErrSnapshot, model, err)
		}
	}
	res, err := db.ExecContext(ctx, "INSERT INTO "+SnapshotTable+" (model, chunk_size, rows_per_second) VALUES (?, ?, ?)",
		model, chunkSize, r.rowsPerSecond)
	if err != nil {
		return 0, fmt.Errorf("%w: requesting a snapshot of %s (has `migrate up` created %s?): %w", ErrSnapshot, model, SnapshotTable, err)
	}
	return res.LastInsertId()
}

// A SnapshotOption sets a snapshot request's field; it checks its value.
type SnapshotOption func(*snapshotRequest) error

type snapshotRequest struct {
	rowsPerSecond int
}

// SnapshotRate paces the snapshot to at most n rows read a second (0, the
// default: as fast as gearmand takes the chunks). The bridge waits before a
// chunk until the rows read so far are within the rate; a chunk is still
// published at once, so a paced snapshot's chunks hold at most n/4 rows (a
// smaller chunkSize stays). Unpaced, a big snapshot takes whatever the
// workers and the database can give it, and the application's own
// statements wait for the CPU meanwhile (docs/benchmarks.md, section 8).
func SnapshotRate(n int) SnapshotOption {
	return func(r *snapshotRequest) error {
		if n < 0 {
			return fmt.Errorf("rate %d rows/s: want 0 (unpaced) or more", n)
		}
		r.rowsPerSecond = n
		return nil
	}
}

// paceUntil is when a snapshot paced at rate rows/s, which read done rows
// since began, may read its next chunk.
func paceUntil(began time.Time, done int64, rate int) time.Time {
	if rate <= 0 {
		return began
	}
	return began.Add(time.Duration(float64(done) / float64(rate) * float64(time.Second)))
}

// SnapshotProgress is one snapshot request as SnapshotTable keeps it.
type SnapshotProgress struct {
	ID            int64
	Model         string
	Status        string // requested, running, done or failed
	RowsDone      int64  // rows read so far (a row changed meanwhile is published by its change instead)
	RowsEstimate  int64  // the table's row count estimate when it started
	RowsPerSecond int    // its pace; 0: unpaced
	Error         string
}

// Snapshots lists the snapshot requests in db, oldest first.
func Snapshots(ctx context.Context, db *sql.DB) ([]SnapshotProgress, error) {
	rows, err := db.QueryContext(ctx, "SELECT id, model, status, rows_done, rows_estimate, rows_per_second, IFNULL(error, '') FROM "+SnapshotTable+" ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	defer rows.Close()
	var out []SnapshotProgress
	for rows.Next() {
		var p SnapshotProgress
		if err := rows.Scan(&p.ID, &p.Model, &p.Status, &p.RowsDone, &p.RowsEstimate, &p.RowsPerSecond, &p.Error); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// SnapshotObserver is an Observer that also takes a snapshot's progress:
// the rows of table it has read and published so far, after each chunk
// gearmand acknowledged (package metrics' rowgear_bridge_snapshot_rows_total).
type SnapshotObserver interface {
	SnapshotRows(table string, n int64)
}

// snapshots runs the bridge's snapshots, DBLog's watermark algorithm: for
// each chunk of the table, in primary-key order, the runner writes a low
// watermark to SnapshotTable, reads the chunk, writes a high watermark. The
// handler meets both in the binlog: between them it notes the key of every
// row of that table that changed; at the high watermark it drops those rows
// from the chunk (their change is newer than the read, and is published
// anyway) and publishes the rest as snapshot events, through the same
// submit queues, by the same key, as the live changes around them.
type snapshots struct {
	b       *Bridge
	ctx     context.Context // of the runners: ends with Run's stream
	mu      sync.Mutex
	windows map[string]*window // by watermark id
	watched map[string]int     // "schema.table" → snapshots running on it
	running map[int64]bool
	wg      sync.WaitGroup
}

// window is one chunk between its watermarks.
type window struct {
	table   string // "schema.table"
	md      *model
	cols    []string        // the table's columns, in order (modified of a snapshot as insert)
	open    bool            // the low watermark went by
	changed map[string]bool // keys of rows changed since
	chunk   []snapRow       // set before the high watermark is written
	done    chan Position   // the high watermark's position, once the chunk is queued
}

type snapRow struct {
	key string
	row events.Row
	pk  events.Row
}

func newSnapshots(b *Bridge) *snapshots {
	return &snapshots{b: b, windows: map[string]*window{}, watched: map[string]int{}, running: map[int64]bool{}}
}

// watching reports whether a snapshot runs on the table key.
func (s *snapshots) watching(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watched[key] > 0
}

// observe notes the keys of rows of table key changed inside open windows.
func (s *snapshots) observe(key string, meta *tableMeta, rows [][]json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.windows {
		if !w.open || w.table != key {
			continue
		}
		for _, img := range rows {
			if img != nil {
				w.changed[meta.key(img)] = true
			}
		}
	}
}

// key is the primary key of a row image, in event form.
func (m *tableMeta) key(img []json.RawMessage) string {
	var b strings.Builder
	for _, i := range m.pk {
		b.Write(img[i])
		b.WriteByte(0)
	}
	return b.String()
}

// onSignal handles a rows event on SnapshotTable: a new request, or a
// watermark.
func (h *handler) onSignal(header *replication.EventHeader, e *replication.RowsEvent) error {
	names := e.Table.ColumnNameString()
	col := func(name string) int {
		for i, n := range names {
			if n == name {
				return i
			}
		}
		return -1
	}
	idCol, wmCol := col("id"), col("watermark")
	if idCol < 0 || wmCol < 0 {
		return nil // not our table's layout (or no names): nothing to do
	}
	act, _ := action(header.EventType)
	step := 1
	if act == events.OpUpdate {
		step = 2
	}
	for i := step - 1; i < len(e.Rows); i += step {
		row := e.Rows[i]
		if act == events.OpInsert {
			if id, ok := asInt64(row[idCol]); ok {
				h.b.snaps.start(id)
			}
			continue
		}
		if act != events.OpUpdate {
			continue
		}
		wm, _ := row[wmCol].(string)
		kind, id, ok := strings.Cut(wm, ":")
		if !ok {
			continue
		}
		switch kind {
		case "L":
			h.b.snaps.mu.Lock()
			if w := h.b.snaps.windows[id]; w != nil {
				w.open = true
			}
			h.b.snaps.mu.Unlock()
		case "H":
			if err := h.publishChunk(header, id); err != nil {
				return err
			}
		}
	}
	return nil
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint32:
		return int64(x), true
	}
	return 0, false
}

// publishChunk queues what is left of window id's chunk, at the high
// watermark's position.
func (h *handler) publishChunk(header *replication.EventHeader, id string) error {
	s := h.b.snaps
	s.mu.Lock()
	w := s.windows[id]
	delete(s.windows, id)
	var chunk []snapRow
	if w != nil {
		chunk = w.chunk
	}
	s.mu.Unlock()
	if w == nil {
		return nil // a watermark of an earlier run, replayed
	}
	pos := h.file + ":" + strconv.FormatUint(uint64(header.LogPos), 10)
	ts := time.Unix(int64(header.Timestamp), 0).UTC()
	read := time.Now()
	for i, r := range chunk {
		if w.changed[r.key] {
			continue
		}
		row := r.row
		if w.md.columns != nil {
			row = events.Row{}
			for c, v := range r.row {
				if w.md.columns[c] {
					row[c] = v
				}
			}
		}
		env := &events.Envelope{V: events.Version, Source: events.SourceBinlog, Schema: w.md.schema, Table: w.md.table,
			Model: w.md.name, Op: w.md.snapshotAs, PK: r.pk, Row: row, ID: eventID(pos, i, h.b.sourceID, h.b.history), Pos: pos, TS: ts,
			Seq: h.seqAt(header.LogPos, i), ReadAt: read} // ordered at the high watermark
		if env.Op == events.OpInsert {
			env.Modified = w.cols
		}
		payload, err := events.Encode(env)
		if err != nil { // a value no JSON string holds (a ucs2 surrogate): a dead letter, the snapshot goes on
			h.rejectSnapshot(w.md, env, err)
			continue
		}
		if err := h.publish(w.md.name, env, payload, shardOf(env.Schema, env.Table, r.key), header.Timestamp); err != nil {
			return err
		}
	}
	w.done <- Position{File: h.file, Pos: header.LogPos}
	return nil
}

// resume starts the requests the table holds: new ones, and those a
// stopped bridge left running (from their last published chunk).
func (s *snapshots) resume(ctx context.Context) {
	rows, err := s.b.db.QueryContext(ctx, "SELECT id FROM "+SnapshotTable+" WHERE status IN ('requested', 'running') ORDER BY id")
	if err != nil {
		s.b.log.Info("snapshots unavailable: no "+SnapshotTable+" table (run migrate up)", "error", err)
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		s.start(id)
	}
}

// start runs snapshot id in the background unless it runs already.
func (s *snapshots) start(id int64) {
	ctx := s.ctx
	s.mu.Lock()
	if s.running[id] {
		s.mu.Unlock()
		return
	}
	s.running[id] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.run(ctx, id)
		s.mu.Lock()
		delete(s.running, id)
		s.mu.Unlock()
		switch {
		case err == nil:
		case errors.Is(err, errNotOurs):
		case ctx.Err() != nil:
			s.b.log.Info("snapshot paused; the next run resumes it from its last chunk", "snapshot", id)
		default:
			s.b.log.Error("snapshot failed", "snapshot", id, "error", err)
			s.b.db.ExecContext(context.WithoutCancel(ctx), "UPDATE "+SnapshotTable+" SET status = 'failed', error = ? WHERE id = ?", err.Error(), id)
		}
	}()
}

// errNotOurs: the request names a model this bridge does not publish.
var errNotOurs = errors.New("not a model of this bridge")

// snapshotRun is a row of SnapshotTable as a run reads it: a snapshot
// request and its progress.
type snapshotRun struct {
	id              int64
	model, status   string
	chunkSize, rate int            // rows per chunk; rows per second at most (0: unpaced)
	lastKey, maxKey sql.NullString // the last key published; the last key to read
	done, estimate  int64          // rows published; rows the table had at the start
}

// snapshotSource is what a snapshot reads: its model's table, the columns
// the model publishes, and the query of a chunk.
type snapshotSource struct {
	md   *model
	key  string // "schema.table"
	cols []string
	q    *chunkQuery
}

// run reads snapshot id's table chunk by chunk until its end.
func (s *snapshots) run(ctx context.Context, id int64) error {
	r, err := s.request(ctx, id)
	if err != nil {
		return err
	}
	if r.status != "requested" && r.status != "running" {
		return nil
	}
	if _, ok := s.b.cfg.Models[r.model]; !ok {
		return errNotOurs
	}
	st, err := s.table(ctx, r.model)
	if err != nil {
		return err
	}
	r.chunkSize = chunkSize(r.chunkSize, r.rate)
	if r.status == "requested" {
		if err := s.begin(ctx, r, st); err != nil {
			return err
		}
	}
	s.watch(st.key, 1)
	defer s.watch(st.key, -1)
	s.b.log.Info("snapshot running", "snapshot", id, "model", r.model, "table", st.key, "from", r.lastKey.String,
		"rows_estimate", r.estimate, "rows_per_second_max", r.rate)
	if err := s.chunks(ctx, r, st); err != nil {
		return err
	}
	if !r.maxKey.Valid { // an empty table
		if _, err := s.b.db.ExecContext(ctx, "UPDATE "+SnapshotTable+" SET status = 'done' WHERE id = ?", id); err != nil {
			return err
		}
	}
	s.b.log.Info("snapshot done", "snapshot", id, "model", r.model, "rows", r.done)
	return nil
}

// request reads snapshot id's row. The binlog can show a commit a moment
// before other sessions see it: a request met there may not be readable
// yet, so a missing row is read again for a few seconds.
func (s *snapshots) request(ctx context.Context, id int64) (*snapshotRun, error) {
	r := &snapshotRun{id: id}
	var err error
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		err = s.b.db.QueryRowContext(ctx, "SELECT model, status, chunk_size, rows_per_second, last_key, max_key, rows_done, rows_estimate FROM "+
			SnapshotTable+" WHERE id = ?", id).Scan(&r.model, &r.status, &r.chunkSize, &r.rate, &r.lastKey, &r.maxKey, &r.done, &r.estimate)
		if !errors.Is(err, sql.ErrNoRows) || wait > 5*time.Second {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w %d: reading the request (has `migrate up` run?): %w", ErrSnapshot, id, err)
	}
	return r, nil
}

// table describes model name's table for a snapshot, refusing one it
// cannot read in order: missing, without a primary key, or on a server
// whose commits may become visible out of binlog order.
func (s *snapshots) table(ctx context.Context, name string) (*snapshotSource, error) {
	b := s.b
	md, err := b.newModel(name)
	if err != nil {
		return nil, err
	}
	key := md.schema + "." + md.table
	t, err := sqlschema.Describe(ctx, b.db, md.schema, md.table)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("%w: table %s does not exist", ErrSnapshot, key)
	}
	if len(t.PK) == 0 {
		return nil, fmt.Errorf("%w: table %s has no primary key: a snapshot reads it in primary-key order", ErrSnapshot, key)
	}
	// What precedes a low watermark in the binlog must be visible to the
	// chunk read after it: commits in binlog order (MariaDB always; MySQL
	// with binlog_order_commits, its default).
	var ordered sql.NullInt64
	if b.db.QueryRowContext(ctx, "SELECT @@GLOBAL.binlog_order_commits").Scan(&ordered) == nil && ordered.Valid && ordered.Int64 == 0 {
		return nil, fmt.Errorf("%w: the server has binlog_order_commits=OFF: a chunk read could miss a change logged before it; turn it ON", ErrSnapshot)
	}
	q, err := newChunkQuery(t)
	if err != nil {
		return nil, err
	}
	var cols []string
	for _, c := range t.Columns {
		if md.columns == nil || md.columns[c.Name] {
			cols = append(cols, c.Name)
		}
	}
	return &snapshotSource{md: md, key: key, cols: cols, q: q}, nil
}

// chunkSize is the rows per chunk of a request for size rows (default
// 1000) at rate rows per second at most. A chunk is published at once: a
// paced snapshot reads a quarter of a second's rows at most, so that its
// bursts stay short.
func chunkSize(size, rate int) int {
	if size <= 0 {
		size = 1000
	}
	if c := max(1, rate/4); rate > 0 && size > c {
		size = c
	}
	return size
}

// begin marks a requested snapshot running, with its last key now: rows
// inserted later are published as inserts, and a busy table still ends.
func (s *snapshots) begin(ctx context.Context, r *snapshotRun, st *snapshotSource) error {
	b := s.b
	var err error
	r.maxKey.String, r.maxKey.Valid, err = st.q.maxKey(ctx, b.db)
	if err != nil {
		return err
	}
	b.db.QueryRowContext(ctx, "SELECT IFNULL(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
		st.md.schema, st.md.table).Scan(&r.estimate)
	_, err = b.db.ExecContext(ctx, "UPDATE "+SnapshotTable+" SET status = 'running', max_key = ?, rows_estimate = ? WHERE id = ?",
		r.maxKey, r.estimate, r.id)
	return err
}

// watch counts the snapshots running on table key (delta 1 or -1).
func (s *snapshots) watch(key string, delta int) {
	s.mu.Lock()
	s.watched[key] += delta
	s.mu.Unlock()
}

// chunks publishes r's table chunk by chunk, at r's pace, saving the
// progress after each, until a chunk comes back short: the end.
func (s *snapshots) chunks(ctx context.Context, r *snapshotRun, st *snapshotSource) error {
	began, startDone := time.Now(), r.done
	for r.maxKey.Valid {
		select {
		case <-time.After(time.Until(paceUntil(began, r.done-startDone, r.rate))):
		case <-ctx.Done():
			return ctx.Err()
		}
		chunk, err := s.chunk(ctx, r, st)
		if err != nil {
			return err
		}
		finished := len(chunk) < r.chunkSize
		if err := s.progress(ctx, r, st, chunk, finished); err != nil {
			return err
		}
		rate := float64(r.done-startDone) / time.Since(began).Seconds()
		eta := time.Duration(0)
		if rate > 0 && r.estimate > r.done {
			eta = time.Duration(float64(r.estimate-r.done) / rate * float64(time.Second)).Round(time.Second)
		}
		s.b.log.Info("snapshot progress", "snapshot", r.id, "model", r.model, "rows_done", r.done, "rows_estimate", r.estimate,
			"rows_per_second", int64(rate), "eta", eta)
		if finished {
			break
		}
	}
	return nil
}

// chunk reads the next chunk between a low and a high watermark and waits
// until gearmand has acknowledged its events, which the stream publishes
// when it meets the high watermark (changes of its rows logged between the
// two win over the rows read).
func (s *snapshots) chunk(ctx context.Context, r *snapshotRun, st *snapshotSource) ([]snapRow, error) {
	wid := ids.New()
	w := &window{table: st.key, md: st.md, cols: st.cols, changed: map[string]bool{}, done: make(chan Position, 1)}
	s.mu.Lock()
	s.windows[wid] = w
	s.mu.Unlock()
	if err := s.watermark(ctx, r.id, "L:"+wid); err != nil {
		return nil, err
	}
	chunk, err := st.q.read(ctx, s.b.db, r.lastKey, r.maxKey.String, r.chunkSize)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	w.chunk = chunk
	s.mu.Unlock()
	if err := s.watermark(ctx, r.id, "H:"+wid); err != nil {
		return nil, err
	}
	var hi Position
	select {
	case hi = <-w.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := s.acknowledged(ctx, hi); err != nil {
		return nil, err
	}
	return chunk, nil
}

// progress saves r's progress past chunk (done when finished) and reports
// it to the observer.
func (s *snapshots) progress(ctx context.Context, r *snapshotRun, st *snapshotSource, chunk []snapRow, finished bool) error {
	r.done += int64(len(chunk))
	if len(chunk) > 0 {
		r.lastKey = sql.NullString{String: st.q.keyJSON(chunk[len(chunk)-1].pk), Valid: true}
	}
	status := "running"
	if finished {
		status = "done"
	}
	if _, err := s.b.db.ExecContext(ctx, "UPDATE "+SnapshotTable+" SET last_key = ?, rows_done = ?, status = ? WHERE id = ?",
		r.lastKey, r.done, status, r.id); err != nil {
		return err
	}
	if so, ok := s.b.observer.(SnapshotObserver); ok {
		so.SnapshotRows(st.md.table, r.done)
	}
	return nil
}

func (s *snapshots) watermark(ctx context.Context, id int64, wm string) error {
	_, err := s.b.db.ExecContext(ctx, "UPDATE "+SnapshotTable+" SET watermark = ? WHERE id = ?", wm, id)
	return err
}

// acknowledged waits until the workers have handled every job up to p:
// only then is the chunk's progress saved, so a restart never skips rows.
func (s *snapshots) acknowledged(ctx context.Context, p Position) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		acked, _, _ := s.b.tracker.advance()
		if acked.File > p.File || acked.File == p.File && acked.Pos >= p.Pos {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// chunkQuery reads a table's rows in event form, in primary-key order.
type chunkQuery struct {
	t      *sqlschema.Table
	row    string // JSON_OBJECT of every column
	pk     string // JSON_OBJECT of the key columns
	cols   string // (`a`, `b`)
	order  string // `a`, `b`
	desc   string // `a` DESC, `b` DESC
	params string // (?, ?)
}

func newChunkQuery(t *sqlschema.Table) (*chunkQuery, error) {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	row, err := sqlschema.RowSQL(t, names)
	if err != nil {
		return nil, err
	}
	pk, err := sqlschema.RowSQL(t, t.PK)
	if err != nil {
		return nil, err
	}
	q := &chunkQuery{t: t, row: row, pk: pk}
	var cols, desc, params []string
	for _, k := range t.PK {
		cols = append(cols, quoteIdent(k))
		desc = append(desc, quoteIdent(k)+" DESC")
		params = append(params, "?")
	}
	q.order = strings.Join(cols, ", ")
	q.cols = "(" + q.order + ")"
	q.desc = strings.Join(desc, ", ")
	q.params = "(" + strings.Join(params, ", ") + ")"
	return q, nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func (q *chunkQuery) from() string { return quoteIdent(q.t.Schema) + "." + quoteIdent(q.t.Name) }

// maxKey is the key of the table's last row, as keyJSON writes it; false
// for an empty table.
func (q *chunkQuery) maxKey(ctx context.Context, db *sql.DB) (string, bool, error) {
	var obj []byte
	err := db.QueryRowContext(ctx, "SELECT "+q.pk+" FROM "+q.from()+" ORDER BY "+q.desc+" LIMIT 1").Scan(&obj)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: last key of %s: %w", ErrSnapshot, q.from(), err)
	}
	pk, err := rowOfJSON(obj)
	if err != nil {
		return "", false, err
	}
	return q.keyJSON(pk), true, nil
}

// keyJSON writes a key as a JSON array of its values in event form, in key
// order.
func (q *chunkQuery) keyJSON(pk events.Row) string {
	vals := make([]json.RawMessage, len(q.t.PK))
	for i, k := range q.t.PK {
		vals[i] = pk[k]
	}
	b, _ := json.Marshal(vals)
	return string(b)
}

// args turns a keyJSON key back into query arguments.
func (q *chunkQuery) args(key string) ([]any, error) {
	var vals []json.RawMessage
	if err := json.Unmarshal([]byte(key), &vals); err != nil || len(vals) != len(q.t.PK) {
		return nil, fmt.Errorf("%w: bad key %s for %s", ErrSnapshot, key, q.from())
	}
	out := make([]any, len(vals))
	for i, v := range vals {
		c, _ := q.t.Column(q.t.PK[i])
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			out[i] = string(v) // a number
			continue
		}
		if strings.Contains(c.DataType, "binary") || strings.HasSuffix(c.DataType, "blob") {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("%w: bad key %s for %s: %w", ErrSnapshot, key, q.from(), err)
			}
			out[i] = b
			continue
		}
		out[i] = s
	}
	return out, nil
}

// read returns up to n rows after last (none: from the start) up to max.
func (q *chunkQuery) read(ctx context.Context, db *sql.DB, last sql.NullString, max string, n int) ([]snapRow, error) {
	where := q.cols + " <= " + q.params
	args, err := q.args(max)
	if err != nil {
		return nil, err
	}
	if last.Valid {
		after, err := q.args(last.String)
		if err != nil {
			return nil, err
		}
		where = q.cols + " > " + q.params + " AND " + where
		args = append(after, args...)
	}
	rows, err := db.QueryContext(ctx, "SELECT "+q.row+" FROM "+q.from()+" WHERE "+where+" ORDER BY "+q.order+" LIMIT "+strconv.Itoa(n), args...)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrSnapshot, q.from(), err)
	}
	defer rows.Close()
	var out []snapRow
	for rows.Next() {
		var obj []byte
		if err := rows.Scan(&obj); err != nil {
			return nil, err
		}
		row, err := rowOfJSON(obj)
		if err != nil {
			return nil, err
		}
		r := snapRow{row: row, pk: events.Row{}}
		var k strings.Builder
		for _, c := range q.t.PK {
			v := canonical(row[c])
			r.pk[c], row[c] = v, v
			k.Write(v)
			k.WriteByte(0)
		}
		r.key = k.String()
		out = append(out, r)
	}
	return out, rows.Err()
}

// canonical writes a string value as the bridge's encoder does (the
// server may escape differently), so a key read here equals the key of the
// same row in the binlog.
func canonical(v json.RawMessage) json.RawMessage {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return v
	}
	return jsonstr.Append(nil, s)
}

// rowOfJSON reads a JSON_OBJECT result as a Row of compact values.
func rowOfJSON(obj []byte) (events.Row, error) {
	var c bytes.Buffer
	if err := json.Compact(&c, obj); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	var r events.Row
	if err := json.Unmarshal(c.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	return r, nil
}
