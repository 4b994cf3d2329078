package bridge

import (
	"database/sql"
	"io/fs"
	"strings"

	"github.com/rowgear/rowgear/migrations"
)

// CreateSnapshotTable creates SnapshotTable in db from its migration (the
// tests' databases are not migrated).
func CreateSnapshotTable(db *sql.DB) error {
	b, err := fs.ReadFile(migrations.FS, "00040_snapshots.sql")
	if err != nil {
		return err
	}
	_, up, _ := strings.Cut(string(b), "-- +goose Up")
	up, _, _ = strings.Cut(up, "-- +goose Down")
	_, err = db.Exec(up)
	return err
}
