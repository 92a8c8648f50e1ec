package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "console"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "console.crt"), filepath.Join(dir, "console.key")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

// TestConsoleIsWired starts the console over TLS beside the proxy, logs
// in, counts a failed login on /metrics, and sees it stop with the server.
func TestConsoleIsWired(t *testing.T) {
	pg := pgtest.Shared(t)
	db, _ := dbWithRole(t, pg)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := selfSigned(t, t.TempDir())
	srv := start(t, configYAML(pg, []string{"contacts"}, fmt.Sprintf(`console:
  listen: 127.0.0.1:0
  dsn: %s
  users:
    - {name: support, password_hash: '%s', can: [restore]}
  tls: {cert_file: %s, key_file: %s}
`, pg.DSN(db), hash, cert, key)))
	addr := srv.ConsoleAddr()
	if addr == nil {
		t.Fatal("no console listener")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 30 * time.Second}
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
