package cli_test

import (
	"context"
	"embed"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rowgear/rowgear/cli"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/gearman"
)

var appMigrations embed.FS // //go:embed migrations/*.sql in an application

// An application's whole main: its registration and its migrations; rowgear
// gives it every command (worker sets, migrate, triggers, dead, bridge).
func ExampleMain() {
	register := func(reg *dispatch.Registry) error {
		// dispatch.Register[Article](reg, "Article", dispatch.Constructor(…), dispatch.RecordJob(…))
		reg.Use(func(next gearman.Handler) gearman.Handler { return next }) // logging, metrics …
		return nil
	}
	cli.Main(
		cli.WithRegister(register),
		cli.WithMigrations(appMigrations, "migrations"),
	)
}

// Exit returns the process's exit code: 0 for -h on any command, 2 for a
// command line that does not parse, 1 for a failure.
func ExampleApp_Exit() {
	app, err := cli.New(cli.WithName("notes"), cli.WithOutput(io.Discard, io.Discard))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	fmt.Println(app.Exit(ctx, []string{"migrate", "up", "-h"}))
	fmt.Println(app.Exit(ctx, []string{"migrate", "sideways"}))
	fmt.Println(app.Exit(ctx, []string{"dead", "list", "--file", "/nonexistent/gearman.yml"}))
	// Output:
	// 0
	// 2
	// 1
}

// An application adds a command of its own beside rowgear's: it gets the
// shared flags (--file, --env, --dsn), and cli.Config loads the gearman.yml
// they name.
func ExampleWithCommand() {
	greet := &cobra.Command{
		Use:   "greet NAME",
		Short: "greet someone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cli.Config(cmd)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hello %s, from namespace %s\n", args[0], cfg.Namespace)
			return nil
		},
	}
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "gearman.yml")
	if err := os.WriteFile(file, []byte("all:\n  namespace: shop\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	app, err := cli.New(cli.WithName("shop"), cli.WithCommand(greet))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit", app.Exit(context.Background(), []string{"greet", "ann", "--file", file}))
	// Output:
	// hello ann, from namespace shop
	// exit 0
}
