package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/cli"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/internal/testenv"
)

// runCLI runs an application's command line in-process.
func runCLI(t *testing.T, args ...string) (code int, out string) {
	t.Helper()
	var buf bytes.Buffer
	app, err := cli.New(cli.WithName("app"), cli.WithOutput(&buf, &buf),
		cli.WithRegister(func(reg *dispatch.Registry) error {
			reg.HandleFunc("Worker1.reverse", nil)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	code = app.Exit(context.Background(), args)
	return code, buf.String()
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gearman.yml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHelpOnEveryCommand: -h exits 0 and lists the command's flags.
func TestHelpOnEveryCommand(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"":                  {"--config", "--count", "--timeout", "--verbose", "--concurrency", "--file", "--env", "--dsn", "--server", "--state-dir", "migrate", "triggers", "dead", "bridge"},
		"migrate":           {"--dir", "--rowgear", "--file", "--env", "--dsn", "up", "down", "status"},
		"triggers":          {"generate", "check", "--file"},
		"triggers generate": {"--out", "--force", "--config", "--dsn"},
		"triggers check":    {"--config", "--dsn"},
		"dead":              {"list", "retry", "purge"},
		"dead list":         {"--dsn", "--file"},
		"dead retry":        {"--all", "--server"},
		"dead purge":        {"--older-than"},
		"bridge":            {"--start", "--concurrency", "--batch", "--all-models", "--verbose", "--dsn"},
	} {
		args := append(strings.Fields(cmd), "-h")
		code, out := runCLI(t, args...)
		if code != 0 {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
		for _, f := range flags {
			if !strings.Contains(out, f) {
				t.Errorf("%v does not mention %s:\n%s", args, f, out)
			}
		}
	}
}

// TestFlagsBeforeOrAfterTheVerb: one grammar, `command [flags] [args]`,
// with the shared flags accepted anywhere.
func TestFlagsBeforeOrAfterTheVerb(t *testing.T) {
	_, dsn := testenv.DB(t)
	file := writeFile(t, "all:\n  database: {dsn: '"+dsn+"'}\n")
	for _, args := range [][]string{
		{"--file", file, "migrate", "status"},
		{"migrate", "--file", file, "status"},
		{"migrate", "status", "--file=" + file},
		{"migrate", "status", "--dsn", dsn},
	} {
		code, out := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "Pending") || !strings.Contains(out, "00001_failed_jobs.sql") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
}

// TestErrorsPointAtTheCause: each mistake is named as what it is.
func TestErrorsPointAtTheCause(t *testing.T) {
	_, dsn := testenv.DB(t)
	good := "all:\n  worker:\n    example1:\n      reverse: [Worker1, reverse]\n" +
		"prod:\n  database: {dsn: '" + dsn + "'}\n  doctrine:\n    example2:\n      Article: ~\n"
	cfg := writeFile(t, good)
	wrongPassword := strings.Replace(dsn, "root@", "root:wrong@", 1)
	indent := writeFile(t, "all:\n  server:\n    default: 127.0.0.1:4730\n  worker:\n    example1:\n      reverse: [Worker1, reverse]\n     hash: [Worker1, hash]\n")
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--file", cfg, "--env", "dev", "--config=example2"}, 1,
			[]string{`set "example2"`, "env dev", "example1"}},
		{[]string{"--file", cfg, "--config=nosuch"}, 1, []string{`set "nosuch"`, "env prod", "example1, example2"}},
		{[]string{"migrate", "status", "--dsn", wrongPassword}, 1, []string{"connecting to database", "failed", "Access denied"}},
		{[]string{"dead", "list", "--dsn", dsn}, 1, []string{"rowgear's migrations are not applied", "app migrate up"}},
		{[]string{"--file", indent, "--config=example1"}, 1, []string{indent + ":7:"}},
		{[]string{"migrate", "sideways"}, 2, []string{`unknown command "sideways"`, "see app -h"}},
		{[]string{"--count=x"}, 2, []string{"--count", "see app -h"}},
		{[]string{"dead", "retry"}, 2, []string{"name the ids, or --all"}},
		{[]string{"bridge", "--batch", "1001"}, 2, []string{"--batch 1001: want 1 to 1000"}},
	} {
		code, out := runCLI(t, c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, code, c.code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, w, out)
			}
		}
	}
}

func TestOptionsCheckThemselves(t *testing.T) {
	for name, opt := range map[string]cli.Option{
		"nil register":       cli.WithRegister(nil),
		"nil migrations":     cli.WithMigrations(nil, "."),
		"missing dir":        cli.WithMigrations(os.DirFS(t.TempDir()), "nosuch"),
		"rowgear's table":    cli.WithMigrationsTable("rowgear_migrations"),
		"nil middleware":     cli.WithMiddleware(nil),
		"empty name":         cli.WithName(""),
		"nil output":         cli.WithOutput(nil, os.Stderr),
		"nil logger":         cli.WithLogger(nil),
		"empty table":        cli.WithMigrationsTable(""),
		"migrations is file": cli.WithMigrations(os.DirFS("."), "go.mod"),
	} {
		if _, err := cli.New(opt); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// greetCmd is an application's own command: it reads gearman.yml like
// rowgear's commands do.
func greetCmd() *cobra.Command {
	var loud bool
	cmd := &cobra.Command{
		Use:   "greet NAME",
		Short: "greet someone (the application's own command)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cli.Config(cmd)
			if err != nil {
				return err
			}
			msg := "hello " + args[0] + " from " + cfg.Namespace
			if loud {
				msg = strings.ToUpper(msg)
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().BoolVar(&loud, "loud", false, "shout")
	return cmd
}

// TestApplicationCommand: an application adds a command of its own; it
// runs with the shared flags, -h lists it, its errors exit like rowgear's.
func TestApplicationCommand(t *testing.T) {
	run := func(args ...string) (int, string) {
		var buf bytes.Buffer
		app, err := cli.New(cli.WithName("app"), cli.WithOutput(&buf, &buf), cli.WithCommand(greetCmd()))
		if err != nil {
			t.Fatal(err)
		}
		return app.Exit(context.Background(), args), buf.String()
	}
	file := writeFile(t, "all:\n  namespace: shop\n")
	if code, out := run("greet", "ann", "--file", file); code != 0 || out != "hello ann from shop\n" {
		t.Errorf("greet: exit %d: %q", code, out)
	}
	if code, out := run("--file", file, "greet", "--loud", "bob"); code != 0 || out != "HELLO BOB FROM SHOP\n" {
		t.Errorf("greet --loud: exit %d: %q", code, out)
	}
	if code, out := run("-h"); code != 0 || !strings.Contains(out, "greet") || !strings.Contains(out, "the application's own command") ||
		!strings.Contains(out, "migrate") {
		t.Errorf("-h: exit %d\n%s", code, out)
	}
	if code, out := run("greet", "-h"); code != 0 || !strings.Contains(out, "--loud") || !strings.Contains(out, "--file") {
		t.Errorf("greet -h: exit %d\n%s", code, out)
	}
	if code, out := run("greet", "--nosuch"); code != 2 || !strings.Contains(out, "see app -h") {
		t.Errorf("greet --nosuch: exit %d\n%s", code, out)
	}
	if code, out := run("greet", "ann", "--file", "/nonexistent/gearman.yml"); code != 1 || !strings.Contains(out, "/nonexistent/gearman.yml") {
		t.Errorf("greet with a missing config: exit %d\n%s", code, out)
	}
	for name, opt := range map[string]cli.Option{
		"nil":              cli.WithCommand(nil),
		"rowgear's name":   cli.WithCommand(&cobra.Command{Use: "migrate"}),
		"twice":            cli.WithCommand(greetCmd(), greetCmd()),
		"no name (no Use)": cli.WithCommand(&cobra.Command{}),
	} {
		if _, err := cli.New(opt); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := cli.New(cli.WithCommand(&cobra.Command{Use: "dead"})); !errors.Is(err, cli.ErrCommand) {
		t.Errorf("a command named dead: %v", err)
	}
}
