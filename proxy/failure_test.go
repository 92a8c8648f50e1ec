package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

// waitFor polls cond until it holds or the test's context ends; it waits
// for the server to reach a state, it does not time anything.
func waitFor(t *testing.T, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	ctx := testCtx(t)
	for !cond(ctx) {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// backends counts the server backends of an application; with running,
// only those executing a query now.
func backends(ctx context.Context, pg *pgtest.Server, app string, running bool) (int, error) {
	c, err := pgx.Connect(ctx, pg.DSN(""))
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	var n int
	err = c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND (wait_event = 'PgSleep' OR NOT $2)", app, running).Scan(&n)
	return n, err
}

// waitForQuery waits until a backend of the application sleeps in
// pg_sleep: the test's own query, not the catalog read the proxy runs on
// the same backend before the client gets control.
func waitForQuery(t *testing.T, pg *pgtest.Server, app string) {
	t.Helper()
	waitFor(t, "the query of "+app+" to start", func(ctx context.Context) bool {
		n, err := backends(ctx, pg, app, true)
		return err == nil && n == 1
	})
}

func TestUpstreamKilledMidQuery(t *testing.T) {
	pg := pgtest.Start(t, pgcluster.Options{})
	p := proxytest.Start(t, pg, "")
	c := connect(t, p.DSN(pg.User, pg.Password, "")+"&application_name=doomed")
	errc := make(chan error, 1)
	go func() {
		_, err := c.Exec(testCtx(t), "SELECT pg_sleep(60)")
		errc <- err
	}()
	waitForQuery(t, pg, "doomed")
	pg.Kill()
	err := <-errc // the test context bounds this: a hang fails the test
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" || pe.Severity != "FATAL" {
		t.Fatalf("want FATAL 08006 after the upstream died, got %v", err)
	}
	if got := p.Metric(t, "tombstone_upstream_errors_total"); got != 1 {
		t.Fatalf("tombstone_upstream_errors_total = %v, want 1", got)
	}
	// New clients are told the upstream is unreachable, naming it.
	_, err = pgx.Connect(testCtx(t), p.DSN(pg.User, pg.Password, ""))
	if !errors.As(err, &pe) || pe.Code != "08006" || !strings.Contains(pe.Message, pg.Addr()) {
		t.Fatalf("connect to a dead upstream: want 08006 naming %s, got %v", pg.Addr(), err)
	}
}

func TestClientKilledMidQueryEndsBackend(t *testing.T) {
	pg := pgtest.Shared(t)
	for _, privileged := range []bool{false, true} {
		app := fmt.Sprintf("vanishing_%v", privileged)
		yaml := ""
		if privileged {
			yaml = "privileged_roles: [postgres]\n"
		}
		p := proxytest.Start(t, pg, yaml)
		c, err := pgx.Connect(testCtx(t), p.DSN(pg.User, pg.Password, "")+"&application_name="+app)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = c.Exec(context.Background(), "SELECT pg_sleep(120)") }()
		waitForQuery(t, pg, app)
		// Drop the client's socket without Terminate, as a crashed process would.
		c.PgConn().Conn().Close()
		waitFor(t, "the backend to go away", func(ctx context.Context) bool {
			n, err := backends(ctx, pg, app, false)
			return err == nil && n == 0
		})
	}
}

func TestMaxMessageSize(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "max_message_size: 1MiB\n")
	ctx := testCtx(t)
	c := connect(t, p.DSN(pg.User, pg.Password, ""))
	var n int
	if err := c.QueryRow(ctx, "SELECT length($1)", strings.Repeat("a", 1000_000)).Scan(&n); err != nil || n != 1000_000 {
		t.Fatalf("a message under the limit: %d, %v", n, err)
	}
	err := c.QueryRow(ctx, "SELECT length($1)", strings.Repeat("a", 1100_000)).Scan(&n)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08P01" || !strings.Contains(pe.Message, "max_message_size") {
		t.Fatalf("a message over the limit: want 08P01 naming max_message_size, got %v", err)
	}
	if !c.IsClosed() {
		if err := c.Ping(ctx); err == nil {
			t.Fatal("connection still usable after a protocol violation")
		}
	}
}

func TestShutdown(t *testing.T) {
	pg := pgtest.Shared(t)

	// Graceful: a session that ends before the deadline lets Shutdown
	// return nil, and new connections are refused at once.
	p := proxytest.Start(t, pg, "")
	c := connect(t, p.DSN(pg.User, pg.Password, ""))
	done := make(chan error, 1)
	go func() { done <- p.Server.Shutdown(testCtx(t)) }()
	waitFor(t, "the listener to close", func(context.Context) bool {
		conn, err := net.Dial("tcp", p.Addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	var one int
	if err := c.QueryRow(testCtx(t), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("open session during a graceful shutdown: %v", err)
	}
	c.Close(context.Background())
	if err := <-done; err != nil {
		t.Fatalf("Shutdown after the last session ended: %v", err)
	}

	// Deadline: a session still open (even inside a transaction) is
	// ended with FATAL 57P01.
	p = proxytest.Start(t, pg, "")
	c = connect(t, p.DSN(pg.User, pg.Password, ""))
	if _, err := c.Exec(testCtx(t), "BEGIN"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- p.Server.Shutdown(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown past its deadline returned %v", err)
	}
	_, err := c.Exec(testCtx(t), "SELECT 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57P01" {
		t.Fatalf("session open at the shutdown deadline: want 57P01, got %v", err)
	}
}

func TestCancelRequestForUnknownKeyIsDropped(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "")
	c := connect(t, p.DSN(pg.User, pg.Password, ""))
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// length 16, code 80877102, pid 1, secret 2: no session has this key.
	if _, err := conn.Write([]byte{0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 1, 0, 0, 0, 2}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if n, err := conn.Read(buf); n != 0 || err == nil {
		t.Fatalf("cancel connection answered %d bytes, %v; want it closed", n, err)
	}
	if !strings.Contains(p.Logs(), "cancel request for an unknown backend ignored") {
		t.Fatalf("no log of the ignored cancel:\n%s", p.Logs())
	}
	var one int
	if err := c.QueryRow(testCtx(t), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}
