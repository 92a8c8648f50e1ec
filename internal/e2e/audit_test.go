package e2e

// The end-to-end tests of issue 11: who deleted a row and why (deleted_by,
// deleted_reason, from a sqlcommenter comment, the tombstone.actor and
// tombstone.reason settings or the login role), one deleted_at stamp per
// deletion, the audit log written in the deleting transaction, and
// restores through the proxy on allow_restore tables. As in
// schema_test.go, every test has a soft-delete database reached through
// Tombstone as the application role and a hard-delete twin reached
// directly; the superuser reads the soft side directly to see what is on
// disk and in the audit log.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
	"github.com/tombstone-proxy/tombstone/policy"
)

// auditSchemaSQL is loaded into both databases. Customer c has orders
// 10c and 10c+1, order o has order_lines 10o and 10o+1: deleting
// customer 1 takes orders 10, 11 and lines 100, 101, 110, 111 with it.
// order_lines has no deleted_by or deleted_reason column: a cascade
// reaches it all the same. devices records a uuid actor, tickets a bigint
// one, tasks an integer one; labels has no primary key. The trigger on
// customers records the text of every statement that updates or deletes
// customers, as the server received it.
const auditSchemaSQL = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL,
  deleted_at timestamptz, deleted_by text, deleted_reason text);
CREATE UNIQUE INDEX customers_email_live ON customers (email) WHERE deleted_at IS NULL;
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE, total int NOT NULL,
  deleted_at timestamptz, deleted_by text, deleted_reason text);
CREATE TABLE order_lines (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders ON DELETE CASCADE, sku text NOT NULL,
  deleted_at timestamptz);
CREATE TABLE devices (id int PRIMARY KEY, name text NOT NULL, deleted_at timestamptz, deleted_by uuid);
CREATE TABLE tickets (id int PRIMARY KEY, title text NOT NULL, deleted_at timestamptz, deleted_by bigint);
CREATE TABLE tasks   (id int PRIMARY KEY, deleted_at timestamptz, deleted_by integer);
CREATE TABLE projects   (id int PRIMARY KEY, name text NOT NULL, deleted_at timestamptz, deleted_by text);
CREATE TABLE milestones (id int PRIMARY KEY, project_id int NOT NULL, deleted_at timestamptz, deleted_by text);
CREATE TABLE "Mixed Case" ("Item Id" int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE pairs (a int, b text, PRIMARY KEY (b, a), deleted_at timestamptz);
CREATE TABLE labels  (name text NOT NULL, deleted_at timestamptz, deleted_by text);
CREATE TABLE query_log (q text NOT NULL);
CREATE FUNCTION log_query() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO query_log VALUES (pg_catalog.current_query()); RETURN NULL; END$$;
CREATE TRIGGER customers_log_query AFTER UPDATE OR DELETE ON customers FOR EACH STATEMENT EXECUTE FUNCTION log_query();

INSERT INTO customers SELECT g, 'c' || g, 'c' || g || '@example.com' FROM generate_series(1, 12) g;
INSERT INTO orders SELECT c * 10 + k, c, 100 * k + c FROM generate_series(1, 12) c, generate_series(0, 1) k;
INSERT INTO order_lines SELECT o.id * 10 + k, o.id, 'sku' || k FROM orders o, generate_series(0, 1) k;
INSERT INTO devices SELECT g, 'd' || g FROM generate_series(1, 6) g;
INSERT INTO tickets SELECT g, 't' || g FROM generate_series(1, 6) g;
INSERT INTO tasks SELECT g FROM generate_series(1, 4) g;
INSERT INTO projects VALUES (1, 'p1'), (2, 'p2');
INSERT INTO milestones (id, project_id) VALUES (1, 1), (2, 1), (3, 1), (4, 2);
INSERT INTO "Mixed Case" VALUES (1), (2);
INSERT INTO pairs (a, b) VALUES (1, 'x'), (2, 'y');
INSERT INTO labels (name) VALUES ('red'), ('green'), ('blue');
`

const (
	nAuditCustomers = 12
	nAuditOrders    = 24
	nAuditLines     = 48
)

const auditConfig = `
privileged_roles: [postgres]
audit: {table: tombstone.audit_log}
tables:
  - name: customers
    deleted_by: deleted_by
    deleted_reason: deleted_reason
    allow_restore: true
  - name: orders
    deleted_by: deleted_by
    deleted_reason: deleted_reason
    allow_restore: true
  - name: order_lines
    allow_restore: true
  - name: devices
    deleted_by: deleted_by
  - name: tickets
    deleted_by: deleted_by
  - name: tasks
    deleted_by: deleted_by
  - name: projects
    deleted_by: deleted_by
    allow_restore: true
    cascade: [{table: milestones, column: project_id}]
  - name: milestones
    deleted_by: deleted_by
    allow_restore: true
  - name: '"Mixed Case"'
  - name: pairs
  - name: labels
    deleted_by: deleted_by
`

// newAuditEnv is newSchemaEnv for auditSchemaSQL and auditConfig: the
// audit log (catalog.AuditTable's DDL) and tombstone migrate's plan are
// installed as the superuser before the first application session.
func newAuditEnv(t *testing.T) *schemaEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Shared(t)
	ensureAppRole(t, pg)
	grants := `GRANT ALL ON ALL TABLES IN SCHEMA public TO ` + appUser + `;`
	softDB, realDB := pgtest.CreateDB(t, pg), pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, softDB, auditSchemaSQL+grants)
	// The twin has the foreign key projects' declared cascade stands for.
	pgtest.Exec(t, pg, realDB, auditSchemaSQL+grants+
		"ALTER TABLE milestones ADD FOREIGN KEY (project_id) REFERENCES projects ON DELETE CASCADE;")
	px := proxytest.Start(t, pg, auditConfig)
	env := &schemaEnv{ctx: testCtx(t), px: px, pg: pg, softDB: softDB}
	env.super = connect(t, directDSN(pg, pg.User, pg.Password, softDB))

	for _, stmt := range catalog.AuditTable(policy.RelName{Schema: "tombstone", Name: "audit_log"}) {
		if _, err := env.super.Exec(env.ctx, stmt); err != nil {
			t.Fatalf("audit table: %v\n%s", err, stmt)
		}
	}
	return env.finish(t, realDB)
}

// rowKey names one row as the audit log does: table_name and key.
func rowKey(table string, id int) string { return fmt.Sprintf(`public.%s {"id": %d}`, table, id) }

// customerRows are the rows a delete of customer c takes: the customer,
// its two orders and their four lines, as rowKeys.
func customerRows(c int) []string {
	keys := []string{rowKey("customers", c)}
	for _, o := range []int{c * 10, c*10 + 1} {
		keys = append(keys, rowKey("orders", o), rowKey("order_lines", o*10), rowKey("order_lines", o*10+1))
	}
	slices.Sort(keys)
	return keys
}

// twinKeys lists every row of customers, orders and order_lines on the
// twin as rowKeys, sorted.
func (e *schemaEnv) twinKeys(t *testing.T) []string {
	t.Helper()
	rows, err := e.twin.Query(e.ctx, `SELECT 'customers', id FROM customers UNION ALL SELECT 'orders', id FROM orders
	  UNION ALL SELECT 'order_lines', id FROM order_lines`)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for rows.Next() {
		var table string
		var id int
		if err := rows.Scan(&table, &id); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, rowKey(table, id))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// keysWithout is the sorted keys of before missing from after.
func keysWithout(before, after []string) []string {
	var gone []string
	for _, k := range before {
		if !slices.Contains(after, k) {
			gone = append(gone, k)
		}
	}
	return gone
}

// auditRow is one row of tombstone.audit_log as the superuser reads it.
type auditRow struct {
	Action, Key    string // Key: table_name and key, as rowKey spells them ("public.labels <nil>" without a key)
	Actor, Reason  *string
	LoginRole, Xid string
	Fingerprint    *string
	Deletion       *time.Time
	At             time.Time
}

func (r auditRow) String() string {
	return fmt.Sprintf("%s %s actor=%s reason=%s login=%s xid=%s fp=%s deletion=%s", r.Action, r.Key, auditStr(r.Actor), auditStr(r.Reason),
		r.LoginRole, r.Xid, auditStr(r.Fingerprint), fmtTime(r.Deletion))
}

func auditStr(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

func auditPtr(s string) *string { return &s }

// auditLog reads the audit rows matching where (SQL on the audit log's
// columns), sorted by Key.
func (e *schemaEnv) auditLog(t *testing.T, where string) []auditRow {
	t.Helper()
	rows, err := e.super.Query(e.ctx, `SELECT action, table_name || ' ' || coalesce(key::text, '<nil>'), actor, reason, login_role,
	  xid::text, fingerprint, deletion, at FROM tombstone.audit_log WHERE `+where+` ORDER BY 2, id`)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var out []auditRow
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.Action, &r.Key, &r.Actor, &r.Reason, &r.LoginRole, &r.Xid, &r.Fingerprint, &r.Deletion, &r.At); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func auditKeys(rows []auditRow) []string {
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = r.Key
	}
	return keys
}

// wantAudit checks that the audit rows matching where are exactly one per
// key in keys, each with action, actor, reason (nil: NULL), login role
// and deletion stamp as given; xid too unless it is "".
func (e *schemaEnv) wantAudit(t *testing.T, what, where string, keys []string, action string, actor, reason *string, login, xid string, deletion *time.Time) []auditRow {
	t.Helper()
	rows := e.auditLog(t, where)
	if got := auditKeys(rows); !slices.Equal(got, keys) {
		t.Errorf("%s: audit rows for\n  %v\nwant one for each of\n  %v", what, got, keys)
	}
	for _, r := range rows {
		bad := r.Action != action || !sameAuditStr(r.Actor, actor) || !sameAuditStr(r.Reason, reason) || r.LoginRole != login ||
			(xid != "" && r.Xid != xid) || (r.Deletion == nil) != (deletion == nil) || (deletion != nil && !r.Deletion.Equal(*deletion))
		if bad {
			t.Errorf("%s: audit row\n  %s\nwant action %s, actor %s, reason %s, login %s, xid %s, deletion %s", what, r, action,
				auditStr(actor), auditStr(reason), login, xid, fmtTime(deletion))
		}
	}
	return rows
}

func sameAuditStr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// colOnDisk is the text of column of row id of table on disk (nil: NULL).
func (e *schemaEnv) colOnDisk(t *testing.T, table, column string, id int) *string {
	t.Helper()
	return scalar[*string](t, e.super, fmt.Sprintf("SELECT %s::text FROM %s WHERE id = %d", column, table, id))
}

// run runs statements on conn in order, failing the test on the first
// error, and returns the last one's command tag.
func (e *schemaEnv) run(t *testing.T, conn *pgx.Conn, sqls ...string) string {
	t.Helper()
	var tag string
	for _, sql := range sqls {
		tag = e.mustRun(t, conn, sql)
	}
	return tag
}

// 1. One deleted_at stamp per DELETE statement, shared by every row it
// deletes, its cascades included; a row deleted on its own before keeps
// its stamp; two DELETEs in one transaction get two stamps. What the
// application sees afterwards is what the twin shows after real deletes.
func TestAuditOneStampPerStatement(t *testing.T) {
	e := newAuditEnv(t)
	e.both(t, "DELETE FROM order_lines WHERE id = 101")
	line101 := e.deletedAt(t, "order_lines", 101)
	time.Sleep(10 * time.Millisecond) // so that a reused stamp would show

	if o := e.both(t, "DELETE FROM customers WHERE id IN (1, 2)"); o.tag != "DELETE 2" {
		t.Errorf("DELETE FROM customers WHERE id IN (1, 2): tag %q, want DELETE 2", o.tag)
	}
	at := e.deletedAt(t, "customers", 1)
	if at.Equal(*line101) {
		t.Fatalf("customer 1 has the stamp %s of the earlier DELETE of line 101", fmtTime(at))
	}
	e.wantDisk(t, "customers", nAuditCustomers, map[int]*time.Time{1: at, 2: at, 3: nil})
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{10: at, 11: at, 20: at, 21: at, 30: nil})
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{100: at, 101: line101, 110: at, 111: at,
		200: at, 201: at, 210: at, 211: at, 300: nil})
	e.sameTables(t, "customers", "orders", "order_lines")

	// Two statements, one transaction: two deletions.
	for _, sql := range []string{"BEGIN", "DELETE FROM customers WHERE id = 3", "DELETE FROM customers WHERE id = 4", "COMMIT"} {
		e.both(t, sql)
	}
	at3, at4 := e.deletedAt(t, "customers", 3), e.deletedAt(t, "customers", 4)
	if at3.Equal(*at4) {
		t.Errorf("two DELETE statements in one transaction share the stamp %s: want one stamp per statement", fmtTime(at3))
	}
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{30: at3, 31: at3, 40: at4, 41: at4})
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{300: at3, 311: at3, 400: at4, 411: at4})
	e.sameTables(t, "customers", "orders", "order_lines")

	// Two statements in one Query message (one implicit transaction, one
	// statement_timestamp()): two deletions all the same.
	const two = "DELETE FROM customers WHERE id = 5; DELETE FROM customers WHERE id = 6"
	for _, conn := range []*pgx.Conn{e.app, e.twin} {
		if tag, err := conn.Exec(e.ctx, two); err != nil || tag.String() != "DELETE 1" {
			t.Errorf("%s: %q, %v; want DELETE 1 (the last statement's tag)", two, tag, err)
		}
	}
	at5, at6 := e.deletedAt(t, "customers", 5), e.deletedAt(t, "customers", 6)
	if at5.Equal(*at6) {
		t.Errorf("two DELETE statements in one Query message share the stamp %s: want one stamp per statement", fmtTime(at5))
	}
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{50: at5, 51: at5, 60: at6, 61: at6})
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{500: at5, 511: at5, 600: at6, 611: at6})
	e.sameTables(t, "customers", "orders", "order_lines")
}

// 2. deleted_by and deleted_reason, in the target row and in the cascaded
// orders (order_lines has neither column and is deleted all the same),
// and in the audit rows: the actor is the sqlcommenter comment's, else
// tombstone.actor (SET, SET LOCAL, set_config; empty is unset), else the
// login role; the reason the comment's, else tombstone.reason, else NULL.
// Each case runs on a session of its own.
func TestAuditActorAndReason(t *testing.T) {
	e := newAuditEnv(t)
	cases := []struct {
		name   string
		before []string // on the same session, before the DELETE
		delete string   // deletes customer id
		after  []string
		id     int
		actor  string
		reason *string
	}{
		{"comment at the end", nil,
			"DELETE FROM customers WHERE id = 1 /*actor='alice',reason='gdpr%20request',traceparent='00-abc-def-01'*/", nil,
			1, "alice", auditPtr("gdpr request")},
		{"comment first, keys in another order, escapes", nil,
			"/*reason='it%27s%20a%20dup',actor='carol%40example.com'*/ DELETE FROM customers WHERE id = 2", nil,
			2, "carol@example.com", auditPtr("it's a dup")},
		{"comment in the middle, actor only", nil,
			"DELETE FROM customers /*actor='dave'*/ WHERE id = 3", nil,
			3, "dave", nil},
		{"SET", []string{"SET tombstone.actor = 'bob'", "SET tombstone.reason = 'cleanup'"},
			"DELETE FROM customers WHERE id = 4", nil,
			4, "bob", auditPtr("cleanup")},
		{"comment beats SET, reason from SET", []string{"SET tombstone.actor = 'bob'", "SET tombstone.reason = 'cleanup'"},
			"DELETE FROM customers WHERE id = 5 /*actor='alice'*/", nil,
			5, "alice", auditPtr("cleanup")},
		{"SET LOCAL", []string{"BEGIN", "SET LOCAL tombstone.actor = 'lena'", "SET LOCAL tombstone.reason = 'local reason'"},
			"DELETE FROM customers WHERE id = 6", []string{"COMMIT"},
			6, "lena", auditPtr("local reason")},
		{"set_config for the session", []string{"SELECT set_config('tombstone.actor', 'erin', false)"},
			"DELETE FROM customers WHERE id = 7", nil,
			7, "erin", nil},
		{"set_config for the transaction", []string{"BEGIN", "SELECT set_config('tombstone.actor', 'fred', true)", "SELECT set_config('tombstone.reason', 'tx', true)"},
			"DELETE FROM customers WHERE id = 8", []string{"COMMIT"},
			8, "fred", auditPtr("tx")},
		{"SET LOCAL ends with COMMIT", []string{"BEGIN", "SET LOCAL tombstone.actor = 'lena'", "SET LOCAL tombstone.reason = 'gone'", "COMMIT"},
			"DELETE FROM customers WHERE id = 9", nil,
			9, appUser, nil},
		{"SET LOCAL ends with ROLLBACK", []string{"BEGIN", "SET LOCAL tombstone.actor = 'lena'", "ROLLBACK"},
			"DELETE FROM customers WHERE id = 10", nil,
			10, appUser, nil},
		{"empty settings are unset", []string{"SET tombstone.actor = ''", "SET tombstone.reason = ''"},
			"DELETE FROM customers WHERE id = 11", nil,
			11, appUser, nil},
		{"nothing set: the login role", nil,
			"DELETE FROM customers WHERE id = 12", nil,
			12, appUser, nil},
	}
	for _, c := range cases {
		conn := connect(t, e.appDSN)
		e.run(t, conn, c.before...)
		if tag := e.mustRun(t, conn, c.delete); tag != "DELETE 1" {
			t.Errorf("%s: %s: tag %q, want DELETE 1", c.name, c.delete, tag)
		}
		e.run(t, conn, c.after...)
		if tag := e.mustRun(t, e.twin, fmt.Sprintf("DELETE FROM customers WHERE id = %d", c.id)); tag != "DELETE 1" {
			t.Fatalf("twin: DELETE of customer %d: %s", c.id, tag)
		}
		conn.Close(e.ctx)

		at := e.deletedAt(t, "customers", c.id)
		for _, r := range []struct {
			table string
			id    int
		}{{"customers", c.id}, {"orders", c.id * 10}, {"orders", c.id*10 + 1}} {
			by, why := e.colOnDisk(t, r.table, "deleted_by", r.id), e.colOnDisk(t, r.table, "deleted_reason", r.id)
			if !sameAuditStr(by, &c.actor) || !sameAuditStr(why, c.reason) {
				t.Errorf("%s: %s row %d: deleted_by %s, deleted_reason %s; want %q, %s", c.name, r.table, r.id, auditStr(by), auditStr(why), c.actor, auditStr(c.reason))
			}
		}
		e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{c.id * 10: at, c.id*10 + 1: at})
		e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{c.id * 100: at, c.id*100 + 11: at})
		e.wantAudit(t, c.name, fmt.Sprintf("deletion = '%s'", at.UTC().Format(time.RFC3339Nano)), customerRows(c.id),
			"delete", &c.actor, c.reason, appUser, "", at)
	}
	e.sameTables(t, "customers", "orders", "order_lines")
}

// 3. The client's comments reach the server: the statement the server runs
// for a DELETE (and for a restore) contains the comment as the client wrote
// it, in the simple and the extended protocol and wherever the comment
// stands. The trigger on customers records pg_catalog.current_query().
func TestAuditCommentReachesServer(t *testing.T) {
	e := newAuditEnv(t)
	for _, c := range []struct {
		sql     string
		args    []any
		comment string
		id      int
		actor   string
	}{
		{"DELETE FROM customers WHERE id = 1 /*actor='alice',reason='gdpr%20request',traceparent='00-abc-def-01'*/", nil,
			"/*actor='alice',reason='gdpr%20request',traceparent='00-abc-def-01'*/", 1, "alice"},
		{"DELETE FROM customers WHERE id = $1 /*actor='frank',traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/", []any{2},
			"/*actor='frank',traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/", 2, "frank"},
		{"/*controller='users',action='destroy',actor='gina'*/ DELETE FROM customers WHERE id = 3", nil,
			"/*controller='users',action='destroy',actor='gina'*/", 3, "gina"},
		{"DELETE FROM customers -- the 4th\n WHERE id = 4 /*actor='hugo'*/", nil,
			"-- the 4th\n", 4, "hugo"},
		{"UPDATE customers SET deleted_at = NULL WHERE id = 1 /*actor='ivan',route='/restore'*/", nil,
			"/*actor='ivan',route='/restore'*/", 1, ""},
	} {
		e.run(t, e.super, "TRUNCATE query_log")
		var err error
		if c.args != nil {
			_, err = e.app.Exec(e.ctx, c.sql, c.args...) // extended protocol: Parse, Bind, Execute
		} else {
			_, err = e.app.Exec(e.ctx, c.sql, pgx.QueryExecModeSimpleProtocol)
		}
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		logged := e.queryLog(t)
		if len(logged) == 0 || !strings.Contains(logged[0], c.comment) {
			t.Errorf("%s: the server ran %q, want a statement containing the client's comment %q", c.sql, logged, c.comment)
		}
		if c.actor != "" {
			if by := e.colOnDisk(t, "customers", "deleted_by", c.id); !sameAuditStr(by, &c.actor) {
				t.Errorf("%s: deleted_by %s, want %q", c.sql, auditStr(by), c.actor)
			}
		} else if at := e.onDisk(t, "customers")[c.id]; at != nil {
			t.Errorf("%s: customer %d still deleted (%s), want it restored", c.sql, c.id, fmtTime(at))
		}
	}
}

func (e *schemaEnv) queryLog(t *testing.T) []string {
	t.Helper()
	rows, err := e.super.Query(e.ctx, "SELECT q FROM query_log")
	if err != nil {
		t.Fatal(err)
	}
	qs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// 4. A uuid deleted_by stores an actor that is a uuid and refuses one
// that is not (the login role included) with 22P02, deleting nothing; a
// bigint deleted_by stores '42' as 42, an integer one '12' as 12, and
// both refuse 'alice' the same way.
func TestAuditActorTypes(t *testing.T) {
	e := newAuditEnv(t)
	const u1, u2 = "6f1c1b5e-2b8a-4b53-9f2d-1c1e5b3a9d10", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	for _, c := range []struct {
		table  string
		before []string
		sql    string
		id     int
		want   string // stored deleted_by; "" means 22P02 and nothing deleted
	}{
		{"devices", nil, "DELETE FROM devices WHERE id = 1 /*actor='" + u1 + "'*/", 1, u1},
		{"devices", []string{"SET tombstone.actor = '" + u2 + "'"}, "DELETE FROM devices WHERE id = 2", 2, u2},
		{"devices", []string{"BEGIN", "SET LOCAL tombstone.actor = '" + u1 + "'"}, "DELETE FROM devices WHERE id = 5", 5, u1},
		{"devices", nil, "DELETE FROM devices WHERE id = 3 /*actor='alice'*/", 3, ""},
		{"devices", []string{"SET tombstone.actor = 'alice'"}, "DELETE FROM devices WHERE id = 6", 6, ""},
		{"devices", nil, "DELETE FROM devices WHERE id = 4", 4, ""}, // the login role is no uuid
		{"tickets", nil, "DELETE FROM tickets WHERE id = 1 /*actor='42'*/", 1, "42"},
		{"tickets", []string{"SET tombstone.actor = '7'"}, "DELETE FROM tickets WHERE id = 2", 2, "7"},
		{"tickets", nil, "DELETE FROM tickets WHERE id = 3 /*actor='alice'*/", 3, ""},
		{"tickets", nil, "DELETE FROM tickets WHERE id = 4", 4, ""},
		{"tasks", nil, "DELETE FROM tasks WHERE id = 1 /*actor='12'*/", 1, "12"},
		{"tasks", nil, "DELETE FROM tasks WHERE id = 2 /*actor='alice'*/", 2, ""},
	} {
		conn := connect(t, e.appDSN)
		e.run(t, conn, c.before...)
		o := execute(e.ctx, conn, simple(c.sql))
		if len(c.before) > 0 && c.before[0] == "BEGIN" && o.err == nil {
			e.run(t, conn, "COMMIT")
		}
		conn.Close(e.ctx)
		at := e.onDisk(t, c.table)[c.id]
		key := rowKey(c.table, c.id)
		audit := e.auditLog(t, fmt.Sprintf("table_name || ' ' || key::text = '%s'", key))
		if c.want == "" {
			if pe := pgErr(o.err); pe == nil || pe.Code != "22P02" {
				t.Errorf("%s (%v): got %v (tag %q), want SQLSTATE 22P02: the actor is no %s", c.sql, c.before, o.err, o.tag, c.table)
			}
			if at != nil || len(audit) != 0 {
				t.Errorf("%s (%v): row deleted at %s, audit rows %v; want it live and no audit row", c.sql, c.before, fmtTime(at), audit)
			}
			continue
		}
		if o.err != nil || o.tag != "DELETE 1" {
			t.Errorf("%s (%v): %v, tag %q; want DELETE 1", c.sql, c.before, o.err, o.tag)
			continue
		}
		if by := e.colOnDisk(t, c.table, "deleted_by", c.id); at == nil || !sameAuditStr(by, &c.want) {
			t.Errorf("%s (%v): deleted_at %s, deleted_by %s; want deleted by %s", c.sql, c.before, fmtTime(at), auditStr(by), c.want)
		}
		if len(audit) != 1 || !sameAuditStr(audit[0].Actor, &c.want) {
			t.Errorf("%s (%v): audit rows %v, want one with actor %q", c.sql, c.before, audit, c.want)
		}
	}
	if typ := scalar[string](t, e.super, "SELECT pg_typeof(deleted_by)::text FROM devices WHERE id = 1"); typ != "uuid" {
		t.Errorf("devices.deleted_by is %s", typ)
	}
}

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// 5. The audit log: one row per deleted row, the cascade's included (the
// rows the twin's real DELETE removed), written in the deleting
// transaction with its xid, login role, actor, reason and the rows'
// deleted_at as deletion; nothing for a DELETE rolled back; a fingerprint
// without literal values; a NULL key for a table without primary key.
func TestAuditLogRows(t *testing.T) {
	e := newAuditEnv(t)
	before := e.twinKeys(t)
	e.run(t, e.app, "BEGIN")
	xid := scalar[string](t, e.app, "SELECT pg_current_xact_id()::text")
	if tag := e.mustRun(t, e.app, "DELETE FROM customers WHERE id = 1 /*actor='alice',reason='gdpr%20request'*/"); tag != "DELETE 1" {
		t.Errorf("DELETE of customer 1: tag %q", tag)
	}
	// Written in the transaction: visible to the superuser only after COMMIT.
	if rows := e.auditLog(t, "true"); len(rows) != 0 {
		t.Errorf("before COMMIT the superuser sees audit rows %v", rows)
	}
	e.run(t, e.app, "COMMIT")
	e.run(t, e.twin, "DELETE FROM customers WHERE id = 1")
	gone := keysWithout(before, e.twinKeys(t))
	if !slices.Equal(gone, customerRows(1)) {
		t.Fatalf("the twin's DELETE removed %v, want %v: the test's premise is wrong", gone, customerRows(1))
	}
	at := e.deletedAt(t, "customers", 1)
	rows := e.wantAudit(t, "committed DELETE", "true", gone, "delete", auditPtr("alice"), auditPtr("gdpr request"), appUser, xid, at)
	for _, r := range rows {
		if r.Fingerprint == nil || !fingerprintRE.MatchString(*r.Fingerprint) || !sameAuditStr(r.Fingerprint, rows[0].Fingerprint) {
			t.Errorf("audit row %s: want the statement's fingerprint, 16 lowercase hex digits, the same in every row of the statement", r)
		}
		if r.At.IsZero() {
			t.Errorf("audit row %s: at is not set", r)
		}
	}

	// A DELETE rolled back leaves no audit row and no deleted row.
	e.run(t, e.app, "BEGIN", "DELETE FROM customers WHERE id = 2 /*actor='alice'*/", "ROLLBACK")
	e.wantDisk(t, "customers", nAuditCustomers, map[int]*time.Time{2: nil})
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{20: nil, 21: nil})
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{200: nil, 211: nil})
	if n := len(e.auditLog(t, "true")); n != len(gone) {
		t.Errorf("after a rolled-back DELETE the audit log has %d rows, want the %d of the committed one", n, len(gone))
	}
	// Nor does one that fails (the statement after it in the transaction does).
	e.run(t, e.app, "BEGIN", "DELETE FROM customers WHERE id = 2")
	if o := execute(e.ctx, e.app, simple("SELECT 1/0")); pgErr(o.err) == nil {
		t.Fatalf("SELECT 1/0: %v", o.err)
	}
	e.run(t, e.app, "COMMIT") // a ROLLBACK, the transaction failed
	if n := len(e.auditLog(t, "true")); n != len(gone) {
		t.Errorf("after an aborted transaction the audit log has %d rows, want %d", n, len(gone))
	}

	// Fingerprints: the same for DELETEs that differ only in literals,
	// another for another statement.
	fp := func(sql string, table string, id int) string {
		t.Helper()
		e.both(t, sql)
		rs := e.auditLog(t, fmt.Sprintf("table_name || ' ' || key::text = '%s'", rowKey(table, id)))
		if len(rs) != 1 || rs[0].Fingerprint == nil {
			t.Errorf("%s: audit rows %v, want one with a fingerprint", sql, rs)
			return ""
		}
		return *rs[0].Fingerprint
	}
	f3 := fp("DELETE FROM customers WHERE email = 'c3@example.com'", "customers", 3)
	f4 := fp("DELETE FROM customers WHERE email = 'c4@example.com'", "customers", 4)
	f5 := fp("DELETE FROM customers WHERE id IN (5, 6) AND name <> 'secret'", "customers", 5)
	if !fingerprintRE.MatchString(f3) || f3 != f4 {
		t.Errorf("fingerprints %q and %q of DELETEs that differ only in a literal: want the same 16 hex digits", f3, f4)
	}
	if f5 == f3 {
		t.Errorf("fingerprint %q of another DELETE is that of the first", f5)
	}
	if n := scalar[int](t, e.super, "SELECT count(*) FROM tombstone.audit_log WHERE fingerprint ~ '@|example|secret'"); n != 0 {
		t.Errorf("%d audit rows have a literal value in their fingerprint", n)
	}
	// Every row of one DELETE statement of two customers shares its fingerprint.
	if n := scalar[int](t, e.super, `SELECT count(DISTINCT fingerprint) FROM tombstone.audit_log WHERE deletion = (SELECT deleted_at FROM customers WHERE id = 5)`); n != 1 {
		t.Errorf("the rows of DELETE ... WHERE id IN (5, 6) have %d fingerprints, want 1", n)
	}
	if n := len(e.auditLog(t, `deletion = (SELECT deleted_at FROM customers WHERE id = 5)`)); n != 14 {
		t.Errorf("DELETE of customers 5 and 6 wrote %d audit rows, want 14", n)
	}

	// A table without a primary key: key NULL.
	e.both(t, "DELETE FROM labels WHERE name = 'red'")
	red := scalar[time.Time](t, e.super, "SELECT deleted_at FROM labels WHERE name = 'red'")
	e.wantAudit(t, "labels", "table_name = 'public.labels'", []string{"public.labels <nil>"}, "delete", auditPtr(appUser), nil, appUser, "", &red)
	e.sameTables(t, "customers", "orders", "order_lines")
	e.both(t, "SELECT * FROM labels ORDER BY name")
}

// 5b. The application can neither read nor change nor remove audit rows
// (42501, from the server or from Tombstone), nor write the columns the
// server fills; the superuser reads them, through Tombstone and directly.
func TestAuditLogProtected(t *testing.T) {
	e := newAuditEnv(t)
	e.run(t, e.super, "INSERT INTO tombstone.audit_log (action, table_name, key, actor) VALUES ('delete', 'public.customers', '{\"id\": 99}', 'seed')")
	e.run(t, e.app, "DELETE FROM customers WHERE id = 1")
	want := scalar[int](t, e.super, "SELECT count(*) FROM tombstone.audit_log")
	for _, sql := range []string{
		"SELECT count(*) FROM tombstone.audit_log",
		"SELECT actor FROM tombstone.audit_log WHERE actor = 'seed'",
		"SELECT * FROM customers c JOIN tombstone.audit_log a ON a.key->>'id' = c.id::text",
		"UPDATE tombstone.audit_log SET actor = 'mallory'",
		"UPDATE tombstone.audit_log SET actor = 'mallory' WHERE actor = 'seed'",
		"DELETE FROM tombstone.audit_log",
		"DELETE FROM tombstone.audit_log WHERE actor = 'seed'",
		"TRUNCATE tombstone.audit_log",
		"TRUNCATE TABLE ONLY tombstone.audit_log RESTART IDENTITY",
		"INSERT INTO tombstone.audit_log (action, table_name, login_role) VALUES ('delete', 'public.customers', 'postgres')",
		"INSERT INTO tombstone.audit_log (action, table_name, xid) VALUES ('delete', 'public.customers', '1')",
		"INSERT INTO tombstone.audit_log (action, table_name, at) VALUES ('delete', 'public.customers', '2000-01-01')",
		"INSERT INTO tombstone.audit_log (action, table_name) VALUES ('delete', 'x') RETURNING *",
		// The server would take these (PUBLIC may insert the writer's
		// columns, for the rewritten DELETEs); Tombstone refuses them, as
		// README says, so that the application cannot forge deletions.
		"INSERT INTO tombstone.audit_log (action, table_name, actor) VALUES ('delete', 'public.customers', 'forged')",
		"WITH f AS (INSERT INTO tombstone.audit_log (action, table_name) VALUES ('restore', 'public.customers')) SELECT 1",
	} {
		o := execute(e.ctx, e.app, simple(sql))
		if pe := pgErr(o.err); pe == nil || pe.Code != "42501" {
			t.Errorf("%s as the application: got %v (tag %q, rows %v), want SQLSTATE 42501", sql, o.err, o.tag, o.rows)
		}
	}
	if o := copyOut(e.ctx, e.app, "COPY tombstone.audit_log TO STDOUT"); pgErr(o.err) == nil || pgErr(o.err).Code != "42501" {
		t.Errorf("COPY tombstone.audit_log TO STDOUT as the application: %v (%d rows), want SQLSTATE 42501", o.err, len(o.rows))
	}
	if _, err := e.app.PgConn().CopyFrom(e.ctx, strings.NewReader("delete\tpublic.customers\n"),
		"COPY tombstone.audit_log (action, table_name) FROM STDIN"); pgErr(err) == nil || pgErr(err).Code != "42501" {
		t.Errorf("COPY tombstone.audit_log FROM STDIN as the application: %v, want SQLSTATE 42501", err)
	}
	if n := scalar[int](t, e.super, "SELECT count(*) FROM tombstone.audit_log"); n != want {
		t.Errorf("the audit log has %d rows after the application's attempts, want %d", n, want)
	}
	if n := scalar[int](t, e.super, "SELECT count(*) FROM tombstone.audit_log WHERE actor = 'seed'"); n != 1 {
		t.Errorf("the seed row: %d, want 1 unchanged", n)
	}
	su := connect(t, e.superProxyDSN)
	if n := scalar[int](t, su, "SELECT count(*) FROM tombstone.audit_log"); n != want {
		t.Errorf("the superuser through Tombstone counts %d audit rows, want %d", n, want)
	}
}

// 6. Restores through Tombstone on allow_restore tables: UPDATE ... SET
// deleted_at = NULL brings back the matching deleted rows and what their
// deletion took with it, but not a child deleted on its own before; it
// reports UPDATE n (rows of the table named), is audited, undone by
// ROLLBACK, refused with 23503 when the row's parent is still deleted and
// with 23505 when a live row has taken its unique key. Without
// allow_restore, and with other columns in the SET, it is an ordinary
// UPDATE of live rows.
func TestAuditRestoreThroughProxy(t *testing.T) {
	e := newAuditEnv(t)
	e.both(t, "DELETE FROM order_lines WHERE id = 101") // on its own, first
	line101 := e.deletedAt(t, "order_lines", 101)
	time.Sleep(10 * time.Millisecond)
	e.run(t, e.app, "DELETE FROM customers WHERE id = 1") // the twin keeps customer 1
	at1 := e.deletedAt(t, "customers", 1)

	e.run(t, e.app, "BEGIN", "SET LOCAL tombstone.actor = 'support'", "SET LOCAL tombstone.reason = 'undo'")
	xid := scalar[string](t, e.app, "SELECT pg_current_xact_id()::text")
	if tag := e.mustRun(t, e.app, "UPDATE customers SET deleted_at = NULL WHERE id = 1"); tag != "UPDATE 1" {
		t.Errorf("restore of customer 1: tag %q, want UPDATE 1", tag)
	}
	e.run(t, e.app, "COMMIT")
	e.wantDisk(t, "customers", nAuditCustomers, map[int]*time.Time{1: nil})
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{10: nil, 11: nil})
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{100: nil, 101: line101, 110: nil, 111: nil})
	e.sameTables(t, "customers", "orders", "order_lines") // the twin: line 101 gone, nothing else
	restored := keysWithout(customerRows(1), []string{rowKey("order_lines", 101)})
	e.wantAudit(t, "restore of customer 1", "action = 'restore'", restored, "restore", auditPtr("support"), auditPtr("undo"), appUser, xid, at1)

	// Rolled back: nothing restored, nothing audited.
	e.run(t, e.app, "DELETE FROM customers WHERE id = 2")
	at2 := e.deletedAt(t, "customers", 2)
	e.run(t, e.app, "BEGIN")
	if tag := e.mustRun(t, e.app, "UPDATE customers SET deleted_at = NULL WHERE id = 2"); tag != "UPDATE 1" {
		t.Errorf("restore of customer 2 in a transaction: tag %q, want UPDATE 1", tag)
	}
	e.run(t, e.app, "ROLLBACK")
	e.wantDisk(t, "customers", nAuditCustomers, map[int]*time.Time{2: at2})
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{20: at2, 21: at2})
	if n := len(e.auditLog(t, "action = 'restore'")); n != len(restored) {
		t.Errorf("after a rolled-back restore: %d restore audit rows, want %d", n, len(restored))
	}
	// Clearing deleted_by and deleted_reason in the same SET; the actor
	// from a comment.
	e.run(t, e.app, "SET tombstone.reason = 'oops'")
	if tag := e.mustRun(t, e.app, "UPDATE customers SET deleted_at = NULL, deleted_by = NULL, deleted_reason = NULL WHERE id = 2 /*actor='carl'*/"); tag != "UPDATE 1" {
		t.Errorf("restore of customer 2 clearing deleted_by: tag %q, want UPDATE 1", tag)
	}
	e.run(t, e.app, "RESET tombstone.reason")
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{20: nil, 21: nil})
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{200: nil, 201: nil, 210: nil, 211: nil})
	if by, why := e.colOnDisk(t, "customers", "deleted_by", 2), e.colOnDisk(t, "customers", "deleted_reason", 2); by != nil || why != nil {
		t.Errorf("customer 2 restored with SET deleted_by = NULL, deleted_reason = NULL: %s, %s", auditStr(by), auditStr(why))
	}
	e.wantAudit(t, "restore of customer 2", fmt.Sprintf("action = 'restore' AND deletion = '%s'", at2.UTC().Format(time.RFC3339Nano)),
		customerRows(2), "restore", auditPtr("carl"), auditPtr("oops"), appUser, "", at2)

	// Only deleted rows are restored and counted: a live row matches
	// nothing, a deleted and a live one count 1.
	if tag := e.mustRun(t, e.app, "UPDATE customers SET deleted_at = NULL WHERE id = 3"); tag != "UPDATE 0" {
		t.Errorf("restore of live customer 3: tag %q, want UPDATE 0", tag)
	}
	e.run(t, e.app, "DELETE FROM customers WHERE id = 4")
	// (in the extended protocol)
	if tag, err := e.app.Exec(e.ctx, "UPDATE customers SET deleted_at = NULL WHERE id IN ($1, $2)", 4, 5); err != nil || tag.String() != "UPDATE 1" {
		t.Errorf("restore of deleted customer 4 and live customer 5 (Parse, Bind, Execute): %q, %v; want UPDATE 1", tag, err)
	}
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{400: nil, 411: nil})
	if n := len(e.auditLog(t, "action = 'restore' AND table_name = 'public.customers' AND key->>'id' IN ('3', '5')")); n != 0 {
		t.Errorf("live rows were audited as restored: %d rows", n)
	}

	// A restore below the top of a deletion: an order and its lines.
	e.run(t, e.app, "DELETE FROM orders WHERE id = 30")
	if tag := e.mustRun(t, e.app, "UPDATE orders SET deleted_at = NULL WHERE id = 30"); tag != "UPDATE 1" {
		t.Errorf("restore of order 30: tag %q, want UPDATE 1", tag)
	}
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{300: nil, 301: nil})

	// A child whose parent is still deleted: 23503, nothing changes.
	e.run(t, e.app, "DELETE FROM customers WHERE id = 6")
	at6 := e.deletedAt(t, "customers", 6)
	for _, sql := range []string{"UPDATE orders SET deleted_at = NULL WHERE id = 60", "UPDATE order_lines SET deleted_at = NULL WHERE order_id = 61"} {
		o := execute(e.ctx, e.app, simple(sql))
		if pe := pgErr(o.err); pe == nil || pe.Code != "23503" {
			t.Errorf("%s (customer 6 still deleted): got %v (tag %q), want SQLSTATE 23503", sql, o.err, o.tag)
		}
	}
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{60: at6, 61: at6})
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{600: at6, 610: at6, 611: at6})

	// The line deleted on its own comes back on its own: its order is live.
	if tag := e.mustRun(t, e.app, "UPDATE order_lines SET deleted_at = NULL WHERE id = 101"); tag != "UPDATE 1" {
		t.Errorf("restore of line 101: tag %q, want UPDATE 1", tag)
	}
	e.run(t, e.twin, "DELETE FROM customers WHERE id = 6", "INSERT INTO order_lines VALUES (101, 10, 'sku1')")
	e.sameTables(t, "customers", "orders", "order_lines")

	// A live row has taken the deleted row's unique key: 23505.
	e.both(t, "DELETE FROM customers WHERE id = 7")
	at7 := e.deletedAt(t, "customers", 7)
	e.both(t, "INSERT INTO customers (id, name, email) VALUES (13, 'new', 'c7@example.com')")
	o := execute(e.ctx, e.app, simple("UPDATE customers SET deleted_at = NULL WHERE id = 7"))
	if pe := pgErr(o.err); pe == nil || pe.Code != "23505" || !strings.Contains(pe.Detail, "Key (email)=(c7@example.com) already exists") {
		t.Errorf("restore of customer 7 whose email customer 13 took: got %v (detail %q), want SQLSTATE 23505 naming the key", o.err, detailOf(pe))
	}
	e.wantDisk(t, "customers", nAuditCustomers+1, map[int]*time.Time{7: at7, 13: nil})
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{70: at7, 71: at7})

	// Without allow_restore: UPDATE 0, as on the twin where the row is gone.
	e.both(t, "DELETE FROM tickets WHERE id = 1 /*actor='42'*/")
	ticket1 := e.deletedAt(t, "tickets", 1)
	if o := e.both(t, "UPDATE tickets SET deleted_at = NULL WHERE id = 1"); o.tag != "UPDATE 0" {
		t.Errorf("UPDATE tickets SET deleted_at = NULL (no allow_restore): tag %q, want UPDATE 0", o.tag)
	}
	e.wantDisk(t, "tickets", 6, map[int]*time.Time{1: ticket1})
	// Other columns in the SET: an ordinary UPDATE of live rows.
	e.both(t, "DELETE FROM customers WHERE id = 8")
	at8 := e.deletedAt(t, "customers", 8)
	if o := e.both(t, "UPDATE customers SET deleted_at = NULL, name = 'renamed' WHERE id IN (8, 9)"); o.tag != "UPDATE 1" {
		t.Errorf("UPDATE ... SET deleted_at = NULL, name = ...: tag %q, want UPDATE 1 (customer 9 only)", o.tag)
	}
	e.wantDisk(t, "customers", nAuditCustomers+1, map[int]*time.Time{8: at8, 9: nil})
	if name := scalar[string](t, e.super, "SELECT name FROM customers WHERE id = 8"); name != "c8" {
		t.Errorf("deleted customer 8 renamed to %q", name)
	}
	e.sameTables(t, "customers", "orders", "order_lines", "tickets")
}

// 2b. The actor is taken from a comment only: text that looks like a
// sqlcommenter comment inside a string literal (standard or dollar-quoted)
// is data, and a comment on another statement of the same Query message
// is that statement's. Decoded values are stored as they are, quotes and
// comment terminators included, and run nothing. Statements that differ
// only in their comment, and a prepared statement run again after the
// setting changed, each get their own actor.
func TestAuditActorAdversarial(t *testing.T) {
	e := newAuditEnv(t)
	for _, c := range []struct {
		before []string
		sql    string
		args   []any // non-nil: extended protocol
		id     int
		actor  string
		reason *string
	}{
		{nil, "DELETE FROM customers WHERE name <> '/*actor=''mallory''*/' AND id = 1", nil, 1, appUser, nil},
		{nil, "DELETE FROM customers WHERE name <> $x$/*actor='mallory',reason='r'*/$x$ AND id = 2", nil, 2, appUser, nil},
		{nil, "DELETE FROM customers WHERE name <> E'\\'/*actor=\\'mallory\\'*/' AND id = 12", nil, 12, appUser, nil},
		{nil, "DELETE FROM customers WHERE id = 3 /*actor='x%27%3B%20DROP%20TABLE%20orders%3B--',reason='%2A%2F%20done'*/", nil,
			3, "x'; DROP TABLE orders;--", auditPtr("*/ done")},
		{[]string{"SET tombstone.actor = 'o''brien'", "SET tombstone.reason = 'it''s */ fine'"}, "DELETE FROM customers WHERE id = 11", nil,
			11, "o'brien", auditPtr("it's */ fine")},
		{[]string{"RESET tombstone.actor", "RESET tombstone.reason"}, "DELETE FROM customers WHERE id = $1 /*actor='p1'*/", []any{4}, 4, "p1", nil},
		{nil, "DELETE FROM customers WHERE id = $1 /*actor='p2'*/", []any{5}, 5, "p2", nil},
		{nil, "DELETE FROM customers WHERE id = 6 /*actor='s1'*/", nil, 6, "s1", nil},
		{nil, "DELETE FROM customers WHERE id = 6 /*actor='s2'*/", nil, 6, "s1", nil}, // already deleted: nothing changes
		{[]string{"SET tombstone.actor = 'bob'"}, "DELETE FROM customers WHERE id = $1", []any{7}, 7, "bob", nil},
		{[]string{"SET tombstone.actor = 'carol'"}, "DELETE FROM customers WHERE id = $1", []any{8}, 8, "carol", nil}, // the same prepared statement
		{nil, "SELECT 1 /*actor='mallory'*/; DELETE FROM customers WHERE id = 9", nil, 9, "carol", nil},
		{[]string{"RESET tombstone.actor"}, "DELETE FROM customers WHERE id = 10; SELECT 1 /*actor='mallory'*/", nil, 10, appUser, nil},
	} {
		e.run(t, e.app, c.before...)
		var err error
		if c.args != nil {
			_, err = e.app.Exec(e.ctx, c.sql, c.args...)
		} else {
			_, err = e.app.Exec(e.ctx, c.sql) // no arguments: the simple protocol, several statements allowed
		}
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		by, why := e.colOnDisk(t, "customers", "deleted_by", c.id), e.colOnDisk(t, "customers", "deleted_reason", c.id)
		if at := e.onDisk(t, "customers")[c.id]; at == nil || !sameAuditStr(by, &c.actor) || !sameAuditStr(why, c.reason) {
			t.Errorf("%s (after %v): customer %d deleted at %s by %s for %s; want deleted by %q for %s", c.sql, c.before, c.id, fmtTime(at),
				auditStr(by), auditStr(why), c.actor, auditStr(c.reason))
		}
		if rows := e.auditLog(t, fmt.Sprintf("table_name = 'public.customers' AND key = '{\"id\": %d}'", c.id)); len(rows) != 1 || !sameAuditStr(rows[0].Actor, &c.actor) {
			t.Errorf("%s: audit rows of customer %d: %v, want one by %q", c.sql, c.id, rows, c.actor)
		}
	}
	if n := scalar[int](t, e.super, "SELECT count(*) FROM orders"); n != nAuditOrders {
		t.Errorf("orders holds %d rows, want %d", n, nAuditOrders)
	}

	// SET ROLE changes current_user, not the login role: the actor and
	// login_role stay the login's.
	const other = "tombstone_e2e_other"
	pgtest.Exec(t, e.pg, "", `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+other+`') THEN CREATE ROLE `+other+` NOLOGIN; END IF;
EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL;
END $$; GRANT `+other+` TO `+appUser)
	pgtest.Exec(t, e.pg, e.softDB, "GRANT ALL ON ALL TABLES IN SCHEMA public TO "+other)
	e.run(t, e.app, "RESET tombstone.actor", "SET ROLE "+other, "DELETE FROM labels WHERE name = 'green'", "RESET ROLE")
	if by := scalar[*string](t, e.super, "SELECT deleted_by FROM labels WHERE name = 'green' AND deleted_at IS NOT NULL"); !sameAuditStr(by, auditPtr(appUser)) {
		t.Errorf("DELETE after SET ROLE %s: deleted_by %s, want the login role %s", other, auditStr(by), appUser)
	}
	if rows := e.auditLog(t, "table_name = 'public.labels'"); len(rows) != 1 || !sameAuditStr(rows[0].Actor, auditPtr(appUser)) || rows[0].LoginRole != appUser {
		t.Errorf("DELETE after SET ROLE %s: audit rows %v, want one with actor and login_role %s", other, rows, appUser)
	}
}

// 6b. Restores through Tombstone, the edges: a SET that gives deleted_by
// or deleted_reason a value, or touches another column, is an ordinary
// UPDATE (the deleted row is out of its reach, as on the twin, where it
// is gone); two rows of one deletion restored by one statement count and
// are audited once each, their cascade too; a privileged session's UPDATE
// passes through untouched (the row only, no cascade, no audit row).
func TestAuditRestoreEdges(t *testing.T) {
	e := newAuditEnv(t)
	e.both(t, "DELETE FROM customers WHERE id IN (1, 2)")
	at := e.deletedAt(t, "customers", 1)
	for _, sql := range []string{
		"UPDATE customers SET deleted_at = NULL, deleted_by = 'someone' WHERE id = 1",
		"UPDATE customers SET deleted_at = NULL, deleted_reason = 'because' WHERE id = 1",
		"UPDATE customers SET deleted_at = NULL, name = name WHERE id = 1",
		"UPDATE customers SET name = 'x', deleted_at = NULL WHERE id = 1",
	} {
		if o := e.both(t, sql); o.tag != "UPDATE 0" {
			t.Errorf("%s: tag %q, want UPDATE 0", sql, o.tag)
		}
	}
	e.wantDisk(t, "customers", nAuditCustomers, map[int]*time.Time{1: at, 2: at})
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{10: at, 11: at, 20: at, 21: at})
	if rows := e.auditLog(t, "action = 'restore'"); len(rows) != 0 {
		t.Errorf("ordinary UPDATEs wrote restore audit rows: %v", rows)
	}

	if tag := e.mustRun(t, e.app, "UPDATE customers SET deleted_at = NULL WHERE id IN (1, 2) /*actor='ops'*/"); tag != "UPDATE 2" {
		t.Errorf("restore of customers 1 and 2: tag %q, want UPDATE 2", tag)
	}
	want := append(customerRows(1), customerRows(2)...)
	slices.Sort(want)
	e.wantAudit(t, "restore of customers 1 and 2", "action = 'restore'", want, "restore", auditPtr("ops"), nil, appUser, "", at)
	e.wantDisk(t, "customers", nAuditCustomers, map[int]*time.Time{1: nil, 2: nil})
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{10: nil, 11: nil, 20: nil, 21: nil})
	e.wantDisk(t, "order_lines", nAuditLines, map[int]*time.Time{100: nil, 101: nil, 110: nil, 111: nil, 200: nil, 201: nil, 210: nil, 211: nil})

	// A privileged session: untouched.
	e.run(t, e.app, "DELETE FROM customers WHERE id = 3")
	at3 := e.deletedAt(t, "customers", 3)
	su := connect(t, e.superProxyDSN)
	if tag := e.mustRun(t, su, "UPDATE customers SET deleted_at = NULL WHERE id = 3"); tag != "UPDATE 1" {
		t.Errorf("the superuser's UPDATE through Tombstone: tag %q, want UPDATE 1", tag)
	}
	e.wantDisk(t, "customers", nAuditCustomers, map[int]*time.Time{3: nil})
	e.wantDisk(t, "orders", nAuditOrders, map[int]*time.Time{30: at3, 31: at3})
	if rows := e.auditLog(t, "action = 'restore' AND table_name = 'public.customers' AND key = '{\"id\": 3}'"); len(rows) != 0 {
		t.Errorf("the superuser's UPDATE wrote audit rows %v", rows)
	}
}

// 5c. Every form of soft-deleting statement is one audited deletion with
// its actor: RETURNING, a data-modifying CTE, USING, the extended
// protocol, MERGE ... THEN DELETE. Each must delete what the twin deletes.
func TestAuditStatementForms(t *testing.T) {
	e := newAuditEnv(t)
	for _, c := range []struct {
		sql  string
		args []any
		ids  []int // customers deleted
	}{
		{"DELETE FROM customers WHERE id = 1 RETURNING id, name /*actor='f1'*/", nil, []int{1}},
		{"WITH d AS (DELETE FROM customers WHERE id = 2 RETURNING id) SELECT count(*) FROM d /*actor='f2'*/", nil, []int{2}},
		{"DELETE FROM customers c USING orders o WHERE o.customer_id = c.id AND o.total = 3 /*actor='f3'*/", nil, []int{3}},
		{"DELETE FROM customers WHERE id = ANY($1) /*actor='f4'*/", []any{[]int32{4, 5}}, []int{4, 5}},
	} {
		actor := c.sql[strings.Index(c.sql, "actor='")+7 : strings.LastIndex(c.sql, "'")]
		before := e.twinKeys(t)
		var a, b error
		if c.args != nil {
			_, a = e.app.Exec(e.ctx, c.sql, c.args...)
			_, b = e.twin.Exec(e.ctx, c.sql, c.args...)
		} else {
			a = execute(e.ctx, e.app, simple(c.sql)).err
			b = execute(e.ctx, e.twin, simple(c.sql)).err
		}
		if a != nil || b != nil {
			t.Errorf("%s: through Tombstone %v, on the twin %v", c.sql, a, b)
			continue
		}
		gone := keysWithout(before, e.twinKeys(t))
		var want []string
		for _, id := range c.ids {
			want = append(want, customerRows(id)...)
		}
		slices.Sort(want)
		if !slices.Equal(gone, want) {
			t.Fatalf("%s: the twin deleted %v, want %v: the test's premise is wrong", c.sql, gone, want)
		}
		at := e.deletedAt(t, "customers", c.ids[0])
		e.wantAudit(t, c.sql, fmt.Sprintf("actor = '%s'", actor), gone, "delete", &actor, nil, appUser, "", at)
	}
	e.sameTables(t, "customers", "orders", "order_lines")

	// MERGE ... THEN DELETE (on a table without foreign keys: with them
	// it is refused, see README): audited like a DELETE, or refused with
	// 0A000 deleting nothing; never a deletion without its audit row.
	const merge = "MERGE INTO tickets t USING (VALUES (6)) v(id) ON t.id = v.id WHEN MATCHED THEN DELETE /*actor='66',reason='merged'*/"
	o := execute(e.ctx, e.app, simple(merge))
	if pe := pgErr(o.err); pe != nil && pe.Code == "0A000" {
		t.Logf("%s: refused: %s", merge, pe.Message)
		e.wantDisk(t, "tickets", 6, map[int]*time.Time{6: nil})
		if rows := e.auditLog(t, "table_name = 'public.tickets'"); len(rows) != 0 {
			t.Errorf("a refused MERGE wrote audit rows %v", rows)
		}
		return
	}
	if o.err != nil || o.tag != "MERGE 1" {
		t.Fatalf("%s: %v, tag %q; want MERGE 1 or a refusal (0A000)", merge, o.err, o.tag)
	}
	e.run(t, e.twin, merge)
	at := e.deletedAt(t, "tickets", 6)
	if by := e.colOnDisk(t, "tickets", "deleted_by", 6); !sameAuditStr(by, auditPtr("66")) {
		t.Errorf("%s: deleted_by %s, want 66", merge, auditStr(by))
	}
	e.wantAudit(t, merge, "table_name = 'public.tickets'", []string{rowKey("tickets", 6)}, "delete", auditPtr("66"), auditPtr("merged"), appUser, "", at)
	e.sameTables(t, "tickets")
}

// 5d and 6c. A declared cascade (no constraint) through Tombstone: the
// DELETE soft-deletes and audits the live children it names, with the
// parent's stamp and actor, not the child deleted on its own before; the
// restore through Tombstone brings back the same rows and no more.
func TestAuditDeclaredCascade(t *testing.T) {
	e := newAuditEnv(t)
	e.both(t, "DELETE FROM milestones WHERE id = 2")
	m2 := e.deletedAt(t, "milestones", 2)
	time.Sleep(10 * time.Millisecond)
	if o := e.both(t, "DELETE FROM projects WHERE id = 1 /*actor='pm'*/"); o.tag != "DELETE 1" {
		t.Errorf("DELETE of project 1: tag %q, want DELETE 1", o.tag)
	}
	at := e.deletedAt(t, "projects", 1)
	e.wantDisk(t, "milestones", 4, map[int]*time.Time{1: at, 2: m2, 3: at, 4: nil})
	if by := e.colOnDisk(t, "milestones", "deleted_by", 3); !sameAuditStr(by, auditPtr("pm")) {
		t.Errorf("milestone 3 deleted by %s, want pm", auditStr(by))
	}
	e.sameTables(t, "projects", "milestones")
	deletion := fmt.Sprintf("deletion = '%s'", at.UTC().Format(time.RFC3339Nano))
	e.wantAudit(t, "DELETE of project 1", deletion+" AND action = 'delete'",
		[]string{rowKey("milestones", 1), rowKey("milestones", 3), rowKey("projects", 1)}, "delete", auditPtr("pm"), nil, appUser, "", at)

	if tag := e.mustRun(t, e.app, "UPDATE projects SET deleted_at = NULL WHERE id = 1 /*actor='pm2'*/"); tag != "UPDATE 1" {
		t.Errorf("restore of project 1: tag %q, want UPDATE 1", tag)
	}
	e.wantDisk(t, "projects", 2, map[int]*time.Time{1: nil})
	e.wantDisk(t, "milestones", 4, map[int]*time.Time{1: nil, 2: m2, 3: nil, 4: nil})
	e.wantAudit(t, "restore of project 1", deletion+" AND action = 'restore'",
		[]string{rowKey("milestones", 1), rowKey("milestones", 3), rowKey("projects", 1)}, "restore", auditPtr("pm2"), nil, appUser, "", at)
}

// 5e. The audit log names a table as format('%I.%I') does and keys a row
// by all of its primary key's columns, under their own names.
func TestAuditKeysAndNames(t *testing.T) {
	e := newAuditEnv(t)
	e.both(t, `DELETE FROM "Mixed Case" WHERE "Item Id" = 2`)
	e.both(t, "DELETE FROM pairs WHERE a = 2")
	var got []string
	for _, r := range e.auditLog(t, "table_name <> 'public.customers'") {
		got = append(got, r.Key)
	}
	want := []string{`public."Mixed Case" {"Item Id": 2}`, `public.pairs {"a": 2, "b": "y"}`}
	if !slices.Equal(got, want) {
		t.Errorf("audit rows %q, want %q", got, want)
	}
	e.both(t, `SELECT * FROM "Mixed Case" ORDER BY 1`)
	e.both(t, "SELECT * FROM pairs ORDER BY a")
}

// A restore through the proxy and the cascades of a DELETE are counted
// per table, as the other rewrites are.
func TestRestoreAndCascadeMetrics(t *testing.T) {
	e := newAuditEnv(t)
	metric := func(table, kind string) float64 {
		return e.px.Metric(t, "tombstone_rewrites_total", "table", table, "kind", kind)
	}
	before := map[string]float64{"cascade": metric("orders", "cascade"), "restore": metric("customers", "restore"), "restore-orders": metric("orders", "restore")}
	e.mustRun(t, e.app, "DELETE FROM customers WHERE id = 3")
	e.mustRun(t, e.app, "UPDATE customers SET deleted_at = NULL WHERE id = 3")
	for _, c := range []struct {
		table, kind, key string
	}{{"orders", "cascade", "cascade"}, {"customers", "restore", "restore"}, {"orders", "restore", "restore-orders"}} {
		if got := metric(c.table, c.kind); got != before[c.key]+1 {
			t.Errorf("tombstone_rewrites_total{table=%q,kind=%q} = %v, want %v", c.table, c.kind, got, before[c.key]+1)
		}
	}
}
