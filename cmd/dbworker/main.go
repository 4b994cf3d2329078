// Command dbworker runs rowgear's gearman workers; `migrate` and `triggers`
// sub-commands manage the database side.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	args := os.Args[1:]
	switch {
	case len(args) > 0 && args[0] == "migrate":
		err = migrateCmd(ctx, args[1:], os.Stdout)
	case len(args) > 0 && args[0] == "triggers":
		err = triggersCmd(ctx, args[1:], os.Stdout)
	default:
		err = fmt.Errorf("worker: not built yet")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbworker:", err)
		os.Exit(1)
	}
}
