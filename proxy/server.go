package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// DefaultMaxMessageSize is the bound on a client message's body when
// Options.MaxMessageSize is zero. PostgreSQL itself caps most messages at
// 1 GiB.
const DefaultMaxMessageSize = 256 << 20

// Options configure a Server.
type Options struct {
	// Upstream is host:port or the absolute path of a Unix-domain socket
	// (the ".s.PGSQL.5432" file itself).
	Upstream    string
	UpstreamTLS UpstreamTLS
	// ClientTLS, when set, is offered to clients that send SSLRequest;
	// nil answers 'N'.
	ClientTLS *tls.Config
	// MaxMessageSize bounds a client message's body in bytes (its length
	// field minus 4). A larger one ends the session with ErrorResponse
	// FATAL 08P01. Zero means DefaultMaxMessageSize. Server
	// messages are streamed and have no such bound.
	MaxMessageSize int
	// CatalogRefresh is how old a database's catalog may grow before the
	// next session to it reads the catalog again; zero means
	// DefaultCatalogRefresh.
	CatalogRefresh time.Duration
	Logger         *slog.Logger // nil discards logs
	Metrics        *metrics.Metrics
}

// Server relays client connections to the upstream PostgreSQL server.
type Server struct {
	opts        Options
	upstreamTLS *tls.Config // nil: plain connection
	log         *slog.Logger
	met         *metrics.Metrics
	rw          atomic.Pointer[rewrite.Rewriter] // from the configuration alone; databases derive theirs
	dbMu        sync.Mutex
	dbs         map[string]*database

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	keys      map[string]*session // BackendKeyData (pid+secret) -> live session, for CancelRequest
	closing   bool
	wg        sync.WaitGroup // one per session
	nextID    atomic.Uint64

	// afterForward, when set (only by tests, through export_test.go), runs
	// after each client message has gone upstream. It widens races between
	// the two forwarding goroutines that are otherwise a few microseconds
	// wide, so a test can make them happen every time.
	afterForward atomic.Pointer[func(typ byte)]
}

// NewServer checks opts and returns a Server that rewrites with rw.
func NewServer(opts Options, rw *rewrite.Rewriter) (*Server, error) {
	if opts.Upstream == "" {
		return nil, errors.New("proxy: no upstream address: set upstream to host:port or a Unix socket path")
	}
	if rw == nil {
		return nil, errors.New("proxy: no rewriter given")
	}
	if opts.Metrics == nil {
		return nil, errors.New("proxy: no metrics given: build them with metrics.New on a registry")
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.UpstreamTLS.Mode == "" {
		opts.UpstreamTLS.Mode = UpstreamTLSDisable
	}
	upTLS, err := upstreamTLSConfig(opts.Upstream, opts.UpstreamTLS)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:        opts,
		upstreamTLS: upTLS,
		log:         opts.Logger,
		met:         opts.Metrics,
		listeners:   map[net.Listener]struct{}{},
		sessions:    map[*session]struct{}{},
		keys:        map[string]*session{},
		dbs:         map[string]*database{},
	}
	if s.opts.CatalogRefresh <= 0 {
		s.opts.CatalogRefresh = DefaultCatalogRefresh
	}
	s.rw.Store(rw)
	return s, nil
}

// Listen opens a listener on addr: host:port, or the path of a Unix-domain
// socket (a stale socket file left by a crashed process is removed first).
func Listen(addr string) (net.Listener, error) {
	if isUnixPath(addr) {
		if fi, err := os.Stat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.Dial("unix", addr); err == nil {
				c.Close()
				return nil, fmt.Errorf("listen %s: another process is serving on this socket", addr)
			}
			_ = os.Remove(addr)
		}
		return net.Listen("unix", addr)
	}
	return net.Listen("tcp", addr)
}

func isUnixPath(addr string) bool { return strings.HasPrefix(addr, "/") }

// SetRewriter swaps the rewriter (and with it the policy) after a reload;
// the next statement of every open session uses it, resolved against its
// database's last catalog.
func (s *Server) SetRewriter(rw *rewrite.Rewriter) {
	if rw != nil {
		s.rw.Store(rw)
		s.rebase(rw)
	}
}

// Serve accepts connections on ln until Shutdown. It returns nil after
// Shutdown and the accept error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	const minDelay, maxDelay = 5 * time.Millisecond, time.Second
	delay := minDelay
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			if closing || errors.Is(err, net.ErrClosed) {
				delete(s.listeners, ln)
			}
			s.mu.Unlock()
			if closing {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than stop serving every client.
			s.log.Error("accept failed; retrying", "listen", ln.Addr().String(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			delay = min(2*delay, maxDelay)
			continue
		}
		delay = minDelay
		if !s.track(c) {
			c.Close()
		}
	}
}

// track registers and starts a session unless the server is shutting down.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	sess := newSession(s, withRawIO(c))
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sess.run()
		s.mu.Lock()
		delete(s.sessions, sess)
		if sess.key != "" && s.keys[sess.key] == sess {
			delete(s.keys, sess.key)
		}
		s.mu.Unlock()
	}()
	return true
}

// registerKey records a session's BackendKeyData so a CancelRequest for it
// can be forwarded.
func (s *Server) registerKey(sess *session, key string) {
	s.mu.Lock()
	sess.key = key
	s.keys[key] = sess
	s.mu.Unlock()
}

func (s *Server) lookupKey(key []byte) bool {
	s.mu.Lock()
	_, ok := s.keys[string(key)]
	s.mu.Unlock()
	return ok
}

// Shutdown stops accepting connections and waits for open sessions to end.
// When ctx ends first, the remaining sessions are closed with ErrorResponse
// FATAL 57P01 and Shutdown returns ctx's error once they are gone.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.log.Warn("shutdown deadline reached; closing open sessions with 57P01", "sessions", len(s.sessions))
	for sess := range s.sessions {
		sess.terminate(errShutdown)
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// PingUpstream dials the upstream and sends an SSLRequest; any one-byte
// answer shows a PostgreSQL server is there. No credentials are needed.
func (s *Server) PingUpstream(ctx context.Context) error {
	c, err := s.dialRaw(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write(sslRequestPacket[:]); err != nil {
		return fmt.Errorf("upstream %s: %w", s.opts.Upstream, err)
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		return fmt.Errorf("upstream %s did not answer: %w", s.opts.Upstream, err)
	}
	if b[0] != 'S' && b[0] != 'N' {
		return fmt.Errorf("upstream %s answered SSLRequest with %q: not a PostgreSQL server", s.opts.Upstream, b[0])
	}
	return nil
}
