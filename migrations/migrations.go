// Package migrations holds rowgear's own goose SQL migrations, embedded: the
// failed-jobs and crash tables of package retry (00001), binlogbridge's
// position table (00002) and its history column (00020), package
// ordering's commit-gate, row-seq and applied-event tables (00010),
// binlogbridge's snapshot requests and progress (00040) and their pace
// (00045), an index of dead letters by function (00050), the
// bridge's high-availability lease and reports (00060), the gearman UDFs
// the triggers call (00099; 00100 adds rowgear_ring), the outbox
// columns of the commit gate (00110, triggers.mode: outbox) and the
// relay's cursor (00120). The UDFs are needed only by
// trigger-sourced models: an application whose models all use the binlog
// leaves 00099 and 00100 out (see WithoutUDF), so a server without the UDF's library,
// or a managed one, can run everything else. They are
// versioned in their own table, rowgear_migrations, apart from the
// application's migrations (goose's goose_db_version by default), so an
// application numbers its own from 00001 and one `migrate up` applies both
// sets: rowgear's first, then the application's (see Set and Up).
//
// The files need no multiStatements on the DSN: goose splits them itself and
// sends each statement alone, a trigger body whole between StatementBegin and
// StatementEnd. The goose CLI needs parseTime=true for `status` (it adds it
// itself); this package does not (see store). `goose -table
// rowgear_migrations -dir migrations mysql "$DSN" up` runs the same files.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// FS holds rowgear's own migrations.
//
//go:embed *.sql
var FS embed.FS

// Table is the version table of rowgear's own migrations.
const Table = "rowgear_migrations"

// AppTable is the default version table of an application's migrations:
// goose's own, so a goose CLI run on the same directory agrees.
const AppTable = goose.DefaultTablename

// UDFVersion is the migration that installs the gearman UDFs.
const UDFVersion = 99

// ringVersion is the migration that adds the UDF rowgear_ring.
const ringVersion = 100

// IsUDF reports whether version installs UDFs (server-wide functions, no
// table of rowgear's): WithoutUDF leaves those out.
func IsUDF(version int64) bool { return version == UDFVersion || version == ringVersion }

// Set is one sequence of migrations with its own version table.
type Set struct {
	Name    string  // for messages: "rowgear" or the application's name
	FS      fs.FS   // the .sql files, at its root
	Table   string  // the version table
	Exclude []int64 // versions left out (neither applied nor listed)
}

// WithoutUDF is s without the UDF migrations (00099, 00100): for an
// application with no trigger-sourced model.
func (s Set) WithoutUDF() Set {
	s.Exclude = append(slices.Clone(s.Exclude), UDFVersion, ringVersion)
	return s
}

// Rowgear is the set of rowgear's own migrations.
func Rowgear() Set { return Set{Name: "rowgear", FS: FS, Table: Table} }

// Provider returns a goose provider of s on db (MySQL or MariaDB), without
// logging.
func (s Set) Provider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	st, err := database.NewStore(database.DialectMySQL, s.Table)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", s.Name, err)
	}
	opts = append([]goose.ProviderOption{
		goose.WithStore(store{st}),
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
		goose.WithExcludeVersions(s.Exclude),
	}, opts...)
	p, err := goose.NewProvider(goose.DialectCustom, db, s.FS, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", s.Name, err)
	}
	return p, nil
}

// Applied returns the latest version of s applied to db: 0 when none is, or
// when its version table does not exist yet.
func (s Set) Applied(ctx context.Context, db *sql.DB) (int64, error) {
	var exists int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
		s.Table).Scan(&exists)
	if err != nil || exists == 0 {
		return 0, err
	}
	st, err := database.NewStore(database.DialectMySQL, s.Table)
	if err != nil {
		return 0, err
	}
	v, err := st.GetLatestVersion(ctx, db)
	if errors.Is(err, database.ErrVersionNotFound) {
		return 0, nil
	}
	return v, err
}

// NewProvider returns a goose provider of rowgear's own migrations.
func NewProvider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	return Rowgear().Provider(db, opts...)
}

// Up applies every pending migration of the sets, in order, and returns
// what ran. A set with nothing pending is no error.
func Up(ctx context.Context, db *sql.DB, sets ...Set) ([]*goose.MigrationResult, error) {
	var all []*goose.MigrationResult
	for _, s := range sets {
		p, err := s.Provider(db)
		if err != nil {
			return all, err
		}
		res, err := p.Up(ctx)
		all = append(all, res...)
		if err != nil && !errors.Is(err, goose.ErrNoNextVersion) {
			var pe *goose.PartialError
			if errors.As(err, &pe) && pe.Failed != nil && pe.Failed.Source != nil {
				return all, fmt.Errorf("migrations %s up: %s: %w", s.Name, pe.Failed.Source.Path, pe.Err)
			}
			return all, fmt.Errorf("migrations %s up: %w", s.Name, err)
		}
	}
	return all, nil
}

// UpRowgear applies rowgear's own pending migrations: what the retry guard,
// the dead-letter commands and binlogbridge need.
func UpRowgear(ctx context.Context, db *sql.DB) error {
	_, err := Up(ctx, db, Rowgear())
	return err
}

// UpTo applies the pending migrations of s up to version.
func UpTo(ctx context.Context, db *sql.DB, s Set, version int64) error {
	p, err := s.Provider(db)
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil && !errors.Is(err, goose.ErrNoNextVersion) {
		return fmt.Errorf("migrations %s up to %d: %w", s.Name, version, err)
	}
	return nil
}

// DownTo rolls back every applied migration of s above version; 0 rolls
// back all. Mind rowgear's 00099 and 00100: the UDFs are server-wide, so going below
// them breaks the triggers of every database on the server.
func DownTo(ctx context.Context, db *sql.DB, s Set, version int64) error {
	p, err := s.Provider(db)
	if err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("migrations %s down to %d: %w", s.Name, version, err)
	}
	return nil
}

// Status writes one line per migration of the sets: applied (with when) or
// pending, and the set's name.
func Status(ctx context.Context, db *sql.DB, w io.Writer, sets ...Set) error {
	for _, s := range sets {
		p, err := s.Provider(db)
		if err != nil {
			return err
		}
		st, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrations %s status: %w", s.Name, err)
		}
		for _, m := range st {
			when := "Pending"
			if m.State == goose.StateApplied {
				when = m.AppliedAt.Format(time.DateTime)
			}
			if _, err := fmt.Fprintf(w, "%-19s  %-8s %s\n", when, s.Name, m.Source.Path); err != nil {
				return err
			}
		}
	}
	return nil
}

// store is goose's MySQL store, except that it reads the tstamp column
// whatever the DSN's parseTime: goose's own scan needs parseTime=true.
type store struct{ database.Store }

func (s store) GetMigration(ctx context.Context, db database.DBTxConn, version int64) (*database.GetMigrationResult, error) {
	var ts sql.NullString
	var applied bool
	err := db.QueryRowContext(ctx,
		"SELECT DATE_FORMAT(tstamp, '%Y-%m-%d %H:%i:%s'), is_applied FROM "+s.Tablename()+
			" WHERE version_id = ? ORDER BY tstamp DESC LIMIT 1", version).Scan(&ts, &applied)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", database.ErrVersionNotFound, version)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get migration %d: %w", version, err)
	}
	r := &database.GetMigrationResult{IsApplied: applied}
	if ts.Valid {
		// The server's local time, which is what goose stores.
		r.Timestamp, _ = time.ParseInLocation(time.DateTime, ts.String, time.Local)
	}
	return r, nil
}
