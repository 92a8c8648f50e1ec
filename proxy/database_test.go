package proxy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

// A database enters the proxy's table only once a login to it succeeds:
// a client naming databases that do not exist must not grow it, nor
// what /readyz lists.
func TestDatabasesOnlyAfterLogin(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "")
	ctx := context.Background()
	for _, name := range []string{"no_such_db_1", "no_such_db_2"} {
		dsn := p.DSN(pg.User, pg.Password, name)
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Close(ctx)
			t.Fatalf("login to %s succeeded (dsn %s); the test needs it to fail", name, dsn)
		}
	}
	c := connect(t, p.DSN(pg.User, pg.Password, ""))
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	dbs := p.Server.Databases()
	if len(dbs) != 1 || strings.HasPrefix(dbs[0].Name, "no_such_db") {
		t.Fatalf("Databases() = %+v, want only the database logged in to", dbs)
	}
}
