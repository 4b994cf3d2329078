// Package cli is the command line of a rowgear application: the application
// owns main, its models and its migrations, and hands them to cli, which
// provides every command the sfGearmanPlugin's tasks had and ours added.
// The worker command is a thin layer over rowgear.Worker, the bridge command
// over bridge.New(…).Run.
//
// A whole application's main:
//
//	//go:embed migrations/*.sql
//	var migrationsFS embed.FS
//
//	func main() {
//		cli.Main(
//			cli.WithRegister(models.Register),   // func(*dispatch.Registry) error
//			cli.WithMigrations(migrationsFS, "migrations"),
//		)
//	}
//
// The binary then runs (flags before or after the verb; -h on any of them
// lists its flags and exits 0):
//
//	app [--config=SET] [--count=N] [--timeout=S] [--concurrency=N] [--verbose]
//	                          run a worker set (the seed's gearman:worker and
//	                          gearman:worker-doctrine); the default command
//	app migrate up|down|status      rowgear's migrations, then the application's
//	app triggers generate|check     the row-event triggers of trigger-sourced models
//	app dead list|retry|purge       the dead-letter table
//	app bridge                      binlogbridge (the same as the binlogbridge binary)
//	app status                      gearmand queues, bridge lag, dead letters, drift
//
// plus the application's own commands (WithCommand). Every command reads
// gearman.yml (--file, ROWGEAR_CONFIG; default config/gearman.yml) with its
// environment section (--env, ROWGEAR_ENV; default prod), and the database
// DSN from database.dsn or --dsn.
//
// What the worker adds around the application's handlers is
// rowgear.Worker's (see package rowgear): the observation, the retry guard
// (retries with backoff, the dead-letter table, the crash journal keyed by
// this application's database and namespace), the ordering, then the
// application's middleware (Registry.Use, WithMiddleware).
//
// rowgear's own migrations (package migrations) are versioned in the table
// rowgear_migrations; the application's in goose_db_version (see
// WithMigrationsTable), so both number from 00001.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/migrations"
)

// App is a rowgear application's command line.
type App struct {
	name       string
	register   []func(*dispatch.Registry) error
	mws        []dispatch.Middleware
	migrations fs.FS  // the application's; nil: none
	migDir     string // where they live in the source tree, for triggers generate
	migTable   string
	stdout     io.Writer
	stderr     io.Writer
	logger     *slog.Logger // nil: a text handler on stderr
	commands   []*cobra.Command
}

// Option configures an App. Options check their arguments: New reports the
// first bad one.
type Option func(*App) error

// WithRegister adds a registration function: it registers the application's
// models, jobs, plain functions and middleware on the registry every
// command builds. It may be given more than once.
func WithRegister(fn func(*dispatch.Registry) error) Option {
	return func(a *App) error {
		if fn == nil {
			return errors.New("WithRegister: nil function")
		}
		a.register = append(a.register, fn)
		return nil
	}
}

// WithMiddleware adds middleware to every worker's registry, after the retry
// guard and in the order given (Registry.Use from a registration function
// does the same).
func WithMiddleware(mw ...dispatch.Middleware) Option {
	return func(a *App) error {
		for i, m := range mw {
			if m == nil {
				return fmt.Errorf("WithMiddleware: middleware %d is nil", i)
			}
		}
		a.mws = append(a.mws, mw...)
		return nil
	}
}

// WithMigrations gives the application's goose migrations: fsys holds them
// in directory dir (".", or say "migrations" for an embed.FS of
// migrations/*.sql). dir is also where `triggers generate` writes by default.
func WithMigrations(fsys fs.FS, dir string) Option {
	return func(a *App) error {
		if fsys == nil {
			return errors.New("WithMigrations: nil file system")
		}
		sub, err := fs.Sub(fsys, dir)
		if err != nil {
			return fmt.Errorf("WithMigrations: %w", err)
		}
		if _, err := fs.ReadDir(sub, "."); err != nil {
			return fmt.Errorf("WithMigrations: directory %q: %w", dir, err)
		}
		a.migrations, a.migDir = sub, dir
		return nil
	}
}

// WithMigrationsTable names the version table of the application's
// migrations (default goose_db_version, goose's own).
func WithMigrationsTable(table string) Option {
	return func(a *App) error {
		if table == "" || table == migrations.Table {
			return fmt.Errorf("WithMigrationsTable: %q: want a table of the application's own", table)
		}
		a.migTable = table
		return nil
	}
}

// WithName is the command's name in usage and error lines (default: the
// executable's base name).
func WithName(name string) Option {
	return func(a *App) error {
		if name == "" {
			return errors.New("WithName: empty name")
		}
		a.name = name
		return nil
	}
}

// WithOutput sends the commands' output and logs to stdout and stderr
// (default os.Stdout, os.Stderr): for tests.
func WithOutput(stdout, stderr io.Writer) Option {
	return func(a *App) error {
		if stdout == nil || stderr == nil {
			return errors.New("WithOutput: nil writer")
		}
		a.stdout, a.stderr = stdout, stderr
		return nil
	}
}

// WithLogger logs through l instead of a text handler on stderr.
func WithLogger(l *slog.Logger) Option {
	return func(a *App) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		a.logger = l
		return nil
	}
}

// WithCommand adds the application's own commands to the command tree,
// beside rowgear's: they get the shared flags (--file, --env, --dsn and the
// others of the root's persistent flags), the App's output and its error
// conventions (a returned error is printed, exit 1; one wrapping ErrUsage,
// exit 2). A command's RunE reads the context of Run from cmd.Context().
func WithCommand(cmds ...*cobra.Command) Option {
	return func(a *App) error {
		for i, c := range cmds {
			if c == nil {
				return fmt.Errorf("WithCommand: command %d is nil", i)
			}
			if c.Name() == "" {
				return fmt.Errorf("WithCommand: command %d has no name (Use)", i)
			}
			a.commands = append(a.commands, c)
		}
		return nil
	}
}

// New returns an application's command line.
func New(opts ...Option) (*App, error) {
	a := &App{name: filepath.Base(os.Args[0]), migTable: migrations.AppTable, stdout: os.Stdout, stderr: os.Stderr}
	for _, o := range opts {
		if err := o(a); err != nil {
			return nil, fmt.Errorf("rowgear: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, c := range a.commands {
		if seen[c.Name()] {
			return nil, fmt.Errorf("rowgear: WithCommand: two commands named %q", c.Name())
		}
		seen[c.Name()] = true
	}
	if _, err := a.Command(); err != nil { // an application's command named as one of rowgear's
		return nil, err
	}
	return a, nil
}

// Main runs the command os.Args names until SIGINT or SIGTERM, and exits:
// 0 on success or -h, 1 on failure, 2 on a usage error.
func Main(opts ...Option) {
	a, err := New(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := a.Exit(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// ErrUsage marks a command line that does not parse.
var ErrUsage = errors.New("usage")

// Exit runs Run and prints its error; it returns the process's exit code.
func (a *App) Exit(ctx context.Context, args []string) int {
	return a.exitCode(a.Run(ctx, args))
}

// exitCode prints err and returns the exit code it means.
func (a *App) exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(a.stderr, "%s: %v (see %s -h)\n", a.name, err, a.name)
		return 2
	default:
		fmt.Fprintf(a.stderr, "%s: %v\n", a.name, err)
		return 1
	}
}

// Run runs the command args name (without the program's name).
func (a *App) Run(ctx context.Context, args []string) error {
	root, err := a.Command()
	if err != nil {
		return err
	}
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// ErrCommand: an application's command has the name of one of rowgear's.
var ErrCommand = errors.New("command name taken")

// Command builds the command tree: rowgear's commands and the
// application's (WithCommand), for an application that runs or changes it
// itself. Each call builds a fresh tree, holding the App's commands.
func (a *App) Command() (*cobra.Command, error) {
	var c common
	root := a.workCmd(&c)
	root.PersistentFlags().StringVar(&c.dsn, "dsn", "", "database DSN, user:pass@tcp(host:port)/db (default: database.dsn of gearman.yml)")
	c.cf.Register(root.PersistentFlags())
	root.AddCommand(a.migrateCmd(&c), a.triggersCmd(&c), a.deadCmd(&c), a.bridgeCmd(&c, "bridge"), a.statusCmd(&c), probeCmd(), a.consoleCmd(&c))
	for _, cmd := range a.commands {
		if taken, _, err := root.Find([]string{cmd.Name()}); err == nil && taken != root {
			return nil, fmt.Errorf("rowgear: %w: %q is rowgear's %s command", ErrCommand, cmd.Name(), taken.Name())
		}
		if cmd.HasParent() {
			cmd.Parent().RemoveCommand(cmd) // a tree built before
		}
		root.AddCommand(cmd)
	}
	a.setup(root)
	return root, nil
}

func (a *App) log() *slog.Logger {
	if a.logger != nil {
		return a.logger
	}
	return slog.New(slog.NewTextHandler(a.stderr, nil))
}

// registry builds the registry of the application's registrations.
func (a *App) registry(log *slog.Logger) (*dispatch.Registry, error) {
	reg := dispatch.NewRegistry(dispatch.WithLogger(log))
	for _, fn := range a.register {
		if err := fn(reg); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// common are the flags every command has.
type common struct {
	cf  config.Flags
	dsn string
}

func (c *common) load() (*config.Config, error) { return c.cf.Load() }

// setup gives cmd and its sub-commands rowgear's conventions: output to
// the App's writers, errors returned (Exit prints them), usage errors
// marked, no completion command.
func (a *App) setup(cmd *cobra.Command) {
	cmd.SetOut(a.stdout)
	cmd.SetErr(a.stderr)
	cmd.SilenceErrors = true
	cmd.SilenceUsage = true
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %w", ErrUsage, err) })
	for _, sub := range cmd.Commands() {
		a.setup(sub)
	}
}

// usageErr is a usage error of cmd.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// oneOf checks that args is exactly one of verbs.
func oneOf(verbs ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErr("%s: want one of %v", cmd.CommandPath(), verbs)
		}
		for _, v := range verbs {
			if args[0] == v {
				return nil
			}
		}
		return usageErr("%s: unknown command %q: want one of %v", cmd.CommandPath(), args[0], verbs)
	}
}
