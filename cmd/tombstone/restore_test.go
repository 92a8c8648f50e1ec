package main

// Tests of tombstone restore (issue 11) against a real database. Most
// deletions are written directly as the superuser, with known stamps, so
// that what each restore must bring back is exact; TestRestoreAfterProxyDelete
// deletes through a real proxy instead.

import (
	"context"
	"fmt"
	"os/user"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
	"github.com/tombstone-proxy/tombstone/policy"
)

// restoreSchema: customer c has orders 10c, 10c+1, 10c+2, order o has
// lines 10o and 10o+1, and customer c has note c (notes is a declared
// cascade of customers, without a constraint). Four deletions, each one
// stamp:
//
//	t0: line 101 on its own, then order 12 with its lines 120, 121
//	t1 (restoreT1): customer 1 and what was live under it: orders 10, 11, lines 100, 110, 111, note 1
//	t2: customer 2 with orders 20-22, their six lines and note 2; then a
//	    live customer 7 took its email
//	t3 (restoreT3): customer 3 with orders 30-32, their six lines and note 3
//
// staff references itself (ON DELETE CASCADE): 1 <- 2 <- 3 <- 4 and 2 <- 5;
// 5 was deleted on its own, then 1 with 2, 3 and 4.
const restoreSchema = `
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, deleted_at timestamptz, deleted_by text, deleted_reason text);
CREATE UNIQUE INDEX customers_email_live ON customers (email) WHERE deleted_at IS NULL;
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE order_lines (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE notes (id int PRIMARY KEY, customer_id int NOT NULL, deleted_at timestamptz);
CREATE TABLE staff (id int PRIMARY KEY, manager_id int REFERENCES staff ON DELETE CASCADE, deleted_at timestamptz);
INSERT INTO staff VALUES (1, NULL), (2, 1), (3, 2), (4, 3), (5, 2), (6, NULL);
UPDATE staff SET deleted_at = '2026-03-01 09:00:00+00' WHERE id = 5;
UPDATE staff SET deleted_at = '2026-03-05 08:00:00+00' WHERE id IN (1, 2, 3, 4);
INSERT INTO customers (id, email) SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 6) g;
INSERT INTO orders (id, customer_id) SELECT c * 10 + k, c FROM generate_series(1, 6) c, generate_series(0, 2) k;
INSERT INTO order_lines (id, order_id) SELECT o.id * 10 + k, o.id FROM orders o, generate_series(0, 1) k;
INSERT INTO notes (id, customer_id) SELECT c, c FROM generate_series(1, 6) c;

UPDATE order_lines SET deleted_at = '2026-03-01 09:00:00+00' WHERE id IN (101, 120, 121);
UPDATE orders      SET deleted_at = '2026-03-01 09:00:00+00' WHERE id = 12;
UPDATE customers   SET deleted_at = '2026-03-02 10:00:00+00', deleted_by = 'mallory', deleted_reason = 'oops' WHERE id = 1;
UPDATE orders      SET deleted_at = '2026-03-02 10:00:00+00' WHERE customer_id = 1 AND deleted_at IS NULL;
UPDATE order_lines SET deleted_at = '2026-03-02 10:00:00+00' WHERE order_id IN (10, 11) AND deleted_at IS NULL;
UPDATE notes       SET deleted_at = '2026-03-02 10:00:00+00' WHERE customer_id = 1;
UPDATE customers   SET deleted_at = '2026-03-03 11:00:00+00' WHERE id = 2;
UPDATE orders      SET deleted_at = '2026-03-03 11:00:00+00' WHERE customer_id = 2;
UPDATE order_lines SET deleted_at = '2026-03-03 11:00:00+00' WHERE order_id BETWEEN 20 AND 22;
UPDATE notes       SET deleted_at = '2026-03-03 11:00:00+00' WHERE customer_id = 2;
INSERT INTO customers (id, email) VALUES (7, 'c2@example.com');
UPDATE customers   SET deleted_at = '2026-03-04 12:00:00+00' WHERE id = 3;
UPDATE orders      SET deleted_at = '2026-03-04 12:00:00+00' WHERE customer_id = 3;
UPDATE order_lines SET deleted_at = '2026-03-04 12:00:00+00' WHERE order_id BETWEEN 30 AND 32;
UPDATE notes       SET deleted_at = '2026-03-04 12:00:00+00' WHERE customer_id = 3;
`

var (
	restoreT1 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	restoreT3 = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
)

const restoreConfig = `privileged_roles: [postgres]
audit: {table: tombstone.audit_log}
tables:
  - name: customers
    deleted_by: deleted_by
    deleted_reason: deleted_reason
    cascade: [{table: notes, column: customer_id}]
  - name: orders
  - name: order_lines
  - name: notes
  - name: staff
`

// restoreDB is a database loaded with restoreSchema, with the audit log
// and tombstone migrate --apply's objects installed.
type restoreDB struct {
	pg     *pgtest.Server
	db     string
	dsn    string // direct, superuser
	config string // path
	conn   *pgx.Conn
	ctx    context.Context
}

func newRestoreDB(t *testing.T) *restoreDB {
	t.Helper()
	return newRestoreDBWith(t, strings.Join(catalog.AuditTable(policy.RelName{Schema: "tombstone", Name: "audit_log"}), ";\n"))
}

// newRestoreDBWith runs setup (SQL, as the superuser) after loading the
// schema and before tombstone migrate --apply.
func newRestoreDBWith(t *testing.T, setup string) *restoreDB {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, restoreSchema)
	if setup != "" {
		pgtest.Exec(t, pg, db, setup)
	}
	r := &restoreDB{pg: pg, db: db, dsn: pg.DSN(db), config: writeConfig(t, restoreConfig), ctx: context.Background()}
	if code, out, errOut := runCmd(t, "", "migrate", "--config", r.config, "--dsn", r.dsn, "--apply"); code != exitOK {
		t.Fatalf("migrate --apply: exit %d\n%s%s", code, out, errOut)
	}
	conn, err := pgx.Connect(r.ctx, r.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	r.conn = conn
	return r
}

// restore runs tombstone restore with --config and --dsn and args.
func (r *restoreDB) restore(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCmd(t, "", append([]string{"restore", "--config", r.config, "--dsn", r.dsn}, args...)...)
}

// state is every row's deleted_at: "table id" to a stamp, or "live".
func (r *restoreDB) state(t *testing.T) map[string]string {
	t.Helper()
	rows, err := r.conn.Query(r.ctx, `SELECT 'customers', id, deleted_at FROM customers UNION ALL SELECT 'orders', id, deleted_at FROM orders
	  UNION ALL SELECT 'order_lines', id, deleted_at FROM order_lines UNION ALL SELECT 'notes', id, deleted_at FROM notes`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var table string
		var id int
		var at *time.Time
		if err := rows.Scan(&table, &id, &at); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%s %d", table, id)] = restoreStamp(at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func restoreStamp(at *time.Time) string {
	if at == nil {
		return "live"
	}
	return at.UTC().Format(time.RFC3339Nano)
}

// wantRestored checks that exactly the rows in restored went from
// deleted in before to live now, and nothing else changed.
func (r *restoreDB) wantRestored(t *testing.T, what string, before map[string]string, restored ...string) {
	t.Helper()
	now := r.state(t)
	var changed []string
	for k, v := range before {
		if now[k] != v {
			changed = append(changed, fmt.Sprintf("%s: %s -> %s", k, v, now[k]))
		}
	}
	var want []string
	for _, k := range restored {
		want = append(want, fmt.Sprintf("%s: %s -> live", k, before[k]))
	}
	sort.Strings(changed)
	sort.Strings(want)
	if !slices.Equal(changed, want) {
		t.Errorf("%s: rows changed:\n  %s\nwant:\n  %s", what, strings.Join(changed, "\n  "), strings.Join(want, "\n  "))
	}
}

// wantLinesAnyOrder checks that out has exactly the lines want, in any order.
func wantLinesAnyOrder(t *testing.T, what, out string, want ...string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		got = nil
	}
	sort.Strings(got)
	want = slices.Clone(want)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s printed\n%s\nwant the lines (any order)\n%s", what, out, strings.Join(want, "\n"))
	}
}

type restoreAudit struct {
	action, key, login, xid string
	actor, reason           *string
	deletion                *time.Time
}

// audit lists the audit rows as "action table key", with their details.
func (r *restoreDB) audit(t *testing.T) []restoreAudit {
	t.Helper()
	rows, err := r.conn.Query(r.ctx, `SELECT action, table_name || ' ' || coalesce(key::text, '<nil>'), login_role, xid::text, actor, reason, deletion
	  FROM tombstone.audit_log ORDER BY 2`)
	if err != nil {
		t.Fatal(err)
	}
	var out []restoreAudit
	for rows.Next() {
		var a restoreAudit
		if err := rows.Scan(&a.action, &a.key, &a.login, &a.xid, &a.actor, &a.reason, &a.deletion); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func restoreKey(table string, id int) string { return fmt.Sprintf(`public.%s {"id": %d}`, table, id) }

func restoreStr(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

// wantRestoreAudit checks that the audit log holds exactly one restore row
// per key, with actor, reason (nil: NULL), the DSN's login role, one
// transaction id for all, and deletion.
func (r *restoreDB) wantRestoreAudit(t *testing.T, what string, keys []string, actor string, reason *string, deletion time.Time) {
	t.Helper()
	rows := r.audit(t)
	var got []string
	for _, a := range rows {
		got = append(got, a.key)
		if a.action != "restore" || a.actor == nil || *a.actor != actor || restoreStr(a.reason) != restoreStr(reason) || a.login != r.pg.User ||
			a.xid != rows[0].xid || a.deletion == nil || !a.deletion.Equal(deletion) {
			t.Errorf("%s: audit row %s %s actor %s reason %s login %s xid %s deletion %s; want restore, actor %q, reason %s, login %s, one xid, deletion %s",
				what, a.action, a.key, restoreStr(a.actor), restoreStr(a.reason), a.login, a.xid, restoreStamp(a.deletion), actor, restoreStr(reason), r.pg.User, restoreStamp(&deletion))
		}
	}
	keys = slices.Clone(keys)
	sort.Strings(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("%s: audit rows for\n  %v\nwant one restore row for each of\n  %v", what, got, keys)
	}
}

// The deletion of customer 1 comes back whole with --cascade: the
// customer, its orders, their lines and its note (a declared cascade),
// but not line 101 nor order 12 and its lines, deleted on their own
// before. --dry-run first says so and changes nothing.
func TestRestoreCascade(t *testing.T) {
	r := newRestoreDB(t)
	before := r.state(t)
	code, out, errOut := r.restore(t, "--table", "customers", "--where", "id = 1", "--cascade", "--dry-run")
	if code != exitOK || errOut != "" {
		t.Fatalf("restore --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	wantLinesAnyOrder(t, "restore --cascade --dry-run", out,
		"would restore 1 row in public.customers", "would restore 2 rows in public.orders",
		"would restore 3 rows in public.order_lines", "would restore 1 row in public.notes")
	r.wantRestored(t, "--dry-run", before)
	if a := r.audit(t); len(a) != 0 {
		t.Errorf("--dry-run wrote %d audit rows", len(a))
	}

	code, out, errOut = r.restore(t, "--table", "customers", "--where", "id = 1", "--cascade", "--actor", "support-jane", "--reason", "ticket 7")
	if code != exitOK || errOut != "" {
		t.Fatalf("restore --cascade: exit %d\n%s%s", code, out, errOut)
	}
	wantLinesAnyOrder(t, "restore --cascade", out,
		"restored 1 row in public.customers", "restored 2 rows in public.orders",
		"restored 3 rows in public.order_lines", "restored 1 row in public.notes")
	restored := []string{"customers 1", "orders 10", "orders 11", "order_lines 100", "order_lines 110", "order_lines 111", "notes 1"}
	r.wantRestored(t, "restore --cascade", before, restored...)
	r.wantRestoreAudit(t, "restore --cascade", []string{restoreKey("customers", 1), restoreKey("orders", 10), restoreKey("orders", 11),
		restoreKey("order_lines", 100), restoreKey("order_lines", 110), restoreKey("order_lines", 111), restoreKey("notes", 1)},
		"support-jane", restorePtr("ticket 7"), restoreT1)

	// Again: nothing is deleted in that deletion any more.
	after := r.state(t)
	if code, out, errOut := r.restore(t, "--table", "customers", "--where", "id = 1", "--cascade"); code != exitOK || strings.Contains(out, "restored 1") {
		t.Errorf("second restore: exit %d\n%s%s", code, out, errOut)
	}
	r.wantRestored(t, "second restore", after)
}

func restorePtr(s string) *string { return &s }

// Without --cascade only the matching rows of the table come back (and
// only deleted ones); the actor defaults to the OS user. The children can
// then be restored from their own table, with their own cascade, once
// their parent is live.
func TestRestoreWithoutCascade(t *testing.T) {
	r := newRestoreDB(t)
	before := r.state(t)
	code, out, errOut := r.restore(t, "--table", "public.customers", "--where", "id IN (1, 4)")
	if code != exitOK || errOut != "" {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	wantLinesAnyOrder(t, "restore without --cascade", out, "restored 1 row in public.customers")
	r.wantRestored(t, "restore without --cascade", before, "customers 1")
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	r.wantRestoreAudit(t, "restore without --cascade", []string{restoreKey("customers", 1)}, u.Username, nil, restoreT1)

	before = r.state(t)
	code, out, errOut = r.restore(t, "--table", "orders", "--where", "id = 10", "--cascade")
	if code != exitOK || errOut != "" {
		t.Fatalf("restore of order 10: exit %d\n%s%s", code, out, errOut)
	}
	wantLinesAnyOrder(t, "restore of order 10", out, "restored 1 row in public.orders", "restored 1 row in public.order_lines")
	r.wantRestored(t, "restore of order 10", before, "orders 10", "order_lines 100")
}

// The refusals restore nothing and exit 1 with the reason on stderr: a row
// whose parent is still deleted (unless the same run restores the parent),
// a row whose unique key a live row has taken. A restore that includes one
// refused row restores none.
func TestRestoreRefusals(t *testing.T) {
	r := newRestoreDB(t)
	before := r.state(t)
	for _, c := range []struct {
		args []string
		want string // a regular expression stderr must match
	}{
		{[]string{"--table", "orders", "--where", "id = 30"}, `\bcustomers\b`},
		{[]string{"--table", "orders", "--where", "customer_id = 3", "--cascade"}, `\bcustomers\b`},
		{[]string{"--table", "order_lines", "--where", "id = 300"}, `\borders\b`},
		{[]string{"--table", "customers", "--where", "id = 2", "--cascade"}, `Key \(email\)=\(c2@example\.com\) already exists`},
		{[]string{"--table", "customers", "--where", "id = 2"}, `Key \(email\)=\(c2@example\.com\) already exists`},
		{[]string{"--table", "customers", "--where", "id IN (1, 2)", "--cascade"}, `Key \(email\)=\(c2@example\.com\) already exists`},
		{[]string{"--table", "customers", "--where", "id IN (1, 2)", "--cascade", "--dry-run"}, ""},
	} {
		code, out, errOut := r.restore(t, c.args...)
		if c.want == "" { // a dry run of a refused restore: at least it changes nothing
			t.Logf("%v: exit %d\n%s%s", c.args, code, out, errOut)
		} else if code != exitRuntime || !strings.HasPrefix(errOut, "tombstone restore: ") || !regexp.MustCompile(c.want).MatchString(errOut) || strings.Contains(out, "restored") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and stderr matching %s", c.args, code, out, errOut, c.want)
		}
		r.wantRestored(t, fmt.Sprint(c.args), before)
	}
	if a := r.audit(t); len(a) != 0 {
		t.Errorf("refused restores wrote %d audit rows", len(a))
	}

	// With its parent in the same run, the order comes back.
	code, out, errOut := r.restore(t, "--table", "customers", "--where", "id = 3", "--cascade", "--actor", "ops")
	if code != exitOK || errOut != "" {
		t.Fatalf("restore of customer 3: exit %d\n%s%s", code, out, errOut)
	}
	wantLinesAnyOrder(t, "restore of customer 3", out, "restored 1 row in public.customers", "restored 3 rows in public.orders",
		"restored 6 rows in public.order_lines", "restored 1 row in public.notes")
	var restored []string
	for _, o := range []int{30, 31, 32} {
		restored = append(restored, fmt.Sprintf("orders %d", o), fmt.Sprintf("order_lines %d", o*10), fmt.Sprintf("order_lines %d", o*10+1))
	}
	r.wantRestored(t, "restore of customer 3", before, append(restored, "customers 3", "notes 3")...)
	if n := len(r.audit(t)); n != 11 {
		t.Errorf("restore of customer 3 wrote %d audit rows, want 11", n)
	}
	for _, a := range r.audit(t) {
		if a.deletion == nil || !a.deletion.Equal(restoreT3) {
			t.Errorf("audit row %s: deletion %s, want %s", a.key, restoreStamp(a.deletion), restoreStamp(&restoreT3))
		}
	}
}

func TestRestoreUsage(t *testing.T) {
	r := newRestoreDB(t)
	before := r.state(t)
	for _, c := range []struct {
		args []string
		code int
		want string // stderr prefix
	}{
		{[]string{"restore", "--config", r.config, "--dsn", r.dsn, "--where", "id = 1"}, exitUsage, "tombstone restore: "},
		{[]string{"restore", "--config", r.config, "--dsn", r.dsn, "--table", "customers"}, exitUsage, "tombstone restore: "},
		{[]string{"restore", "--config", r.config, "--table", "customers", "--where", "id = 1"}, exitUsage, "tombstone restore: --dsn DSN is required"},
		{[]string{"restore", "--dsn", r.dsn, "--table", "customers", "--where", "id = 1"}, exitUsage, "tombstone restore: --config FILE is required"},
	} {
		code, out, errOut := runCmd(t, "", c.args...)
		if code != c.code || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("%v: exit %d, %q%q; want %d, stderr %q...", c.args, code, out, errOut, c.code, c.want)
		}
	}
	// A table that is not a soft-delete table of the configuration.
	pgtest.Exec(t, r.pg, r.db, "CREATE TABLE items (id int PRIMARY KEY, deleted_at timestamptz); INSERT INTO items VALUES (1, now())")
	if code, out, errOut := r.restore(t, "--table", "items", "--where", "id = 1"); code == exitOK || !strings.Contains(errOut, "items") {
		t.Errorf("restore --table items (not configured): exit %d, %q%q; want a failure naming items", code, out, errOut)
	}
	r.wantRestored(t, "usage errors", before)
	code, out, _ := runCmd(t, "", "restore", "--help")
	if code != exitOK || !strings.HasPrefix(out, "Usage: tombstone restore") || !strings.Contains(out, "-cascade") || !strings.Contains(out, "-dry-run") {
		t.Errorf("restore --help: exit %d\n%s", code, out)
	}
}

// Deleted through the proxy, restored with the command: the rows the
// DELETE took come back, the line deleted on its own before stays deleted,
// and the audit log has the delete and the restore of each row with the
// same deletion stamp.
func TestRestoreAfterProxyDelete(t *testing.T) {
	r := newRestoreDB(t)
	const role = "restore_test_app"
	pgtest.Exec(t, r.pg, "", `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+role+`') THEN CREATE ROLE `+role+` LOGIN PASSWORD 'app'; END IF;
EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL;
END $$`)
	pgtest.Exec(t, r.pg, r.db, "GRANT ALL ON ALL TABLES IN SCHEMA public TO "+role)
	px := proxytest.Start(t, r.pg, restoreConfig)
	app, err := pgx.Connect(r.ctx, px.DSN(role, "app", r.db))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(r.ctx)
	for _, sql := range []string{"DELETE FROM order_lines WHERE id = 400", "DELETE FROM customers WHERE id = 4 /*actor='alice',reason='gdpr%20request'*/"} {
		if tag, err := app.Exec(r.ctx, sql); err != nil || tag.String() != "DELETE 1" {
			t.Fatalf("%s through the proxy: %q, %v", sql, tag, err)
		}
	}
	var at time.Time
	if err := r.conn.QueryRow(r.ctx, "SELECT deleted_at FROM customers WHERE id = 4").Scan(&at); err != nil {
		t.Fatal(err)
	}
	before := r.state(t)
	code, out, errOut := r.restore(t, "--table", "customers", "--where", "id = 4", "--cascade", "--actor", "support")
	if code != exitOK || errOut != "" {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	wantLinesAnyOrder(t, "restore", out, "restored 1 row in public.customers", "restored 3 rows in public.orders",
		"restored 5 rows in public.order_lines", "restored 1 row in public.notes")
	restored := []string{"customers 4", "notes 4", "orders 40", "orders 41", "orders 42", "order_lines 401", "order_lines 410",
		"order_lines 411", "order_lines 420", "order_lines 421"}
	r.wantRestored(t, "restore", before, restored...)
	if before["order_lines 400"] == "live" {
		t.Errorf("line 400 was not deleted through the proxy")
	}
	// Each restored row has a delete and a restore row with the stamp.
	byKey := map[string][]string{}
	for _, a := range r.audit(t) {
		byKey[a.key] = append(byKey[a.key], fmt.Sprintf("%s %s %s %s", a.action, restoreStr(a.actor), a.login, restoreStamp(a.deletion)))
	}
	for _, k := range restored {
		table, id, _ := strings.Cut(k, " ")
		key := fmt.Sprintf(`public.%s {"id": %s}`, table, id)
		want := []string{
			fmt.Sprintf("delete %q %s %s", "alice", role, restoreStamp(&at)),
			fmt.Sprintf("restore %q %s %s", "support", r.pg.User, restoreStamp(&at)),
		}
		got := byKey[key]
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("audit rows of %s: %v, want %v", key, got, want)
		}
	}
}

// tombstone migrate creates the audit log of audit.table when it is
// missing: the columns of catalog.AuditTable, PUBLIC may insert the
// writer's columns only, and may not read, change or remove rows.
func TestMigrateCreatesAuditLog(t *testing.T) {
	r := newRestoreDBWith(t, "")
	cols := restoreScalar(t, r.conn, `SELECT coalesce(string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum), 'no table')
	  FROM pg_attribute WHERE attrelid = to_regclass('tombstone.audit_log') AND attnum > 0 AND NOT attisdropped`)
	const want = "id bigint, at timestamp with time zone, action text, table_name text, key jsonb, actor text, reason text, " +
		"login_role text, xid xid8, fingerprint text, deletion timestamp with time zone"
	if cols != want {
		t.Fatalf("after migrate --apply tombstone.audit_log has the columns\n  %s\nwant\n  %s", cols, want)
	}
	privs := restoreScalar(t, r.conn, `SELECT concat_ws(' ',
	  has_table_privilege('public', 'tombstone.audit_log', 'SELECT'), has_table_privilege('public', 'tombstone.audit_log', 'UPDATE'),
	  has_table_privilege('public', 'tombstone.audit_log', 'DELETE'), has_table_privilege('public', 'tombstone.audit_log', 'TRUNCATE'),
	  has_column_privilege('public', 'tombstone.audit_log', 'actor', 'INSERT'), has_column_privilege('public', 'tombstone.audit_log', 'login_role', 'INSERT'),
	  has_column_privilege('public', 'tombstone.audit_log', 'xid', 'INSERT'), has_schema_privilege('public', 'tombstone', 'USAGE'))`)
	if privs != "f f f f t f f t" {
		t.Errorf("PUBLIC's privileges on the audit log (select update delete truncate, insert actor, login_role, xid, usage on the schema): %s;"+
			" want f f f f t f f t", privs)
	}
	// And migrate is still idempotent with it.
	if code, out, errOut := runCmd(t, "", "migrate", "--config", r.config, "--dsn", r.dsn, "--apply"); code != exitOK {
		t.Errorf("second migrate --apply: exit %d\n%s%s", code, out, errOut)
	}
}

func restoreScalar(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// The edges of tombstone restore: a self-referencing cascade is followed
// down the tree (and not into the row deleted on its own); --where may
// select by deleted_at; a table named with another case folds as in the
// configuration; a --where that matches only live rows restores nothing;
// a --where that is not one condition (a second statement) fails and
// changes nothing.
func TestRestoreEdges(t *testing.T) {
	r := newRestoreDB(t)
	staff := func() string {
		return restoreScalar(t, r.conn, "SELECT string_agg(id || ':' || coalesce(to_char(deleted_at AT TIME ZONE 'UTC', 'MM-DD HH24'), 'live'), ' ' ORDER BY id) FROM staff")
	}
	if got := staff(); got != "1:03-05 08 2:03-05 08 3:03-05 08 4:03-05 08 5:03-01 09 6:live" {
		t.Fatalf("staff before: %s", got)
	}
	code, out, errOut := r.restore(t, "--table", "staff", "--where", "id = 1", "--cascade")
	if code != exitOK || errOut != "" {
		t.Fatalf("restore of staff 1: exit %d\n%s%s", code, out, errOut)
	}
	wantLinesAnyOrder(t, "restore of staff 1", out, "restored 4 rows in public.staff")
	if got := staff(); got != "1:live 2:live 3:live 4:live 5:03-01 09 6:live" {
		t.Errorf("staff after the restore of 1 with --cascade: %s, want 1-4 live and 5 still deleted", got)
	}

	before := r.state(t)
	code, out, errOut = r.restore(t, "--table", "Customers", "--where", "deleted_at >= '2026-03-02' AND deleted_at < '2026-03-03'", "--cascade")
	if code != exitOK || errOut != "" {
		t.Fatalf("restore by deleted_at: exit %d\n%s%s", code, out, errOut)
	}
	wantLinesAnyOrder(t, "restore by deleted_at", out,
		"restored 1 row in public.customers", "restored 2 rows in public.orders",
		"restored 3 rows in public.order_lines", "restored 1 row in public.notes")
	r.wantRestored(t, "restore by deleted_at", before, "customers 1", "orders 10", "orders 11", "order_lines 100", "order_lines 110",
		"order_lines 111", "notes 1")

	before = r.state(t)
	if code, out, errOut := r.restore(t, "--table", "customers", "--where", "id IN (4, 5)", "--cascade"); code != exitOK || errOut != "" ||
		regexp.MustCompile(`restored [1-9]`).MatchString(out) {
		t.Errorf("restore of live customers: exit %d\n%s%s; want success restoring nothing", code, out, errOut)
	}
	r.wantRestored(t, "restore of live customers", before)

	audit := len(r.audit(t))
	for _, where := range []string{"id = 3; DROP TABLE notes", "id = 3); DELETE FROM notes; SELECT (1"} {
		code, out, errOut := r.restore(t, "--table", "customers", "--where", where, "--cascade")
		if code == exitOK || !strings.HasPrefix(errOut, "tombstone restore: ") || strings.Contains(errOut, "<nil>") {
			t.Errorf("--where %q: exit %d\n%s%s; want a failure with a message that says why", where, code, out, errOut)
		} else {
			t.Logf("--where %q: exit %d: %s", where, code, errOut)
		}
		r.wantRestored(t, "--where "+where, before)
	}
	if n := restoreScalar(t, r.conn, "SELECT count(*)::text FROM notes"); n != "6" {
		t.Errorf("notes holds %s rows, want 6", n)
	}
	if n := len(r.audit(t)); n != audit {
		t.Errorf("failed restores wrote %d audit rows", n-audit)
	}
}
