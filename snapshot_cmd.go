package rowgear

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/bridge"
)

// snapshotCmd is `bridge snapshot`: request snapshots, or list them.
func (a *App) snapshotCmd(c *common) *cobra.Command {
	var chunk int
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
acknowledged chunk. Without models: lists the requests. See package bridge.`,
		RunE: func(cmd *cobra.Command, models []string) error {
			return a.snapshot(cmd.Context(), c, cmd.OutOrStdout(), models, chunk, wait)
		},
	}
	cmd.Flags().IntVar(&chunk, "chunk", 1000, "rows read per chunk")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the requested snapshots end, printing their progress")
	return cmd
}

func (a *App) snapshot(ctx context.Context, c *common, out io.Writer, models []string, chunk int, wait bool) error {
	if chunk < 1 {
		return usageErr("--chunk %d: want 1 or more", chunk)
	}
	db, cfg, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	ids := map[int64]bool{}
	for _, m := range models {
		if cfg != nil {
			if _, ok := cfg.Models[m]; !ok {
				return usageErr("model %s is not in the models: section of %s", m, cfg.File)
			}
		}
		id, err := bridge.RequestSnapshot(ctx, db, m, chunk)
		if err != nil {
			return err
		}
		ids[id] = true
		fmt.Fprintf(out, "snapshot %d of %s requested\n", id, m)
	}
	for {
		all, err := bridge.Snapshots(ctx, db)
		if err != nil {
			return err
		}
		pending, failed := 0, 0
		for _, s := range all {
			if len(ids) > 0 && !ids[s.ID] {
				continue
			}
			line := fmt.Sprintf("%d\t%s\t%s\t%d/%d rows", s.ID, s.Model, s.Status, s.RowsDone, s.RowsEstimate)
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
