// Command notes is an application that lives outside rowgear's packages:
// its own module, models, migrations and main. rowgear's tests build it and
// run it against real MariaDB and gearmand (see cli/app_test.go).
package main

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/rowgear/rowgear/cli"
	"github.com/rowgear/rowgear/dispatch"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Task comes from the trigger source.
type Task struct {
	dispatch.Record
	journal *journal

	ID    int64  `db:"id,pk"`
	Title string `db:"title"`
	Done  bool   `db:"done"`
}

func (t *Task) TriggerInsert(ctx context.Context) error {
	return t.journal.note(ctx, t.Record, "Task", t.ID)
}
func (t *Task) TriggerUpdate(ctx context.Context, _ []string) error {
	return t.journal.note(ctx, t.Record, "Task", t.ID)
}

// Complete is a record job: it marks the task done and returns its title.
func (t *Task) Complete(ctx context.Context, by string) (string, error) {
	if _, err := t.DB().ExecContext(ctx, "UPDATE tasks SET done = 1 WHERE id = ?", t.ID); err != nil {
		return "", err
	}
	return t.Title + " done by " + by, nil
}

// Ticket comes from the binlog source. Its update handler fails while the
// settings say the help desk is down.
type Ticket struct {
	dispatch.Record
	journal *journal

	ID      int64  `db:"id,pk"`
	Subject string `db:"subject"`
}

func (t *Ticket) TriggerInsert(ctx context.Context) error {
	return t.journal.note(ctx, t.Record, "Ticket", t.ID)
}

func (t *Ticket) TriggerUpdate(ctx context.Context, _ []string) error {
	var down bool
	if err := t.DB().QueryRowContext(ctx, "SELECT helpdesk_down FROM settings").Scan(&down); err != nil {
		return err
	}
	if down {
		return errors.New("help desk is down")
	}
	return t.journal.note(ctx, t.Record, "Ticket", t.ID)
}

// journal is the application's own service that handlers reach through
// their constructor: it records each handled event in the handled table.
type journal struct{ prefix string }

func (j *journal) note(ctx context.Context, r dispatch.Record, model string, id int64) error {
	ev := r.Event()
	_, err := r.DB().ExecContext(ctx, "INSERT INTO handled (model, op, row_id, source, event_id, note) VALUES (?, ?, ?, ?, ?, ?)",
		model, ev.Op, id, ev.Source, ev.ID, fmt.Sprintf("%s %s", j.prefix, model))
	return err
}

func register(reg *dispatch.Registry) error {
	j := &journal{prefix: "notes"}
	if err := dispatch.Register[Task](reg, "Task",
		dispatch.Constructor(func() *Task { return &Task{journal: j} }),
		dispatch.RecordJob("complete", (*Task).Complete)); err != nil {
		return err
	}
	return dispatch.Register[Ticket](reg, "Ticket",
		dispatch.Constructor(func() *Ticket { return &Ticket{journal: j} }))
}

func main() {
	cli.Main(
		cli.WithName("notes"),
		cli.WithRegister(register),
		cli.WithMigrations(migrations, "migrations"),
	)
}
