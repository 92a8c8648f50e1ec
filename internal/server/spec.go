package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/proxy"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// This file is the one place that turns the configuration file into what
// the working packages take: a policy.Spec and proxy.Options. policy and
// proxy know nothing of the file format.

// PolicySpec is what a validated configuration asks of the policy. Names
// are already folded by config validation.
func PolicySpec(f *config.File) policy.Spec {
	spec := policy.Spec{
		Mode:               policy.Mode(f.Mode),
		PrivilegedRoles:    f.PrivilegedRoles,
		PrivilegedMemberOf: f.PrivilegedMemberOf,
		Tables:             make([]policy.TableSpec, 0, len(f.Tables)),
		Audit:              policy.RelName{Schema: f.Audit.Schema, Name: f.Audit.Relation},
	}
	for _, t := range f.Tables {
		ts := policy.TableSpec{
			Schema: t.Schema, Name: t.Relation,
			DeletedAt: t.DeletedAt, DeletedBy: t.DeletedBy, DeletedReason: t.DeletedReason,
			AllowRestore: t.AllowRestore, Retention: time.Duration(t.Retention),
		}
		for _, c := range t.Cascade {
			ts.Cascade = append(ts.Cascade, policy.CascadeSpec{Schema: c.Schema, Table: c.Relation, Column: c.Column})
		}
		spec.Tables = append(spec.Tables, ts)
	}
	return spec
}

// NewPolicy builds the name-only policy a configuration describes. Its
// error (declared cascades that form a cycle) is a configuration error,
// named with the file.
func NewPolicy(f *config.File) (*policy.Policy, error) {
	p, err := policy.New(PolicySpec(f))
	if err != nil {
		if f.Path != "" {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		return nil, err
	}
	return p, nil
}

// NewRewriter builds the policy and its rewriter, with the configured
// cache size.
func NewRewriter(f *config.File) (*rewrite.Rewriter, error) {
	p, err := NewPolicy(f)
	if err != nil {
		return nil, err
	}
	return rewrite.New(p, int64(f.RewriteCacheSize)), nil
}

// ProxyOptions builds the proxy's options from a validated configuration,
// loading the client certificate it names.
func ProxyOptions(f *config.File, logger *slog.Logger, m *metrics.Metrics) (proxy.Options, error) {
	opts := proxy.Options{
		Upstream:       f.Upstream,
		UpstreamTLS:    proxy.UpstreamTLS{Mode: proxy.UpstreamTLSMode(f.UpstreamTLS.Mode), CAFile: f.UpstreamTLS.CAFile},
		MaxMessageSize: int(f.MaxMessageSize),
		Logger:         logger,
		Metrics:        m,
	}
	if f.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(f.TLS.CertFile, f.TLS.KeyFile)
		if err != nil {
			return proxy.Options{}, fmt.Errorf("tls.cert_file/tls.key_file: %w", err)
		}
		opts.ClientTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return opts, nil
}

// Check does what Start does with a configuration short of opening
// anything: it builds the policy (a cascade cycle fails here) and loads
// the TLS key pair. check-config calls it so that it and serve agree.
func Check(f *config.File) error {
	if _, err := NewPolicy(f); err != nil {
		return err
	}
	_, err := ProxyOptions(f, nil, nil)
	if err == nil {
		_, err = consoleTLS(f.Console)
	}
	if err != nil {
		if f.Path != "" {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		return err
	}
	return nil
}
