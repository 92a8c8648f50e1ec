package rewrite

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
)

// fkSchema is the foreign-key test schema; on the soft database every
// table in fkSoft has a deleted_at column, and the hard twin has the same
// tables without deleted rows.
const fkSchema = `
CREATE TABLE customers (id int PRIMARY KEY, name text, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE items (id int PRIMARY KEY, order_id int REFERENCES orders ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE invoices (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE RESTRICT, deleted_at timestamptz);
CREATE TABLE notes (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE NO ACTION);
CREATE TABLE tags (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE CASCADE);
CREATE TABLE regions (id int PRIMARY KEY);
CREATE TABLE stores (id int PRIMARY KEY, region_id int REFERENCES regions ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE a (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE c (id int PRIMARY KEY, b_id int REFERENCES b ON DELETE RESTRICT, deleted_at timestamptz);
CREATE TABLE staff (id int PRIMARY KEY, boss int REFERENCES staff ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE shifts (id int PRIMARY KEY, staff_id int REFERENCES staff ON DELETE CASCADE, deleted_at timestamptz);
INSERT INTO staff VALUES (1, NULL, NULL), (2, 1, NULL), (3, 2, NULL), (4, 3, NULL), (5, 2, '2020-01-01'), (6, 5, '2020-01-01'), (7, NULL, NULL);
INSERT INTO shifts VALUES (1, 4, NULL), (2, 7, NULL), (3, 1, NULL);
CREATE TABLE ip (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE ic () INHERITS (ip);
CREATE TABLE ir (id int PRIMARY KEY, ip_id int REFERENCES ip ON DELETE CASCADE, deleted_at timestamptz);
INSERT INTO ip VALUES (5, NULL), (6, NULL);
INSERT INTO ic VALUES (5, NULL);
INSERT INTO ir VALUES (1, 5, NULL), (2, 6, NULL);
INSERT INTO customers VALUES (1, 'with orders', NULL), (2, 'live invoice', NULL), (3, 'deleted invoice', NULL),
  (4, 'note', NULL), (5, 'tag', NULL), (6, 'alone', NULL), (7, 'deleted', now() - interval '1 day');
INSERT INTO orders VALUES (10, 1, NULL), (11, 1, NULL), (12, 1, '2020-01-01'), (13, 6, NULL);
INSERT INTO items VALUES (100, 10, NULL), (101, 11, NULL), (102, 12, '2020-01-01'), (103, 13, NULL);
INSERT INTO invoices VALUES (20, 2, NULL), (21, 3, '2020-01-01');
INSERT INTO notes VALUES (30, 4);
INSERT INTO tags VALUES (40, 5);
INSERT INTO regions VALUES (1), (2), (3);
INSERT INTO stores VALUES (50, 1, NULL), (51, 3, '2020-01-01');
INSERT INTO a VALUES (1, NULL), (2, NULL);
INSERT INTO b VALUES (1, 1, NULL), (2, 2, NULL);
INSERT INTO c VALUES (1, 2, NULL);
`

var fkSoft = []string{"customers", "orders", "items", "invoices", "stores", "a", "b", "c", "staff", "shifts", "ip", "ir"}

// fkRewriter builds the rewriter for the soft database from its real
// catalog, with the helpers tombstone migrate installs.
func fkRewriter(t *testing.T, dsn string) *Rewriter {
	t.Helper()
	spec := policy.Spec{Mode: policy.ModeEnforce}
	for _, n := range fkSoft {
		spec.Tables = append(spec.Tables, policy.TableSpec{Name: n, DeletedAt: "deleted_at"})
	}
	return catalogRewriter(t, dsn, spec)
}

// catalogRewriter installs what tombstone migrate installs for spec (the
// helpers, and the audit log when spec has one) in the database at dsn,
// and returns the rewriter for its catalog, as the proxy builds it.
func catalogRewriter(t *testing.T, dsn string, spec policy.Spec) *Rewriter {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	s, err := catalog.Read(ctx, conn, spec)
	if err != nil {
		t.Fatal(err)
	}
	plan := catalog.Plan(spec, s)
	if spec.Audit.Name != "" {
		plan = append(plan, catalog.AuditTable(spec.Audit)...)
	}
	for _, stmt := range plan {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if s, err = catalog.Read(ctx, conn, spec); err != nil {
		t.Fatal(err)
	}
	base, err := policy.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	p, err := base.WithSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Helpers() {
		t.Fatal("helpers not seen after catalog.Plan")
	}
	return New(p, 1<<20)
}

// TestForeignKeysOnPostgres deletes through the rewrite on a soft database
// and directly on its hard-delete twin, and compares the outcome: the same
// error code (23503 for RESTRICT and NO ACTION) and message, or the same
// rows affected and the same live rows everywhere; and a refusal where a
// hard delete would lose rows of a soft-delete table or change rows of a
// plain one.
func TestForeignKeysOnPostgres(t *testing.T) {
	s := pgtest.Shared(t)
	softName, hardName := pgtest.CreateDB(t, s), pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, softName, fkSchema)
	pgtest.Exec(t, s, hardName, fkSchema)
	for _, n := range fkSoft {
		pgtest.Exec(t, s, hardName, "DELETE FROM "+n+" WHERE deleted_at IS NOT NULL")
	}
	r := fkRewriter(t, s.DSN(softName))
	soft, hard := connect(t, s.DSN(softName)), connect(t, s.DSN(hardName))
	ctx := context.Background()
	live := func(c *pgconn.PgConn, soft bool) string {
		var out []string
		for _, n := range append(fkSoft, "notes", "tags", "regions") {
			q := "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM " + n
			if soft && n != "notes" && n != "tags" && n != "regions" {
				q += " WHERE deleted_at IS NULL"
			}
			out = append(out, n+"="+strings.Join(queryRows(t, c, q), ""))
		}
		return strings.Join(out, " ")
	}
	cases := []struct {
		name, sql string
		refused   string // a substring of the refusal the soft side must give; "" to compare with the twin
	}{
		{name: "cascade three levels", sql: "DELETE FROM customers WHERE id = 1"},
		{name: "restrict with a live child", sql: "DELETE FROM customers WHERE id = 2"},
		{name: "restrict with only a deleted child", sql: "DELETE FROM customers WHERE id = 3"},
		{name: "no action, plain child", sql: "DELETE FROM customers WHERE id = 4"},
		{name: "plain child cascade", sql: "DELETE FROM customers WHERE id = 5", refused: `would remove rows of "tags"`},
		{name: "no children", sql: "DELETE FROM customers WHERE id = 6"},
		{name: "already deleted", sql: "DELETE FROM customers WHERE id = 7"},
		{name: "several rows, one blocked", sql: "DELETE FROM customers WHERE id IN (1, 2, 6)"},
		{name: "plain parent, live soft child", sql: "DELETE FROM regions WHERE id = 1", refused: `remove rows of soft-delete table "stores" for good`},
		{name: "plain parent, deleted soft child", sql: "DELETE FROM regions WHERE id = 3", refused: `remove rows of soft-delete table "stores" for good`},
		{name: "plain parent, no child", sql: "DELETE FROM regions WHERE id = 2"},
		{name: "restrict halfway down a cascade", sql: "DELETE FROM a WHERE id = 2"},
		{name: "cascade above a restrict with no rows", sql: "DELETE FROM a WHERE id = 1"},
		{name: "returning", sql: "DELETE FROM customers c WHERE c.id = 6 RETURNING c.id, c.name"},
		{name: "in a data-modifying CTE", sql: "WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING id) SELECT count(*) FROM d"},
		{name: "two in CTEs", sql: "WITH x AS (SELECT 6 AS id), d AS (DELETE FROM customers WHERE id IN (SELECT id FROM x) RETURNING id), e AS (DELETE FROM a WHERE id = 1 RETURNING id) SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM e)"},
		{name: "blocked in a CTE", sql: "WITH d AS (DELETE FROM customers WHERE id = 2 RETURNING id) SELECT count(*) FROM d"},
		{name: "self-referencing tree", sql: "DELETE FROM staff WHERE id = 2"},
		{name: "self-referencing tree, root and a leaf together", sql: "DELETE FROM staff WHERE id IN (1, 4)"},
		{name: "inheritance child's row only", sql: "DELETE FROM ip WHERE tableoid = 'ic'::regclass"},
		{name: "inheritance parent's own row", sql: "DELETE FROM ip WHERE id = 6"},
		{name: "using", sql: "DELETE FROM customers c USING orders o WHERE o.customer_id = c.id AND o.id = 13"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _, ref := r.Rewrite(tc.sql)
			if ref != nil {
				t.Fatalf("refused at rewrite: %v", ref)
			}
			for _, c := range []*pgconn.PgConn{soft, hard} {
				if _, err := c.Exec(ctx, "BEGIN").ReadAll(); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				for _, c := range []*pgconn.PgConn{soft, hard} {
					_, _ = c.Exec(ctx, "ROLLBACK").ReadAll()
				}
			}()
			before := live(soft, true)
			gotRes, gotErr := soft.Exec(ctx, res.SQL).ReadAll()
			if tc.refused != "" {
				var pe *pgconn.PgError
				if !errors.As(gotErr, &pe) || !strings.Contains(pe.Message, tc.refused) {
					t.Fatalf("got %v, want a refusal containing %q\n%s", gotErr, tc.refused, res.SQL)
				}
				_, _ = soft.Exec(ctx, "ROLLBACK; BEGIN").ReadAll()
				if after := live(soft, true); after != before {
					t.Fatalf("refused DELETE changed live rows:\n%s\n%s", before, after)
				}
				return
			}
			wantRes, wantErr := hard.Exec(ctx, tc.sql).ReadAll()
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("soft: %v, hard: %v\n%s", gotErr, wantErr, res.SQL)
			}
			if gotErr != nil {
				var g, w *pgconn.PgError
				if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) || g.Code != w.Code || g.Message != w.Message || g.Detail != w.Detail {
					t.Fatalf("soft error %+v\nhard error %+v", gotErr, wantErr)
				}
				_, _ = soft.Exec(ctx, "ROLLBACK; BEGIN").ReadAll()
				if after := live(soft, true); after != before {
					t.Fatalf("failed DELETE changed live rows:\n%s\n%s", before, after)
				}
				return
			}
			if g, w := gotRes[0].CommandTag.RowsAffected(), wantRes[0].CommandTag.RowsAffected(); g != w {
				t.Fatalf("%d rows affected, hard %d", g, w)
			}
			if g, w := resultRows(gotRes[0]), resultRows(wantRes[0]); !slices.Equal(g.rows, w.rows) {
				t.Fatalf("RETURNING %v, hard %v", g, w)
			}
			if g, w := live(soft, true), live(hard, false); g != w {
				t.Fatalf("live rows differ\nsoft %s\nhard %s\n%s", g, w, res.SQL)
			}
			// What the statement deleted shares one deleted_at: a restore
			// can bring the deletion back as a unit.
			stamps := queryRows(t, soft, "SELECT count(DISTINCT deleted_at) FROM (SELECT deleted_at FROM customers UNION ALL SELECT deleted_at FROM orders UNION ALL SELECT deleted_at FROM items UNION ALL SELECT deleted_at FROM a UNION ALL SELECT deleted_at FROM b UNION ALL SELECT deleted_at FROM staff UNION ALL SELECT deleted_at FROM shifts) d WHERE deleted_at > now() - interval '1 minute'")
			if stamps[0] != "0" && stamps[0] != "1" {
				t.Fatalf("%s distinct deleted_at values in one deletion", stamps[0])
			}
		})
	}
}

// A DELETE that is a CTE and has a WITH of its own cannot take the
// foreign-key CTEs exactly: they go to the top-level WITH, outside the
// inner one, whose names (tombstone_target among them) the client's WHERE
// sees. It is refused, where a first version let the inner WITH shadow
// the target and remove rows for good (found by review).
func TestForeignKeysInnerWithRefused(t *testing.T) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, fkSchema)
	r := fkRewriter(t, s.DSN(db))
	for _, sql := range []string{
		"WITH d AS (WITH tombstone_target AS (SELECT tableoid AS tombstone_oid, ctid AS tombstone_ctid FROM regions WHERE id = 1) DELETE FROM regions WHERE id = 2 RETURNING id) SELECT count(*) FROM d",
		"WITH d AS (WITH x AS (SELECT 6 AS id) DELETE FROM customers WHERE id IN (SELECT id FROM x) RETURNING id) SELECT count(*) FROM d",
	} {
		if _, _, ref := r.Rewrite(sql); ref == nil || ref.Code != "0A000" {
			t.Errorf("%s: refusal %v, want 0A000", sql, ref)
		}
	}
}
