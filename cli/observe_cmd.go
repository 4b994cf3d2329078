package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rowgear/rowgear/bridge"
	"github.com/rowgear/rowgear/internal/health"
	"github.com/rowgear/rowgear/internal/observe"
)

// bridgeObsFlags are the bridge's observation flags: package observe's
// listeners, and the heartbeats behind lag, readiness and latency.
type bridgeObsFlags struct {
	observe.Flags
	heartbeat  time.Duration
	stallAfter time.Duration
}

func (f *bridgeObsFlags) register(fl *pflag.FlagSet) {
	f.Flags.Register(fl)
	fl.DurationVar(&f.heartbeat, "heartbeat", 250*time.Millisecond,
		"write a heartbeat row (rowgear_heartbeat) this often, for the lag, /readyz and commit→handler latency; 0: off")
	fl.DurationVar(&f.stallAfter, "stall-after", 30*time.Second,
		"/readyz fails when nothing was read for this long while the server's binlog is ahead")
}

// options adds the observation's bridge options to opts.
func (f *bridgeObsFlags) options(opts []bridge.Option) (*observe.Bridge, []bridge.Option, error) {
	if f.heartbeat < 0 || f.stallAfter <= 0 {
		return nil, nil, usageErr("--heartbeat %s, --stall-after %s: want ≥ 0 and > 0", f.heartbeat, f.stallAfter)
	}
	ob, err := observe.NewBridge()
	if err != nil {
		return nil, nil, err
	}
	return ob, append(opts, bridge.WithObserver(ob.Metrics), bridge.WithHeartbeat(f.heartbeat),
		bridge.WithStallAfter(f.stallAfter)), nil
}

// probeCmd is `probe URL`: a container healthcheck in an image with no curl.
func probeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "probe URL",
		Short: "exit 0 when URL answers 2xx (container healthchecks: probe http://127.0.0.1:8081/readyz)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("probe: want one URL")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			return health.Probe(ctx, args[0])
		},
	}
}
