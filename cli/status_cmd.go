package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/internal/status"
)

// statusCmd is `status`: one screen for an operator (package status).
func (a *App) statusCmd(c *common) *cobra.Command {
	var asJSON bool
	var lag time.Duration
	var all bool
	cmd := &cobra.Command{
		Use:   "status [--json] [--lag-threshold D] [flags]",
		Short: "is it keeping up, is anything stuck: gearmand queues, bridge lag, dead letters, UDF failures, trigger drift",
		Long: `One screen for an operator: every gearmand of the config and of the UDF's
list, up or down, with its functions (queued, running, workers), binlogbridge's saved position and lag, dead letters by
function, the UDF's failure count, trigger drift. Exits 1 naming each
problem (dead letters, drift, a bridge lagging beyond --lag-threshold, an
unreachable gearmand or database): a cron or CI probe.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			dsn, err := c.dsnOf(cfg)
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			db, err := dispatch.OpenDB(dsn) // not pinged: an unreachable database is a problem of the report
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			defer db.Close()
			r, err := status.Collect(cmd.Context(), cfg, db, status.Options{LagThreshold: lag, AllFunctions: all})
			if err != nil {
				return err
			}
			if asJSON {
				err = r.WriteJSON(a.stdout)
			} else {
				err = r.WriteText(a.stdout)
			}
			if err != nil {
				return err
			}
			if !r.OK() {
				return fmt.Errorf("%w: %d problem(s)", status.ErrAttention, len(r.Problems))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "write the report as JSON")
	cmd.Flags().DurationVar(&lag, "lag-threshold", time.Minute, "a bridge lag beyond this is a problem")
	cmd.Flags().BoolVar(&all, "all-functions", false, "list every function gearmand knows, not only this config's (namespace and worker: sets)")
	return cmd
}
