package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pressly/goose/v3"
	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/migrations"
)

func (a *App) migrateCmd(c *common) *cobra.Command {
	var dir string
	var own bool
	cmd := &cobra.Command{
		Use:   "migrate up|down|status [flags]",
		Short: "apply rowgear's migrations, then the application's",
		Long: `Runs goose migrations against database.dsn of gearman.yml, or --dsn: first
rowgear's own (UDFs, failed jobs, binlog position; version table
rowgear_migrations), then the application's (version table ` + a.migTable + `).
  up      apply every pending migration of both sets
  down    roll back the application's latest (--rowgear: rowgear's latest)
  status  list both sets' migrations, applied or pending`,
		Args: oneOf("up", "down", "status"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.migrate(cmd.Context(), c, args[0], dir, own)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "run the application's migrations from this directory instead of the ones built in (say, after triggers generate)")
	cmd.Flags().BoolVar(&own, "rowgear", false, "down: roll back rowgear's own latest migration instead of the application's")
	return cmd
}

// sets returns rowgear's migrations and the application's (from dir when
// given). Without a trigger-sourced model in cfg, rowgear's UDF migration is
// left out: a binlog-only application needs no UDF on its server.
func (a *App) sets(cfg *config.Config, dir string) []migrations.Set {
	own := migrations.Rowgear()
	if cfg != nil && !hasTriggerModel(cfg) {
		own = own.WithoutUDF()
	}
	sets := []migrations.Set{own}
	app := migrations.Set{Name: "app", FS: a.migrations, Table: a.migTable}
	if dir != "" {
		app.FS = os.DirFS(dir)
	}
	if app.FS != nil {
		sets = append(sets, app)
	}
	return sets
}

func (a *App) migrate(ctx context.Context, c *common, verb, dir string, own bool) error {
	db, cfg, err := c.open(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", verb, err)
	}
	defer db.Close()
	sets := a.sets(cfg, dir)
	out := a.stdout
	switch verb {
	case "status":
		return migrations.Status(ctx, db, out, sets...)
	case "up":
		res, err := migrations.UpProgress(ctx, db, a.stderr, sets...)
		report(out, res)
		if err == nil && len(res) == 0 {
			fmt.Fprintln(out, "no migrations to run: every migration is applied")
		}
		return err
	}
	s := sets[len(sets)-1]
	if own {
		s = sets[0]
	} else if len(sets) == 1 {
		return usageErr("migrate down: the application has no migrations; --rowgear rolls back rowgear's own")
	}
	p, err := s.Provider(db)
	if err != nil {
		return err
	}
	r, err := p.Down(ctx)
	if r != nil {
		report(out, []*goose.MigrationResult{r})
	}
	if err != nil {
		return fmt.Errorf("migrate down (%s): %w", s.Name, err)
	}
	return nil
}

func hasTriggerModel(cfg *config.Config) bool {
	for _, m := range cfg.Models {
		if m.Source != "binlog" {
			return true
		}
	}
	return false
}

func report(w io.Writer, res []*goose.MigrationResult) {
	for _, r := range res {
		fmt.Fprintln(w, r)
	}
}
