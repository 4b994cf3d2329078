package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rowgear/rowgear/config"
	"github.com/rowgear/rowgear/events"
	"github.com/rowgear/rowgear/gearman"
	"github.com/rowgear/rowgear/retry"
)

const deadUsage = `Usage: dbworker dead [flags] list|retry|purge

The dead-letter table: jobs that failed their last attempt.
  list                 function, event id, model, attempts, last error, age
  retry ID... | --all  re-submit them with a fresh set of attempts; each row
                       is deleted once gearmand acknowledged its job
  purge --older-than=D delete dead letters older than D (e.g. 720h)

Flags:
`

func deadCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dbworker dead", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var cf config.Flags
	cf.Register(fs)
	dsn := fs.String("dsn", "", "database DSN; default: database.dsn of gearman.yml")
	all := fs.Bool("all", false, "retry: every dead letter")
	olderThan := fs.Duration("older-than", 0, "purge: minimum age")
	server := fs.String("server", "default", "retry: gearman connection name")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), deadUsage)
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return errors.New("dead: want list, retry or purge")
	}
	cmd := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	db, err := openDSN(*dsn, &cf)
	if err != nil {
		return fmt.Errorf("dead: %w", err)
	}
	defer db.Close()
	store := retry.NewStore(db)
	switch cmd {
	case "list":
		es, err := store.List(ctx, "dead")
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tFUNCTION\tEVENT ID\tMODEL\tATTEMPTS\tAGE\tLAST ERROR")
		for _, e := range es {
			_, model, _, err := events.ParseFuncName(e.Function)
			if err != nil {
				model = "-"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, e.Function, e.Key, model, e.Attempts,
				time.Since(e.UpdatedAt).Round(time.Second), e.LastError())
		}
		return tw.Flush()
	case "retry":
		var ids []int64
		for _, a := range fs.Args() {
			id, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				return fmt.Errorf("dead retry: %q is not an id", a)
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 && !*all {
			return errors.New("dead retry: name the ids, or --all")
		}
		cfg, err := cf.Load()
		if err != nil {
			return err
		}
		servers, err := cfg.ServerAddrs(*server)
		if err != nil {
			return err
		}
		c := gearman.NewClient(servers)
		defer c.Close()
		n, err := retry.NewGuard(store, c, cfg.RetryFor).Replay(ctx, ids...)
		fmt.Fprintf(stdout, "re-submitted %d\n", n)
		return err
	case "purge":
		if *olderThan <= 0 {
			return errors.New("dead purge: --older-than is required (e.g. 720h)")
		}
		n, err := store.Purge(ctx, *olderThan)
		fmt.Fprintf(stdout, "purged %d\n", n)
		return err
	}
	fs.Usage()
	return fmt.Errorf("dead: unknown command %q: want list, retry or purge", cmd)
}
