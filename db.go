package rowgear

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/migrations"
)

// dsnOf is --dsn (with the password of database.password_file when it has
// none), or database.dsn of the config.
func (c *common) dsnOf(cfg *config.Config) (string, error) {
	if c.dsn != "" {
		return cfg.Database.WithPassword(c.dsn)
	}
	if cfg.Database.DSN == "" {
		return "", fmt.Errorf("%s has no database.dsn (env %s); set it or pass --dsn", cfg.File, cfg.Env)
	}
	return cfg.Database.DSN, nil
}

// open opens the database of --dsn or the config.
func (c *common) open(ctx context.Context) (*sql.DB, *config.Config, error) {
	cfg, err := c.load()
	if err != nil && c.dsn == "" {
		return nil, nil, err
	}
	dsn := c.dsn
	if cfg != nil {
		if dsn, err = c.dsnOf(cfg); err != nil {
			return nil, nil, err
		}
	}
	db, err := openDB(ctx, dsn)
	return db, cfg, err
}

// openDB opens dsn and checks that it connects, so that a wrong password or
// address is reported as what it is.
func openDB(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := dispatch.OpenDB(dsn)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		where := "the database"
		if mc, perr := mysql.ParseDSN(dsn); perr == nil {
			where = fmt.Sprintf("database %q at %s as %q", mc.DBName, mc.Addr, mc.User)
		}
		return nil, fmt.Errorf("connecting to %s failed: %w", where, err)
	}
	return db, nil
}

// ErrNotMigrated: rowgear's own migrations are not (all) applied.
var ErrNotMigrated = errors.New("rowgear's migrations are not applied")

// checkMigrated tells the user to run `migrate up` when rowgear's own
// migrations up to version need (the tables a command uses) are not applied.
func (a *App) checkMigrated(ctx context.Context, db *sql.DB, need int64) error {
	p, err := migrations.NewProvider(db)
	if err != nil {
		return err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("reading rowgear's migration state: %w", err)
	}
	var pending []string
	for _, s := range st {
		if s.Source.Version <= need && s.State != goose.StateApplied {
			pending = append(pending, s.Source.Path)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w (pending: %v): run `%s migrate up`", ErrNotMigrated, slices.Clip(pending), a.name)
	}
	return nil
}
