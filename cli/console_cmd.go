package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/internal/console"
	"github.com/rowgear/rowgear/internal/status"
)

// consoleCmd is `console`: the operator's web console (internal/console).
func (a *App) consoleCmd(c *common) *cobra.Command {
	var addr, tokenFile, server string
	var metricsURLs []string
	var lag, every time.Duration
	cmd := &cobra.Command{
		Use:   "console [--addr HOST:PORT] [--metrics URL]… [--token-file F] [flags]",
		Short: "the operator's web console: status, dead letters, snapshots, models, live charts",
		Long: `Serves a web console from this binary (everything embedded, no internet
needed): the overview of status with live charts of events/s, commit→handler
latency and lag (read from the worker's and the bridge's --metrics-addr,
given as --metrics), dead letters with retry and purge, snapshots, models.
Listens on 127.0.0.1 unless --addr names another address.
Read-only unless a token is given, from --token-file or the environment's
ROWGEAR_CONSOLE_TOKEN (never on the command line); every action then needs
it and must come from the console's own pages.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.console(cmd.Context(), c, addr, tokenFile, server, metricsURLs, lag, every)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:4780", "listen address; a bare PORT listens on 127.0.0.1")
	fl.StringVar(&tokenFile, "token-file", "", "file holding the token the actions need (default: env ROWGEAR_CONSOLE_TOKEN; neither: read-only)")
	fl.StringArrayVar(&metricsURLs, "metrics", splitList(os.Getenv("ROWGEAR_CONSOLE_METRICS")),
		"a worker's or bridge's metrics, HOST:PORT of its --metrics-addr or a URL; repeat for each (env ROWGEAR_CONSOLE_METRICS, comma-separated)")
	fl.StringVar(&server, "server", "default", "gearman connection name from the server: section, for retried dead letters")
	fl.DurationVar(&lag, "lag-threshold", time.Minute, "a bridge lag beyond this is a problem")
	fl.DurationVar(&every, "sample-every", 5*time.Second, "the charts' resolution (they keep the last hour)")
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (a *App) console(ctx context.Context, c *common, addr, tokenFile, server string, metricsURLs []string, lag, every time.Duration) error {
	if !strings.Contains(addr, ":") {
		addr = "127.0.0.1:" + addr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErr("--addr %q: %v", addr, err)
	}
	token := os.Getenv("ROWGEAR_CONSOLE_TOKEN")
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("console: --token-file: %w", err)
		}
		token = strings.TrimRight(string(b), "\r\n")
		if token == "" {
			return fmt.Errorf("console: --token-file %s is empty", tokenFile)
		}
	}
	db, cfg, err := c.open(ctx)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer db.Close()
	if cfg == nil {
		return errors.New("console: needs gearman.yml (--file)")
	}
	var reg *dispatch.Registry
	if len(a.register) > 0 {
		if reg, err = a.registry(a.log()); err != nil {
			return err
		}
	}
	var sources []console.Source
	for _, u := range metricsURLs {
		if !strings.Contains(u, "://") {
			u = "http://" + u + "/metrics"
		}
		name := u
		if pu, err := url.Parse(u); err == nil {
			name = pu.Redacted() // never a password on the page
		} else {
			return usageErr("--metrics %q: %v", u, err)
		}
		sources = append(sources, console.Source{Name: name, Gatherer: console.Scrape(u)})
	}
	opt := console.Options{Config: cfg, DB: db, Registry: reg, Metrics: sources, Token: token, Server: server,
		SampleEvery: every, Status: status.Options{LagThreshold: lag}, Logger: a.log()}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		// Only names of this host: a web page cannot reach the console
		// through a name of its own that resolves here (DNS rebinding).
		opt.AllowedHosts = []string{"127.0.0.1", "localhost", "::1", host}
	}
	h, err := console.New(ctx, opt)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	mode := "read-only (no token)"
	if token != "" {
		mode = "actions need the token"
	}
	a.log().Info("console listening", "url", "http://"+ln.Addr().String()+"/", "mode", mode, "metrics", len(sources))
	fmt.Fprintf(a.stdout, "console at http://%s/ (%s)\n", ln.Addr(), cmp.Or(mode, ""))
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
