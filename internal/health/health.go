// Package health serves the liveness and readiness endpoints of rowgear's
// long-running programs (--health-addr), and the HTTP listener that the
// metrics endpoint (--metrics-addr) shares.
//
//	GET /healthz  200 "ok" while the process serves HTTP (liveness)
//	GET /readyz   200 "ok" when every check passes; 503 with one line per
//	              failing check, "name: reason" (readiness)
//
// Probe is the client side, for container healthchecks without curl
// (`binlogbridge probe URL`).
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rowgear/rowgear/gearman"
)

// Check returns nil when its part is ready, else why not.
type Check func(ctx context.Context) error

// Handler serves /healthz and /readyz; checks are named for /readyz's
// answer and run at most timeout each (default 2 s when 0).
func Handler(checks map[string]Check, timeout time.Duration) http.Handler {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var bad []string
		for _, n := range names {
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			err := checks[n](ctx)
			cancel()
			if err != nil {
				bad = append(bad, n+": "+strings.ReplaceAll(err.Error(), "\n", "; "))
			}
		}
		if len(bad) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, strings.Join(bad, "\n")+"\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}

// ListenAddr completes a listen address: a bare port ("9100" or ":9100")
// listens on loopback only, 127.0.0.1:9100; give a host (0.0.0.0:9100) to
// listen elsewhere, as in a container.
func ListenAddr(s string) (string, error) {
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		s = ":" + s
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("health: listen address %q: want [HOST]:PORT or PORT", s)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Server is an HTTP listener serving handlers until its context ends.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen opens addr (see ListenAddr) for h; Serve then serves it. Opening
// first reports a taken port at start-up, not later in a goroutine.
func Listen(addr string, h http.Handler) (*Server, error) {
	a, err := ListenAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", a)
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	return &Server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, ln: ln}, nil
}

// Addr is the address listened on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends, then shuts down within 2 s.
func (s *Server) Serve(ctx context.Context, log *slog.Logger) {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
	})
	defer stop()
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && log != nil {
		log.Error("http listener stopped", "addr", s.Addr(), "error", err)
	}
}

// Probe GETs url and returns nil for a 2xx answer, else an error with the
// answer's body: the healthcheck of a container with no curl.
func Probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", url, res.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// Conns follows a gearman worker's connections (gearman.WithConnObserver)
// for readiness: every server needs one connection up.
type Conns struct {
	mu sync.Mutex
	up map[string]int
}

// Observe is the gearman.WithConnObserver callback.
func (c *Conns) Observe(e gearman.ConnEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up == nil {
		c.up = map[string]int{}
	}
	if e.Up {
		c.up[e.Server]++
	} else {
		c.up[e.Server]--
	}
}

// Check fails naming each of servers with no connection up.
func (c *Conns) Check(servers []string) Check {
	return func(context.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		var down []string
		for _, s := range servers {
			if c.up[s] <= 0 {
				down = append(down, s)
			}
		}
		if len(down) > 0 {
			return fmt.Errorf("no connection to gearmand %s", strings.Join(down, ", "))
		}
		return nil
	}
}
