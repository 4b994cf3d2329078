package status

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/dispatch"
)

const usage = `Usage: status [--json] [--lag-threshold D] [flags]

One screen for an operator: every configured gearmand's functions (queued,
running, workers), binlogbridge's saved position and lag, dead letters by
function, the UDF's failure count, trigger drift. Exits non-zero naming each
problem: dead letters, drift, a bridge lagging beyond --lag-threshold, an
unreachable gearmand or database.

Flags:
`

// Command is the `status` sub-command: mount it as `<program> status
// [--json] [--lag-threshold D]`. It writes the report to stdout and returns
// an error wrapping ErrAttention when something needs a person (after the
// report is written), flag.ErrHelp for -h, or another error when it could
// not run.
func Command(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var cf config.Flags
	cf.Register(fs)
	dsn := fs.String("dsn", "", "database DSN; default: database.dsn of gearman.yml")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	lag := fs.Duration("lag-threshold", time.Minute, "a bridge lag beyond this is a problem")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("status: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := cf.Load()
	if err != nil {
		return err
	}
	if *dsn == "" {
		if *dsn = cfg.Database.DSN; *dsn == "" {
			return fmt.Errorf("status: %s has no database.dsn; pass --dsn", cfg.File)
		}
	}
	db, err := dispatch.OpenDB(*dsn)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer db.Close()
	r, err := Collect(ctx, cfg, db, Options{LagThreshold: *lag})
	if err != nil {
		return err
	}
	if *asJSON {
		err = r.WriteJSON(stdout)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("%w: %d problem(s)", ErrAttention, len(r.Problems))
	}
	return nil
}
