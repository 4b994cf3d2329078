package rowgear

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/internal/observe"
)

// WorkerOption configures a Worker. Options check their arguments: NewWorker
// reports the first bad one.
type WorkerOption interface{ apply(*settings) error }

type optionFunc func(*settings) error

func (f optionFunc) apply(s *settings) error { return f(s) }

// settings are what the options set; the zero values are the defaults but
// for those defaults() fills in.
type settings struct {
	set         string
	server      string
	dsn         string
	db          *sql.DB
	log         *slog.Logger
	name        string
	concurrency int
	maxJobs     int
	idle        time.Duration
	jobTimeout  time.Duration
	stateDir    string
	noRetry     bool
	verbose     bool
	mws         []dispatch.Middleware
	listen      observe.Flags
	drain       bool
	model       string
	methods     []string
	hooks       Hooks
}

func defaults() settings {
	return settings{
		server:      "default",
		concurrency: 1,
		stateDir:    cmp.Or(os.Getenv("ROWGEAR_STATE_DIR"), filepath.Join(os.TempDir(), "rowgear-dbworker")),
	}
}

// WithSet runs the worker set name of gearman.yml: a worker: set (plain
// functions, no database) or a doctrine:/dbworker: set (its models' row
// events, record and table jobs). Default: every model with every event and
// job.
func WithSet(name string) WorkerOption {
	return optionFunc(func(s *settings) error {
		if name == "" {
			return errors.New("WithSet: empty set name")
		}
		s.set = name
		return nil
	})
}

// WithServer names the gearman connection of gearman.yml's server: section
// (default "default").
func WithServer(name string) WorkerOption {
	return optionFunc(func(s *settings) error {
		if name == "" {
			return errors.New("WithServer: empty connection name")
		}
		s.server = name
		return nil
	})
}

// WithDSN opens the application's database at dsn instead of database.dsn of
// gearman.yml. The worker opens its pools itself and closes them when it
// stops.
func WithDSN(dsn string) WorkerOption {
	return optionFunc(func(s *settings) error {
		if dsn == "" {
			return errors.New("WithDSN: empty DSN")
		}
		s.dsn = dsn
		return nil
	})
}

// WithDB runs the worker on the application's own pool, which it does not
// close; database.dsn is then not used. Without WithDSN the ordering runs on
// db too; with it, on a pool of its own from ordering.OpenDB, which saves
// round trips (see package ordering).
func WithDB(db *sql.DB) WorkerOption {
	return optionFunc(func(s *settings) error {
		if db == nil {
			return errors.New("WithDB: nil database")
		}
		s.db = db
		return nil
	})
}

// WithLogger logs through l (default slog.Default()); the registry's
// handlers keep the logger the application gave it.
func WithLogger(l *slog.Logger) WorkerOption {
	return optionFunc(func(s *settings) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		s.log = l
		return nil
	})
}

// WithName is the worker's gearman client id and the program named in
// hints ("run `NAME migrate up`").
func WithName(name string) WorkerOption {
	return optionFunc(func(s *settings) error {
		if name == "" {
			return errors.New("WithName: empty name")
		}
		s.name = name
		return nil
	})
}

// WithConcurrency runs n jobs at once (default 1).
func WithConcurrency(n int) WorkerOption {
	return optionFunc(func(s *settings) error {
		if n < 1 {
			return fmt.Errorf("WithConcurrency(%d): want 1 or more", n)
		}
		s.concurrency = n
		return nil
	})
}

// WithMaxJobs makes Run return after n jobs (default 0: never); a process
// manager then starts a fresh worker.
func WithMaxJobs(n int) WorkerOption {
	return optionFunc(func(s *settings) error {
		if n < 0 {
			return fmt.Errorf("WithMaxJobs(%d): want 0 (never) or more", n)
		}
		s.maxJobs = n
		return nil
	})
}

// WithIdleTimeout makes Run return after d without a job (default 0:
// never).
func WithIdleTimeout(d time.Duration) WorkerOption {
	return optionFunc(func(s *settings) error {
		if d < 0 {
			return fmt.Errorf("WithIdleTimeout(%s): want 0 (never) or more", d)
		}
		s.idle = d
		return nil
	})
}

// WithJobTimeout cancels a handler's context after d (default 0: no
// limit; per-function timeouts: retry: in gearman.yml).
func WithJobTimeout(d time.Duration) WorkerOption {
	return optionFunc(func(s *settings) error {
		if d < 0 {
			return fmt.Errorf("WithJobTimeout(%s): want 0 (no limit) or more", d)
		}
		s.jobTimeout = d
		return nil
	})
}

// WithStateDir keeps the crash journals in dir, shared by the workers of one
// host; each application (database and namespace) has its own
// sub-directory. Default: $ROWGEAR_STATE_DIR, else rowgear-dbworker in the
// temporary directory.
func WithStateDir(dir string) WorkerOption {
	return optionFunc(func(s *settings) error {
		if dir == "" {
			return errors.New("WithStateDir: empty directory")
		}
		s.stateDir = dir
		return nil
	})
}

// WithoutRetry reports failures to gearmand only: no retries, no dead
// letters, no crash journal.
func WithoutRetry() WorkerOption {
	return optionFunc(func(s *settings) error { s.noRetry = true; return nil })
}

// WithVerbose logs every job with its workload.
func WithVerbose() WorkerOption {
	return optionFunc(func(s *settings) error { s.verbose = true; return nil })
}

// WithMiddleware adds middleware inside rowgear's (observation, retry guard,
// ordering), after the registry's own (Registry.Use), in the order given.
func WithMiddleware(mw ...dispatch.Middleware) WorkerOption {
	return optionFunc(func(s *settings) error {
		for i, m := range mw {
			if m == nil {
				return fmt.Errorf("WithMiddleware: middleware %d is nil", i)
			}
		}
		s.mws = append(s.mws, mw...)
		return nil
	})
}

// WithListeners serves the worker's Prometheus metrics (at
// http://metricsAddr/metrics) and /healthz, /readyz (at healthAddr) on
// listeners of its own while it runs; an empty address leaves that one off,
// a bare port listens on 127.0.0.1. An application with an HTTP server of
// its own mounts Worker.MetricsHandler and Worker.ReadyHandler instead.
func WithListeners(metricsAddr, healthAddr string) WorkerOption {
	return optionFunc(func(s *settings) error {
		if metricsAddr == "" && healthAddr == "" {
			return errors.New("WithListeners: no address")
		}
		s.listen = observe.Flags{MetricsAddr: metricsAddr, HealthAddr: healthAddr}
		return nil
	})
}

// WithDrain makes Run return as soon as gearmand has no job for the worker:
// it works off what is queued and exits (sfGearmanPlugin's --timeout=0).
func WithDrain() WorkerOption {
	return optionFunc(func(s *settings) error { s.drain = true; return nil })
}

// WithModel registers only model's functions of the worker set (its row
// events, snapshot, batch and jobs); with methods, only those: an event
// (insert, update, delete, or the plugin's triggerInsert, ...), snapshot,
// batch, or a job's name. NewWorker reports a model or method the set does
// not serve with ErrNotInSet (sfGearmanPlugin's --model and --methods).
func WithModel(model string, methods ...string) WorkerOption {
	return optionFunc(func(s *settings) error {
		if model == "" {
			return errors.New("WithModel: empty model name")
		}
		for i, m := range methods {
			if m == "" {
				return fmt.Errorf("WithModel(%q): method %d is empty", model, i)
			}
		}
		s.model, s.methods = model, methods
		return nil
	})
}

// Hooks are called at points of a worker's life, as sfGearmanPlugin's
// gearman.start, gearman.stop and gearman.timeout events were; a nil hook
// is skipped. They run on the worker's goroutines: keep them short.
type Hooks struct {
	// OnStart: Run is about to take jobs (gearman.start).
	OnStart func(ctx context.Context)
	// OnIdle: Run stops because no job came within WithIdleTimeout, or
	// WithDrain found no job (gearman.timeout); OnStop follows.
	OnIdle func(ctx context.Context)
	// OnStop: Run has stopped taking jobs, the running ones have finished;
	// err is what Run returns (gearman.stop).
	OnStop func(ctx context.Context, err error)
	// OnJobTimeout: a handler of function fn returned after its context's
	// deadline passed (WithJobTimeout, or retry:'s per-function timeout).
	OnJobTimeout func(ctx context.Context, fn string)
}

// WithHooks calls h's hooks; a later WithHooks replaces an earlier one.
func WithHooks(h Hooks) WorkerOption {
	return optionFunc(func(s *settings) error { s.hooks = h; return nil })
}
