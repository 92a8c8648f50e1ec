package server

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/proxy"
)

func parse(t *testing.T, yamlText string) *config.File {
	t.Helper()
	f, err := config.Parse([]byte(yamlText), "spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The spec carries the folded names, the defaults and the cascades.
func TestPolicySpec(t *testing.T) {
	f := parse(t, `
mode: shadow
privileged_roles: [postgres]
privileged_member_of: [bypass]
defaults: {deleted_by: Removed_By}
tables:
  - name: Contacts
    cascade:
      - {table: Orders, column: Contact_ID}
      - {table: 'Billing."Line Items"', column: '"ContactId"'}
  - name: 'app."Mixed Case"'
    deleted_at: '"Gone"'
`)
	want := policy.Spec{
		Mode:               policy.ModeShadow,
		PrivilegedRoles:    []string{"postgres"},
		PrivilegedMemberOf: []string{"bypass"},
		Tables: []policy.TableSpec{
			{Name: "contacts", DeletedAt: "deleted_at", DeletedBy: "removed_by", Cascade: []policy.CascadeSpec{
				{Table: "orders", Column: "contact_id"},
				{Schema: "billing", Table: "Line Items", Column: "ContactId"},
			}},
			{Schema: "app", Name: "Mixed Case", DeletedAt: "Gone", DeletedBy: "removed_by"},
		},
	}
	if got := PolicySpec(f); !reflect.DeepEqual(got, want) {
		t.Fatalf("PolicySpec:\n got %+v\nwant %+v", got, want)
	}
	p, err := NewPolicy(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Lookup("", "contacts"); !ok {
		t.Error(`tables: [{name: Contacts}] does not match contacts, the name PostgreSQL folds "DELETE FROM Contacts" to`)
	}
	if _, ok := p.Lookup("app", "Mixed Case"); !ok {
		t.Error(`app."Mixed Case" does not match its exact name`)
	}
}

// A cascade cycle is a configuration error: Check (check-config) and
// NewRewriter (serve and reload) both report it, naming the file.
func TestCascadeCycleFailsCheckAndStart(t *testing.T) {
	f := parse(t, `
tables:
  - name: contacts
    cascade: [{table: orders, column: contact_id}]
  - name: orders
    cascade: [{table: Contacts, column: order_id}]
`)
	for name, err := range map[string]error{"Check": Check(f), "NewRewriter": func() error { _, err := NewRewriter(f); return err }()} {
		if err == nil || !strings.Contains(err.Error(), "spec.yaml: tables: declared cascades form a cycle: contacts -> orders -> contacts") {
			t.Errorf("%s = %v, want the cycle named with the file", name, err)
		}
	}
	if _, err := Start(f, Options{Registry: prometheus.NewRegistry()}); err == nil || !strings.Contains(err.Error(), "form a cycle") {
		t.Errorf("Start = %v, want the cycle", err)
	}
}

func TestProxyOptions(t *testing.T) {
	f := parse(t, "upstream: db.internal:5433\nmax_message_size: 2MiB\nupstream_tls: {mode: require, ca_file: /etc/hostname}\n")
	opts, err := ProxyOptions(f, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Upstream != "db.internal:5433" || opts.MaxMessageSize != 2<<20 || opts.ClientTLS != nil ||
		opts.UpstreamTLS != (proxy.UpstreamTLS{Mode: proxy.UpstreamTLSRequire, CAFile: "/etc/hostname"}) {
		t.Errorf("ProxyOptions = %+v", opts)
	}
	// The modes mean the same in both packages.
	for _, m := range []config.UpstreamTLSMode{config.UpstreamTLSDisable, config.UpstreamTLSPrefer, config.UpstreamTLSRequire, config.UpstreamTLSVerifyFull} {
		switch proxy.UpstreamTLSMode(m) {
		case proxy.UpstreamTLSDisable, proxy.UpstreamTLSPrefer, proxy.UpstreamTLSRequire, proxy.UpstreamTLSVerifyFull:
		default:
			t.Errorf("config's upstream_tls.mode %q is not one of proxy's", m)
		}
	}
	if config.DefaultMaxMessageSize != proxy.DefaultMaxMessageSize {
		t.Errorf("default max_message_size: config %d, proxy %d", config.DefaultMaxMessageSize, proxy.DefaultMaxMessageSize)
	}
	// A key pair that does not load fails Check as it fails serve.
	f = parse(t, "tls: {cert_file: /etc/hostname, key_file: /etc/hostname}\n")
	if err := Check(f); err == nil || !strings.Contains(err.Error(), "spec.yaml: tls.cert_file/tls.key_file:") {
		t.Errorf("Check with an unusable key pair = %v", err)
	}
}

func TestReadyDetail(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	got := readyDetail([]proxy.DatabaseStatus{
		{Name: "app", LoadedAt: at, Problems: []policy.Problem{{Table: "billing.invoices", Message: "configured table billing.invoices does not exist\nin this database"}}},
		{Name: "fresh"},
		{Name: "broken", Err: "permission denied"},
		{Name: "ok", LoadedAt: at},
	})
	want := `ok (1 configuration problems; see below)
database "app": catalog read 2026-12-01T10:00:00Z, 1 problems
  problem: billing.invoices: configured table billing.invoices does not exist in this database
database "fresh": catalog not read yet; soft-delete tables enforced by name
database "broken": catalog never read; soft-delete tables enforced by name only; the last read failed: permission denied
database "ok": catalog read 2026-12-01T10:00:00Z, 0 problems
`
	if got != want {
		t.Errorf("readyDetail:\n%s\nwant\n%s", got, want)
	}
	if got := readyDetail(nil); got != "ok\n" {
		t.Errorf("readyDetail(nil) = %q, want ok", got)
	}
}
