package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

// pgbench's shape for the throughput runs, fixed by issue 5.
const (
	clients = 8
	threads = 2
)

// Options configure one run of the suite.
type Options struct {
	Binary        string        // tombstone binary
	Duration      time.Duration // each pgbench run
	Rounds        int           // alternating rounds per workload
	Scale         int           // pgbench scale factor
	IdleConns     int           // connections for the memory measurement
	UpstreamTCP   bool          // upstream over TCP instead of the Unix socket
	SkipPgBouncer bool
	Out           string // results directory
}

// defaultOptions: 12s runs make the default suite (with PgBouncer) keep the
// proxy under load for a little over ten minutes, the window of the
// steady-state memory target.
func defaultOptions() Options {
	return Options{Duration: 12 * time.Second, Rounds: 3, Scale: 10, IdleConns: 500}
}

// applyQuick shrinks every size a smoke run does not need, except those the
// user set explicitly on the command line.
func (o *Options) applyQuick(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["duration"] {
		o.Duration = 2 * time.Second
	}
	if !set["rounds"] {
		o.Rounds = 1
	}
	if !set["scale"] {
		o.Scale = 1
	}
	if !set["idle-conns"] {
		o.IdleConns = 100
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.Binary == "" {
		errs = append(errs, errors.New("--binary is required: build the proxy with `make build` and pass --binary bin/tombstone"))
	} else if st, err := os.Stat(o.Binary); err != nil || st.IsDir() {
		errs = append(errs, fmt.Errorf("--binary %q is not a file: build it with `make build`", o.Binary))
	}
	if o.Duration < time.Second {
		errs = append(errs, fmt.Errorf("--duration %v is shorter than pgbench's 1s resolution", o.Duration))
	}
	if o.Rounds < 1 {
		errs = append(errs, fmt.Errorf("--rounds %d: need at least 1", o.Rounds))
	}
	if o.Scale < 1 {
		errs = append(errs, fmt.Errorf("--scale %d: need at least 1", o.Scale))
	}
	if o.IdleConns < 1 || o.IdleConns > 600 {
		errs = append(errs, fmt.Errorf("--idle-conns %d: need 1 to 600 (the throwaway server allows 700 connections)", o.IdleConns))
	}
	return errors.Join(errs...)
}

// pgbenchSeconds is Duration as pgbench's -T takes it (whole seconds).
func (o *Options) pgbenchSeconds() int { return int(o.Duration.Round(time.Second) / time.Second) }
