package bridge

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Position is a point in the binlog between two transactions: everything
// before it has been published (or, as a start, is skipped).
type Position struct {
	File string `json:"file"`           // binlog file name, e.g. "binlog.000003"
	Pos  uint32 `json:"pos"`            // offset in File
	GTID string `json:"gtid,omitempty"` // GTID set; when set, it is what a restart resumes from
	// History names the binlog history the bridge follows: the time it
	// started (tenths of a second) and random bits, chosen when the bridge
	// starts without a saved position (a first start, or after RESET
	// MASTER / a rebuilt server made the operator start afresh). It is part
	// of every event id, so that file:pos reused by a new history never
	// gives an id of the old one, and its start leads every seq, so that
	// the new history's events order after the old one's.
	History string `json:"history,omitempty"`
}

// String is "file:pos", followed by " gtid:SET" when there is a GTID set.
func (p Position) String() string {
	s := p.File + ":" + strconv.FormatUint(uint64(p.Pos), 10)
	if p.GTID != "" {
		s += " gtid:" + p.GTID
	}
	return s
}

// ParseStart parses the --start flag: "current" (nil: the end of the
// binlog), "gtid:SET", or "FILE:POS" (an optional "file:" prefix is allowed).
func ParseStart(s string) (*Position, error) {
	switch {
	case s == "" || s == "current":
		return nil, nil
	case strings.HasPrefix(s, "gtid:"):
		set := strings.TrimPrefix(s, "gtid:")
		if set == "" {
			return nil, fmt.Errorf("%w: empty GTID set in %q", ErrStart, s)
		}
		return &Position{GTID: set}, nil
	}
	s = strings.TrimPrefix(s, "file:")
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return nil, fmt.Errorf("%w: %q: want current, FILE:POS or gtid:SET", ErrStart, s)
	}
	pos, err := strconv.ParseUint(s[i+1:], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: bad position: %w", ErrStart, s, err)
	}
	return &Position{File: s[:i], Pos: uint32(pos)}, nil
}

// Store keeps the bridge's position across restarts.
type Store interface {
	// Load returns the saved position; ok is false when none was saved.
	Load(ctx context.Context) (p Position, ok bool, err error)
	// Save replaces the saved position.
	Save(ctx context.Context, p Position) error
}

// PositionTable is the table the default store keeps positions in, one row
// per bridge server_id.
const PositionTable = "rowgear_binlog_position"

// TableStore keeps the position in PositionTable of the source database,
// keyed by the bridge's server id. rowgear's migrations create the table
// (`migrate up`).
type TableStore struct {
	db       *sql.DB
	serverID uint32
}

// NewTableStore checks that PositionTable exists.
func NewTableStore(ctx context.Context, db *sql.DB, serverID uint32) (*TableStore, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES "+
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", PositionTable).Scan(&n)
	if err != nil {
		return nil, fmt.Errorf("%w: looking for %s: %w", ErrStore, PositionTable, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: table %s does not exist in the source database: run `migrate up` first", ErrStore, PositionTable)
	}
	return &TableStore{db: db, serverID: serverID}, nil
}

// Load implements Store.
func (s *TableStore) Load(ctx context.Context) (Position, bool, error) {
	var p Position
	err := s.db.QueryRowContext(ctx, "SELECT binlog_file, binlog_pos, gtid_set, history FROM `"+PositionTable+
		"` WHERE server_id = ?", s.serverID).Scan(&p.File, &p.Pos, &p.GTID, &p.History)
	if errors.Is(err, sql.ErrNoRows) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("%w: load: %w", ErrStore, err)
	}
	return p, true, nil
}

// Save implements Store.
func (s *TableStore) Save(ctx context.Context, p Position) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO `"+PositionTable+"` (server_id, binlog_file, binlog_pos, gtid_set, history) "+
		"VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), "+
		"binlog_pos = VALUES(binlog_pos), gtid_set = VALUES(gtid_set), history = VALUES(history)",
		s.serverID, p.File, p.Pos, p.GTID, p.History)
	if err != nil {
		return fmt.Errorf("%w: save: %w", ErrStore, err)
	}
	return nil
}

// FileStore keeps the position in a JSON file, replaced atomically.
type FileStore struct{ Path string }

// Load implements Store.
func (s FileStore) Load(context.Context) (Position, bool, error) {
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("%w: %w", ErrStore, err)
	}
	var p Position
	if err := json.Unmarshal(data, &p); err != nil {
		return Position{}, false, fmt.Errorf("%w: %s: %w", ErrStore, s.Path, err)
	}
	return p, true, nil
}

// Save implements Store: write a temporary file, sync it, rename it over
// the old one, so a crash leaves the old or the new position, never half.
func (s FileStore) Save(_ context.Context, p Position) error {
	data, _ := json.Marshal(p)
	tmp, err := os.CreateTemp(filepath.Dir(s.Path), filepath.Base(s.Path)+".*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.Path)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	return nil
}
