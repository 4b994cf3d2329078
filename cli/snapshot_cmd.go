package cli

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/config"
)

// snapshotCmd is `bridge snapshot`: request snapshots, or list them.
func (a *App) snapshotCmd(c *common) *cobra.Command {
	var chunk, rate int
	var wait bool
	cmd := &cobra.Command{
		Use:   "snapshot [Model…]",
		Short: "request snapshots (backfills) of models, or list the requests and their progress",
		Long: `With models: asks the running bridge to publish every current row of each
model once, as jobs <namespace>.<Model>.snapshot (op snapshot), read in
primary-key chunks while live changes go on; a row changed while its chunk
is read is published by its change instead. The request is a row in
rowgear_snapshots (created by ` + "`migrate up`" + `), which an application may also
insert. The bridge resumes an interrupted snapshot from its last
acknowledged chunk. --rate paces it: unpaced, a big snapshot takes all the
workers' and the database's spare capacity, and the application's own
statements wait for the CPU meanwhile. Without models: lists the requests.
See package bridge.`,
		RunE: func(cmd *cobra.Command, models []string) error {
			return a.snapshot(cmd.Context(), c, cmd.OutOrStdout(), models, chunk, rate, wait)
		},
	}
	cmd.Flags().IntVar(&chunk, "chunk", 1000, "rows read per chunk (a paced one: at most a quarter of --rate)")
	cmd.Flags().IntVar(&rate, "rate", 0, "rows read per second at most; 0: unpaced")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the requested snapshots end, printing their progress")
	return cmd
}

func (a *App) snapshot(ctx context.Context, c *common, out io.Writer, models []string, chunk, rate int, wait bool) error {
	if chunk < 1 {
		return usageErr("--chunk %d: want 1 or more", chunk)
	}
	if rate < 0 {
		return usageErr("--rate %d: want 0 (unpaced) or more", rate)
	}
	db, cfg, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	ids, err := a.requestSnapshots(ctx, db, cfg, out, models, chunk, rate)
	if err != nil {
		return err
	}
	for {
		all, err := bridge.Snapshots(ctx, db)
		if err != nil {
			return err
		}
		pending, failed := printSnapshots(out, all, ids)
		if !wait || len(ids) == 0 || pending == 0 {
			if wait && failed > 0 {
				return fmt.Errorf("%d snapshot(s) failed", failed)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// requestSnapshots requests a snapshot of each of models and returns the
// requests' ids. An application binary knows its models' Go types: it
// refuses a snapshot whose rows no handler would take (the bare
// binlogbridge cannot tell).
func (a *App) requestSnapshots(ctx context.Context, db *sql.DB, cfg *config.Config, out io.Writer, models []string, chunk, rate int) (map[int64]bool, error) {
	reg, err := a.registry(a.log())
	if err != nil {
		return nil, err
	}
	ids := map[int64]bool{}
	for _, m := range models {
		if cfg != nil {
			if _, ok := cfg.Models[m]; !ok {
				return nil, usageErr("model %s is not in the models: section of %s", m, cfg.File)
			}
			if len(reg.Models()) > 0 {
				if _, err := reg.SnapshotHandler(cfg, m); err != nil {
					return nil, usageErr("snapshot of %s: %v", m, err)
				}
			}
		}
		id, err := bridge.RequestSnapshot(ctx, db, m, chunk, bridge.SnapshotRate(rate))
		if err != nil {
			return nil, err
		}
		ids[id] = true
		fmt.Fprintf(out, "snapshot %d of %s requested\n", id, m)
	}
	return ids, nil
}

// printSnapshots prints a line for each of all (only those in ids unless
// ids is empty) and counts those still pending and those failed.
func printSnapshots(out io.Writer, all []bridge.SnapshotProgress, ids map[int64]bool) (pending, failed int) {
	for _, s := range all {
		if len(ids) > 0 && !ids[s.ID] {
			continue
		}
		line := fmt.Sprintf("%d\t%s\t%s\t%d/%d rows", s.ID, s.Model, s.Status, s.RowsDone, s.RowsEstimate)
		if s.RowsPerSecond > 0 {
			line += fmt.Sprintf("\t≤ %d rows/s", s.RowsPerSecond)
		}
		if s.Error != "" {
			line += "\t" + s.Error
		}
		fmt.Fprintln(out, line)
		switch s.Status {
		case "requested", "running":
			pending++
		case "failed":
			failed++
		}
	}
	return pending, failed
}
