package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
	"github.com/tombstone-proxy/tombstone/proxy"
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

// The session must know that the client said goodbye before the server
// can answer the Terminate by closing, whatever the scheduler does: here
// the client-to-server goroutine is held for 50ms right after it forwarded
// each message, so the server's EOF always reaches the other goroutine
// first. When Terminate was recorded only after forwarding (issue 14),
// every round of this test got FATAL 08006 and counted an upstream error.
func TestTerminateRecordedBeforeServerCloses(t *testing.T) {
	pg := pgtest.Shared(t)
	for _, tc := range []struct{ name, config string }{
		{"rewritten session", "tables:\n  - name: contacts\n"},
		{"privileged session", "privileged_roles: [" + pg.User + "]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := proxytest.Start(t, pg, tc.config)
			proxy.SetAfterForward(p.Server, func(typ byte) {
				if typ == 'X' {
					time.Sleep(50 * time.Millisecond)
				}
			})
			const rounds = 10
			for i := range rounds {
				if err := connectAndTerminate(p.DSN(pg.User, pg.Password, "")); err != nil {
					t.Errorf("round %d: %v", i, err)
				}
			}
			if n := p.Metric(t, "tombstone_upstream_errors_total"); n != 0 {
				t.Errorf("tombstone_upstream_errors_total = %v after %d clean goodbyes, want 0", n, rounds)
			}
			if strings.Contains(p.Logs(), "upstream connection lost") {
				t.Errorf("the proxy logged a lost upstream for clients that sent Terminate")
			}
		})
	}
}

// Many clients saying goodbye at once, as a pool's end() does: the race
// between the server's EOF and the session noting the Terminate is widest
// when the goroutines that forward it wait for a CPU. Each client sends
// Terminate on an idle connection, right after ReadyForQuery, and reads
// until the proxy closes. No client may get an ErrorResponse and the
// upstream error counter must not move.
func TestTerminateUnderLoadClosesCleanly(t *testing.T) {
	// trust: the logins are not what is tested, and SCRAM's key
	// derivation would make each round trip cost milliseconds of CPU.
	pg := pgtest.Start(t, pgcluster.Options{
		Settings: []string{"max_connections = 120"},
		HBA:      "local all all trust\nhost all all 127.0.0.1/32 trust\n",
	})
	p := proxytest.Start(t, pg, "privileged_roles: [nobody]\ntables:\n  - name: contacts\n")
	const workers, rounds = 24, 15
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			errs <- func() error {
				for i := range rounds {
					if err := connectAndTerminate(p.DSN(pg.User, pg.Password, "")); err != nil {
						return fmt.Errorf("worker %d round %d: %w", w, i, err)
					}
				}
				return nil
			}()
		}()
	}
	failed := 0
	for range workers {
		if err := <-errs; err != nil {
			failed++
			if failed <= 5 {
				t.Error(err)
			}
		}
	}
	if n := p.Metric(t, "tombstone_upstream_errors_total"); n != 0 {
		t.Errorf("tombstone_upstream_errors_total = %v after %d clean goodbyes, want 0", n, workers*rounds)
	}
	if strings.Contains(p.Logs(), "upstream connection lost") {
		t.Errorf("the proxy logged a lost upstream for clients that sent Terminate")
	}
}

// connectAndTerminate logs in, sends Terminate and reads until the
// connection closes; an ErrorResponse on the way is an error.
func connectAndTerminate(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	hc, err := conn.Hijack()
	if err != nil {
		return err
	}
	defer hc.Conn.Close()
	hc.Frontend.Send(&pgproto3.Terminate{})
	if err := hc.Frontend.Flush(); err != nil {
		return err
	}
	_ = hc.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		msg, err := hc.Frontend.Receive()
		if err != nil {
			var ne net.Error
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &ne) && !ne.Timeout()) {
				return nil
			}
			return fmt.Errorf("reading after Terminate: %w", err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			return fmt.Errorf("after Terminate the client got %s %s: %s", e.Severity, e.Code, e.Message)
		}
	}
}
