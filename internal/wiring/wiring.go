// Package wiring is what the worker (package rowgear) and the command line
// (package cli) share: opening the application's database, reading the state
// of rowgear's migrations in it, naming a worker set that gearman.yml lacks.
package wiring

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/migrations"
)

// Open opens dsn and checks that it connects, so that a wrong password or
// address is reported as what it is.
func Open(ctx context.Context, dsn string) (*sql.DB, error) {
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

// Pending lists rowgear's own migrations up to version need (the tables a
// command uses) that db has not applied.
func Pending(ctx context.Context, db *sql.DB, need int64) ([]string, error) {
	p, err := migrations.NewProvider(db)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading rowgear's migration state: %w", err)
	}
	var pending []string
	for _, s := range st {
		// The UDF migration installs server-wide functions, not tables the
		// worker reads: an application without trigger models leaves it out.
		if s.Source.Version <= need && !migrations.IsUDF(s.Source.Version) && s.State != goose.StateApplied {
			pending = append(pending, s.Source.Path)
		}
	}
	return pending, nil
}

// CheckSet names the set and the environment when set is not a set of cfg,
// instead of a later error about what the set would need; what is how the
// caller named it (--config=NAME).
func CheckSet(cfg *config.Config, set, what string) error {
	if set == "" {
		return nil
	}
	if _, ok := cfg.Workers[set]; ok {
		return nil
	}
	if _, ok := cfg.DBWorkers[set]; ok {
		return nil
	}
	var have []string
	for s := range cfg.Workers {
		have = append(have, s)
	}
	for s := range cfg.DBWorkers {
		have = append(have, s)
	}
	env := cfg.Env
	if env == "" {
		env = "(none)"
	}
	return fmt.Errorf("%w: %s: %s defines no worker:, doctrine: or dbworker: set %q under all: or env %s (sets there: %s)",
		config.ErrUnknownSet, what, cfg.File, set, env, cmp.Or(strings.Join(slices.Sorted(slices.Values(have)), ", "), "none"))
}
