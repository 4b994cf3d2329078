package cli

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/internal/wiring"
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

// openDB opens dsn and checks that it connects.
func openDB(ctx context.Context, dsn string) (*sql.DB, error) { return wiring.Open(ctx, dsn) }

// checkMigrated tells the user to run `migrate up` when rowgear's own
// migrations up to version need (the tables a command uses) are not applied.
func (a *App) checkMigrated(ctx context.Context, db *sql.DB, need int64) error {
	pending, err := wiring.Pending(ctx, db, need)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w (pending: %v): run `%s migrate up`", rowgear.ErrNotMigrated, pending, a.name)
	}
	return nil
}

// Config loads the gearman.yml that the running command's --file and --env
// name, with --dsn (when given) as its database.dsn: for the application's
// own commands (WithCommand).
func Config(cmd *cobra.Command) (*config.Config, error) {
	fl := cmd.Flags()
	file, env, dsn := fl.Lookup("file"), fl.Lookup("env"), fl.Lookup("dsn")
	if file == nil || env == nil {
		return nil, fmt.Errorf("%s: no --file/--env flags: not a command of a cli.App", cmd.CommandPath())
	}
	cfg, err := config.Load(file.Value.String(), env.Value.String())
	if err != nil {
		return nil, err
	}
	if dsn != nil && dsn.Value.String() != "" {
		if cfg.Database.DSN, err = cfg.Database.WithPassword(dsn.Value.String()); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}
