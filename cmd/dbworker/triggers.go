package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/triggers"
)

const triggersUsage = `Usage: dbworker triggers generate|check [flags]

  generate  write a goose migration (into --out) that installs the row-event
            triggers of the models of --config (all trigger-sourced models when
            empty), built from gearman.yml's models section and the live
            schema; its Down restores the rowgear triggers installed now.
            Writes nothing when the installed triggers already match.
  check     compare the installed rowgear_* triggers with what generate would
            make; exits non-zero naming each difference.
`

func triggersCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "generate" && args[0] != "check") {
		fmt.Fprint(stdout, triggersUsage+"\nFlags: dbworker triggers generate -h\n")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return flag.ErrHelp
		}
		return errors.New("triggers: want generate or check")
	}
	sub := args[0]
	fs := flag.NewFlagSet("dbworker triggers "+sub, flag.ContinueOnError)
	fs.SetOutput(stdout)
	var cf config.Flags
	cf.Register(fs)
	set := fs.String("config", "", "dbworker set (doctrine:/dbworker: section) whose models to use; empty: every trigger-sourced model")
	dsn := fs.String("dsn", "", "database DSN; default: database.dsn of gearman.yml")
	out := fs.String("out", "migrations", "generate: the goose migrations directory to write into")
	force := fs.Bool("force", false, "generate: write a migration even when nothing drifted")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), triggersUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("triggers %s: unexpected argument %q", sub, fs.Arg(0))
	}
	cfg, err := cf.Load()
	if err != nil {
		return err
	}
	if *dsn == "" {
		*dsn = cfg.Database.DSN
	}
	specs, all, err := setSpecs(cfg, *set)
	if err != nil {
		return fmt.Errorf("triggers %s: %w", sub, err)
	}
	db, err := openDSN(*dsn, &cf)
	if err != nil {
		return fmt.Errorf("triggers %s: %w", sub, err)
	}
	defer db.Close()

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
			fmt.Fprintln(stdout, d)
		}
		if len(drift) > 0 {
			return fmt.Errorf("triggers check: %d trigger(s) differ from %s; run dbworker triggers generate, then migrate up", len(drift), cfg.File)
		}
		fmt.Fprintf(stdout, "%d model(s): installed triggers match %s\n", len(specs), cfg.File)
		return nil
	}

	if len(drift) == 0 && !*force {
		fmt.Fprintln(stdout, "installed triggers match the config; nothing written (--force writes anyway)")
		return nil
	}
	// previous: what the migration replaces, restored by its Down: the
	// installed rowgear triggers of the models' tables, and extra ones
	// (say, on a table that moved to the binlog source), which Up drops.
	var gen, previous []triggers.Trigger
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
		t, err := triggers.LoadTable(ctx, db, s.Schema, s.Table)
		if err != nil {
			return fmt.Errorf("triggers generate: model %s: %w", s.Model, err)
		}
		trs, err := triggers.Generate(s, t)
		if err != nil {
			return fmt.Errorf("triggers generate: %w", err)
		}
		gen = append(gen, trs...)
		have, err := installedIn(t.Schema)
		if err != nil {
			return fmt.Errorf("triggers generate: %w", err)
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
			return fmt.Errorf("triggers generate: %w", err)
		}
		for _, tr := range have {
			if tr.Name == d.Trigger && !slices.ContainsFunc(previous, func(p triggers.Trigger) bool { return p.Name == tr.Name }) {
				previous = append(previous, tr)
			}
		}
	}
	name := "rowgear_triggers"
	if *set != "" {
		name += "_" + *set
	}
	path, err := triggers.NextMigrationPath(*out, name, time.Now())
	if err != nil {
		return fmt.Errorf("triggers generate: %w", err)
	}
	if err := os.WriteFile(path, triggers.MigrationReplacing(gen, previous), 0o644); err != nil {
		return fmt.Errorf("triggers generate: %w", err)
	}
	for _, d := range drift {
		fmt.Fprintln(stdout, d)
	}
	fmt.Fprintf(stdout, "wrote %s (%d trigger(s)); apply it with dbworker migrate --dir=%s up (or rebuild dbworker, which embeds migrations/)\n",
		path, len(gen), *out)
	return nil
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
