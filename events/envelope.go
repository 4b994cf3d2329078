package events

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/rowgear/rowgear/internal/funcname"
)

// Version is the envelope version this package reads and writes.
const Version = 1

// Sources of an event.
const (
	SourceTrigger = "trigger"
	SourceBinlog  = "binlog"
)

// Row operations.
const (
	OpInsert = "insert"
	OpUpdate = "update"
	OpDelete = "delete"
	// OpSnapshot is a row read by a snapshot (a backfill) rather than
	// changed: its current image, published by binlogbridge between live
	// changes (package bridge, Snapshots).
	OpSnapshot = "snapshot"
)

// MaxIDLen is the longest event id: the id is also the gearman unique key,
// which gearmand caps at 64 bytes.
const MaxIDLen = 64

var (
	// ErrMalformed is wrapped by every error about a payload that is not a
	// valid version-1 envelope.
	ErrMalformed = errors.New("events: malformed envelope")
	// ErrVersion is returned for an envelope of a version this package does
	// not know; such a payload is not checked further.
	ErrVersion = errors.New("events: unsupported envelope version")
)

// Envelope is one row change, as both sources publish it. See the package
// documentation for the meaning of each field.
type Envelope struct {
	V        int       // always Version
	ID       string    // unique per event, at most MaxIDLen bytes
	Source   string    // SourceTrigger or SourceBinlog
	Schema   string    // database name
	Table    string    // table name
	Model    string    // model name, as in the models config
	Op       string    // OpInsert, OpUpdate, OpDelete or OpSnapshot
	PK       Row       // primary-key columns
	Row      Row       // after image; before image for delete
	Old      Row       // before image, update only; nil in events of outbox triggers (ReadRow)
	Modified []string  // changed columns (update), all columns (insert), none (delete)
	TS       time.Time // when the change happened; encoded in UTC with µs
	Pos      string    // binlog position, binlog source only
	// Seq orders the events of one row of one source: a later commit has a
	// greater Seq, compared as bytes (see the package documentation).
	// Empty in events from triggers generated before the commit gate.
	Seq string
	// ReadAt is when binlogbridge read the change, by its clock (µs);
	// binlog source only, optional. Package latency bounds the commit time
	// with it.
	ReadAt time.Time
	// ReadRow marks an event of an outbox trigger that leaves its row out
	// (insert and update): the worker reads the committed row from the
	// table when it handles the event, before any handler runs, and
	// clears ReadRow. A handler never sees it set. See the package
	// documentation, "Trigger outbox events".
	ReadRow bool
}

// MaxSeqLen is the longest Seq.
const MaxSeqLen = 40

// malformed builds an error naming the offending field.
func malformed(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, field, fmt.Sprintf(format, args...))
}

// validate checks everything Encode and Decode both promise, so that a
// decoded envelope always encodes and an encoded one always decodes.
// Column values are checked by Encode as it writes them. The checks run
// in this order, so that an envelope with several faults names the first.
func (e *Envelope) validate() error {
	if e.V != Version {
		return fmt.Errorf("%w: v is %d, want %d", ErrVersion, e.V, Version)
	}
	if err := e.checkID(); err != nil {
		return err
	}
	if err := e.checkOrigin(); err != nil {
		return err
	}
	if err := e.checkOp(); err != nil {
		return err
	}
	if err := e.checkImages(); err != nil {
		return err
	}
	if err := e.checkModified(); err != nil {
		return err
	}
	if err := e.checkTS(); err != nil {
		return err
	}
	if err := e.checkBinlogFields(); err != nil {
		return err
	}
	if err := e.checkSeq(); err != nil {
		return err
	}
	return e.checkUTF8()
}

// checkID: present, short enough for a gearman unique key, without NUL.
// Its UTF-8 is checked with the other strings' (checkUTF8).
func (e *Envelope) checkID() error {
	if e.ID == "" {
		return malformed("id", "empty")
	}
	if len(e.ID) > MaxIDLen {
		return malformed("id", "%d bytes, at most %d allowed (gearman unique key)", len(e.ID), MaxIDLen)
	}
	for i := 0; i < len(e.ID); i++ {
		if e.ID[i] == 0 {
			return malformed("id", "contains NUL")
		}
	}
	return nil
}

// checkOrigin: a known source, and a schema, table and model, the model a
// valid part of a function name.
func (e *Envelope) checkOrigin() error {
	switch e.Source {
	case SourceTrigger, SourceBinlog:
	case "":
		return malformed("source", "empty")
	default:
		return malformed("source", "unknown source %q", e.Source)
	}
	for _, f := range [...]struct{ name, v string }{
		{"schema", e.Schema}, {"table", e.Table}, {"model", e.Model},
	} {
		if f.v == "" {
			return malformed(f.name, "empty")
		}
	}
	if err := funcname.CheckPart(e.Model); err != nil {
		return malformed("model", "%v", err)
	}
	return nil
}

func (e *Envelope) checkOp() error {
	switch e.Op {
	case OpInsert, OpUpdate, OpDelete, OpSnapshot:
		return nil
	case "":
		return malformed("op", "empty")
	default:
		return malformed("op", "unknown op %q", e.Op)
	}
}

// checkImages: pk and row (none with read_row); old for an update only,
// which a trigger event may leave out (outbox events: the worker reads the
// row as it is when the event is handled).
func (e *Envelope) checkImages() error {
	if err := e.PK.check("pk"); err != nil {
		return err
	}
	if e.ReadRow {
		if e.Source != SourceTrigger || (e.Op != OpInsert && e.Op != OpUpdate) {
			return malformed("read_row", "only for source %q and op insert or update, not %s %s", SourceTrigger, e.Source, e.Op)
		}
		if e.Row != nil || e.Old != nil {
			return malformed("read_row", "row and old must be left out")
		}
		return nil
	}
	if err := e.Row.check("row"); err != nil {
		return err
	}
	if e.Old != nil && e.Op != OpUpdate {
		return malformed("old", "not allowed for op %q", e.Op)
	}
	if e.Op == OpUpdate && (e.Old != nil || e.Source != SourceTrigger) {
		return e.Old.check("old")
	}
	return nil
}

// checkTS: a time that encodes (a four-digit year).
func (e *Envelope) checkTS() error {
	if e.TS.IsZero() {
		return malformed("ts", "zero time")
	}
	if y := e.TS.UTC().Year(); y < 0 || y > 9999 {
		return malformed("ts", "year %d out of range", y)
	}
	return nil
}

// checkBinlogFields: pos and read_at only in events from the binlog.
func (e *Envelope) checkBinlogFields() error {
	if e.Pos != "" && e.Source != SourceBinlog {
		return malformed("pos", "only allowed for source %q", SourceBinlog)
	}
	if !e.ReadAt.IsZero() && e.Source != SourceBinlog {
		return malformed("read_at", "only allowed for source %q", SourceBinlog)
	}
	return nil
}

// checkSeq: at most MaxSeqLen digits and colons (compared as bytes).
func (e *Envelope) checkSeq() error {
	if len(e.Seq) > MaxSeqLen {
		return malformed("seq", "%d bytes, at most %d allowed", len(e.Seq), MaxSeqLen)
	}
	for i := 0; i < len(e.Seq); i++ {
		if c := e.Seq[i]; (c < '0' || c > '9') && c != ':' {
			return malformed("seq", "%q: want digits and ':' only", e.Seq)
		}
	}
	return nil
}

func (e *Envelope) checkUTF8() error {
	for _, f := range [...]struct{ name, v string }{
		{"id", e.ID}, {"schema", e.Schema}, {"table", e.Table}, {"pos", e.Pos},
	} {
		if !utf8.ValidString(f.v) {
			return malformed(f.name, "invalid UTF-8")
		}
	}
	return nil
}

func (e *Envelope) checkModified() error {
	if (e.Op == OpDelete || e.Op == OpSnapshot) && len(e.Modified) > 0 {
		return malformed("modified", "must be empty for op %q", e.Op)
	}
	var seen map[string]bool // only for long lists: quadratic is cheaper below
	if len(e.Modified) > 32 {
		seen = make(map[string]bool, len(e.Modified))
	}
	for i, c := range e.Modified {
		if _, ok := e.Row[c]; !ok && !e.ReadRow {
			return malformed("modified", "column %q is not in row", c)
		}
		dup := false
		if seen != nil {
			dup, seen[c] = seen[c], true
		} else {
			dup = slices.Contains(e.Modified[:i], c)
		}
		if dup {
			return malformed("modified", "column %q listed twice", c)
		}
	}
	return nil
}
