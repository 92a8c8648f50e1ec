package rewrite

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
)

const restoreSchema = `
CREATE TABLE stores (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE customers (id int PRIMARY KEY, email text, deleted_at timestamptz, deleted_by text);
CREATE UNIQUE INDEX customers_email_live ON customers (email) WHERE deleted_at IS NULL;
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers ON DELETE CASCADE,
  store_id int REFERENCES stores ON DELETE RESTRICT, deleted_at timestamptz, deleted_by text);
CREATE TABLE lines (id int PRIMARY KEY, order_id int REFERENCES orders ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE staff (id int PRIMARY KEY, boss int REFERENCES staff ON DELETE CASCADE, deleted_at timestamptz);
INSERT INTO stores VALUES (5, NULL), (6, NULL);
INSERT INTO customers VALUES (1, 'a@x', NULL, NULL), (2, 'b@x', NULL, NULL), (3, 'c@x', NULL, NULL), (7, 'g@x', NULL, NULL);
INSERT INTO orders VALUES (10, 1, 6, NULL, NULL), (11, 1, 6, NULL, NULL), (20, 2, 5, NULL, NULL), (70, 7, 6, NULL, NULL);
INSERT INTO lines VALUES (100, 10, NULL), (101, 10, NULL), (110, 11, NULL), (200, 20, NULL), (700, 70, NULL);
INSERT INTO staff VALUES (1, NULL, NULL), (2, 1, NULL), (3, 2, NULL), (4, 3, NULL), (5, NULL, NULL);
`

func restoreRewriter(t *testing.T, dsn string) *Rewriter {
	t.Helper()
	spec := policy.Spec{Mode: policy.ModeEnforce, Audit: policy.RelName{Schema: "tombstone", Name: "audit_log"}}
	for _, n := range []string{"stores", "customers", "orders", "lines", "staff"} {
		ts := policy.TableSpec{Name: n, DeletedAt: "deleted_at", AllowRestore: n != "stores"}
		if n == "customers" || n == "orders" {
			ts.DeletedBy = "deleted_by"
		}
		spec.Tables = append(spec.Tables, ts)
	}
	return catalogRewriter(t, dsn, spec)
}

// Restores bring back exactly what a deletion took with it, refuse to
// orphan a row or to take a live row's unique key, and are audited.
func TestRestoreOnPostgres(t *testing.T) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, restoreSchema)
	r := restoreRewriter(t, s.DSN(db))
	c := connect(t, s.DSN(db))
	ctx := context.Background()
	send := func(sql string) ([]*pgconn.Result, error) {
		t.Helper()
		res, _, ref := r.Rewrite(sql)
		if ref != nil {
			t.Fatalf("%s: refused: %v", sql, ref)
		}
		if res != nil {
			sql = res.SQL
		}
		return c.Exec(ctx, sql).ReadAll()
	}
	must := func(sql string) []*pgconn.Result {
		t.Helper()
		res, err := send(sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return res
	}
	restore := func(table, where string, cascade bool) ([]string, error) {
		t.Helper()
		sql, err := r.RestoreSQL(table, where, cascade)
		if err != nil {
			t.Fatalf("RestoreSQL(%s, %s): %v", table, where, err)
		}
		res, err := c.Exec(ctx, sql).ReadAll()
		if err != nil {
			return nil, err
		}
		var rows []string
		for _, row := range res[0].Rows {
			rows = append(rows, string(row[0])+"="+string(row[1]))
		}
		return rows, nil
	}
	deleted := func(table string) string {
		t.Helper()
		return strings.Join(queryRows(t, c, "SELECT id FROM "+table+" WHERE deleted_at IS NOT NULL ORDER BY id"), ",")
	}

	// Line 100 goes on its own, then customer 1 with its orders and
	// their remaining lines.
	must("DELETE FROM lines WHERE id = 100")
	must("DELETE FROM customers WHERE id = 1")
	if got := deleted("orders") + "/" + deleted("lines"); got != "10,11/100,101,110" {
		t.Fatalf("after the deletes, deleted orders/lines = %s", got)
	}
	got, err := restore("customers", "id = 1", true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"public.customers=1", "public.lines=2", "public.orders=2"}; !slices.Equal(got, want) {
		t.Errorf("restore --cascade counts %q, want %q", got, want)
	}
	if got := deleted("customers") + "/" + deleted("orders") + "/" + deleted("lines"); got != "//100" {
		t.Errorf("after the restore, deleted customers/orders/lines = %s, want only line 100 (deleted on its own)", got)
	}
	if got := queryRows(t, c, "SELECT count(*) FROM tombstone.audit_log WHERE action = 'restore' AND deletion IS NOT NULL"); got[0] != "5" {
		t.Errorf("%s restore audit rows, want 5", got[0])
	}

	// Without --cascade only the named rows come back.
	must("DELETE FROM customers WHERE id = 1")
	if got, err := restore("customers", "id = 1", false); err != nil || !slices.Equal(got, []string{"public.customers=1"}) {
		t.Errorf("restore without cascade: %q, %v", got, err)
	}
	if got := deleted("orders"); got != "10,11" {
		t.Errorf("restore without cascade brought back orders: deleted now %s", got)
	}

	// Order 20 references store 5, deleted after the order was: restoring
	// customer 2 with its orders would orphan it.
	must("DELETE FROM customers WHERE id = 2")
	must("DELETE FROM stores WHERE id = 5")
	if _, err := restore("customers", "id = 2", true); !isCode(err, "23503") {
		t.Errorf("restore onto a deleted parent: %v, want 23503", err)
	}
	if got := deleted("customers"); got != "2" {
		t.Errorf("the refused restore changed rows: deleted customers %s", got)
	}

	// A live row took customer 3's email: its restore fails on the
	// partial unique index, naming the key.
	must("DELETE FROM customers WHERE id = 3")
	must("INSERT INTO customers VALUES (4, 'c@x', NULL, NULL)")
	if _, err := restore("customers", "id = 3", true); !isCode(err, "23505") || !strings.Contains(err.(*pgconn.PgError).Detail, "(email)=(c@x)") {
		t.Errorf("restore of a taken key: %v, want 23505 naming (email)=(c@x)", err)
	}

	// Through the proxy, allow_restore makes the application's own
	// restore statement work, with cascades; the count is the table's.
	must("DELETE FROM customers WHERE id = 7")
	if got := deleted("orders") + "/" + deleted("lines"); got != "10,11,20,70/100,101,110,200,700" {
		t.Fatalf("after deleting customer 7, deleted orders/lines = %s", got)
	}
	res := must("UPDATE customers SET deleted_at = NULL, deleted_by = NULL WHERE id = 7")
	if tag := res[0].CommandTag.String(); tag != "UPDATE 1" {
		t.Errorf("restore through the proxy: %s, want UPDATE 1", tag)
	}
	if got := deleted("orders") + "/" + deleted("lines"); got != "10,11,20/100,101,110,200" {
		t.Errorf("after the proxy restore, deleted orders/lines = %s, want 10,11,20/100,101,110,200", got)
	}
	// An UPDATE that also changes other columns is an ordinary one.
	must("DELETE FROM customers WHERE id = 1")
	if res := must("UPDATE customers SET deleted_at = NULL, email = 'z@x' WHERE id = 1"); res[0].CommandTag.String() != "UPDATE 0" {
		t.Errorf("ordinary UPDATE of a deleted row: %s, want UPDATE 0", res[0].CommandTag)
	}
	// stores has no allow_restore: its restore statement is an UPDATE
	// of live rows.
	if res := must("UPDATE stores SET deleted_at = NULL WHERE id = 5"); res[0].CommandTag.String() != "UPDATE 0" {
		t.Errorf("restore statement on a table without allow_restore: %s, want UPDATE 0", res[0].CommandTag)
	}

	// A tree: the root's deletion took the subtree; restoring the root
	// brings it all back, and a branch deleted before stays deleted.
	must("DELETE FROM staff WHERE id = 4")
	must("DELETE FROM staff WHERE id = 1")
	if got := deleted("staff"); got != "1,2,3,4" {
		t.Fatalf("deleted staff %s, want 1,2,3,4", got)
	}
	must("UPDATE staff SET deleted_at = NULL WHERE id = 1")
	if got := deleted("staff"); got != "4" {
		t.Errorf("after restoring the root, deleted staff %s, want 4 (deleted on its own)", got)
	}
}

func isCode(err error, code string) bool {
	pe, ok := err.(*pgconn.PgError)
	return ok && pe.Code == code
}

// A restore beside a DELETE in the client's WITH: each plan's CTEs have
// names of their own.
func TestRestoreBesideDeleteCTE(t *testing.T) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, restoreSchema)
	r := restoreRewriter(t, s.DSN(db))
	c := connect(t, s.DSN(db))
	ctx := context.Background()
	for _, sql := range []string{"DELETE FROM customers WHERE id = 1",
		"WITH d AS (DELETE FROM lines WHERE id = 200 RETURNING id) UPDATE customers SET deleted_at = NULL WHERE id = 1"} {
		res, _, ref := r.Rewrite(sql)
		if ref != nil {
			t.Fatalf("%s: %v", sql, ref)
		}
		if _, err := c.Exec(ctx, res.SQL).ReadAll(); err != nil {
			t.Fatalf("%s: %v\n%s", sql, err, res.SQL)
		}
	}
	if got := strings.Join(queryRows(t, c, "SELECT 'c' || count(*) FILTER (WHERE deleted_at IS NULL) FROM customers WHERE id = 1 UNION ALL SELECT 'l' || count(*) FROM lines WHERE id = 200 AND deleted_at IS NOT NULL"), ","); got != "c1,l1" {
		t.Errorf("customer 1 live / line 200 deleted: %s, want c1,l1", got)
	}
}

// With a deleted_at that rounds to the second, a cascading restore could
// not tell a child deleted on its own from one its parent's deletion
// took: it is refused, and a restore without cascade still works.
func TestRestoreCoarseStampRefused(t *testing.T) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, `
CREATE TABLE p0 (id int PRIMARY KEY, deleted_at timestamp(0));
CREATE TABLE c0 (id int PRIMARY KEY, p_id int REFERENCES p0 ON DELETE CASCADE, deleted_at timestamp(0));
INSERT INTO p0 VALUES (1), (2); INSERT INTO c0 VALUES (10, 1), (11, 1);`)
	spec := policy.Spec{Mode: policy.ModeEnforce}
	for _, n := range []string{"p0", "c0"} {
		spec.Tables = append(spec.Tables, policy.TableSpec{Name: n, DeletedAt: "deleted_at", AllowRestore: true})
	}
	r := catalogRewriter(t, s.DSN(db), spec)
	if _, _, ref := r.Rewrite("UPDATE p0 SET deleted_at = NULL WHERE id = 1"); ref == nil || ref.Code != "0A000" || !strings.Contains(ref.Message, "timestamp(0)") {
		t.Errorf("cascading restore over timestamp(0): %v, want a 0A000 refusal naming the type", ref)
	}
	if _, err := r.RestoreSQL("p0", "id = 1", true); err == nil {
		t.Error("tombstone restore --cascade over timestamp(0) was not refused")
	}
	if _, err := r.RestoreSQL("p0", "id = 1", false); err != nil {
		t.Errorf("restore without cascade: %v", err)
	}
}
