package bridge

import (
	"database/sql"
	"io/fs"
	"strings"

	"github.com/rowgear/rowgear/migrations"
)

// CreateSnapshotTable creates SnapshotTable in db from its migrations (the
// tests' databases are not migrated).
func CreateSnapshotTable(db *sql.DB) error {
	for _, f := range []string{"00040_snapshots.sql", "00045_snapshot_rate.sql"} {
		b, err := fs.ReadFile(migrations.FS, f)
		if err != nil {
			return err
		}
		_, up, _ := strings.Cut(string(b), "-- +goose Up")
		up, _, _ = strings.Cut(up, "-- +goose Down")
		if _, err := db.Exec(up); err != nil {
			return err
		}
	}
	return nil
}
