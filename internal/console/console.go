// Package console is rowgear's operator console: a web UI served by the
// application's own binary (`app console`, `binlogbridge console`), with
// its pages, htmx and uPlot embedded (it works with no internet).
//
// It reads what exists and keeps no state of its own but a ring of chart
// samples: package status for the overview (the same report as
// `status --json`), the dead-letter table through retryguard.Store, the
// snapshot table of package bridge, the registry and gearman.yml for the
// models, and the Prometheus metrics of the worker and the bridge (their
// --metrics-addr, scraped every few seconds) for events/s, commit→handler
// latency and lag.
//
// Pages are read-only without a token. Every POST (retry, purge, request a
// snapshot) needs the token, in the X-Console-Token header or the form
// field token, compared in constant time, and must come from the console's
// own origin (net/http.CrossOriginProtection: Sec-Fetch-Site, Origin). With
// AllowedHosts set (the command sets it when listening on loopback), a
// request naming another Host is refused, so that a web page cannot reach
// the console by DNS rebinding. No page shows the database DSN.
package console

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/internal/status"
)

//go:embed templates static
var assets embed.FS

// ErrOptions: New was given options it cannot work with.
var ErrOptions = errors.New("console: options")

// Options configure a console.
type Options struct {
	Config *config.Config // required
	DB     *sql.DB        // the application's database (rowgear's tables); required
	// Registry is the application's (nil in binlogbridge): the Models page
	// shows which models have a Go type, and a snapshot of a model whose
	// rows no handler takes is refused.
	Registry *dispatch.Registry
	// Metrics are the sources of the charts: the worker's and the bridge's
	// metrics (Scrape of their --metrics-addr, or an in-process registry).
	Metrics []Source
	// Token allows the actions; empty: the console is read-only.
	Token string
	// Server is the gearman connection name (server: section) dead letters
	// are re-submitted to; default "default".
	Server string
	// AllowedHosts: when set, the Host header's name must be one of these.
	AllowedHosts []string
	// SampleEvery is the charts' resolution (default 5 s); Window how far
	// back they go (default 1 h).
	SampleEvery, Window time.Duration
	// Status are the overview's status options (lag threshold …).
	Status status.Options
	Logger *slog.Logger
}

// Console is the console's http.Handler.
type Console struct {
	opt     Options
	log     *slog.Logger
	mux     *http.ServeMux
	pages   map[string]*template.Template
	sampler *sampler
	static  http.Handler
	started time.Time

	statusMu  sync.Mutex
	statusAt  time.Time
	statusRep *status.Report

	rates sync.Map // snapshot id → rateObs, for the snapshots' rate and ETA
}

// New returns a console; it samples the metrics until ctx ends.
func New(ctx context.Context, opt Options) (*Console, error) {
	if opt.Config == nil || opt.DB == nil {
		return nil, fmt.Errorf("%w: Config and DB are required", ErrOptions)
	}
	opt.Server = cmp.Or(opt.Server, "default")
	if opt.SampleEvery <= 0 {
		opt.SampleEvery = 5 * time.Second
	}
	if opt.Window <= 0 {
		opt.Window = time.Hour
	}
	if opt.Window < opt.SampleEvery {
		return nil, fmt.Errorf("%w: window %s shorter than the sample interval %s", ErrOptions, opt.Window, opt.SampleEvery)
	}
	for i, s := range opt.Metrics {
		if s.Gatherer == nil {
			return nil, fmt.Errorf("%w: metrics source %d (%s) has no gatherer", ErrOptions, i, s.Name)
		}
	}
	c := &Console{opt: opt, log: cmp.Or(opt.Logger, slog.Default()), mux: http.NewServeMux(), pages: map[string]*template.Template{},
		sampler: newSampler(opt.Metrics, opt.SampleEvery, opt.Window), started: time.Now()}
	if err := c.parse(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(assets, "static")
	c.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	c.routes()
	go c.sampler.run(ctx)
	return c, nil
}

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return time.Since(t).Round(time.Second).String()
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"deref": func(p any) any {
		switch v := p.(type) {
		case *float64:
			if v == nil {
				return nil
			}
			return *v
		case *int64:
			if v == nil {
				return nil
			}
			return *v
		case *time.Time:
			if v == nil {
				return nil
			}
			return *v
		}
		return p
	},
}

func (c *Console) parse() error {
	entries, err := fs.ReadDir(assets, "templates")
	if err != nil {
		return err
	}
	base, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return fmt.Errorf("console: templates: %w", err)
	}
	for _, e := range entries {
		if e.Name() == "layout.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, "templates/"+e.Name())
		if err != nil {
			return fmt.Errorf("console: templates: %w", err)
		}
		c.pages[strings.TrimSuffix(e.Name(), ".html")] = t
	}
	return nil
}

func (c *Console) routes() {
	m := c.mux
	m.Handle("GET /static/", c.static)
	m.HandleFunc("GET /{$}", c.overview)
	m.HandleFunc("GET /overview/live", c.overviewLive)
	m.HandleFunc("GET /api/status", c.statusJSON)
	m.HandleFunc("GET /api/series", c.series)
	m.HandleFunc("GET /dead", c.deadList)
	m.HandleFunc("GET /dead/{id}", c.deadOne)
	m.HandleFunc("POST /dead/retry", c.action(c.deadRetry))
	m.HandleFunc("POST /dead/purge", c.action(c.deadPurge))
	m.HandleFunc("GET /snapshots", c.snapshots)
	m.HandleFunc("GET /snapshots/live", c.snapshotsLive)
	m.HandleFunc("POST /snapshots", c.action(c.snapshotRequest))
	m.HandleFunc("GET /models", c.models)
}

// ServeHTTP checks the Host, refuses cross-origin POSTs, and serves.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(c.opt.AllowedHosts) > 0 && !c.hostAllowed(r.Host) {
		http.Error(w, "console: host "+r.Host+" is not this console's", http.StatusMisdirectedRequest)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
	c.protect().ServeHTTP(w, r)
}

func (c *Console) protect() http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.log.Warn("console: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		c.refuse(w, r, http.StatusForbidden, "refused: a cross-origin request (this action must come from the console's own pages)")
	}))
	return p.Handler(c.mux)
}

func (c *Console) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	for _, a := range c.opt.AllowedHosts {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// action wraps a state-changing handler: the token must be given and
// right.
func (c *Console) action(h func(http.ResponseWriter, *http.Request) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if c.opt.Token == "" {
			c.refuse(w, r, http.StatusForbidden, "refused: this console is read-only (started without a token)")
			return
		}
		given := r.Header.Get("X-Console-Token")
		if given == "" {
			given = r.PostFormValue("token")
		}
		if !sameToken(given, c.opt.Token) {
			msg := "refused: a wrong token"
			if given == "" {
				msg = "refused: this action needs the console's token (enter it at the top right)"
			}
			c.log.Warn("console: action refused", "path", r.URL.Path, "reason", msg)
			c.refuse(w, r, http.StatusForbidden, msg)
			return
		}
		msg, err := h(w, r)
		if err != nil {
			c.log.Warn("console: action failed", "path", r.URL.Path, "error", err)
			c.result(w, http.StatusUnprocessableEntity, false, msg, err)
			return
		}
		c.log.Info("console: action", "path", r.URL.Path, "result", msg)
		w.Header().Set("HX-Trigger", "changed") // the tables showing what changed reload
		c.result(w, http.StatusOK, true, msg, nil)
	}
}

// sameToken compares in constant time, whatever the lengths.
func sameToken(given, want string) bool {
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (c *Console) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	c.result(w, code, false, msg, nil)
}

// result writes an action's outcome as the fragment htmx puts in #result.
func (c *Console) result(w http.ResponseWriter, code int, ok bool, msg string, err error) {
	if err != nil {
		msg = strings.TrimPrefix(strings.TrimSpace(msg+": "+err.Error()), ": ")
	}
	c.render(w, code, "result", "result", map[string]any{"OK": ok, "Message": msg})
}

// render executes template name of page into a buffer first, so that an
// error is a 500 and not half a page.
func (c *Console) render(w http.ResponseWriter, code int, page, name string, data any) {
	t := c.pages[page]
	var buf bytes.Buffer
	if t == nil {
		http.Error(w, "console: no page "+page, http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		c.log.Error("console: template", "page", page, "error", err)
		http.Error(w, "console: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// page is the data of every full page.
type page struct {
	Title    string
	Nav      string
	ReadOnly bool
	App      string
	Data     any
}

func (c *Console) full(w http.ResponseWriter, nav, title string, data any) {
	c.render(w, http.StatusOK, nav, "layout", page{Title: title, Nav: nav, ReadOnly: c.opt.Token == "",
		App: cmp.Or(c.opt.Config.Namespace, config.DefaultNamespace), Data: data})
}

// report returns the status report, collected at most once a second
// however many pages poll it.
func (c *Console) report(ctx context.Context) (*status.Report, error) {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	if c.statusRep != nil && time.Since(c.statusAt) < time.Second {
		return c.statusRep, nil
	}
	r, err := status.Collect(ctx, c.opt.Config, c.opt.DB, c.opt.Status)
	if err != nil {
		return nil, err
	}
	c.statusRep, c.statusAt = r, time.Now()
	return r, nil
}
