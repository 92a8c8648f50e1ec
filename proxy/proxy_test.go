package proxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testCtx bounds a test's database work so a proxy bug shows up as a
// failure, not a hung test binary.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx := testCtx(t)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestQueryThroughProxy(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "")
	c := connect(t, p.DSN(pg.User, pg.Password, ""))
	var one int
	var user string
	if err := c.QueryRow(testCtx(t), "SELECT 1, current_user").Scan(&one, &user); err != nil {
		t.Fatal(err)
	}
	if one != 1 || user != pg.User {
		t.Fatalf("got %d, %q", one, user)
	}
}
