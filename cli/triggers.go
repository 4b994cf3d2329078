package cli

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/migrations"
	"github.com/rowgear/rowgear/triggers"
)

type triggerFlags struct {
	set   string
	out   string
	force bool
}

func (a *App) triggersCmd(c *common) *cobra.Command {
	var f triggerFlags
	cmd := &cobra.Command{
		Use:   "triggers generate|check [flags]",
		Short: "generate or check the row-event triggers of trigger-sourced models",
		Args:  oneOf("generate", "check"),
	}
	generate := &cobra.Command{
		Use:   "generate [flags]",
		Short: "write a goose migration that installs the triggers",
		Long: `Writes a goose migration (into --out, the application's migrations directory)
that installs the row-event triggers of the models of --config (all
trigger-sourced models when empty), built from gearman.yml's models section
and the live schema; its Down restores the rowgear triggers installed now. It
takes the next version of that directory, and refuses when the database has
already applied that version of the application's migrations (the directory
is behind the database). Writes nothing when the installed triggers already
match.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.triggers(cmd.Context(), c, "generate", &f) },
	}
	check := &cobra.Command{
		Use:   "check [flags]",
		Short: "compare the installed triggers with the config; exit non-zero naming each difference",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.triggers(cmd.Context(), c, "check", &f) },
	}
	for _, sub := range []*cobra.Command{generate, check} {
		sub.Flags().StringVar(&f.set, "config", "", "dbworker set (doctrine:/dbworker: section) whose models to use; empty: every trigger-sourced model")
	}
	generate.Flags().StringVar(&f.out, "out", a.migDir, "the application's goose migrations directory to write into")
	generate.Flags().BoolVar(&f.force, "force", false, "write a migration even when nothing drifted")
	cmd.AddCommand(generate, check)
	return cmd
}

func (a *App) triggers(ctx context.Context, c *common, sub string, f *triggerFlags) error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	specs, all, err := setSpecs(cfg, f.set)
	if err != nil {
		return fmt.Errorf("triggers %s: %w", sub, err)
	}
	db, _, err := c.open(ctx)
	if err != nil {
		return fmt.Errorf("triggers %s: %w", sub, err)
	}
	defer db.Close()
	out := a.stdout

	// Drift is judged against every trigger-sourced model, so a trigger of a
	// model outside the set is not "extra"; --config only narrows the report.
	drift, err := triggers.Check(ctx, db, all...)
	if err != nil {
		return fmt.Errorf("triggers %s: %w", sub, err)
	}
	drift = slices.DeleteFunc(drift, func(d triggers.Drift) bool {
		return d.Kind != "extra" && !slices.ContainsFunc(specs, func(s triggers.Spec) bool { return s.Table == d.Table })
	})

	if sub == "check" {
		for _, d := range drift {
			fmt.Fprintln(out, d)
		}
		if len(drift) > 0 {
			return fmt.Errorf("triggers check: %d trigger(s) differ from %s; run `%s triggers generate`, then `%s migrate up`",
				len(drift), cfg.File, a.name, a.name)
		}
		fmt.Fprintf(out, "%d model(s): installed triggers match %s\n", len(specs), cfg.File)
		return nil
	}

	if len(drift) == 0 && !f.force {
		fmt.Fprintln(out, "installed triggers match the config; nothing written (--force writes anyway)")
		return nil
	}
	if f.out == "" {
		return usageErr("triggers generate: --out: the application's migrations directory")
	}
	gen, previous, err := planTriggers(ctx, db, specs, drift)
	if err != nil {
		return fmt.Errorf("triggers generate: %w", err)
	}
	name := "rowgear_triggers"
	if f.set != "" {
		name += "_" + f.set
	}
	path, version, err := triggers.NextMigration(f.out, name, time.Now())
	if err != nil {
		return fmt.Errorf("triggers generate: %w", err)
	}
	// A version the database already applied would be skipped by migrate up.
	applied, err := migrations.Set{Name: "app", Table: a.migTable}.Applied(ctx, db)
	if err != nil {
		return fmt.Errorf("triggers generate: reading the applied version (%s): %w", a.migTable, err)
	}
	if applied >= version {
		return fmt.Errorf("triggers generate: %s would be version %d, but the database has applied the application's migrations up to %d (%s): "+
			"%s is not the migrations directory this database was migrated from", path, version, applied, a.migTable, f.out)
	}
	if err := os.WriteFile(path, triggers.MigrationReplacing(gen, previous), 0o644); err != nil {
		return fmt.Errorf("triggers generate: %w", err)
	}
	for _, d := range drift {
		fmt.Fprintln(out, d)
	}
	fmt.Fprintf(out, "wrote %s (%d trigger(s)); apply it with `%s migrate --dir=%s up`, or rebuild %s (which embeds its migrations) and run `%s migrate up`\n",
		path, len(gen), a.name, f.out, a.name, a.name)
	return nil
}

// planTriggers returns the triggers to generate and those they replace (the
// installed rowgear triggers of the models' tables, and extra ones, say on a
// table that moved to the binlog source), which the migration's Down
// restores.
func planTriggers(ctx context.Context, db *sql.DB, specs []triggers.Spec, drift []triggers.Drift) (gen, previous []triggers.Trigger, err error) {
	installed := map[string][]triggers.Trigger{} // by schema
	installedIn := func(schema string) ([]triggers.Trigger, error) {
		if trs, ok := installed[schema]; ok {
			return trs, nil
		}
		trs, err := triggers.Installed(ctx, db, schema)
		installed[schema] = trs
		return trs, err
	}
	for _, s := range specs {
		t, err := sqlschema.LoadTable(ctx, db, s.Schema, s.Table)
		if err != nil {
			return nil, nil, fmt.Errorf("model %s: %w", s.Model, err)
		}
		trs, err := triggers.Generate(s, t)
		if err != nil {
			return nil, nil, err
		}
		gen = append(gen, trs...)
		have, err := installedIn(t.Schema)
		if err != nil {
			return nil, nil, err
		}
		for _, tr := range have {
			if tr.Table == t.Name {
				previous = append(previous, tr)
			}
		}
	}
	for _, d := range drift {
		if d.Kind != "extra" {
			continue
		}
		have, err := installedIn(d.Schema)
		if err != nil {
			return nil, nil, err
		}
		for _, tr := range have {
			if tr.Name == d.Trigger && !slices.ContainsFunc(previous, func(p triggers.Trigger) bool { return p.Name == tr.Name }) {
				previous = append(previous, tr)
			}
		}
	}
	return gen, previous, nil
}

// setSpecs returns the specs of a dbworker set's trigger-sourced models
// (every trigger-sourced model when set is empty) and those of every model.
func setSpecs(cfg *config.Config, set string) (specs, all []triggers.Spec, err error) {
	if all, err = triggers.Specs(cfg); err != nil {
		return nil, nil, err
	}
	if set == "" {
		return all, all, nil
	}
	models, err := cfg.DBWorkerSet(set)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range all {
		if _, ok := models[s.Model]; ok {
			specs = append(specs, s)
		}
	}
	for name := range models {
		if _, ok := cfg.Models[name]; !ok {
			return nil, nil, fmt.Errorf("set %s: model %s is not in the models section", set, name)
		}
	}
	return specs, all, nil
}
