package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/events"
)

type bridgeFlags struct {
	start       string
	verbose     bool
	concurrency int
	batch       int
	allModels   bool
	ha          bool // --ha, or ROWGEAR_BINLOG_HA: replaces binlog.ha when haSet
	haSet       bool
	obs         bridgeObsFlags // metrics, health, heartbeats (observe_cmd.go)
}

// bridgeCmd is binlogbridge: the `bridge` command of an application, and the
// root command of the binlogbridge binary, which needs no application code.
func (a *App) bridgeCmd(c *common, use string) *cobra.Command {
	var f bridgeFlags
	cmd := &cobra.Command{
		Use:   use + " [flags]",
		Short: "publish the committed row changes of binlog-sourced models as gearman jobs",
		Long: `Publishes the committed row changes of the models with source: binlog (all
models with --all-models) as gearman jobs <namespace>.<Model>.<op>. The
position is saved (binlog.position: a table in the source database, created
by ` + "`migrate up`" + `, or file:PATH) only once gearmand has acknowledged every job
before it; a restart resumes from it. SIGINT/SIGTERM: stop reading, flush,
save, exit 0. See package bridge.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.haFromEnv(cmd.Flags().Changed("ha")); err != nil {
				return err
			}
			return a.bridge(cmd.Context(), c, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.start, "start", "current", "first start only, when no position is saved: current (end of the binlog), FILE:POS or gtid:SET")
	fl.BoolVar(&f.verbose, "verbose", false, "log every published event (and the binlog reader's own info lines)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "gearman connections submitting in parallel (default: binlog.concurrency, 8)")
	fl.IntVar(&f.batch, "batch", 0, "most consecutive events of one model per job, <Model>.batch (default: binlog.batch, 1)")
	fl.BoolVar(&f.allModels, "all-models", false, "publish every model in models:, whatever its source")
	fl.BoolVar(&f.ha, "ha", false, "high availability: publish only while holding the group's lease, stand by otherwise (default: binlog.ha; env ROWGEAR_BINLOG_HA)")
	f.obs.register(fl)
	cmd.AddCommand(a.snapshotCmd(c))
	return cmd
}

// haFromEnv settles --ha: the flag when given, else ROWGEAR_BINLOG_HA when
// set, else binlog.ha of the configuration (haSet false).
func (f *bridgeFlags) haFromEnv(flagGiven bool) error {
	if flagGiven {
		f.haSet = true
		return nil
	}
	v := os.Getenv("ROWGEAR_BINLOG_HA")
	if v == "" {
		return nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return usageErr("ROWGEAR_BINLOG_HA=%q: want true or false", v)
	}
	f.ha, f.haSet = on, true
	return nil
}

func (a *App) bridge(ctx context.Context, c *common, f *bridgeFlags) error {
	startPos, err := bridge.ParseStart(f.start)
	if err != nil {
		return usageErr("--start: %v", err)
	}
	if f.concurrency < 0 {
		return usageErr("--concurrency %d: want 1 or more", f.concurrency)
	}
	if f.batch < 0 || f.batch > events.MaxBatch {
		return usageErr("--batch %d: want 1 to %d", f.batch, events.MaxBatch)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	if f.haSet {
		cfg.Binlog.HA = f.ha
	}
	log := a.log()
	opts := []bridge.Option{bridge.WithLogger(log), bridge.WithVerbose(f.verbose),
		bridge.WithAllModels(f.allModels), bridge.WithStart(startPos)}
	if c.dsn != "" {
		opts = append(opts, bridge.WithDSN(c.dsn))
	}
	if f.concurrency > 0 {
		opts = append(opts, bridge.WithConcurrency(f.concurrency))
	}
	if f.batch > 0 {
		opts = append(opts, bridge.WithBatch(f.batch))
	}
	ob, opts, err := f.obs.options(opts)
	if err != nil {
		return err
	}
	b, err := bridge.New(ctx, cfg, opts...)
	if err != nil {
		return fmt.Errorf("starting the bridge: %w", err)
	}
	defer b.Close()
	if err := ob.Start(ctx, f.obs.Flags, b, log); err != nil {
		return err
	}
	if err := b.Run(ctx); err != nil {
		return fmt.Errorf("binlog bridge: %w", err)
	}
	return nil
}

// BridgeMain is the main of the binlogbridge binary: the bridge command
// alone, which needs no application code (only gearman.yml's models
// section). It exits like Main.
func BridgeMain() {
	a, err := New(WithName("binlogbridge"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var c common
	root := a.bridgeCmd(&c, a.name)
	root.PersistentFlags().StringVar(&c.dsn, "dsn", "", "source database DSN, user:pass@tcp(host:port)/db (default: database.dsn of gearman.yml)")
	c.cf.Register(root.PersistentFlags()) // persistent: `binlogbridge snapshot` takes them too
	root.AddCommand(probeCmd(), a.consoleCmd(&c))
	a.setup(root)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root.SetArgs(os.Args[1:])
	code := a.exitCode(root.ExecuteContext(ctx))
	stop()
	os.Exit(code)
}
