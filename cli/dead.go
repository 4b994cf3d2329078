package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/internal/funcname"
	"github.com/rowgear/rowgear/internal/retryguard"
)

func (a *App) deadCmd(c *common) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dead list|retry|purge [flags]",
		Short: "the dead-letter table: jobs that failed their last attempt",
		Args:  oneOf("list", "retry", "purge"),
	}
	list := &cobra.Command{
		Use:   "list [flags]",
		Short: "list dead letters: function, event id, model, attempts, age, last error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), c, func(ctx context.Context, s *retryguard.Store) error { return a.deadList(ctx, s) })
		},
	}
	var all bool
	var server string
	retryCmd := &cobra.Command{
		Use:   "retry ID...|--all [flags]",
		Short: "re-submit dead letters with a fresh set of attempts; each row is deleted once gearmand acknowledged its job",
		RunE: func(cmd *cobra.Command, args []string) error {
			var ids []int64
			for _, s := range args {
				id, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return usageErr("dead retry: %q is not an id", s)
				}
				ids = append(ids, id)
			}
			if len(ids) == 0 && !all {
				return usageErr("dead retry: name the ids, or --all")
			}
			if len(ids) > 0 && all {
				return usageErr("dead retry: ids or --all, not both")
			}
			return a.withStore(cmd.Context(), c, func(ctx context.Context, s *retryguard.Store) error {
				return a.deadRetry(ctx, c, s, server, ids)
			})
		},
	}
	retryCmd.Flags().BoolVar(&all, "all", false, "every dead letter")
	retryCmd.Flags().StringVar(&server, "server", "default", "gearman connection name from the server: section")
	var olderThan time.Duration
	purge := &cobra.Command{
		Use:   "purge --older-than=D [flags]",
		Short: "delete dead letters older than D (e.g. 720h)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan <= 0 {
				return usageErr("dead purge: --older-than is required (e.g. 720h)")
			}
			return a.withStore(cmd.Context(), c, func(ctx context.Context, s *retryguard.Store) error {
				n, err := s.Purge(ctx, olderThan)
				fmt.Fprintf(a.stdout, "purged %d\n", n)
				return err
			})
		},
	}
	purge.Flags().DurationVar(&olderThan, "older-than", 0, "minimum age")
	cmd.AddCommand(list, retryCmd, purge)
	return cmd
}

// withStore opens the database and runs fn on its failed-jobs table.
func (a *App) withStore(ctx context.Context, c *common, fn func(context.Context, *retryguard.Store) error) error {
	db, _, err := c.open(ctx)
	if err != nil {
		return fmt.Errorf("dead: %w", err)
	}
	defer db.Close()
	if err := a.checkMigrated(ctx, db, 1); err != nil {
		return fmt.Errorf("dead: %w", err)
	}
	return fn(ctx, retryguard.NewStore(db))
}

func (a *App) deadList(ctx context.Context, store *retryguard.Store) error {
	es, err := store.List(ctx, "dead")
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFUNCTION\tEVENT ID\tMODEL\tATTEMPTS\tAGE\tLAST ERROR")
	for _, e := range es {
		_, model, _, err := funcname.Parse(e.Function)
		if err != nil {
			model = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, e.Function, e.Key, model, e.Attempts,
			time.Since(e.UpdatedAt).Round(time.Second), e.LastError())
	}
	return tw.Flush()
}

func (a *App) deadRetry(ctx context.Context, c *common, store *retryguard.Store, server string, ids []int64) error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	servers, err := cfg.ServerAddrs(server)
	if err != nil {
		return err
	}
	gc := gearman.NewClient(servers)
	defer gc.Close()
	n, err := retryguard.NewGuard(store, gc, cfg.RetryFor).ReplayProgress(ctx, a.stderr, ids...)
	fmt.Fprintf(a.stdout, "re-submitted %d\n", n)
	return err
}
