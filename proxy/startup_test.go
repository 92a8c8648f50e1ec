package proxy_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

func TestStartupParametersAndGSSEncRequest(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "")
	cfg, err := pgx.ParseConfig(p.DSN(pg.User, pg.Password, "") + "&application_name=startup_test&options=-c%20statement_timeout%3D4321&search_path=pg_catalog")
	if err != nil {
		t.Fatal(err)
	}
	// Before pgx starts, ask for GSSAPI encryption on the raw socket, as
	// libpq with gssencmode=prefer does: the proxy must answer 'N' and go
	// on to read the StartupMessage.
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		req := make([]byte, 8)
		binary.BigEndian.PutUint32(req, 8)
		binary.BigEndian.PutUint32(req[4:], 80877104)
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
		answer := make([]byte, 1)
		if _, err := io.ReadFull(c, answer); err != nil || answer[0] != 'N' {
			return nil, fmt.Errorf("GSSEncRequest answered %q, %v", answer, err)
		}
		return c, nil
	}
	c, err := pgx.ConnectConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var app, timeout, path string
	if err := c.QueryRow(testCtx(t), "SELECT current_setting('application_name'), current_setting('statement_timeout'), current_setting('search_path')").Scan(&app, &timeout, &path); err != nil {
		t.Fatal(err)
	}
	if app != "startup_test" || timeout != "4321ms" || path != "pg_catalog" {
		t.Fatalf("startup parameters did not pass through: %q %q %q", app, timeout, path)
	}
	if got := c.PgConn().ParameterStatus("application_name"); got != "startup_test" {
		t.Fatalf("ParameterStatus application_name = %q", got)
	}
}

func TestUnsupportedProtocolVersion(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "")
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Protocol 2.0, which PostgreSQL dropped in version 14.
	pkt := []byte{0, 0, 0, 8, 0, 2, 0, 0}
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(c)
	if len(answer) == 0 || answer[0] != 'E' || !strings.Contains(string(answer), "08P01") || !strings.Contains(string(answer), "unsupported frontend protocol") {
		t.Fatalf("answer to protocol 2.0: %q", answer)
	}
}

func TestPingUpstream(t *testing.T) {
	pg := pgtest.Start(t, pgcluster.Options{})
	p := proxytest.Start(t, pg, "")
	if err := p.Server.PingUpstream(testCtx(t)); err != nil {
		t.Fatalf("ping a live upstream: %v", err)
	}
	pg.Kill()
	err := p.Server.PingUpstream(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), pg.Addr()) {
		t.Fatalf("ping a dead upstream: want an error naming %s, got %v", pg.Addr(), err)
	}
}

// A client asking for protocol 3.2 gets whatever the server negotiates
// (PostgreSQL 15 answers NegotiateProtocolVersion with 3.0): the proxy
// relays the startup exchange without taking part in it, and the cancel
// key it records is whatever length the server sent.
func TestProtocolNegotiationPassesThrough(t *testing.T) {
	pg := pgtest.Shared(t)
	compare(t, targets(t, pg, ""), func(t *testing.T, dsn string) []any {
		c := connect(t, dsn+"&max_protocol_version=3.2")
		var n int
		if err := c.QueryRow(testCtx(t), "SELECT 7").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return []any{n, len(c.PgConn().SecretKey())}
	})
}

// PostgreSQL logs in the last of two "user" parameters. A startup packet
// naming user twice (a privileged role first) must not reach the server,
// or a proxy reading the first would bypass rewriting for an ordinary
// login.
func TestDuplicateStartupParameterRefused(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "privileged_roles: [postgres]\ntables: [{name: contacts}]\n")
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := []byte{0, 3, 0, 0}
	for _, kv := range []string{"user", pg.User, "user", "someone_else", "database", "postgres"} {
		body = append(append(body, kv...), 0)
	}
	body = append(body, 0)
	pkt := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	if _, err := c.Write(append(pkt, body...)); err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(c)
	if len(answer) == 0 || answer[0] != 'E' || !strings.Contains(string(answer), "08P01") ||
		!strings.Contains(string(answer), `parameter "user" twice`) {
		t.Fatalf("answer to a startup packet with two users: %q", answer)
	}
}
