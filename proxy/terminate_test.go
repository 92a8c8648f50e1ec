package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

// A client that says goodbye (Terminate) and keeps reading until the
// proxy closes, as node-postgres does after pool.end(), must see a clean
// close: the server's EOF after Terminate is not a lost upstream. Before
// the session recorded Terminate as its end before forwarding it, some of
// these got FATAL 08006 and the upstream error counter rose.
func TestTerminateClosesCleanly(t *testing.T) {
	pg := pgtest.Start(t, pgcluster.Options{})
	p := proxytest.Start(t, pg, "")
	const rounds = 150
	for i := range rounds {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := pgconn.Connect(ctx, p.DSN(pg.User, pg.Password, ""))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		hc, err := conn.Hijack()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		hc.Frontend.Send(&pgproto3.Query{String: "SELECT 1"})
		hc.Frontend.Send(&pgproto3.Terminate{})
		if err := hc.Frontend.Flush(); err != nil {
			t.Fatal(err)
		}
		_ = hc.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			msg, err := hc.Frontend.Receive()
			if err != nil {
				var ne net.Error
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !(errors.As(err, &ne) && !ne.Timeout()) {
					t.Fatalf("round %d: reading after Terminate: %v", i, err)
				}
				break
			}
			if e, ok := msg.(*pgproto3.ErrorResponse); ok {
				t.Fatalf("round %d: after Terminate the client got %s %s: %s", i, e.Severity, e.Code, e.Message)
			}
		}
		hc.Conn.Close()
	}
	if n := p.Metric(t, "tombstone_upstream_errors_total"); n != 0 {
		t.Errorf("tombstone_upstream_errors_total = %v after %d clean goodbyes, want 0", n, rounds)
	}
}
