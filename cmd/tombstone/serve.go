package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/internal/server"
)

func serve(std stdio, args []string) error {
	fs := newFlags("serve", "serve --config FILE\n\nRuns the proxy. SIGHUP or POST /-/reload reloads the configuration;\nSIGTERM and SIGINT shut down gracefully.", std)
	path := configFlag(fs)
	profiling := fs.Bool("pprof", false, "also serve Go's profiler (/debug/pprof/) on metrics.listen, for benchmarks and diagnosis (make bench uses it)")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	logger := newLogger(std.errOut, cfg.Log, level)
	log := logger.With("component", "main")

	// Signals are caught before the listeners open, so a SIGHUP sent as
	// soon as the port answers reloads instead of killing the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := server.Start(cfg, server.Options{Registry: reg, Logger: logger, Level: level, Profiling: *profiling})
	if err != nil {
		return fmt.Errorf("cannot start: %w", err)
	}
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_ = srv.Reload() // Reload logs and counts a failure; the old configuration stays
				continue
			}
			log.Info("signal received", "signal", sig.String())
			return drain(srv, sigs, log)
		case err := <-srv.Failed():
			_ = srv.Shutdown(context.Background())
			return err
		}
	}
}

// drain shuts the server down gracefully. A second SIGTERM or SIGINT
// during the drain closes the remaining sessions at once, as an operator
// pressing Ctrl-C twice expects; SIGHUP still reloads.
func drain(srv *server.Server, sigs <-chan os.Signal, log *slog.Logger) error {
	ctx, force := context.WithCancel(context.Background())
	defer force()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_ = srv.Reload()
				continue
			}
			log.Warn("second signal: closing open sessions now", "signal", sig.String())
			force()
		case err := <-done:
			return err
		}
	}
}

// newLogger builds the process's one logger from log.format; level is
// shared with the server so a reload can change it.
func newLogger(w io.Writer, cfg config.Log, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
