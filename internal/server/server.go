package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tombstone-proxy/tombstone/internal/buildinfo"
	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/proxy"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// Options are what cmd/ hands the server besides the configuration.
type Options struct {
	// Registry receives Tombstone's collectors and is served on /metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Level, when set, is the logger's level; a reload applies log.level
	// to it.
	Level *slog.LevelVar
	// Profiling adds net/http/pprof's /debug/pprof/ endpoints to the admin
	// listener. Off by default: a profile costs CPU and shows internals.
	Profiling bool
}

// Server is a running Tombstone: the proxy listener, the admin listener and
// the configuration in force.
type Server struct {
	log     *slog.Logger
	level   *slog.LevelVar
	met     *metrics.Metrics
	proxy   *proxy.Server
	started *config.File                // what the listeners and proxy were built from
	current atomic.Pointer[config.File] // the last configuration loaded successfully

	ln        *notifyListener
	adminLn   net.Listener
	admin     *http.Server
	console   *runningConsole // nil when console.listen is not set
	accepting atomic.Bool

	reloadMu sync.Mutex // one reload at a time: SIGHUP and /-/reload may race
	stopOnce sync.Once
	stopErr  error
	served   sync.WaitGroup
	failed   chan error // a listener that stopped on its own; size 3
}

// Start builds the proxy from cfg, opens its listeners and starts serving.
// Errors mean nothing is left running.
func Start(cfg *config.File, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		log:     log.With("component", "server"),
		level:   opts.Level,
		met:     metrics.New(opts.Registry, buildinfo.Version, buildinfo.Revision),
		started: cfg,
		failed:  make(chan error, 3),
	}
	s.current.Store(cfg)
	popts, err := ProxyOptions(cfg, log.With("component", "proxy"), s.met)
	if err != nil {
		return nil, err
	}
	rw, err := NewRewriter(cfg)
	if err != nil {
		return nil, err
	}
	s.proxy, err = proxy.NewServer(popts, rw)
	if err != nil {
		return nil, err
	}
	ln, err := proxy.Listen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.ln = &notifyListener{Listener: ln, closed: make(chan struct{})}
	if cfg.Metrics.Listen != "" {
		if s.adminLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			s.ln.Close()
			return nil, fmt.Errorf("metrics.listen: %w", err)
		}
		s.admin = &http.Server{
			Handler:           s.adminHandler(opts.Registry, opts.Profiling),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
	}
	if cfg.Console.Enabled() {
		if s.console, err = startConsole(cfg, opts.Registry, log.With("component", "console")); err != nil {
			s.ln.Close()
			if s.adminLn != nil {
				s.adminLn.Close()
			}
			return nil, err
		}
	}
	s.accepting.Store(true)
	s.served.Add(1)
	go func() {
		defer s.served.Done()
		if err := s.proxy.Serve(s.ln); err != nil {
			s.accepting.Store(false)
			s.failed <- err
		}
	}()
	if s.admin != nil {
		s.served.Add(1)
		go func() {
			defer s.served.Done()
			if err := s.admin.Serve(s.adminLn); !errors.Is(err, http.ErrServerClosed) {
				s.failed <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
	}
	if s.console != nil {
		s.served.Add(1)
		go func() {
			defer s.served.Done()
			if err := s.console.serve(); err != nil {
				s.failed <- err
			}
		}()
	}
	s.log.Info("serving", "listen", s.ln.Addr().String(), "upstream", cfg.Upstream,
		"metrics", cfg.Metrics.Listen, "console", cfg.Console.Listen, "console_tls", cfg.Console.TLS.Enabled(), "mode", cfg.Mode, "tables", len(cfg.Tables),
		"client_tls", cfg.TLS.Enabled(), "upstream_tls", cfg.UpstreamTLS.Mode, "config", cfg.Path)
	return s, nil
}

// notifyListener tells Shutdown when the proxy has closed its listener.
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *notifyListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// Addr is the proxy listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// AdminAddr is the metrics listener's address, nil when it is off.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// ConsoleAddr is the console listener's address, nil when it is off.
func (s *Server) ConsoleAddr() net.Addr {
	if s.console == nil {
		return nil
	}
	return s.console.ln.Addr()
}

// Failed delivers the error of a listener that stopped on its own (not by
// Shutdown); the caller should shut down and exit non-zero.
func (s *Server) Failed() <-chan error { return s.failed }

// Reload re-reads the configuration file. A valid file replaces the policy
// and rewriter at once (the next statement of every open session uses
// them) and applies log.level and shutdown_timeout; keys that need new
// listeners or upstream connections are logged as needing a restart. An
// invalid file changes nothing and its error is returned.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cfg, err := config.Load(s.started.Path)
	var rw *rewrite.Rewriter
	if err == nil {
		rw, err = NewRewriter(cfg)
	}
	if err != nil {
		s.met.ConfigReloaded(false)
		s.log.Error("configuration reload failed; the running configuration stays in force", "config", s.started.Path, "error", err)
		return err
	}
	s.proxy.SetRewriter(rw)
	if s.level != nil {
		s.level.Set(cfg.Log.SlogLevel())
	}
	s.current.Store(cfg)
	s.met.ConfigReloaded(true)
	for _, key := range restartKeys(s.started, cfg) {
		s.log.Warn("configuration key changed but takes effect only after a restart", "key", key)
	}
	s.log.Info("configuration reloaded", "config", cfg.Path, "mode", cfg.Mode, "tables", len(cfg.Tables))
	return nil
}

// restartKeys lists the keys whose new values the running process cannot
// apply: they are bound into listeners, the proxy's options or the logger.
func restartKeys(running, next *config.File) []string {
	var keys []string
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"listen", running.Listen != next.Listen},
		{"upstream", running.Upstream != next.Upstream},
		{"tls", running.TLS != next.TLS},
		{"upstream_tls", running.UpstreamTLS != next.UpstreamTLS},
		{"max_message_size", running.MaxMessageSize != next.MaxMessageSize},
		{"metrics.listen", running.Metrics.Listen != next.Metrics.Listen},
		{"log.format", running.Log.Format != next.Log.Format},
		// The console keeps the users, database and catalog it started
		// with.
		{"console", !reflect.DeepEqual(running.Console, next.Console)},
	} {
		if c.changed {
			keys = append(keys, c.key)
		}
	}
	return keys
}

// Shutdown stops accepting, lets open sessions finish until the configured
// shutdown_timeout passes or ctx ends (a second signal, say), closes the
// rest with SQLSTATE 57P01, then stops the admin listener (so /readyz
// answers 503 while sessions drain). Calls after the first return the
// first one's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.accepting.Store(false)
		timeout := s.current.Load().ShutdownTimeout
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		drained := make(chan error, 1)
		go func() { drained <- s.proxy.Shutdown(ctx) }()
		// proxy.Shutdown closes the listener first; say so only once it
		// has, so the log line is a promise that new connections fail.
		select {
		case <-s.ln.closed:
		case err := <-drained:
			drained <- err
		}
		s.log.Info("shutting down: stopped accepting; waiting for open sessions", "timeout", timeout)
		if err := <-drained; err != nil {
			s.log.Warn("sessions still open at the end of the drain were closed with 57P01", "timeout", timeout, "reason", err)
		}
		if s.console != nil {
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ccancel()
			if err := s.console.shutdown(cctx); err != nil {
				s.stopErr = err
			}
		}
		if s.admin != nil {
			actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer acancel()
			if err := s.admin.Shutdown(actx); err != nil {
				s.stopErr = fmt.Errorf("metrics listener: %w", err)
			}
		}
		s.served.Wait()
		s.log.Info("stopped")
	})
	return s.stopErr
}
