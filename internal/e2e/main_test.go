package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The login role applications use: not privileged, so Tombstone rewrites
// its statements. The superuser (pgcluster.SuperUser) is the privileged role.
const (
	appUser     = "tombstone_e2e_app"
	appPassword = "app-secret"
)

// schema is loaded into both databases of a differential run and into every
// end-to-end test database. The soft-delete columns have a different name in
// each table (configured per table in proxyConfig) so that NATURAL joins
// join on the intended key only, and so that per-table column settings are
// exercised. items is not a soft-delete table: Tombstone must leave it alone.
const schema = `
CREATE TABLE teams  (team_id int PRIMARY KEY, tname text NOT NULL, region int NOT NULL,
                     deleted_at timestamptz);
CREATE TABLE users  (user_id int PRIMARY KEY, team_id int, uname text NOT NULL, score int NOT NULL,
                     removed_at timestamptz, removed_by text);
CREATE TABLE orders (order_id int PRIMARY KEY, user_id int NOT NULL, item_id int, qty int NOT NULL,
                     gone_at timestamptz);
CREATE TABLE items  (item_id int PRIMARY KEY, iname text NOT NULL, price int NOT NULL);
INSERT INTO teams SELECT g, 'team' || g, 1 + g % 3 FROM generate_series(1, 8) g;
INSERT INTO users SELECT g, CASE WHEN g % 11 = 0 THEN NULL ELSE 1 + g % 9 END, 'u' || g, g * 7 % 10
  FROM generate_series(1, 40) g;
INSERT INTO orders SELECT g, 1 + g * 13 % 45, CASE WHEN g % 17 = 0 THEN NULL ELSE 1 + g % 11 END, 1 + g % 5
  FROM generate_series(1, 120) g;
INSERT INTO items SELECT g, 'item' || g, 1 + g * 3 % 20 FROM generate_series(1, 10) g;
`

// proxyConfig makes teams, users and orders soft-delete tables, each with
// its own column names; users also records who deleted a row.
const proxyConfig = `
privileged_roles: [postgres]
tables:
  - name: teams
  - name: users
    deleted_at: removed_at
    deleted_by: removed_by
  - name: orders
    deleted_at: gone_at
`

// softColumns are the columns a soft delete writes. They are NULL in every
// row a non-privileged session can see, on both sides of the differential
// test; only the RETURNING list of a soft DELETE shows them set.
var softColumns = map[string]bool{"deleted_at": true, "removed_at": true, "removed_by": true, "gone_at": true}

// newDB creates a database on the shared server loaded with schema and
// usable by the application role.
func newDB(t testing.TB) (pg *pgtest.Server, db string) {
	t.Helper()
	pg = pgtest.Shared(t)
	ensureAppRole(t, pg)
	db = pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, schema+`GRANT ALL ON ALL TABLES IN SCHEMA public TO `+appUser+`; GRANT CREATE ON SCHEMA public TO `+appUser)
	return pg, db
}

// ensureAppRole creates the application role once per server. Roles are
// cluster-wide, and a server given by TOMBSTONE_TEST_DSN may already have it.
func ensureAppRole(t testing.TB, pg *pgtest.Server) {
	t.Helper()
	pgtest.Exec(t, pg, "", `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+appUser+`') THEN
    CREATE ROLE `+appUser+` LOGIN PASSWORD '`+appPassword+`';
  END IF;
EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL; -- a concurrent test made it
END $$`)
}

// directDSN connects straight to PostgreSQL, bypassing Tombstone.
func directDSN(pg *pgtest.Server, user, password, db string) string {
	return pgcluster.URL(pg.Addr(), user, password, db)
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// pair is the end-to-end fixture: database soft holds soft-delete tables
// and is reached through Tombstone; database real has the identical schema,
// is reached directly, and its deletes are real. Doing the same thing on
// both and comparing what the client sees is how these tests know what
// Postgres itself would have answered.
type pair struct {
	pg     *pgtest.Server
	proxy  *proxytest.Proxy
	softDB string // database name
	realDB string // database name
	config string
}

func newPair(t testing.TB, config string) *pair {
	t.Helper()
	pg, soft := newDB(t)
	_, realDB := newDB(t)
	return &pair{pg: pg, proxy: proxytest.Start(t, pg, config), softDB: soft, realDB: realDB, config: config}
}

// softDSN reaches the soft-delete database through Tombstone as user.
func (p *pair) softDSN(user, password string) string { return p.proxy.DSN(user, password, p.softDB) }

// realDSN reaches the real-delete database directly as the application role.
func (p *pair) realDSN() string { return directDSN(p.pg, appUser, appPassword, p.realDB) }

// super connects to the soft-delete database directly as the superuser, to
// look at what is really on disk.
func (p *pair) super(t testing.TB) *pgx.Conn {
	return connect(t, directDSN(p.pg, p.pg.User, p.pg.Password, p.softDB))
}

// scalar runs a one-value query.
func scalar[T any](t testing.TB, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(testCtx(t), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}
