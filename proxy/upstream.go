package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// dialTimeout bounds one connection attempt to the upstream server.
const dialTimeout = 10 * time.Second

// Startup codes (the int32 after the length of a startup packet).
const (
	codeSSLRequest    = 80877103
	codeGSSEncRequest = 80877104
	codeCancelRequest = 80877102
)

var sslRequestPacket = func() (p [8]byte) {
	binary.BigEndian.PutUint32(p[0:], 8)
	binary.BigEndian.PutUint32(p[4:], codeSSLRequest)
	return p
}()

// UpstreamTLSMode is how the proxy secures its connection to PostgreSQL,
// with libpq's sslmode meanings.
type UpstreamTLSMode string

const (
	UpstreamTLSDisable    UpstreamTLSMode = "disable"     // plain connection
	UpstreamTLSPrefer     UpstreamTLSMode = "prefer"      // TLS when the server offers it, unverified
	UpstreamTLSRequire    UpstreamTLSMode = "require"     // TLS, unverified
	UpstreamTLSVerifyFull UpstreamTLSMode = "verify-full" // TLS, certificate checked against CAFile and the host name
)

// UpstreamTLS configures TLS between the proxy and PostgreSQL.
type UpstreamTLS struct {
	Mode   UpstreamTLSMode // empty means disable
	CAFile string          // PEM; required by verify-full
}

// upstreamTLSConfig turns UpstreamTLS into a *tls.Config, nil for disable.
// The configuration layer reports these mistakes first, at their keys;
// the checks here keep NewServer safe for any caller.
func upstreamTLSConfig(upstream string, u UpstreamTLS) (*tls.Config, error) {
	switch u.Mode {
	case UpstreamTLSDisable:
		return nil, nil
	case UpstreamTLSPrefer, UpstreamTLSRequire:
		// libpq's meaning: encrypt, but do not verify the server.
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil
	case UpstreamTLSVerifyFull:
		if u.CAFile == "" {
			return nil, fmt.Errorf("upstream_tls.mode verify-full needs upstream_tls.ca_file")
		}
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream_tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream_tls.ca_file %s: no PEM certificate found", u.CAFile)
		}
		if isUnixPath(upstream) {
			return nil, fmt.Errorf("upstream_tls.mode verify-full needs a host:port upstream (PostgreSQL has no TLS on Unix sockets)")
		}
		host, _, err := net.SplitHostPort(upstream)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", upstream, err)
		}
		return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}, nil
	default:
		return nil, fmt.Errorf("upstream_tls.mode %q is not one of disable, prefer, require, verify-full", u.Mode)
	}
}

// dialRaw opens a TCP or Unix-socket connection to the upstream.
func (s *Server) dialRaw(ctx context.Context) (net.Conn, error) {
	network := "tcp"
	if isUnixPath(s.opts.Upstream) {
		network = "unix"
	}
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, network, s.opts.Upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream %s unreachable: %w", s.opts.Upstream, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return withRawIO(c), nil
}

// dialUpstream connects and negotiates TLS per upstream_tls.mode.
func (s *Server) dialUpstream(ctx context.Context) (net.Conn, error) {
	c, err := s.dialRaw(ctx)
	if err != nil {
		return nil, err
	}
	if s.upstreamTLS == nil {
		return c, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(dialTimeout))
	}
	fail := func(format string, args ...any) (net.Conn, error) {
		c.Close()
		return nil, fmt.Errorf("upstream %s: "+format, append([]any{s.opts.Upstream}, args...)...)
	}
	if _, err := c.Write(sslRequestPacket[:]); err != nil {
		return fail("send SSLRequest: %v", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fail("read SSLRequest answer: %v", err)
	}
	switch b[0] {
	case 'S':
		tc := tls.Client(c, s.upstreamTLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("TLS handshake: %v", err)
		}
		_ = tc.SetDeadline(time.Time{})
		return tc, nil
	case 'N':
		if s.opts.UpstreamTLS.Mode == UpstreamTLSPrefer {
			_ = c.SetDeadline(time.Time{})
			return c, nil
		}
		return fail("server does not support TLS but upstream_tls.mode is %s", s.opts.UpstreamTLS.Mode)
	default:
		return fail("answered SSLRequest with %q: not a PostgreSQL server", b[0])
	}
}

// forwardCancel sends a CancelRequest packet to the upstream on a new
// connection, as a client would.
func (s *Server) forwardCancel(packet []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	c, err := s.dialUpstream(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(dialTimeout))
	if _, err := c.Write(packet); err != nil {
		return err
	}
	// The server closes the connection once it has read the request;
	// waiting for that keeps the cancel ordered before our reply.
	var b [1]byte
	_, _ = c.Read(b[:])
	return nil
}
