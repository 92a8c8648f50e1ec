package e2e

// The schema-aware tests of issue 10: foreign keys, partitions and
// inheritance trees behave through Tombstone as they would on a hard
// delete. Each test builds schemaSQL in a soft-delete database (reached
// through Tombstone as the application role, after `tombstone migrate`'s
// plan has run there as the superuser) and in a hard-delete twin (reached
// directly), does the same thing on both and compares what the client
// sees; it then reads the soft-delete database directly as the superuser
// to check what was kept.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
	"github.com/tombstone-proxy/tombstone/internal/server"
)

// schemaSQL is loaded into both databases. Every table that is a
// soft-delete table on the soft side has a deleted_at column on both
// sides (always NULL on the twin, and NULL in every row the application
// sees through Tombstone), so that SELECT * compares.
const schemaSQL = `
CREATE TABLE customers   (id int PRIMARY KEY, name text NOT NULL, deleted_at timestamptz);
CREATE TABLE orders      (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE order_items (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE invoices    (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE RESTRICT, deleted_at timestamptz);
CREATE TABLE notes       (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE NO ACTION, body text);
CREATE TABLE tags        (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE, tag text);
CREATE TABLE prefs       (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE SET NULL, pref text);

CREATE TABLE a (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE c (id int PRIMARY KEY, b_id int NOT NULL REFERENCES b ON DELETE RESTRICT, deleted_at timestamptz);

CREATE TABLE regions (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE stores  (id int PRIMARY KEY, region_id int NOT NULL REFERENCES regions ON DELETE CASCADE, deleted_at timestamptz);

CREATE TABLE events (id int NOT NULL, at timestamptz NOT NULL, deleted_at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01 00:00+00') TO ('2026-01-01 00:00+00');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2027-01-01 00:00+00') PARTITION BY RANGE (at);
CREATE TABLE events_2026_h1 PARTITION OF events_2026 FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2026-07-01 00:00+00');
CREATE TABLE events_2026_h2 PARTITION OF events_2026 FOR VALUES FROM ('2026-07-01 00:00+00') TO ('2027-01-01 00:00+00');

CREATE TABLE animals (id int PRIMARY KEY, name text NOT NULL, deleted_at timestamptz);
CREATE TABLE dogs (breed text) INHERITS (animals);

CREATE TABLE contacts (id int PRIMARY KEY, name text NOT NULL, deleted_at timestamptz);
CREATE TABLE authors  (id int PRIMARY KEY, name text NOT NULL, deleted_at timestamptz);
CREATE TABLE posts    (id int PRIMARY KEY, author_id int, title text NOT NULL, deleted_at timestamptz);

CREATE TABLE staff (id int PRIMARY KEY, manager_id int REFERENCES staff ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE shipments (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders ON DELETE CASCADE, gone_at timestamptz);
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Refund Lines" (id int PRIMARY KEY, "Customer Id" int REFERENCES customers ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE memos (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE NO ACTION DEFERRABLE INITIALLY DEFERRED, body text);

CREATE TABLE accounts (id int UNIQUE NOT NULL, tenant int, no int, PRIMARY KEY (tenant, no), deleted_at timestamptz);
CREATE TABLE members  (id int PRIMARY KEY, tenant int, no bigint, FOREIGN KEY (tenant, no) REFERENCES accounts ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE audits   (id int PRIMARY KEY, tenant int, no int, FOREIGN KEY (no, tenant) REFERENCES accounts (no, tenant) ON DELETE RESTRICT, deleted_at timestamptz);
CREATE TABLE visits (id int NOT NULL, customer_id int REFERENCES customers ON DELETE CASCADE, at timestamptz NOT NULL, deleted_at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE visits_old PARTITION OF visits FOR VALUES FROM (MINVALUE) TO ('2026-01-01 00:00+00');
CREATE TABLE visits_new PARTITION OF visits FOR VALUES FROM ('2026-01-01 00:00+00') TO (MAXVALUE);
ALTER TABLE events ADD UNIQUE (id, at);
CREATE TABLE event_refs (id int PRIMARY KEY, event_id int, event_at timestamptz,
  FOREIGN KEY (event_id, event_at) REFERENCES events (id, at) ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE event_holds (id int PRIMARY KEY, event_id int, event_at timestamptz,
  FOREIGN KEY (event_id, event_at) REFERENCES events (id, at) ON DELETE RESTRICT);
CREATE TABLE vendors  (id int PRIMARY KEY, code text UNIQUE, deleted_at timestamptz);
CREATE TABLE supplies (id int PRIMARY KEY, vendor_code text REFERENCES vendors (code) ON DELETE CASCADE, deleted_at timestamptz);

INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 12) g;
INSERT INTO orders (id, customer_id) VALUES (10, 1), (11, 1), (12, 1), (20, 2), (30, 3), (40, NULL), (50, 5);
INSERT INTO order_items (id, order_id) VALUES (100, 10), (101, 10), (102, 11), (103, 12), (200, 20);
INSERT INTO invoices (id, customer_id) VALUES (1, 2);
INSERT INTO notes (id, customer_id, body) VALUES (1, 3, 'call back');
INSERT INTO tags (id, customer_id, tag) VALUES (1, 4, 'vip');
INSERT INTO prefs (id, customer_id, pref) VALUES (1, 7, 'email');
INSERT INTO a VALUES (1), (2);
INSERT INTO b (id, a_id) VALUES (1, 1), (2, 2);
INSERT INTO c (id, b_id) VALUES (1, 1), (2, 2);
INSERT INTO regions VALUES (1, 'north'), (2, 'south'), (3, 'east');
INSERT INTO stores (id, region_id) VALUES (1, 1), (2, 2);
INSERT INTO events (id, at) SELECT g, CASE WHEN g <= 4 THEN '2025-03-01 00:00+00'::timestamptz
  WHEN g <= 8 THEN '2026-03-01 00:00+00' ELSE '2026-09-01 00:00+00' END + g * interval '1 day' FROM generate_series(1, 12) g;
INSERT INTO animals (id, name) VALUES (1, 'cat'), (2, 'cow');
INSERT INTO dogs (id, name, breed) VALUES (3, 'rex', 'collie'), (4, 'fido', 'pug'), (5, 'spot', 'beagle');
INSERT INTO contacts (id, name) VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');
INSERT INTO authors (id, name) VALUES (1, 'ursula'), (2, 'iain');
INSERT INTO posts (id, author_id, title) VALUES (1, 1, 'p1'), (2, 1, 'p2'), (3, 1, 'p3'), (4, 2, 'p4');
INSERT INTO staff VALUES (1, NULL), (2, 1), (3, 2), (4, 3), (5, 2), (6, NULL), (7, 6);
INSERT INTO shipments (id, order_id) VALUES (1, 10), (2, 20), (3, 50);
INSERT INTO "Sales"."Refund Lines" (id, "Customer Id") VALUES (1, 1), (2, 5);
INSERT INTO memos (id, customer_id, body) VALUES (1, 9, 'deferred');
INSERT INTO accounts (id, tenant, no) VALUES (1, 1, 1), (2, 1, 2), (3, 2, 1), (4, 2, 2);
INSERT INTO members (id, tenant, no) VALUES (1, 1, 1), (2, 1, 2), (3, 2, 1), (4, NULL, 1), (5, 1, NULL);
INSERT INTO audits (id, tenant, no) VALUES (1, 2, 2), (2, 1, NULL), (3, NULL, 2);
INSERT INTO visits VALUES (1, 10, '2025-05-01 00:00+00'), (2, 10, '2026-05-01 00:00+00'), (3, 11, '2026-05-01 00:00+00');
INSERT INTO event_refs SELECT r, id, at FROM events, LATERAL (VALUES (id / 3)) v(r) WHERE id IN (3, 9);
INSERT INTO event_holds SELECT 1, id, at FROM events WHERE id = 4;
INSERT INTO vendors VALUES (1, 'acme'), (2, 'Acme'), (3, NULL);
INSERT INTO supplies (id, vendor_code) VALUES (1, 'acme'), (2, 'Acme'), (3, NULL);
`

// twinOnlySQL gives the twin the foreign key that authors' declared
// cascade stands for, so that the twin's real delete is the oracle.
const twinOnlySQL = `ALTER TABLE posts ADD FOREIGN KEY (author_id) REFERENCES authors ON DELETE CASCADE;`

// schemaConfig: notes, tags, prefs and regions are plain tables; the
// partitions of events and the children of animals are soft-delete tables
// because their parents are. Contacts is spelled as an unquoted identifier
// PostgreSQL folds to contacts.
const schemaConfig = `
privileged_roles: [postgres]
tables:
  - name: customers
  - name: orders
  - name: order_items
  - name: invoices
  - name: a
  - name: b
  - name: c
  - name: stores
  - name: events
  - name: animals
  - name: Contacts
  - name: authors
    cascade: [{table: posts, column: author_id}]
  - name: posts
  - name: staff
  - name: shipments
    deleted_at: gone_at
  - name: '"Sales"."Refund Lines"'
  - name: accounts
  - name: members
  - name: audits
  - name: visits
  - name: event_refs
  - name: vendors
  - name: supplies
`

// nCustomers is how many customers schemaSQL makes.
const nCustomers = 12

// schemaEnv is a soft-delete database and its hard-delete twin loaded
// with schemaSQL, and the three sessions the tests use.
type schemaEnv struct {
	ctx   context.Context
	px    *proxytest.Proxy
	app   *pgx.Conn // soft-delete database, through Tombstone, application role
	twin  *pgx.Conn // twin, directly, application role
	super *pgx.Conn // soft-delete database, directly, superuser

	appDSN, twinDSN string
	superProxyDSN   string // soft-delete database, through Tombstone, superuser
	pg              *pgtest.Server
	softDB          string
}

func newSchemaEnv(t *testing.T) *schemaEnv {
	t.Helper()
	pg := pgtest.Shared(t)
	ensureAppRole(t, pg)
	grants := `GRANT ALL ON ALL TABLES IN SCHEMA public, "Sales" TO ` + appUser + `; GRANT USAGE ON SCHEMA "Sales" TO ` + appUser + `;`
	softDB, realDB := pgtest.CreateDB(t, pg), pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, softDB, schemaSQL+grants)
	pgtest.Exec(t, pg, realDB, schemaSQL+twinOnlySQL+grants)
	px := proxytest.Start(t, pg, schemaConfig)
	env := &schemaEnv{ctx: testCtx(t), px: px, pg: pg, softDB: softDB}
	env.super = connect(t, directDSN(pg, pg.User, pg.Password, softDB))
	return env.finish(t, realDB)
}

// finish installs what tombstone migrate --apply installs, before the
// first application session makes the proxy read the soft database's
// catalog, and opens the application's connections through Tombstone and
// to the twin realDB. px, pg, softDB and super must be set.
func (env *schemaEnv) finish(t *testing.T, realDB string) *schemaEnv {
	t.Helper()
	spec := server.PolicySpec(env.px.Config)
	s, err := catalog.Read(env.ctx, env.super, spec)
	if err != nil {
		t.Fatalf("catalog.Read: %v", err)
	}
	if err := pgx.BeginFunc(env.ctx, env.super, func(tx pgx.Tx) error {
		for _, stmt := range catalog.Plan(spec, s) {
			if _, err := tx.Exec(env.ctx, stmt); err != nil {
				return fmt.Errorf("%w\nin statement:\n%s", err, stmt)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	env.appDSN, env.twinDSN = env.px.DSN(appUser, appPassword, env.softDB), directDSN(env.pg, appUser, appPassword, realDB)
	env.app, env.twin = connect(t, env.appDSN), connect(t, env.twinDSN)
	env.superProxyDSN = env.px.DSN(env.pg.User, env.pg.Password, env.softDB)
	return env
}

func simple(sql string) statement {
	return statement{SQL: sql, Mode: pgx.QueryExecModeSimpleProtocol}
}

// both runs sql through Tombstone and on the twin; a client must not be
// able to tell the answers apart. It returns the answer through Tombstone.
func (e *schemaEnv) both(t *testing.T, sql string) outcome {
	t.Helper()
	a, b := execute(e.ctx, e.app, simple(sql)), execute(e.ctx, e.twin, simple(sql))
	if d := a.diff(b, true); d != "" {
		t.Errorf("%s:\n%s", sql, d)
	}
	return a
}

// bothFail runs sql on both sides; both must fail with SQLSTATE code and
// the same message and detail, PostgreSQL's own on the twin.
func (e *schemaEnv) bothFail(t *testing.T, sql, code string) {
	t.Helper()
	a, b := execute(e.ctx, e.app, simple(sql)), execute(e.ctx, e.twin, simple(sql))
	pa, pb := pgErr(a.err), pgErr(b.err)
	if pb == nil || pb.Code != code {
		t.Fatalf("%s: on the twin got %v (tag %q), want SQLSTATE %s: the test's premise is wrong", sql, b.err, b.tag, code)
	}
	if pa == nil {
		t.Errorf("%s: through Tombstone got %v (tag %q, rows %v), want SQLSTATE %s as on the twin: %s",
			sql, a.err, a.tag, a.rows, code, pb.Message)
		return
	}
	if pa.Code != pb.Code {
		t.Errorf("%s: through Tombstone SQLSTATE %s (%s), on the twin %s (%s)", sql, pa.Code, pa.Message, pb.Code, pb.Message)
		return
	}
	if pa.Message != pb.Message {
		t.Errorf("%s: SQLSTATE %s as on the twin, but the message differs:\n  Tombstone %q\n  twin      %q", sql, code, pa.Message, pb.Message)
	}
	if pa.Detail != pb.Detail {
		t.Errorf("%s: SQLSTATE %s as on the twin, but the detail differs:\n  Tombstone %q\n  twin      %q", sql, code, pa.Detail, pb.Detail)
	}
}

// bothFailCode is bothFail for a statement whose message is documented to
// differ: it compares SQLSTATE and detail only.
func (e *schemaEnv) bothFailCode(t *testing.T, sql, code string) {
	t.Helper()
	a, b := execute(e.ctx, e.app, simple(sql)), execute(e.ctx, e.twin, simple(sql))
	pa, pb := pgErr(a.err), pgErr(b.err)
	if pb == nil || pb.Code != code {
		t.Fatalf("%s: on the twin got %v, want SQLSTATE %s: the test's premise is wrong", sql, b.err, code)
	}
	if pa == nil || pa.Code != pb.Code || pa.Detail != pb.Detail {
		t.Errorf("%s: through Tombstone %v (detail %q), on the twin %v (detail %q)", sql, a.err, detailOf(pa), b.err, pb.Detail)
	}
}

func detailOf(pe *pgconn.PgError) string {
	if pe == nil {
		return ""
	}
	return pe.Detail
}

// mustRun runs sql on conn and returns its command tag.
func (e *schemaEnv) mustRun(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	o := execute(e.ctx, conn, simple(sql))
	if o.err != nil {
		t.Fatalf("%s: %v", sql, o.err)
	}
	return o.tag
}

// refused runs sql through Tombstone only: it must fail with an error
// that names table (in its message, detail or hint).
func (e *schemaEnv) refused(t *testing.T, sql, table string) {
	t.Helper()
	o := execute(e.ctx, e.app, simple(sql))
	pe := pgErr(o.err)
	if pe == nil {
		t.Errorf("%s: got %v (tag %q), want a refusal naming %s", sql, o.err, o.tag, table)
		return
	}
	if all := pe.Message + " " + pe.Detail + " " + pe.Hint; !strings.Contains(all, table) {
		t.Errorf("%s: refused with SQLSTATE %s %q (detail %q, hint %q), which does not name %s", sql, pe.Code, pe.Message, pe.Detail, pe.Hint, table)
		return
	}
	t.Logf("%s: refused with SQLSTATE %s: %s (detail %q, hint %q)", sql, pe.Code, pe.Message, pe.Detail, pe.Hint)
}

// sameTables compares the tables' contents through Tombstone with the
// twin's, in id order.
func (e *schemaEnv) sameTables(t *testing.T, tables ...string) {
	t.Helper()
	for _, table := range tables {
		e.both(t, "SELECT * FROM "+table+" ORDER BY id")
	}
}

// onDisk reads table's rows directly on the soft-delete database: id to
// deleted_at (nil when live). ONLY: a parent's rows, not its children's.
func (e *schemaEnv) onDisk(t *testing.T, table string) map[int]*time.Time {
	t.Helper()
	return e.onDiskCol(t, table, "deleted_at")
}

func (e *schemaEnv) onDiskCol(t *testing.T, table, column string) map[int]*time.Time {
	t.Helper()
	rows, err := e.super.Query(e.ctx, "SELECT id, "+column+" FROM ONLY "+table)
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	out := map[int]*time.Time{}
	for rows.Next() {
		var id int
		var at *time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		out[id] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func fmtTime(at *time.Time) string {
	if at == nil {
		return "live"
	}
	return at.UTC().Format(time.RFC3339Nano)
}

// wantDisk checks the rows of table on disk: each id in want must be
// present with that deleted_at (nil: live), and the table must hold
// exactly count rows.
func (e *schemaEnv) wantDisk(t *testing.T, table string, count int, want map[int]*time.Time) {
	t.Helper()
	got := e.onDisk(t, table)
	if len(got) != count {
		t.Errorf("%s holds %d rows on disk, want %d (soft deletes keep rows): %v", table, len(got), count, got)
	}
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			t.Errorf("%s row %d is gone from disk, want it kept (%s)", table, id, fmtTime(w))
		case (g == nil) != (w == nil) || (g != nil && !g.Equal(*w)):
			t.Errorf("%s row %d: deleted_at %s, want %s", table, id, fmtTime(g), fmtTime(w))
		}
	}
}

// deletedAt is the deleted_at of row id of table on disk; the row must
// be there and soft-deleted.
func (e *schemaEnv) deletedAt(t *testing.T, table string, id int) *time.Time {
	t.Helper()
	at, ok := e.onDisk(t, table)[id]
	if !ok {
		t.Fatalf("%s row %d is gone from disk", table, id)
	}
	if at == nil {
		t.Fatalf("%s row %d is live on disk, want it soft-deleted", table, id)
	}
	return at
}

// 1. A cascade of three levels: customers → orders → order_items. The
// live children are soft-deleted with the customer's deleted_at; those
// deleted before keep theirs; the client sees the parent's DELETE 1 and
// afterwards what the twin shows after its real cascade.
func TestSchemaCascadeThreeLevels(t *testing.T) {
	e := newSchemaEnv(t)
	// Earlier deletes: item 101 alone, then order 12 (and its item 103
	// with it).
	e.both(t, "DELETE FROM order_items WHERE id = 101")
	e.both(t, "DELETE FROM orders WHERE id = 12")
	item101 := e.deletedAt(t, "order_items", 101)
	order12 := e.deletedAt(t, "orders", 12)
	if item103 := e.deletedAt(t, "order_items", 103); !item103.Equal(*order12) {
		t.Errorf("order 12's item 103 was soft-deleted at %s, the order at %s: want the same", fmtTime(item103), fmtTime(order12))
	}
	time.Sleep(10 * time.Millisecond) // so that a reused timestamp would show

	if o := e.both(t, "DELETE FROM customers WHERE id = 1"); o.tag != "DELETE 1" {
		t.Errorf("DELETE FROM customers WHERE id = 1: tag %q, want DELETE 1", o.tag)
	}
	at := e.deletedAt(t, "customers", 1)
	if at.Equal(*order12) || at.Equal(*item101) {
		t.Fatalf("the customer's deleted_at %s equals an earlier delete's", fmtTime(at))
	}
	e.wantDisk(t, "customers", nCustomers, map[int]*time.Time{1: at, 2: nil})
	e.wantDisk(t, "orders", 7, map[int]*time.Time{10: at, 11: at, 12: order12, 20: nil, 40: nil, 50: nil})
	e.wantDisk(t, "order_items", 5, map[int]*time.Time{100: at, 101: item101, 102: at, 103: order12, 200: nil})
	e.sameTables(t, "customers", "orders", "order_items")
	e.both(t, "SELECT o.id, count(i.id) FROM orders o LEFT JOIN order_items i ON i.order_id = o.id GROUP BY o.id ORDER BY o.id")
	// The extended protocol reports the same tag.
	if tag, err := e.app.Exec(e.ctx, "DELETE FROM customers WHERE id = $1", 5); err != nil || tag.String() != "DELETE 1" {
		t.Errorf("DELETE FROM customers WHERE id = $1 (5), extended protocol: %q, %v; want DELETE 1", tag, err)
	}
	if _, err := e.twin.Exec(e.ctx, "DELETE FROM customers WHERE id = $1", 5); err != nil {
		t.Fatal(err)
	}
	at5 := e.deletedAt(t, "customers", 5)
	e.wantDisk(t, "orders", 7, map[int]*time.Time{50: at5})
	e.sameTables(t, "customers", "orders", "order_items")
}

// 2. RESTRICT (invoices, soft) and NO ACTION (notes, plain) with live
// referencing rows: 23503 with PostgreSQL's wording, nothing changes.
// Soft-deleted invoices do not count.
func TestSchemaRestrictAndNoAction(t *testing.T) {
	e := newSchemaEnv(t)
	e.bothFail(t, "DELETE FROM customers WHERE id = 2", "23503")
	e.wantDisk(t, "customers", nCustomers, map[int]*time.Time{2: nil})
	e.wantDisk(t, "invoices", 1, map[int]*time.Time{1: nil})
	e.wantDisk(t, "orders", 7, map[int]*time.Time{20: nil})
	e.wantDisk(t, "order_items", 5, map[int]*time.Time{200: nil})
	// The same in a statement that also deletes a customer that could go.
	e.bothFail(t, "DELETE FROM customers WHERE id IN (2, 6)", "23503")
	e.wantDisk(t, "customers", nCustomers, map[int]*time.Time{2: nil, 6: nil})

	e.bothFail(t, "DELETE FROM customers WHERE id = 3", "23503")
	e.wantDisk(t, "customers", nCustomers, map[int]*time.Time{3: nil})
	e.wantDisk(t, "orders", 7, map[int]*time.Time{30: nil})
	if n := scalar[int](t, e.super, "SELECT count(*) FROM notes"); n != 1 {
		t.Errorf("notes holds %d rows, want 1", n)
	}
	e.sameTables(t, "customers", "orders", "invoices", "notes")

	// Once the invoice is soft-deleted, it no longer holds the customer.
	e.both(t, "DELETE FROM invoices WHERE customer_id = 2")
	if o := e.both(t, "DELETE FROM customers WHERE id = 2"); o.tag != "DELETE 1" {
		t.Errorf("DELETE of customer 2 after its invoice was deleted: tag %q, want DELETE 1", o.tag)
	}
	at := e.deletedAt(t, "customers", 2)
	e.wantDisk(t, "orders", 7, map[int]*time.Time{20: at})
	e.wantDisk(t, "order_items", 5, map[int]*time.Time{200: at})
	e.wantDisk(t, "invoices", 1, nil)
	if inv := e.deletedAt(t, "invoices", 1); inv.Equal(*at) {
		t.Errorf("invoice 1 has the customer's deleted_at %s; it was deleted before, on its own", fmtTime(at))
	}
	// And a plain NO ACTION child really deleted lets its parent go.
	e.both(t, "DELETE FROM notes WHERE customer_id = 3")
	if o := e.both(t, "DELETE FROM customers WHERE id = 3"); o.tag != "DELETE 1" {
		t.Errorf("DELETE of customer 3 after its note was deleted: tag %q, want DELETE 1", o.tag)
	}
	e.sameTables(t, "customers", "orders", "order_items", "invoices", "notes")
}

// 3. A plain child that ON DELETE CASCADE (tags) or SET NULL (prefs)
// would change: refused while such rows exist, nothing changes; without
// them the DELETE works.
func TestSchemaPlainChildRefused(t *testing.T) {
	e := newSchemaEnv(t)
	e.refused(t, "DELETE FROM customers WHERE id = 4", "tags")
	e.wantDisk(t, "customers", nCustomers, map[int]*time.Time{4: nil})
	e.refused(t, "DELETE FROM customers WHERE id = 7", "prefs")
	e.wantDisk(t, "customers", nCustomers, map[int]*time.Time{7: nil})
	if got := scalar[string](t, e.super, "SELECT format('%s/%s', (SELECT string_agg(customer_id::text, ',') FROM tags), (SELECT string_agg(coalesce(customer_id::text, 'NULL'), ',') FROM prefs))"); got != "4/7" {
		t.Errorf("after the refusals tags/prefs reference customers %s, want 4/7", got)
	}
	// A customer without tags or prefs deletes.
	if o := e.both(t, "DELETE FROM customers WHERE id = 8"); o.tag != "DELETE 1" {
		t.Errorf("DELETE of customer 8 (no tags, no prefs): tag %q, want DELETE 1", o.tag)
	}
	// Once the rows are gone, the customers delete too.
	e.both(t, "DELETE FROM tags WHERE customer_id = 4")
	e.both(t, "DELETE FROM prefs WHERE customer_id = 7")
	for _, id := range []int{4, 7} {
		if o := e.both(t, fmt.Sprintf("DELETE FROM customers WHERE id = %d", id)); o.tag != "DELETE 1" {
			t.Errorf("DELETE of customer %d after its plain children went: tag %q, want DELETE 1", id, o.tag)
		}
		e.deletedAt(t, "customers", id)
	}
	e.sameTables(t, "customers", "tags", "prefs")
}

// 4. A plain parent (regions) whose ON DELETE CASCADE would physically
// remove rows of a soft-delete child (stores): refused, live or
// soft-deleted stores alike. A region without stores is deleted for good,
// as a plain table's rows are.
func TestSchemaPlainParentSoftChild(t *testing.T) {
	e := newSchemaEnv(t)
	e.both(t, "DELETE FROM stores WHERE id = 2")
	store2 := e.deletedAt(t, "stores", 2)
	e.refused(t, "DELETE FROM regions WHERE id = 1", "stores")
	e.refused(t, "DELETE FROM regions WHERE id = 2", "stores")
	e.wantDisk(t, "stores", 2, map[int]*time.Time{1: nil, 2: store2})
	if n := scalar[int](t, e.super, "SELECT count(*) FROM regions"); n != 3 {
		t.Errorf("regions holds %d rows after the refusals, want 3", n)
	}
	if o := e.both(t, "DELETE FROM regions WHERE id = 3"); o.tag != "DELETE 1" {
		t.Errorf("DELETE of region 3 (no stores): tag %q, want DELETE 1", o.tag)
	}
	if n := scalar[int](t, e.super, "SELECT count(*) FROM regions WHERE id = 3"); n != 0 {
		t.Errorf("region 3 is still on disk: regions is a plain table, its delete is real")
	}
	e.sameTables(t, "regions", "stores")
}

// 5. a → b (CASCADE) → c (RESTRICT on b): the cascade meets RESTRICT
// halfway down, the whole statement fails with 23503 and nothing changes.
// With c's row soft-deleted first, the cascade goes through.
func TestSchemaCascadeMeetsRestrict(t *testing.T) {
	e := newSchemaEnv(t)
	e.bothFail(t, "DELETE FROM a WHERE id = 1", "23503")
	e.bothFail(t, "DELETE FROM a", "23503")
	e.wantDisk(t, "a", 2, map[int]*time.Time{1: nil, 2: nil})
	e.wantDisk(t, "b", 2, map[int]*time.Time{1: nil, 2: nil})
	e.wantDisk(t, "c", 2, map[int]*time.Time{1: nil, 2: nil})
	e.sameTables(t, "a", "b", "c")

	e.both(t, "DELETE FROM c WHERE id = 2")
	c2 := e.deletedAt(t, "c", 2)
	if o := e.both(t, "DELETE FROM a WHERE id = 2"); o.tag != "DELETE 1" {
		t.Errorf("DELETE FROM a WHERE id = 2 once c's row is deleted: tag %q, want DELETE 1", o.tag)
	}
	at := e.deletedAt(t, "a", 2)
	e.wantDisk(t, "b", 2, map[int]*time.Time{1: nil, 2: at})
	e.wantDisk(t, "c", 2, map[int]*time.Time{1: nil, 2: c2})
	e.sameTables(t, "a", "b", "c")
}

// 6. A row may not come to reference a soft-deleted parent: INSERT and
// UPDATE fail with 23503 as on the twin, where the parent is really gone.
// A NULL key is fine.
func TestSchemaReferenceToDeletedParent(t *testing.T) {
	e := newSchemaEnv(t)
	e.both(t, "DELETE FROM customers WHERE id = 6")
	e.bothFail(t, "INSERT INTO orders (id, customer_id) VALUES (60, 6)", "23503")
	e.bothFail(t, "UPDATE orders SET customer_id = 6 WHERE id = 40", "23503")
	e.bothFail(t, "INSERT INTO invoices (id, customer_id) VALUES (60, 6)", "23503")
	e.bothFail(t, "INSERT INTO tags (id, customer_id, tag) VALUES (60, 6, 'x')", "23503")
	e.both(t, "INSERT INTO orders (id, customer_id) VALUES (61, NULL)")
	e.both(t, "UPDATE orders SET customer_id = NULL WHERE id = 30")
	e.both(t, "INSERT INTO orders (id, customer_id) VALUES (62, 8)")
	// Two levels down: items of an order soft-deleted by the cascade.
	e.both(t, "DELETE FROM customers WHERE id = 1")
	e.bothFail(t, "INSERT INTO order_items (id, order_id) VALUES (600, 10)", "23503")
	e.sameTables(t, "customers", "orders", "order_items", "invoices", "tags")
}

// 7. Partitions, sub-partitions and inheritance children are soft-delete
// tables under their own names.
func TestSchemaPartitionsAndInheritance(t *testing.T) {
	e := newSchemaEnv(t)
	e.both(t, "DELETE FROM events WHERE id IN (1, 6, 11)")
	e.both(t, "DELETE FROM animals WHERE id IN (1, 3)")
	reads := []string{"events", "events_2025", "events_2026", "events_2026_h1", "events_2026_h2", "animals", "ONLY animals", "dogs"}
	e.sameTables(t, reads...)
	e.both(t, "SELECT count(*) FROM events_2026_h2")
	e.both(t, "SELECT d.id, d.breed FROM dogs d JOIN events_2025 ev ON ev.id = d.id ORDER BY d.id")

	// DELETE by a partition's own name soft-deletes.
	for _, c := range []struct {
		sql, table string
		ids        []int
		tag        string
	}{
		{"DELETE FROM events_2025 WHERE id IN (1, 2)", "events_2025", []int{2}, "DELETE 1"},
		{"DELETE FROM events_2026_h1 WHERE id >= 5", "events_2026_h1", []int{5, 7, 8}, "DELETE 3"},
		{"DELETE FROM events_2026 WHERE id = 12", "events_2026_h2", []int{12}, "DELETE 1"},
		{"DELETE FROM dogs WHERE id IN (3, 4)", "dogs", []int{4}, "DELETE 1"},
	} {
		if o := e.both(t, c.sql); o.tag != c.tag {
			t.Errorf("%s: tag %q, want %s", c.sql, o.tag, c.tag)
		}
		disk := e.onDisk(t, c.table)
		for _, id := range c.ids {
			if at, ok := disk[id]; !ok || at == nil {
				t.Errorf("after %s, row %d of %s on disk: present %v, deleted_at %s; want kept and soft-deleted", c.sql, id, c.table, ok, fmtTime(at))
			}
		}
	}
	if n := scalar[int](t, e.super, "SELECT count(*) FROM events"); n != 12 {
		t.Errorf("events holds %d rows on disk, want all 12", n)
	}
	if n := scalar[int](t, e.super, "SELECT count(*) FROM animals"); n != 5 {
		t.Errorf("animals (with dogs) holds %d rows on disk, want all 5", n)
	}
	e.sameTables(t, reads...)

	// TRUNCATE of a partition or a child is refused as a soft-delete
	// table's is.
	for _, sql := range []string{"TRUNCATE events_2025", "TRUNCATE events_2026_h2", "TRUNCATE TABLE events_2026", "TRUNCATE dogs"} {
		o := execute(e.ctx, e.app, simple(sql))
		if pe := pgErr(o.err); pe == nil || pe.Code != "42501" {
			t.Errorf("%s: got %v (tag %q), want Tombstone's refusal, SQLSTATE 42501", sql, o.err, o.tag)
		}
	}
	if n := scalar[int](t, e.super, "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM animals)"); n != 17 {
		t.Errorf("after the TRUNCATEs %d rows of events and animals are on disk, want 17", n)
	}

	// UPDATE by a partition's or child's name cannot undelete.
	for _, sql := range []string{
		"UPDATE events_2025 SET deleted_at = NULL WHERE id = 1",
		"UPDATE events_2026_h1 SET deleted_at = NULL",
		"UPDATE events_2026 SET deleted_at = NULL WHERE id = 11",
		"UPDATE dogs SET deleted_at = NULL WHERE id = 3",
	} {
		// On the twin the rows are gone: UPDATE 0.
		if o := e.both(t, sql); o.tag != "UPDATE 0" {
			t.Errorf("%s: tag %q, want UPDATE 0 (a deleted row is invisible)", sql, o.tag)
		}
	}
	deleted := scalar[string](t, e.super, "SELECT string_agg(id::text, ',' ORDER BY id) FROM events WHERE deleted_at IS NOT NULL")
	if deleted != "1,2,5,6,7,8,11,12" {
		t.Errorf("events soft-deleted on disk: %s, want 1,2,5,6,7,8,11,12", deleted)
	}
	if d := scalar[string](t, e.super, "SELECT string_agg(id::text, ',' ORDER BY id) FROM animals WHERE deleted_at IS NOT NULL"); d != "1,3,4" {
		t.Errorf("animals soft-deleted on disk: %s, want 1,3,4", d)
	}

	// COPY of a partitioned table fails as the server's does; COPY of a
	// partition, a child or a query shows the live rows only.
	a, b := copyOut(e.ctx, e.app, "COPY events TO STDOUT"), copyOut(e.ctx, e.twin, "COPY events TO STDOUT")
	pa, pb := pgErr(a.err), pgErr(b.err)
	switch {
	case pb == nil:
		t.Errorf("COPY events TO STDOUT on the twin: %v, want an error", b.err)
	case pa == nil || pa.Code != pb.Code || pa.Message != pb.Message:
		t.Errorf("COPY events TO STDOUT: through Tombstone %v (rows %d), on the twin %v", a.err, len(a.rows), b.err)
	}
	for _, sql := range []string{
		"COPY (SELECT id, at FROM events ORDER BY id) TO STDOUT",
		"COPY events_2025 TO STDOUT",
		"COPY events_2026_h1 (id) TO STDOUT",
		"COPY dogs TO STDOUT",
		"COPY (SELECT * FROM animals ORDER BY id) TO STDOUT WITH (FORMAT csv)",
	} {
		st := statement{SQL: sql, Class: "copy"}
		if d := execute(e.ctx, e.app, st).diff(execute(e.ctx, e.twin, st), true); d != "" {
			t.Errorf("%s:\n%s", sql, d)
		}
	}
}

// 8. Configured names fold as PostgreSQL folds unquoted identifiers:
// Contacts in the configuration is the table contacts.
func TestSchemaConfigNameFolding(t *testing.T) {
	e := newSchemaEnv(t)
	for _, c := range []struct {
		sql string
		id  int
	}{{"DELETE FROM Contacts WHERE id = 1", 1}, {"DELETE FROM contacts WHERE id = 2", 2}, {`DELETE FROM "contacts" WHERE id = 3`, 3}} {
		if o := e.both(t, c.sql); o.tag != "DELETE 1" {
			t.Errorf("%s: tag %q, want DELETE 1", c.sql, o.tag)
		}
		if at, ok := e.onDisk(t, "contacts")[c.id]; !ok || at == nil {
			t.Errorf("after %s, contact %d on disk: present %v, deleted_at %s; want kept and soft-deleted", c.sql, c.id, ok, fmtTime(at))
		}
	}
	e.sameTables(t, "contacts", "Contacts")
}

// 9. A declared cascade (no constraint): deleting an author soft-deletes
// their live posts with the author's deleted_at. The twin has the foreign
// key the declaration stands for.
func TestSchemaDeclaredCascade(t *testing.T) {
	e := newSchemaEnv(t)
	e.both(t, "DELETE FROM posts WHERE id = 3")
	post3 := e.deletedAt(t, "posts", 3)
	time.Sleep(10 * time.Millisecond)
	if o := e.both(t, "DELETE FROM authors WHERE id = 1"); o.tag != "DELETE 1" {
		t.Errorf("DELETE FROM authors WHERE id = 1: tag %q, want DELETE 1", o.tag)
	}
	at := e.deletedAt(t, "authors", 1)
	e.wantDisk(t, "authors", 2, map[int]*time.Time{1: at, 2: nil})
	e.wantDisk(t, "posts", 4, map[int]*time.Time{1: at, 2: at, 3: post3, 4: nil})
	e.sameTables(t, "authors", "posts")
}

// The cascade happens whatever form the DELETE takes: in a transaction
// (and a ROLLBACK undoes it), with RETURNING, inside a data-modifying
// CTE, with USING, as a prepared statement run twice. It reaches a child
// whose column is not deleted_at (shipments.gone_at) and a child with a
// quoted, schema-qualified name and key column.
func TestSchemaCascadeStatementForms(t *testing.T) {
	e := newSchemaEnv(t)
	const refunds = `"Sales"."Refund Lines"`

	for _, sql := range []string{"BEGIN", "DELETE FROM customers WHERE id = 1", "SELECT * FROM orders ORDER BY id",
		"SELECT * FROM order_items ORDER BY id", "SELECT * FROM " + refunds + " ORDER BY id", "ROLLBACK"} {
		e.both(t, sql)
	}
	e.wantDisk(t, "customers", nCustomers, map[int]*time.Time{1: nil})
	e.wantDisk(t, "orders", 7, map[int]*time.Time{10: nil, 11: nil, 12: nil})
	e.wantDisk(t, refunds, 2, map[int]*time.Time{1: nil})

	st := statement{SQL: "DELETE FROM customers WHERE id = 5 RETURNING id, name", Mode: pgx.QueryExecModeSimpleProtocol, SoftReturning: true}
	if d := execute(e.ctx, e.app, st).diff(execute(e.ctx, e.twin, st), true); d != "" {
		t.Errorf("%s:\n%s", st.SQL, d)
	}
	at5 := e.deletedAt(t, "customers", 5)
	e.wantDisk(t, "orders", 7, map[int]*time.Time{50: at5})
	e.wantDisk(t, refunds, 2, map[int]*time.Time{2: at5})
	if g := e.onDiskCol(t, "shipments", "gone_at"); len(g) != 3 || g[3] == nil || !g[3].Equal(*at5) {
		t.Errorf("shipments on disk after customer 5's delete: %v, want 3 rows, row 3 gone_at = %s", g, fmtTime(at5))
	}

	if o := e.both(t, "DELETE FROM customers c USING (VALUES (8), (11)) v(x) WHERE c.id = v.x"); o.tag != "DELETE 2" {
		t.Errorf("DELETE ... USING: tag %q, want DELETE 2", o.tag)
	}

	// A prepared DELETE of an order, reused: its items and shipments go
	// with it each time.
	e.both(t, "INSERT INTO orders (id, customer_id) VALUES (70, 12), (71, 12)")
	e.both(t, "INSERT INTO order_items (id, order_id) VALUES (700, 70), (710, 71)")
	for _, id := range []int{70, 71} {
		for _, conn := range []*pgx.Conn{e.app, e.twin} {
			if tag, err := conn.Exec(e.ctx, "DELETE FROM orders WHERE id = $1", pgx.QueryExecModeCacheStatement, id); err != nil || tag.String() != "DELETE 1" {
				t.Errorf("prepared DELETE FROM orders WHERE id = $1 (%d): %q, %v; want DELETE 1", id, tag, err)
			}
		}
		at := e.deletedAt(t, "orders", id)
		e.wantDisk(t, "order_items", 7, map[int]*time.Time{id * 10: at})
	}
	e.sameTables(t, "customers", "orders", "order_items", "shipments", refunds)

	// Last, as it stops the test when it fails: a cascading DELETE in a
	// data-modifying CTE.
	e.both(t, "WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING id) SELECT count(*) FROM d")
	at1 := e.deletedAt(t, "customers", 1) // stops the test when the DELETE did not happen
	e.wantDisk(t, "orders", 9, map[int]*time.Time{10: at1, 11: at1, 12: at1})
	e.wantDisk(t, "order_items", 7, map[int]*time.Time{100: at1, 101: at1, 102: at1, 103: at1, 200: nil})
	e.wantDisk(t, refunds, 2, map[int]*time.Time{1: at1})
	if g := e.onDiskCol(t, "shipments", "gone_at"); len(g) != 3 || g[1] == nil || !g[1].Equal(*at1) || g[2] != nil {
		t.Errorf("shipments on disk after customer 1's delete: %v, want row 1 gone_at = %s, row 2 live", g, fmtTime(at1))
	}

	e.sameTables(t, "customers", "orders", "order_items", "shipments", refunds)
}

// A self-referencing foreign key (a management tree) cascades down every
// level, and stops where the tree does.
func TestSchemaSelfReferenceCascade(t *testing.T) {
	e := newSchemaEnv(t)
	if o := e.both(t, "DELETE FROM staff WHERE id = 2"); o.tag != "DELETE 1" {
		t.Errorf("DELETE FROM staff WHERE id = 2: tag %q, want DELETE 1", o.tag)
	}
	at := e.deletedAt(t, "staff", 2)
	e.wantDisk(t, "staff", 7, map[int]*time.Time{1: nil, 2: at, 3: at, 4: at, 5: at, 6: nil, 7: nil})
	e.sameTables(t, "staff")
	// A delete that names a row and its descendant at once.
	if o := e.both(t, "DELETE FROM staff WHERE id IN (6, 7)"); o.tag != "DELETE 2" {
		t.Errorf("DELETE FROM staff WHERE id IN (6, 7): tag %q, want DELETE 2", o.tag)
	}
	e.sameTables(t, "staff")
}

// A deferred NO ACTION constraint is checked at commit on the twin, so a
// transaction that deletes the parent and then the child commits there.
// Tombstone checks it when the DELETE runs (README, "Foreign-key
// limits"): the DELETE fails with 23503 and changes nothing. This test
// holds that documented behaviour, and the twin's, so a change to either
// shows.
func TestSchemaDeferredNoAction(t *testing.T) {
	e := newSchemaEnv(t)
	e.mustRun(t, e.twin, "BEGIN")
	for _, sql := range []string{"DELETE FROM customers WHERE id = 9", "DELETE FROM memos WHERE customer_id = 9", "COMMIT"} {
		e.mustRun(t, e.twin, sql)
	}
	e.mustRun(t, e.app, "BEGIN")
	o := execute(e.ctx, e.app, simple("DELETE FROM customers WHERE id = 9"))
	if pe := pgErr(o.err); pe == nil || pe.Code != "23503" {
		t.Errorf("through Tombstone, DELETE of customer 9 with a deferred NO ACTION memo: %q, %v; want 23503 at once (documented limit)", o.tag, o.err)
	}
	e.mustRun(t, e.app, "ROLLBACK")
	if at, ok := e.onDisk(t, "customers")[9]; !ok || at != nil {
		t.Errorf("customer 9 on disk: present %v, deleted_at %s; want kept and live after the failed DELETE", ok, fmtTime(at))
	}
}

// Races between a soft delete and a concurrent INSERT of a child: the end
// state must be the twin's, where PostgreSQL's referential actions run
// with a fresh snapshot after waiting for the other transaction.
func TestSchemaConcurrentChildInsert(t *testing.T) {
	// The rewritten DELETE's checks and cascades read the statement's
	// snapshot, taken before it waited for the child's INSERT; PostgreSQL's
	// own referential actions take a fresh one. README, "Foreign-key
	// limits", documents this; the outcome depends on timing, so the test
	// cannot pin the limit's behaviour either. It stays, to be enabled
	// when the checks move into a volatile helper with its own snapshot.
	t.Skip("known limit: a child committed while the DELETE waits is not seen (README, Foreign-key limits)")
	e := newSchemaEnv(t)
	other := map[*pgx.Conn]*pgx.Conn{
		e.app:  connect(t, e.appDSN),
		e.twin: connect(t, e.twinDSN),
	}
	for _, side := range []*pgx.Conn{e.app, e.twin} {
		name := map[bool]string{true: "through Tombstone", false: "twin"}[side == e.app]
		ins := other[side]
		// The child's INSERT commits while the parent's DELETE waits for it.
		e.mustRun(t, ins, "BEGIN")
		e.mustRun(t, ins, "INSERT INTO orders (id, customer_id) VALUES (110, 10)")
		done := make(chan outcome, 1)
		go func() { done <- execute(e.ctx, side, simple("DELETE FROM customers WHERE id = 10")) }()
		time.Sleep(300 * time.Millisecond)
		select {
		case o := <-done:
			t.Logf("%s: DELETE of customer 10 did not wait for the open INSERT: %v %v", name, o.tag, o.err)
			done <- o
		default:
		}
		e.mustRun(t, ins, "COMMIT")
		if o := <-done; o.err != nil || o.tag != "DELETE 1" {
			t.Errorf("%s: DELETE of customer 10 after the concurrent INSERT committed: %q, %v; want DELETE 1", name, o.tag, o.err)
		}

		// The parent's DELETE commits while the child's INSERT waits.
		e.mustRun(t, side, "BEGIN")
		e.mustRun(t, side, "DELETE FROM customers WHERE id = 11")
		go func() { done <- execute(e.ctx, ins, simple("INSERT INTO orders (id, customer_id) VALUES (111, 11)")) }()
		time.Sleep(300 * time.Millisecond)
		e.mustRun(t, side, "COMMIT")
		if o := <-done; pgErr(o.err) == nil || pgErr(o.err).Code != "23503" {
			t.Errorf("%s: INSERT of an order of customer 11 while its DELETE commits: %q, %v; want 23503", name, o.tag, o.err)
		}

		// A RESTRICT child's INSERT commits while the parent's DELETE
		// waits for it: the DELETE must then fail.
		e.mustRun(t, ins, "BEGIN")
		e.mustRun(t, ins, "INSERT INTO invoices (id, customer_id) VALUES (112, 12)")
		go func() { done <- execute(e.ctx, side, simple("DELETE FROM customers WHERE id = 12")) }()
		time.Sleep(300 * time.Millisecond)
		e.mustRun(t, ins, "COMMIT")
		if o := <-done; pgErr(o.err) == nil || pgErr(o.err).Code != "23503" {
			t.Errorf("%s: DELETE of customer 12 while an INSERT of its (RESTRICT) invoice commits: %q, %v; want 23503", name, o.tag, o.err)
		}
	}
	e.sameTables(t, "invoices")
	if at := e.onDisk(t, "customers")[12]; at != nil {
		t.Errorf("customer 12 is soft-deleted on disk while live invoice 112 references it (ON DELETE RESTRICT); the twin refused the DELETE")
	}
	e.sameTables(t, "customers", "orders")
	if at := e.onDisk(t, "orders")[110]; at == nil {
		t.Errorf("order 110 (inserted while customer 10 was being deleted) is live on disk, referencing soft-deleted customer 10; the twin cascaded it away")
	}
}

// A partition created or attached, and an inheritance child created,
// through Tombstone by a privileged role is a soft-delete table for the
// sessions that follow, and for a session that was already open.
func TestSchemaCatalogFreshAfterDDL(t *testing.T) {
	e := newSchemaEnv(t)
	early := connect(t, e.appDSN) // open before the DDL
	e.mustRun(t, early, "SELECT 1")
	ddl := []string{
		"CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01 00:00+00') TO ('2028-01-01 00:00+00')",
		"CREATE TABLE events_2028 (id int NOT NULL, at timestamptz NOT NULL, deleted_at timestamptz)",
		"INSERT INTO events_2028 VALUES (30, '2028-02-01 00:00+00'), (31, '2028-03-01 00:00+00')",
		"ALTER TABLE events ATTACH PARTITION events_2028 FOR VALUES FROM ('2028-01-01 00:00+00') TO ('2029-01-01 00:00+00')",
		"CREATE TABLE cats (indoor bool) INHERITS (animals)",
		"INSERT INTO events VALUES (20, '2027-02-01 00:00+00'), (21, '2027-03-01 00:00+00')",
		"INSERT INTO cats (id, name) VALUES (20, 'tom'), (21, 'kit')",
		"GRANT ALL ON events_2027, events_2028, cats TO " + appUser,
	}
	priv := connect(t, e.superProxyDSN)
	for _, sql := range ddl {
		e.mustRun(t, priv, sql)
	}
	late := connect(t, e.appDSN)
	for _, c := range []struct {
		conn  *pgx.Conn
		who   string
		table string
		id    int
	}{
		{late, "a session opened after the DDL", "events_2027", 20},
		{late, "a session opened after the DDL", "events_2028", 30},
		{late, "a session opened after the DDL", "cats", 20},
		{early, "a session open before the DDL", "events_2027", 21},
		{early, "a session open before the DDL", "events_2028", 31},
		{early, "a session open before the DDL", "cats", 21},
	} {
		sql := fmt.Sprintf("DELETE FROM %s WHERE id = %d", c.table, c.id)
		if tag := e.mustRun(t, c.conn, sql); tag != "DELETE 1" {
			t.Errorf("%s, %s: tag %q, want DELETE 1", c.who, sql, tag)
		}
		if at, ok := e.onDisk(t, c.table)[c.id]; !ok || at == nil {
			t.Errorf("%s, %s: row on disk: present %v, deleted_at %s; want kept and soft-deleted", c.who, sql, ok, fmtTime(at))
		}
		if n := scalar[int](t, c.conn, fmt.Sprintf("SELECT count(*) FROM %s WHERE id = %d", c.table, c.id)); n != 0 {
			t.Errorf("%s: SELECT from %s shows deleted row %d", c.who, c.table, c.id)
		}
	}
}

// Composite keys (in another column order on the child, of another
// integer type), keys on a UNIQUE column that is not the primary key, and
// MATCH SIMPLE: a child row with a NULL in its key references nothing.
func TestSchemaCompositeAndUniqueKeys(t *testing.T) {
	e := newSchemaEnv(t)
	// members (1, 1) goes with account (1, 1); members 4 and 5 have a NULL
	// in their key and stay; audit 2 (1, NULL) does not hold account (1, 2).
	for _, sql := range []string{"DELETE FROM accounts WHERE tenant = 1 AND no = 1", "DELETE FROM accounts WHERE id = 2"} {
		if o := e.both(t, sql); o.tag != "DELETE 1" {
			t.Errorf("%s: tag %q, want DELETE 1", sql, o.tag)
		}
	}
	at1, at2 := e.deletedAt(t, "accounts", 1), e.deletedAt(t, "accounts", 2)
	e.wantDisk(t, "members", 5, map[int]*time.Time{1: at1, 2: at2, 3: nil, 4: nil, 5: nil})
	// audit 1 (2, 2) holds account (2, 2), written (no, tenant).
	e.bothFail(t, "DELETE FROM accounts WHERE tenant = 2", "23503")
	e.wantDisk(t, "accounts", 4, map[int]*time.Time{3: nil, 4: nil})
	e.wantDisk(t, "members", 5, map[int]*time.Time{3: nil})
	e.both(t, "DELETE FROM audits WHERE id = 1")
	if o := e.both(t, "DELETE FROM accounts WHERE tenant = 2"); o.tag != "DELETE 2" {
		t.Errorf("DELETE FROM accounts WHERE tenant = 2 once its audit is deleted: tag %q, want DELETE 2", o.tag)
	}
	e.bothFail(t, "INSERT INTO members (id, tenant, no) VALUES (9, 2, 1)", "23503")
	e.both(t, "INSERT INTO members (id, tenant, no) VALUES (10, 2, NULL)")
	e.sameTables(t, "accounts", "members", "audits")

	// Text keys compare as the server compares them: 'acme' is not 'Acme'.
	if o := e.both(t, "DELETE FROM vendors WHERE code = 'acme'"); o.tag != "DELETE 1" {
		t.Errorf("DELETE FROM vendors WHERE code = 'acme': tag %q, want DELETE 1", o.tag)
	}
	at := e.deletedAt(t, "vendors", 1)
	e.wantDisk(t, "supplies", 3, map[int]*time.Time{1: at, 2: nil, 3: nil})
	if o := e.both(t, "DELETE FROM vendors WHERE code IS NULL"); o.tag != "DELETE 1" {
		t.Errorf("DELETE FROM vendors WHERE code IS NULL: tag %q, want DELETE 1", o.tag)
	}
	e.wantDisk(t, "supplies", 3, map[int]*time.Time{3: nil})
	e.bothFail(t, "UPDATE supplies SET vendor_code = 'acme' WHERE id = 2", "23503")
	// Several statements in one Query: each answers as on the twin.
	e.both(t, "DELETE FROM vendors WHERE id = 2; SELECT count(*) FROM supplies")
	e.sameTables(t, "vendors", "supplies")
}

// A configured table missing from a database, or lacking its deleted_at
// column, is reported loudly (log and metric), and a DELETE on the table
// without the column is not carried out as a hard delete.
func TestSchemaMisconfigurationReported(t *testing.T) {
	e := newSchemaEnv(t)
	px := proxytest.Start(t, e.pg, `
privileged_roles: [postgres]
tables:
  - name: customers
  - name: ghosts
  - name: notes
  - name: contacts
    deleted_at: removed_at
`)
	conn := connect(t, px.DSN(appUser, appPassword, e.softDB))
	e.mustRun(t, conn, "SELECT 1")
	if got := px.Metric(t, "tombstone_catalog_problems", "database", e.softDB); got != 3 {
		t.Errorf("tombstone_catalog_problems{database=%s} = %v, want 3 (ghosts missing, notes and contacts lack their column)", e.softDB, got)
	}
	lines := strings.Split(px.Logs(), "\n")
	for _, table := range []string{"ghosts", "notes", "contacts"} {
		found := false
		for _, l := range lines {
			found = found || strings.Contains(l, "level=WARN") && strings.Contains(l, "problem") && strings.Contains(l, table)
		}
		if !found {
			t.Errorf("the proxy log has no warning about a problem with %s", table)
		}
	}
	for _, sql := range []string{"DELETE FROM notes WHERE id = 1", "DELETE FROM contacts WHERE id = 1"} {
		o := execute(e.ctx, conn, simple(sql))
		t.Logf("%s: tag %q, error %v", sql, o.tag, o.err)
	}
	if n := scalar[int](t, e.super, "SELECT count(*) FROM notes"); n != 1 {
		t.Errorf("notes (configured, without deleted_at) lost its row to a DELETE through Tombstone")
	}
	if n := scalar[int](t, e.super, "SELECT count(*) FROM contacts WHERE id = 1"); n != 1 {
		t.Errorf("contacts (configured with removed_at, which it lacks) lost row 1 to a DELETE through Tombstone")
	}
}

// Foreign keys from and to partitioned tables: a partitioned soft child
// cascades into its partitions; deleting from a partition of a
// referenced partitioned table, by the partition's own name, cascades as
// the twin's does; a new reference to a soft-deleted partitioned row is
// refused.
func TestSchemaPartitionedForeignKeys(t *testing.T) {
	e := newSchemaEnv(t)
	if o := e.both(t, "DELETE FROM customers WHERE id = 10"); o.tag != "DELETE 1" {
		t.Errorf("DELETE of customer 10 (visits in two partitions): tag %q, want DELETE 1", o.tag)
	}
	at := e.deletedAt(t, "customers", 10)
	e.wantDisk(t, "visits_old", 1, map[int]*time.Time{1: at})
	e.wantDisk(t, "visits_new", 2, map[int]*time.Time{2: at, 3: nil})
	e.sameTables(t, "visits", "visits_old", "visits_new")

	// event_refs 1 references event 3 (events_2025), 3 references event 9.
	if o := e.both(t, "DELETE FROM events_2025 WHERE id = 3"); o.tag != "DELETE 1" {
		t.Errorf("DELETE FROM events_2025 WHERE id = 3: tag %q, want DELETE 1", o.tag)
	}
	at3 := e.deletedAt(t, "events_2025", 3)
	e.wantDisk(t, "event_refs", 2, map[int]*time.Time{1: at3, 3: nil})
	if o := e.both(t, "DELETE FROM events WHERE id = 9"); o.tag != "DELETE 1" {
		t.Errorf("DELETE FROM events WHERE id = 9: tag %q, want DELETE 1", o.tag)
	}
	at9 := e.deletedAt(t, "events_2026_h2", 9)
	e.wantDisk(t, "event_refs", 2, map[int]*time.Time{1: at3, 3: at9})
	// event_holds 1 (plain, RESTRICT) holds event 4, by either name. The
	// message names the table and constraint as declared, where
	// PostgreSQL names the partition and its copy of the constraint
	// (README, "Foreign-key limits"): SQLSTATE and detail must match.
	e.bothFailCode(t, "DELETE FROM events_2025 WHERE id = 4", "23503")
	e.bothFailCode(t, "DELETE FROM events WHERE id = 4", "23503")
	e.wantDisk(t, "events_2025", 4, map[int]*time.Time{4: nil})
	e.bothFail(t, "INSERT INTO event_refs VALUES (7, 3, '2025-03-04 00:00+00')", "23503")
	e.bothFail(t, "INSERT INTO event_refs VALUES (8, 9, '2026-09-10 00:00+00')", "23503")
	e.bothFail(t, "INSERT INTO visits VALUES (9, 10, '2025-06-01 00:00+00')", "23503")
	e.sameTables(t, "events", "event_refs", "visits")
}
