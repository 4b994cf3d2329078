// Command bench measures rowgear against its ceilings, in one run: the
// gearmand submit rate, the trigger path, the binlog path and the worker
// runner, each figure beside the ceiling measured in the same run.
//
//	go run ./cmd/bench [--rows N] [--max-time D] [--json FILE] [--cpuprofile FILE] [--sections 1,2,3,4,5[,6][,7][,8]] [--big-rows N] [--snapshot-rows N] [--snapshot-rate R] [--snapshot-chunk C] [--batch N] [--batch-conns C]
//
// It needs the private MariaDB of scripts/services (ROWGEAR_MYSQL_DSN, with
// the UDF in its plugin dir) and gearmand installed: every gearmand it
// talks to is its own, on a free loopback port, so other users of the
// shared gearmand neither disturb nor see it. It creates a fresh database
// and drops it at the end.
//
// Latency method: the bench table carries a DATETIME(6) column written
// with NOW(6) by the statement that changes the row, in a session whose
// time_zone is UTC; the model's handler takes time.Now() on entry and
// subtracts it. MariaDB and the bench share the machine's clock, so the
// difference is statement start → handler entry: the commit and the rest of
// the statement (≈0.1–0.5 ms) are included, nothing after the handler is.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	rows := flag.Int("rows", 20000, "rows (jobs, events) per measurement")
	maxTime := flag.Duration("max-time", 5*time.Second, "time cap of each measurement; a capped figure is a rate over what was done")
	jsonOut := flag.String("json", "bench-results.json", "write the results as JSON here; empty: don't")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	sections := flag.String("sections", "1,2,3,4,5", "sections to run: 1 gearmand, 2 trigger, 3 binlog, 4 worker, 5 commit gate and ordering, 6 strict writes under bridge load, "+
		"7 one big transaction through a binlogbridge process, 8 snapshot (a --snapshot-rows table snapshotted under writes, the bridge killed twice; minutes), "+
		"9 the console's cost to a worker")
	bigRows := flag.Int("big-rows", 1000000, "section 7: rows of its one transaction")
	snapRows := flag.Int("snapshot-rows", 1000000, "rows of the table section 8 snapshots")
	snapBefore := flag.Duration("snapshot-before", time.Minute, "how long section 8 measures the writer before the snapshot")
	snapRate := flag.Int("snapshot-rate", 400, "section 8's snapshot pace, rows/s (0: unpaced)")
	snapChunk := flag.Int("snapshot-chunk", 100, "section 8's snapshot chunk size")
	batch := flag.Int("batch", 100, "sections 3 and 7: binlog.batch, most events per job")
	batchConns := flag.Int("batch-conns", 2, "sections 3 and 7: binlog.concurrency with batches (fewer queues, bigger batches)")
	verbose := flag.Bool("v", false, "log what the components log")
	flag.Parse()
	if *rows < 100 {
		return fmt.Errorf("--rows %d: want at least 100", *rows)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	b, err := newBench(ctx, *rows, *maxTime, *verbose)
	if err != nil {
		return err
	}
	b.snapRows, b.snapBefore, b.snapRate, b.snapChunk, b.batch, b.batchConns = *snapRows, *snapBefore, *snapRate, *snapChunk, *batch, *batchConns
	defer b.close()
	b.bigRows = *bigRows
	fmt.Printf("rowgear bench: %d rows per measurement, at most %s each; %s\n\n", *rows, *maxTime, b.machine.String())
	began := time.Now()
	steps := []struct {
		key  string
		name string
		fn   func(context.Context) error
	}{
		{"1", "gearmand ceiling", b.gearmandCeiling},
		{"2", "trigger path", b.triggerPath},
		{"3", "binlog path", b.binlogPath},
		{"4", "worker dispatch", b.workerDispatch},
		{"5", "commit gate and ordering", b.orderingPath},
		{"6", "strict writes under bridge load", b.contention},
		{"7", "one big transaction through binlogbridge", b.bigTransaction},
		{"8", "snapshot under load, bridge killed twice", b.snapshotUnderLoad},
		{"9", "the console's cost to a worker", b.consoleCost},
	}
	for _, s := range steps {
		if !slices.Contains(strings.Split(*sections, ","), s.key) {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "bench: section %s, %s…\n", s.key, s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("section %s (%s): %w", s.key, s.name, err)
		}
		fmt.Fprintf(os.Stderr, "bench: section %s done in %s\n", s.key, time.Since(t0).Round(time.Millisecond))
	}
	b.printTable(os.Stdout)
	fmt.Printf("\nwhole run: %s\n", time.Since(began).Round(time.Second))
	if *jsonOut != "" {
		out := struct {
			Machine machine   `json:"machine"`
			Rows    int       `json:"rows"`
			MaxTime string    `json:"max_time"`
			Seconds float64   `json:"seconds"`
			Figures []*figure `json:"figures"`
		}{b.machine, *rows, maxTime.String(), time.Since(began).Seconds(), b.figs}
		data, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("results in %s\n", *jsonOut)
	}
	return nil
}

// figure is one line of the results.
type figure struct {
	Section string  `json:"section"`
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	// Ceiling is what the figure is compared with, measured in this run.
	Ceiling     float64 `json:"ceiling,omitempty"`
	CeilingName string  `json:"ceiling_name,omitempty"`
	// Ratio is Value / Ceiling.
	Ratio float64 `json:"ratio,omitempty"`
	Note  string  `json:"note,omitempty"`
}

func (b *bench) add(section, name string, value float64, unit string) *figure {
	f := &figure{Section: section, Name: name, Value: value, Unit: unit}
	b.figs = append(b.figs, f)
	return f
}

// vs sets the ceiling of f.
func (f *figure) vs(name string, ceiling float64) *figure {
	f.CeilingName, f.Ceiling = name, ceiling
	if ceiling != 0 {
		f.Ratio = f.Value / ceiling
	}
	return f
}

func (f *figure) note(s string) *figure { f.Note = s; return f }

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func (b *bench) printTable(w io.Writer) {
	fmt.Fprintf(w, "| %-3s | %-75s | %12s | %-34s | %6s |\n", "#", "figure", "value", "ceiling (same run)", "ratio")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 5), strings.Repeat("-", 77), strings.Repeat("-", 14), strings.Repeat("-", 36), strings.Repeat("-", 8))
	for _, f := range b.figs {
		ceil := ""
		if f.CeilingName != "" {
			ceil = num(f.Ceiling) + " " + f.CeilingName
		}
		ratio := ""
		if f.Ratio != 0 {
			ratio = fmt.Sprintf("%.2f", f.Ratio)
		}
		name := f.Name
		if f.Note != "" {
			name += " (" + f.Note + ")"
		}
		fmt.Fprintf(w, "| %-3s | %-75s | %12s | %-34s | %6s |\n", f.Section, name, num(f.Value)+" "+f.Unit, ceil, ratio)
	}
}

// machine says where the figures come from.
type machine struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	Go     string `json:"go"`
	Date   string `json:"date"`
	Kernel string `json:"kernel,omitempty"`
}

func (m machine) String() string {
	return fmt.Sprintf("%d × %s, %s, %s", m.CPUs, m.CPU, m.Go, m.Date)
}

func thisMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

func discard(verbose bool) *slog.Logger {
	if verbose {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}
