package proxy_test

import (
	"crypto/tls"
	"errors"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
	"github.com/tombstone-proxy/tombstone/internal/testpki"
)

// startTLSCluster starts a cluster with ssl = on using pki's certificate.
func startTLSCluster(t *testing.T, pki testpki.PKI) *pgtest.Server {
	return pgtest.Start(t, pgcluster.Options{
		Settings: []string{"ssl = on"},
		Setup: func(dataDir string) error {
			for _, name := range []string{"server.crt", "server.key"} {
				data, err := os.ReadFile(filepath.Join(pki.Dir, name))
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
	serverPKI := testpki.New(t, "postgres")
	proxyPKI := testpki.New(t, "tombstone")
	pg := startTLSCluster(t, serverPKI)
	for _, mode := range []string{"require", "verify-full", "prefer"} {
		t.Run("upstream_"+mode, func(t *testing.T) {
			p := proxytest.Start(t, pg, "tls: {cert_file: "+proxyPKI.CertFile+", key_file: "+proxyPKI.KeyFile+"}\n"+
				"upstream_tls: {mode: "+mode+", ca_file: "+serverPKI.CAFile+"}\n")
			// verify-full to the proxy with its CA. With TLS on both sides
			// SCRAM channel binding cannot work (see
			// TestChannelBindingAcrossTwoTLSSessions), so it is disabled.
			dsn := withSSL(t, p.DSN(pg.User, pg.Password, ""), "sslmode", "verify-full", "sslrootcert", proxyPKI.CAFile, "channel_binding", "disable")
			c := connect(t, dsn)
			if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
				t.Fatalf("client connection is %T, want TLS", c.PgConn().Conn())
			}
			var upstreamSSL bool
			if err := c.QueryRow(testCtx(t), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&upstreamSSL); err != nil || !upstreamSSL {
				t.Fatalf("upstream connection ssl=%v (%v), want TLS", upstreamSSL, err)
			}
			env := append(libpqEnv(t, p.DSN(pg.User, pg.Password, "")), "PGSSLMODE=verify-full", "PGSSLROOTCERT="+proxyPKI.CAFile, "PGCHANNELBINDING=disable")
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
		p := proxytest.Start(t, pg, "upstream_tls: {mode: verify-full, ca_file: "+proxyPKI.CAFile+"}\n")
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
	serverPKI := testpki.New(t, "postgres")
	proxyPKI := testpki.New(t, "tombstone")
	pg := startTLSCluster(t, serverPKI)
	clientTLS := "tls: {cert_file: " + proxyPKI.CertFile + ", key_file: " + proxyPKI.KeyFile + "}\n"
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
