package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/testpki"
)

// TestConsoleIsWired starts the console over TLS beside the proxy, logs
// in, counts a failed login on /metrics, and sees it stop with the server.
func TestConsoleIsWired(t *testing.T) {
	pg := pgtest.Shared(t)
	db, _ := dbWithRole(t, pg)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pki := testpki.New(t, "console")
	srv := start(t, configYAML(pg, []string{"contacts"}, fmt.Sprintf(`console:
  listen: 127.0.0.1:0
  dsn: %s
  users:
    - {name: support, password_hash: '%s', can: [restore]}
  tls: {cert_file: %s, key_file: %s}
`, pg.DSN(db), hash, pki.CertFile, pki.KeyFile)))
	addr := srv.ConsoleAddr()
	if addr == nil {
		t.Fatal("no console listener")
	}
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 30 * time.Second}
	fetch := func(user, pw string) (int, string) {
		req, _ := http.NewRequest("GET", "https://"+addr.String()+"/api/v1/tables", nil)
		req.SetBasicAuth(user, pw)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := fetch("support", "pw"); code != 200 || !strings.Contains(body, `{"name":"public.contacts","deleted":1,"can_restore":true,"can_purge":false}`) {
		t.Errorf("GET /api/v1/tables over TLS: %d %s", code, body)
	}
	if code, _ := fetch("support", "wrong"); code != 401 {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if n := scrape(t, srv.admin)["tombstone_console_login_failures_total"]; n != 1 {
		t.Errorf("tombstone_console_login_failures_total = %v, want 1", n)
	}
	if line := srv.logs.find("serving", "console=127.0.0.1:0", "console_tls=true"); line == "" {
		t.Errorf("the start is not logged with the console's address and TLS:\n%s", srv.logs)
	}
	// A reload keeps the console as it started, and says so.
	writeFile(t, srv.path, strings.Replace(configYAML(pg, []string{"contacts"}, fmt.Sprintf(`console:
  listen: 127.0.0.1:0
  dsn: %s
  users:
    - {name: support, password_hash: '%s', can: [restore, purge]}
  tls: {cert_file: %s, key_file: %s}
`, pg.DSN(db), hash, pki.CertFile, pki.KeyFile)), "listen: 127.0.0.1:0\nupstream", "listen: "+srv.Addr().String()+"\nupstream", 1))
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if srv.logs.find("takes effect only after a restart", "key=console") == "" {
		t.Errorf("a changed console section did not log that a restart is needed:\n%s", srv.logs)
	}
	if code, body := fetch("support", "pw"); code != 200 || !strings.Contains(body, `"can_purge":false`) {
		t.Errorf("after the reload: %d %s; want the console as it started", code, body)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		t.Error("the console still accepts connections after shutdown")
	}
}

// A console whose database cannot be reached stops the start, saying so.
func TestConsoleStartFailsWithoutDatabase(t *testing.T) {
	pg := pgtest.Shared(t)
	path := filepath.Join(t.TempDir(), "tombstone.yaml")
	writeFile(t, path, configYAML(pg, []string{"contacts"}, `console:
  listen: 127.0.0.1:0
  dsn: postgres://nobody@127.0.0.1:1/none?connect_timeout=2
  users: [{name: a, password_hash: '$2a$04$xFl/tE828ePTRAyByf8CWOa2DgMYcskkQJTmg0rPIAZeuFfQ3laG6'}]
`))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Start(cfg, Options{Registry: prometheus.NewRegistry()})
	if err == nil {
		srv.Shutdown(t.Context())
		t.Fatal("Start succeeded without the console's database")
	}
	if !strings.Contains(err.Error(), "console: connect to console.dsn") {
		t.Errorf("error %v does not say the console could not connect", err)
	}
}
