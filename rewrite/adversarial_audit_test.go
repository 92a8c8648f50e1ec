package rewrite

// Attacks on the audited delete and restore (issue 11) found by an
// adversarial review, kept as regression tests: races, forged stamps,
// hostile comments and search paths, audit log spellings.

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
)

// reviewRewriter builds a rewriter for the tables of the database at dsn,
// each configured with deleted_at and allow_restore, the helpers and the
// audit log installed.
func reviewRewriter(t *testing.T, dsn string, tables ...string) *Rewriter {
	t.Helper()
	return reviewRewriterAllow(t, dsn, nil, tables...)
}

// reviewRewriterAllow is reviewRewriter with allow_restore only on the
// tables allow names (every table when allow is nil).
func reviewRewriterAllow(t *testing.T, dsn string, allow map[string]bool, tables ...string) *Rewriter {
	t.Helper()
	spec := policy.Spec{Mode: policy.ModeEnforce, Audit: policy.RelName{Schema: "tombstone", Name: "audit_log"}}
	for _, n := range tables {
		spec.Tables = append(spec.Tables, policy.TableSpec{Name: n, DeletedAt: "deleted_at", AllowRestore: allow == nil || allow[n]})
	}
	return catalogRewriter(t, dsn, spec)
}

func reviewSend(t *testing.T, r *Rewriter, c *pgconn.PgConn, sql string) ([]*pgconn.Result, error) {
	t.Helper()
	checkSplice(t, r.policy, sql) // every adversarial text gets the differential check
	res, _, ref := r.Rewrite(sql)
	if ref != nil {
		return nil, ref
	}
	if res != nil {
		sql = res.SQL
	}
	return c.Exec(context.Background(), sql).ReadAll()
}

func reviewMust(t *testing.T, r *Rewriter, c *pgconn.PgConn, sql string) {
	t.Helper()
	if _, err := reviewSend(t, r, c, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// A concurrent UPDATE of the target row, committed while the DELETE waits
// for its lock (tombstone_target is FOR UPDATE under READ COMMITTED).
// The DELETE must be all or nothing: the row, its cascades and its audit
// row. Joined by ctid, the outer UPDATE missed the row's new version
// ("customer not deleted, its 2 orders deleted, 1 audit row"); it now
// joins by primary key.
func TestAdversarialConcurrentUpdateSplitsDeletion(t *testing.T) {
	for _, setting := range []string{"", "SET enable_tidscan = off", "SET enable_nestloop = off", "SET enable_hashjoin = off; SET enable_mergejoin = off"} {
		t.Run(setting, func(t *testing.T) { concurrentUpdateSplit(t, setting) })
	}
}

func concurrentUpdateSplit(t *testing.T, setting string) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, restoreSchema)
	r := restoreRewriter(t, s.DSN(db))
	a, b := connect(t, s.DSN(db)), connect(t, s.DSN(db))
	ctx := context.Background()
	if setting != "" {
		if _, err := a.Exec(ctx, setting).ReadAll(); err != nil {
			t.Fatal(err)
		}
	}
	res, _, _ := r.Rewrite("DELETE FROM customers WHERE id = 1")
	plan := queryRows(t, a, "EXPLAIN (COSTS OFF) "+res.SQL)
	if _, err := b.Exec(ctx, "BEGIN; UPDATE customers SET email = 'a2@x' WHERE id = 1").ReadAll(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.Exec(ctx, res.SQL).ReadAll()
		done <- err
	}()
	watch := connect(t, s.DSN(db))
	waiting := false
	for i := 0; i < 500 && !waiting; i++ {
		time.Sleep(20 * time.Millisecond)
		waiting = queryRows(t, watch, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%tombstone_target%'")[0] == "1"
	}
	if !waiting {
		t.Fatal("the DELETE never waited for the row lock")
	}
	if _, err := b.Exec(ctx, "COMMIT").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Logf("the DELETE failed: %v", err)
	}
	cust := queryRows(t, b, "SELECT count(*) FROM customers WHERE id = 1 AND deleted_at IS NOT NULL")[0]
	orders := queryRows(t, b, "SELECT count(*) FROM orders WHERE customer_id = 1 AND deleted_at IS NOT NULL")[0]
	audit := queryRows(t, b, `SELECT count(*) FROM tombstone.audit_log WHERE table_name = 'public.customers' AND key = '{"id": 1}'`)[0]
	t.Logf("customer 1 deleted %s, its orders deleted %s, audit rows %s", cust, orders, audit)
	if !(cust == "1" && orders == "2" && audit == "1") && !(cust == "0" && orders == "0" && audit == "0") {
		t.Errorf("after a DELETE racing a committed UPDATE: customer 1 deleted %s, its orders deleted %s, audit rows for it %s; want all or nothing\nplan:\n%s",
			cust, orders, audit, strings.Join(plan, "\n"))
	}
}

// RestoreSQL and the comment parsers must not panic on odd input.
func TestAdversarialNoPanics(t *testing.T) {
	for _, body := range []string{"", "=", "='", "a='", "a=''", "a='',", "a='x' ,", "a='\\", "a='\\'", ",", "a=b", "%zz='x'", "a='%zz'", "  a = 'x'  "} {
		parseSQLCommenter(body)
	}
	for _, sql := range []string{"/**/", "/* a='b' */ --", "--", "/*/**/*/", "DELETE FROM t /*actor='%ff'*/"} {
		c := commentSpans(sql)
		statementTags(sql, c, 0, len(sql))
	}
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, restoreSchema)
	r := restoreRewriter(t, s.DSN(db))
	for _, in := range [][2]string{
		{"customers", "CURRENT OF c"}, {"customers c", "c.id = 1"}, {"ONLY customers", "id = 1"}, {"public.customers", "true"},
		{"customers", "id = (WITH x AS (SELECT 1) SELECT 1)"}, {"orders", "id = 1"}, {"staff", "id = 1"},
		{"customers", "id = 1) OR (true"}, {"customers TABLESAMPLE system (1)", "true"}, {"customers", "true; SELECT 1"},
		{"customers", "EXISTS (SELECT FROM customers)"}, {"lines", "true"}, {"stores", "id = 5"},
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("RestoreSQL(%q, %q) panicked: %v", in[0], in[1], p)
				}
			}()
			r.RestoreSQL(in[0], in[1], true)
		}()
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// An application's own table named like the audit log (public.audit_log
// is common) is the application's: only the qualified name is refused.
func TestAdversarialOwnAuditLogTableRefused(t *testing.T) {
	p, err := policy.New(policy.Spec{Mode: policy.ModeEnforce, Audit: policy.RelName{Schema: "tombstone", Name: "audit_log"},
		Tables: []policy.TableSpec{{Name: "contacts", DeletedAt: "deleted_at"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := New(p, 0)
	if _, _, ref := r.Rewrite("INSERT INTO audit_log (event) VALUES ('login')"); ref != nil {
		t.Errorf("INSERT into the application's own audit_log (unqualified): refused %q", ref.Message)
	}
}

// Comment tags of odd shapes reach deleted_by and deleted_reason as
// written, each statement of a multi-statement text keeping its own, and
// the text still runs as the client wrote it.
func TestAdversarialCommentTagsRoundTrip(t *testing.T) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, deletionSchema)
	r := deletionRewriter(t, s.DSN(db))
	c := connect(t, s.DSN(db))
	queryRows(t, c, "UPDATE projects SET account_id = NULL RETURNING 1") // no uuid cascade
	for _, tc := range []struct{ sql, want string }{
		{"SELECT 1 -- x /*actor='no'*/\r; DELETE FROM accounts WHERE id = 1 /*actor='O\\'Brien',reason='caf%C3%A9 %E2%82%AC'*/", "1|O'Brien|café €"},
		{"/*actor='first'*/ DELETE FROM accounts WHERE id = 2 /* not a tag */ /*reason='r%27%3B%20--'*/;", "2|first|r'; --"},
		{"DELETE FROM accounts WHERE id = 3 /*actor='é',reason='\\\\'*/", "3|é|\\"},
	} {
		if _, err := reviewSend(t, r, c, tc.sql); err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		id := tc.want[:1]
		got := queryRows(t, c, "SELECT id, deleted_by, deleted_reason FROM accounts WHERE id = "+id)
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: stored %q, want %q", tc.sql, got, tc.want)
		}
	}
}

// A restore through the proxy must not bring back a row of a table
// without allow_restore: DELETE ... RETURNING shows an order's stamp, a
// plain UPDATE may copy it onto a live parent's deleted_at, and restoring
// that parent (allow_restore) would cascade by stamp to the order.
func TestAdversarialForgedStampRestoresOtherTable(t *testing.T) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, restoreSchema)
	r := reviewRewriterAllow(t, s.DSN(db), map[string]bool{"customers": true}, "stores", "customers", "orders", "lines", "staff")
	c := connect(t, s.DSN(db))
	res, err := reviewSend(t, r, c, "DELETE FROM orders WHERE id = 20 RETURNING deleted_at")
	if err != nil || len(res) == 0 || len(res[0].Rows) != 1 {
		t.Fatalf("DELETE ... RETURNING deleted_at: %v", err)
	}
	stamp := string(res[0].Rows[0][0])
	if _, err := reviewSend(t, r, c, "UPDATE customers SET deleted_at = '"+stamp+"' WHERE id = 2"); err != nil {
		t.Logf("the stamp copy was refused: %v", err)
		return
	}
	if _, err := reviewSend(t, r, c, "UPDATE customers SET deleted_at = NULL WHERE id = 2"); err != nil {
		t.Logf("the restore was refused: %v", err)
		return
	}
	if got := queryRows(t, c, "SELECT count(*) FROM orders WHERE id = 20 AND deleted_at IS NULL"); got[0] != "0" {
		t.Errorf("order 20 (orders has no allow_restore, deleted on its own) is live again after the application copied its stamp onto customer 2 and restored that")
	}
}

// DELETE ... USING that matches each row twice: one audit row per row,
// and the tag counts rows, not matches.
func TestAdversarialUsingDuplicatesAuditedOnce(t *testing.T) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, restoreSchema)
	r := restoreRewriter(t, s.DSN(db))
	c := connect(t, s.DSN(db))
	res, err := reviewSend(t, r, c, "DELETE FROM lines l USING orders o WHERE o.customer_id = 1 AND l.order_id IN (10, 11)")
	if err != nil {
		t.Fatal(err)
	}
	if tag := res[len(res)-1].CommandTag.String(); tag != "UPDATE 3" && tag != "DELETE 3" {
		t.Errorf("tag %s, want 3 rows", tag)
	}
	if got := queryRows(t, c, "SELECT count(*), count(DISTINCT key) FROM tombstone.audit_log"); got[0] != "3|3" {
		t.Errorf("audit rows (all, distinct keys) %s, want 3|3", got[0])
	}
}

// The SQL a deletion and a restore emit resolves nothing through the
// client's search_path: a schema ahead of pg_catalog with look-alike
// functions changes neither the stamp, nor the actor, nor the audit row.
func TestAdversarialSearchPathShadowing(t *testing.T) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, restoreSchema+`
CREATE SCHEMA evil;
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$;
CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE sql AS $$SELECT 'evil'$$;
CREATE FUNCTION evil.jsonb_build_object(text, int) RETURNS jsonb LANGUAGE sql AS $$SELECT '{"evil": 1}'::jsonb$$;
CREATE FUNCTION evil.format(text, name, name) RETURNS text LANGUAGE sql AS $$SELECT 'evil'$$;
CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE sql AS $$SELECT true$$;
CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
CREATE FUNCTION evil.inteq(int, int) RETURNS boolean LANGUAGE sql AS $$SELECT true$$;
CREATE OPERATOR evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = evil.inteq);`)
	r := restoreRewriter(t, s.DSN(db))
	c := connect(t, s.DSN(db))
	reviewMust(t, r, c, "SET search_path = evil, pg_catalog, public")
	reviewMust(t, r, c, "DELETE FROM customers WHERE id OPERATOR(pg_catalog.=) 7")
	reviewMust(t, r, c, "UPDATE customers SET deleted_at = NULL WHERE id OPERATOR(pg_catalog.=) 7")
	reviewMust(t, r, c, "SET search_path = public")
	got := queryRows(t, c, `SELECT action, table_name, key::text, actor, deletion > '2001-01-01' FROM tombstone.audit_log WHERE table_name = 'public.customers' ORDER BY id`)
	if len(got) != 2 || got[0] != `delete|public.customers|{"id": 7}|postgres|t` || got[1] != `restore|public.customers|{"id": 7}|postgres|t` {
		t.Errorf("audit rows under a hostile search_path: %q", got)
	}
	if n := queryRows(t, c, "SELECT count(*) FROM orders WHERE deleted_at IS NOT NULL"); n[0] != "0" {
		t.Errorf("%s orders still deleted after the restore", n[0])
	}
}

// Texts of one shape with different comments never share an actor
// through the caches.
func TestAdversarialTemplateKeepsEachActor(t *testing.T) {
	p, err := policy.New(policy.Spec{Mode: policy.ModeEnforce, Tables: []policy.TableSpec{{Name: "contacts", DeletedAt: "deleted_at", DeletedBy: "deleted_by"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := New(p, 1<<20)
	for i, actor := range []string{"alice", "bob", "alice", "carol", "bob"} {
		sql := "DELETE FROM contacts WHERE id = " + itoa(i) + " AND name = 'n" + itoa(i) + "' /*actor='" + actor + "'*/"
		res, _, ref := r.Rewrite(sql)
		if ref != nil {
			t.Fatal(ref)
		}
		if !strings.Contains(res.SQL, "COALESCE('"+actor+"'") || !strings.Contains(res.SQL, "'n"+itoa(i)+"'") {
			t.Errorf("%s\n=> %s", sql, res.SQL)
		}
	}
}

// Spellings of the audit log's name that the parser decodes to it are
// refused like the plain one.
func TestAdversarialAuditLogSpellings(t *testing.T) {
	p, err := policy.New(policy.Spec{Mode: policy.ModeEnforce, Audit: policy.RelName{Schema: "tombstone", Name: "audit_log"},
		Tables: []policy.TableSpec{{Name: "contacts", DeletedAt: "deleted_at"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := New(p, 1<<20)
	for _, sql := range []string{
		`INSERT INTO tombstone.U&"audit\005flog" (action, table_name) VALUES ('delete', 'x')`,
		`INSERT INTO "tombstone"."audit_log" (action, table_name) VALUES ('delete', 'x')`,
		`INSERT INTO mydb.tombstone.audit_log (action, table_name) VALUES ('delete', 'x')`,
		`CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$BEGIN INSERT INTO tombstone.audit_log (action, table_name) VALUES ('delete', 'x'); END$$`,
		`CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC INSERT INTO tombstone.audit_log (action, table_name) VALUES ('delete', 'x'); END`,
		`PREPARE p AS INSERT INTO tombstone.audit_log (action, table_name) VALUES ('delete', 'x')`,
		`MERGE INTO tombstone.audit_log a USING (SELECT 1) s ON false WHEN NOT MATCHED THEN INSERT (action, table_name) VALUES ('delete', 'x')`,
		`CREATE VIEW v AS SELECT * FROM tombstone.audit_log`,
	} {
		if _, _, ref := r.Rewrite(sql); ref == nil {
			t.Errorf("%s: not refused", sql)
		}
	}
}
