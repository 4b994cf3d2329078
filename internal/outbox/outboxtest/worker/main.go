// Command worker is the worker process of the outbox fault tests: a
// rowgear.Worker (relay included) whose Box handlers log each run's n in
// box_log, so that the test reads what ran across killed processes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/rowgear/rowgear"
	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
	"github.com/rowgear/rowgear/ordering"
)

// Box is a row of boxes; every update raises n by one.
type Box struct {
	dispatch.Record
	ID int64 `db:"id,pk"`
	N  int64 `db:"n"`
}

// log writes in the event's transaction: a run a kill cuts short leaves
// no line, and a line never lands after a newer event's.
func (b *Box) log(ctx context.Context) error {
	tx, ok := ordering.Tx(ctx)
	if !ok {
		return errors.New("box: event without its transaction")
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO box_log (box_id, n, event_id) VALUES (?, ?, ?)", b.ID, b.N, b.Event().ID)
	return err
}

func (b *Box) TriggerInsert(ctx context.Context) error { return b.log(ctx) }

func (b *Box) TriggerUpdate(ctx context.Context, _ []string) error { return b.log(ctx) }

func main() {
	file := flag.String("file", "", "gearman.yml")
	stateDir := flag.String("state-dir", "", "crash journal directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *file, *stateDir); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, file, stateDir string) error {
	cfg, err := config.Load(file, "")
	if err != nil {
		return err
	}
	reg := dispatch.NewRegistry()
	if err := dispatch.Register[Box](reg, "Box"); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, err := rowgear.NewWorker(ctx, cfg, reg, rowgear.WithStateDir(stateDir), rowgear.WithConcurrency(4), rowgear.WithLogger(log))
	if err != nil {
		return err
	}
	return w.Run(ctx)
}
