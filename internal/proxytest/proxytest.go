package proxytest

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/server"
	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/proxy"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// Proxy is a running proxy.
type Proxy struct {
	// Addr is host:port, or the Unix socket path when the YAML's listen
	// names one.
	Addr     string
	Config   *config.File
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
	Server   *proxy.Server
	logs     *syncBuffer
}

// Start parses yamlConfig (upstream defaults to pg's TCP address when the
// YAML does not set it), builds everything the proxy needs and serves on
// 127.0.0.1:0, or on listen when it is a Unix socket path. The proxy is
// shut down at test cleanup.
func Start(t testing.TB, pg *pgtest.Server, yamlConfig string) *Proxy {
	t.Helper()
	var raw struct {
		Upstream string `yaml:"upstream"`
		Listen   string `yaml:"listen"`
	}
	if err := yaml.Unmarshal([]byte(yamlConfig), &raw); err != nil {
		t.Fatalf("proxytest: config YAML: %v", err)
	}
	if raw.Upstream == "" {
		yamlConfig = "upstream: " + pg.Addr() + "\n" + yamlConfig
	}
	f, err := config.Parse([]byte(yamlConfig), "proxytest.yaml")
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "test", "test")
	opts, err := server.ProxyOptions(f, logger, m)
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	rw, err := server.NewRewriter(f)
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	srv, err := proxy.NewServer(opts, rw)
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	addr := "127.0.0.1:0"
	if strings.HasPrefix(raw.Listen, "/") {
		addr = raw.Listen
	}
	ln, err := proxy.Listen(addr)
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	p := &Proxy{Addr: ln.Addr().String(), Config: f, Registry: reg, Metrics: m, Server: srv, logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("proxytest: shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("proxytest: serve: %v", err)
		}
		if t.Failed() {
			t.Logf("proxy log:\n%s", logs.String())
		}
	})
	return p
}

// Rewriter builds the rewriter a configuration YAML describes, as serve and
// a reload build it, for a test that swaps it in with SetRewriter.
func Rewriter(t testing.TB, yamlConfig string) *rewrite.Rewriter {
	t.Helper()
	f, err := config.Parse([]byte(yamlConfig), "proxytest.yaml")
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	rw, err := server.NewRewriter(f)
	if err != nil {
		t.Fatalf("proxytest: %v", err)
	}
	return rw
}

// DSN is a connection URL through the proxy (sslmode=disable).
func (p *Proxy) DSN(user, password, db string) string {
	if db == "" {
		db = "postgres"
	}
	if strings.HasPrefix(p.Addr, "/") {
		// libpq-style clients find a Unix socket as host=<dir> port=<N>
		// when the file is named .s.PGSQL.<N>.
		dir, file := filepath.Split(p.Addr)
		port := strings.TrimPrefix(file, ".s.PGSQL.")
		q := url.Values{"host": {filepath.Clean(dir)}, "port": {port}, "sslmode": {"disable"}}
		u := url.URL{Scheme: "postgres", Path: "/" + db, RawQuery: q.Encode()}
		if password != "" {
			u.User = url.UserPassword(user, password)
		} else {
			u.User = url.User(user)
		}
		return u.String()
	}
	return pgcluster.URL(p.Addr, user, password, db)
}

// Logs returns what the proxy has logged so far (text format, debug level).
func (p *Proxy) Logs() string { return p.logs.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Metric reads one series from the proxy's registry: the first of the
// metric family name whose labels include every name, value pair given
// (a counter's or a gauge's value; 0 when no series matches).
func (p *Proxy) Metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	families, err := p.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				match = match && have[labels[i]] == labels[i+1]
			}
			if match {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
