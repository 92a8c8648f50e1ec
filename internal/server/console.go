package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/console"
	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/metrics"
)

// ConsoleUsers are the configuration's console users as package console
// takes them.
func ConsoleUsers(c config.Console) []console.User {
	users := make([]console.User, len(c.Users))
	for i, u := range c.Users {
		users[i] = console.User{
			Name: u.Name, PasswordHash: u.PasswordHash,
			CanRestore: slices.Contains(u.Can, config.CanRestore), CanPurge: slices.Contains(u.Can, config.CanPurge),
		}
	}
	return users
}

// consoleTLS loads console.tls; nil when it is off.
func consoleTLS(c config.Console) (*tls.Config, error) {
	if !c.TLS.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("console.tls.cert_file/console.tls.key_file: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// runningConsole is the console's listener, HTTP server and pool.
type runningConsole struct {
	ln   net.Listener
	srv  *http.Server
	pool *pgxpool.Pool
}

// startConsole connects to console.dsn, resolves the policy in that
// database's catalog and opens the console's listener. It reads the
// catalog once: a table created later appears after a restart.
func startConsole(cfg *config.File, reg prometheus.Registerer, log *slog.Logger) (*runningConsole, error) {
	c := cfg.Console
	tlsConfig, err := consoleTLS(c)
	if err != nil {
		return nil, err
	}
	named, err := NewPolicy(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, c.DSN)
	if err != nil {
		return nil, fmt.Errorf("console.dsn: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("console: connect to console.dsn: %w", err)
	}
	p, _, err := catalog.Resolve(ctx, conn.Conn(), named)
	conn.Release()
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("console: %w", err)
	}
	for _, pr := range p.Problems() {
		log.Warn("configured soft-delete table problem in the console's database", "table", pr.Table, "problem", pr.Message)
	}
	h, err := console.New(console.Options{
		Users: ConsoleUsers(c), DB: pool, Policy: p, Metrics: metrics.NewConsole(reg), Logger: log,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("console.listen: %w", err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	return &runningConsole{ln: ln, pool: pool, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

// serve runs until shutdown; an error is the listener failing on its own.
func (rc *runningConsole) serve() error {
	if err := rc.srv.Serve(rc.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("console listener: %w", err)
	}
	return nil
}

// shutdown lets requests in flight finish (a restore is one transaction)
// for up to ctx, then closes the pool.
func (rc *runningConsole) shutdown(ctx context.Context) error {
	err := rc.srv.Shutdown(ctx)
	rc.pool.Close()
	if err != nil {
		return fmt.Errorf("console listener: %w", err)
	}
	return nil
}
