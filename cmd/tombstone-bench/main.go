package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run parses flags and runs the suite. Exit codes: 0 the suite ran (targets
// missed or not), 1 the suite could not run, 2 bad flags.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tombstone-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := defaultOptions()
	fs.StringVar(&opts.Binary, "binary", "", "the tombstone binary to measure (make bench passes bin/tombstone)")
	fs.DurationVar(&opts.Duration, "duration", opts.Duration, "length of each pgbench run")
	fs.IntVar(&opts.Rounds, "rounds", opts.Rounds, "rounds of alternating direct/proxied runs per workload (at least 3 for a result worth quoting)")
	fs.IntVar(&opts.Scale, "scale", opts.Scale, "pgbench scale factor (100,000 accounts each)")
	fs.IntVar(&opts.IdleConns, "idle-conns", opts.IdleConns, "idle client connections opened through the proxy for the memory measurement")
	fs.BoolVar(&opts.UpstreamTCP, "upstream-tcp", false, "connect Tombstone (and PgBouncer) to PostgreSQL over TCP instead of its Unix-domain socket")
	fs.BoolVar(&opts.SkipPgBouncer, "no-pgbouncer", false, "do not measure PgBouncer even when it is installed")
	fs.StringVar(&opts.Out, "out", "", "directory for results.txt, the CPU profiles and logs (default bench/results/<UTC time>)")
	quick := fs.Bool("quick", false, "smoke run: scale 1, 1 round of 2s runs, 100 idle connections (figures not worth quoting)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tombstone-bench --binary PATH [flags]\n\n"+
			"Runs pgbench direct, through Tombstone and (if installed) through PgBouncer\n"+
			"against a throwaway PostgreSQL and prints TPS, ratios, latency and memory\n"+
			"with the targets of issue 13 (PgBouncer is the reference). See docs/benchmarks.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *quick {
		opts.applyQuick(fs)
	}
	if opts.Out == "" {
		opts.Out = filepath.Join("bench", "results", time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := opts.validate(); err != nil {
		fmt.Fprintf(stderr, "tombstone-bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := Run(ctx, opts, stdout); err != nil {
		fmt.Fprintf(stderr, "tombstone-bench: %v\n", err)
		return 1
	}
	return 0
}
