package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pressly/goose/v3"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/migrations"
)

const migrateUsage = `Usage: dbworker migrate [flags] up|down|status

Runs rowgear's embedded goose migrations (example schema, gearman UDFs,
generated triggers) against database.dsn of gearman.yml, or --dsn.
  up      apply every pending migration
  down    roll back the latest one
  status  list migrations, applied or pending

Flags:
`

func migrateCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dbworker migrate", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var cf config.Flags
	cf.Register(fs)
	dsn := fs.String("dsn", "", "database DSN (user:pass@tcp(host:port)/db); default: database.dsn of gearman.yml")
	dir := fs.String("dir", "", "run the migrations of this directory (say, after triggers generate) instead of the built-in ones")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), migrateUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("migrate: want one of up, down, status")
	}
	db, err := openDSN(*dsn, &cf)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer db.Close()

	p, err := migrations.NewProvider(db)
	if *dir != "" {
		p, err = migrations.NewProviderFS(db, os.DirFS(*dir))
	}
	if err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "status":
		return migrations.StatusOf(ctx, p, stdout)
	case "up", "down":
	default:
		fs.Usage()
		return fmt.Errorf("migrate: unknown command %q: want up, down or status", fs.Arg(0))
	}
	var results []*goose.MigrationResult
	if fs.Arg(0) == "up" {
		results, err = p.Up(ctx)
	} else {
		var r *goose.MigrationResult
		r, err = p.Down(ctx)
		if r != nil {
			results = append(results, r)
		}
	}
	if errors.Is(err, goose.ErrNoNextVersion) || err == nil && len(results) == 0 {
		fmt.Fprintln(stdout, "no migrations to run")
		return nil
	}
	for _, r := range results {
		fmt.Fprintln(stdout, r)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", fs.Arg(0), err)
	}
	return nil
}

// openDSN opens dsn, or database.dsn of the config when dsn is empty.
func openDSN(dsn string, cf *config.Flags) (*sql.DB, error) {
	if dsn == "" {
		cfg, err := cf.Load()
		if err != nil {
			return nil, err
		}
		if dsn = cfg.Database.DSN; dsn == "" {
			return nil, fmt.Errorf("%s has no database.dsn; pass --dsn", cfg.File)
		}
	}
	db, err := dispatch.OpenDB(dsn)
	if err != nil {
		return nil, err
	}
	return db, nil
}
