package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

// testPKI is a throwaway CA and a certificate it signed for 127.0.0.1 and
// localhost, written as PEM files.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
}

func newPKI(t *testing.T, commonName string) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: commonName + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{dir: dir, caFile: filepath.Join(dir, "ca.crt"), certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key")}
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.caFile, "CERTIFICATE", caDER)
	write(p.certFile, "CERTIFICATE", der)
	write(p.keyFile, "EC PRIVATE KEY", keyDER)
	return p
}

// startTLSCluster starts a cluster with ssl = on using pki's certificate.
func startTLSCluster(t *testing.T, pki testPKI) *pgtest.Server {
	return pgtest.Start(t, pgcluster.Options{
		Settings: []string{"ssl = on"},
		Setup: func(dataDir string) error {
			for _, name := range []string{"server.crt", "server.key"} {
				data, err := os.ReadFile(filepath.Join(pki.dir, name))
				if err != nil {
					return err
				}
				dst := filepath.Join(dataDir, name)
				if err := os.WriteFile(dst, data, 0o600); err != nil {
					return err
				}
				// The server runs as OS user postgres when the tests run as root.
				if os.Geteuid() == 0 {
					u, err := user.Lookup("postgres")
					if err != nil {
						return err
					}
					uid, _ := strconv.Atoi(u.Uid)
					gid, _ := strconv.Atoi(u.Gid)
					if err := os.Chown(dst, uid, gid); err != nil {
						return err
					}
				}
			}
			return nil
		},
	})
}

// withSSL replaces sslmode in a postgres:// URL and adds more parameters.
func withSSL(t *testing.T, dsn string, params ...string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func TestClientTLSAndUpstreamTLS(t *testing.T) {
	serverPKI := newPKI(t, "postgres")
	proxyPKI := newPKI(t, "tombstone")
	pg := startTLSCluster(t, serverPKI)
	for _, mode := range []string{"require", "verify-full", "prefer"} {
		t.Run("upstream_"+mode, func(t *testing.T) {
			p := proxytest.Start(t, pg, "tls: {cert_file: "+proxyPKI.certFile+", key_file: "+proxyPKI.keyFile+"}\n"+
				"upstream_tls: {mode: "+mode+", ca_file: "+serverPKI.caFile+"}\n")
			// verify-full to the proxy with its CA. With TLS on both sides
			// SCRAM channel binding cannot work (see
			// TestChannelBindingAcrossTwoTLSSessions), so it is disabled.
			dsn := withSSL(t, p.DSN(pg.User, pg.Password, ""), "sslmode", "verify-full", "sslrootcert", proxyPKI.caFile, "channel_binding", "disable")
			c := connect(t, dsn)
			if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
				t.Fatalf("client connection is %T, want TLS", c.PgConn().Conn())
			}
			var upstreamSSL bool
			if err := c.QueryRow(testCtx(t), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&upstreamSSL); err != nil || !upstreamSSL {
				t.Fatalf("upstream connection ssl=%v (%v), want TLS", upstreamSSL, err)
			}
			env := append(libpqEnv(t, p.DSN(pg.User, pg.Password, "")), "PGSSLMODE=verify-full", "PGSSLROOTCERT="+proxyPKI.caFile, "PGCHANNELBINDING=disable")
			if out := run(t, env, "", "psql", "-X", "-A", "-t", "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); strings.TrimSpace(out) != "t" {
				t.Fatalf("psql over TLS: %q", out)
			}
			// A client that does not ask for TLS is still served.
			plain := connect(t, p.DSN(pg.User, pg.Password, ""))
			if _, ok := plain.PgConn().Conn().(*tls.Conn); ok {
				t.Fatal("sslmode=disable connection is TLS")
			}
		})
	}
	t.Run("verify-full_wrong_CA", func(t *testing.T) {
		p := proxytest.Start(t, pg, "upstream_tls: {mode: verify-full, ca_file: "+proxyPKI.caFile+"}\n")
		_, err := pgx.Connect(testCtx(t), p.DSN(pg.User, pg.Password, ""))
		if code := pgCode(err); code != "08006" || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("want 08006 naming the certificate problem, got %v", err)
		}
	})
}

func TestUpstreamTLSModesAgainstPlainServer(t *testing.T) {
	pg := pgtest.Shared(t) // ssl = off
	p := proxytest.Start(t, pg, "upstream_tls: {mode: prefer}\n")
	c := connect(t, p.DSN(pg.User, pg.Password, ""))
	var one int
	if err := c.QueryRow(testCtx(t), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("prefer must fall back to plain: %v", err)
	}
	p = proxytest.Start(t, pg, "upstream_tls: {mode: require}\n")
	_, err := pgx.Connect(testCtx(t), p.DSN(pg.User, pg.Password, ""))
	if code := pgCode(err); code != "08006" || !strings.Contains(err.Error(), "does not support TLS") {
		t.Fatalf("require against a server without TLS: want 08006, got %v", err)
	}
	// Without tls configured the proxy answers SSLRequest with 'N':
	// sslmode=require fails the way it does against such a server.
	_, err = pgx.Connect(testCtx(t), withSSL(t, p.DSN(pg.User, pg.Password, ""), "sslmode", "require"))
	if err == nil || !strings.Contains(err.Error(), "server refused TLS connection") {
		t.Fatalf("sslmode=require against a proxy without tls: %v", err)
	}
}

// SCRAM channel binding ties a login to one TLS session. The proxy
// withdraws SCRAM-SHA-256-PLUS, so a TLS client that could bind says so
// ("y"), and a server on TLS rejects that as a downgrade. The login works
// whenever only one side uses TLS; with both, the client gets an error
// that says what to change.
func TestChannelBindingAcrossTwoTLSSessions(t *testing.T) {
	serverPKI := newPKI(t, "postgres")
	proxyPKI := newPKI(t, "tombstone")
	pg := startTLSCluster(t, serverPKI)
	clientTLS := "tls: {cert_file: " + proxyPKI.certFile + ", key_file: " + proxyPKI.keyFile + "}\n"
	tlsDSN := func(p *proxytest.Proxy, binding string) string {
		return withSSL(t, p.DSN(pg.User, pg.Password, ""), "sslmode", "require", "channel_binding", binding)
	}
	// Client TLS, plain upstream: the server cannot bind, so "y" is fine.
	p := proxytest.Start(t, pg, clientTLS+"upstream_tls: {mode: disable}\n")
	connect(t, tlsDSN(p, "prefer"))
	// Plain client, TLS upstream: the client says "n".
	p = proxytest.Start(t, pg, "upstream_tls: {mode: require}\n")
	connect(t, withSSL(t, p.DSN(pg.User, pg.Password, ""), "channel_binding", "prefer"))
	// TLS on both sides.
	p = proxytest.Start(t, pg, clientTLS+"upstream_tls: {mode: require}\n")
	connect(t, tlsDSN(p, "disable"))
	_, err := pgx.Connect(testCtx(t), tlsDSN(p, "prefer"))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Hint, "channel_binding=disable") {
		t.Fatalf("want 28000 with a hint, got %v", err)
	}
	// And channel_binding=require fails on the client, as it would against
	// any server that offers no SCRAM-SHA-256-PLUS.
	if _, err := pgx.Connect(testCtx(t), tlsDSN(p, "require")); err == nil || !strings.Contains(err.Error(), "channel binding required") {
		t.Fatalf("channel_binding=require: %v", err)
	}
}
