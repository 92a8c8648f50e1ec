package purge_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/purge"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const day = 24 * time.Hour

var auditLog = policy.RelName{Schema: "tombstone", Name: "audit_log"}

// database makes a fresh database holding sql and the audit log, and
// returns a superuser connection to it and its DSN.
func database(t *testing.T, sql string) (*pgx.Conn, *pgtest.Server) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL; skipped with -short")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, strings.Join(catalog.AuditTable(auditLog), ";\n")+";\n"+sql)
	return connect(t, pg.DSN(db)), pg
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// resolve builds the policy for spec in the database, as the commands do.
func resolve(t *testing.T, conn *pgx.Conn, spec policy.Spec) *policy.Policy {
	t.Helper()
	named, err := policy.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := catalog.Read(context.Background(), conn, spec)
	if err != nil {
		t.Fatal(err)
	}
	p, err := named.WithSchema(schema)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func soft(name string, retention time.Duration, cascade ...policy.CascadeSpec) policy.TableSpec {
	return policy.TableSpec{Schema: "public", Name: name, DeletedAt: "deleted_at", Retention: retention, Cascade: cascade}
}

// ids lists a table's ids in order, as "table:id" for messages.
func ids(t *testing.T, conn *pgx.Conn, sql string) []int {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func result(t *testing.T, r *purge.Report, table string) *purge.Result {
	t.Helper()
	for _, x := range r.Tables {
		if x.Table.String() == table {
			return x
		}
	}
	t.Fatalf("report has no table %s", table)
	return nil
}

// shop is a schema with every kind of reference onto a soft-delete
// parent. Contacts 1-5 and 9-10 were deleted 100 days ago with their
// orders (cascaded, same stamp); contact 6 was deleted 100 days ago but
// keeps a live order, 7 an order deleted 10 days ago, 8 a plain note
// (NO ACTION); 11 was deleted 10 days ago, 12 is live but has an order
// deleted 100 days ago. categories is a tree deleted as a whole, and
// events is partitioned.
const shop = `
CREATE TABLE contacts (id int PRIMARY KEY, name text, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, contact_id int REFERENCES contacts ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE notes (id int PRIMARY KEY, contact_id int REFERENCES contacts, body text);
CREATE TABLE categories (id int PRIMARY KEY, parent_id int REFERENCES categories ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE events (id int, at date, deleted_at timestamptz, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO contacts SELECT i, 'c' || i, now() - interval '100 days' FROM generate_series(1, 10) i;
INSERT INTO contacts VALUES (11, 'c11', now() - interval '10 days'), (12, 'c12', NULL);
INSERT INTO orders SELECT 10 * c + k, c, now() - interval '100 days' FROM generate_series(1, 5) c, generate_series(1, 3) k;
INSERT INTO orders VALUES (100, 6, NULL), (101, 7, now() - interval '10 days'), (102, 12, now() - interval '100 days');
INSERT INTO notes VALUES (1, 8, 'keep');
INSERT INTO categories VALUES (1, NULL, now() - interval '100 days'), (2, 1, now() - interval '100 days'),
  (3, 2, now() - interval '100 days'), (4, 3, now() - interval '100 days'), (5, 1, now() - interval '100 days'), (6, NULL, NULL);
INSERT INTO events VALUES (1, '2025-03-01', now() - interval '100 days'), (2, '2026-03-01', now() - interval '100 days'),
  (3, '2026-04-01', now() - interval '1 day'), (4, '2025-05-01', NULL);
`

var shopSpec = policy.Spec{
	Tables: []policy.TableSpec{soft("contacts", 90*day), soft("orders", 90*day), soft("categories", 90*day), soft("events", 30*day)},
	Audit:  auditLog,
}

// TestRetentionPurge purges the shop in batches of two: children go
// before their parents, a parent with a live child, a child within its
// own retention or a plain child is kept and reported, every removed row
// is audited with its key and deletion stamp, and what is left equals a
// twin database where PostgreSQL's own cascade removed the same parents.
func TestRetentionPurge(t *testing.T) {
	conn, pg := database(t, shop)
	p := resolve(t, conn, shopSpec)
	var batches []string
	report, err := purge.Run(context.Background(), conn, p, purge.Options{
		Batch: 2, Actor: "retention-job", Reason: "retention",
		Progress: func(pr purge.Progress) { batches = append(batches, pr.Table.String()) },
	})
	if err != nil {
		t.Fatal(err)
	}

	if got, want := ids(t, conn, "SELECT id FROM contacts ORDER BY id"), []int{6, 7, 8, 11, 12}; !reflect.DeepEqual(got, want) {
		t.Errorf("contacts left: %v, want %v (6: live order, 7: order within retention, 8: note, 11: within retention, 12: live)", got, want)
	}
	if got, want := ids(t, conn, "SELECT id FROM orders ORDER BY id"), []int{100, 101}; !reflect.DeepEqual(got, want) {
		t.Errorf("orders left: %v, want %v (the live one and the one within retention)", got, want)
	}
	if n := count(t, conn, "SELECT count(*) FROM notes"); n != 1 {
		t.Errorf("notes: %d rows, want the 1 plain row untouched", n)
	}
	if got, want := ids(t, conn, "SELECT id FROM categories ORDER BY id"), []int{6}; !reflect.DeepEqual(got, want) {
		t.Errorf("categories left: %v, want %v (the deleted tree removed leaves first)", got, want)
	}
	if got, want := ids(t, conn, "SELECT id FROM events ORDER BY id"), []int{3, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("events left: %v, want %v", got, want)
	}

	c, o := result(t, report, "public.contacts"), result(t, report, "public.orders")
	if c.Removed != 7 || o.Removed != 16 || c.Held != 3 {
		t.Errorf("contacts removed %d held %d, orders removed %d; want 7, 3, 16", c.Removed, c.Held, o.Removed)
	}
	if o.Batches != 8 {
		t.Errorf("orders: %d batches, want 8 of at most 2 rows", o.Batches)
	}
	var held []string
	for _, h := range c.HeldBy {
		held = append(held, fmt.Sprintf("%d %s", h.Rows, h.By))
	}
	heldBy := strings.Join(held, "; ")
	for _, want := range []string{"2 referenced by public.orders (orders_contact_id_fkey, ON DELETE CASCADE)", "1 referenced by public.notes (notes_contact_id_fkey, ON DELETE NO ACTION)"} {
		if !strings.Contains(heldBy, want) {
			t.Errorf("contacts held by %s, want it to list %s", heldBy, want)
		}
	}
	if result(t, report, "public.events_2025").Removed != 1 || result(t, report, "public.events_2026").Removed != 1 {
		t.Errorf("events partitions: %+v, %+v; want one row removed from each", result(t, report, "public.events_2025"), result(t, report, "public.events_2026"))
	}
	// Children first: no batch of contacts before the last of orders.
	lastOrder, firstContact := -1, -1
	for i, b := range batches {
		if b == "public.orders" {
			lastOrder = i
		}
		if b == "public.contacts" && firstContact < 0 {
			firstContact = i
		}
	}
	if firstContact < lastOrder {
		t.Errorf("a batch of contacts ran before the last batch of orders: %v", batches)
	}

	if n := count(t, conn, "SELECT count(*) FROM tombstone.audit_log"); int64(n) != report.Removed() {
		t.Errorf("%d audit rows for %d removed rows", n, report.Removed())
	}
	var action, table, actor, reason string
	var key []byte
	var fingerprint *string
	var deletion time.Time
	err = conn.QueryRow(context.Background(), `SELECT action, table_name, key::text, actor, reason, fingerprint, deletion FROM tombstone.audit_log
WHERE table_name = 'public.events_2025'`).Scan(&action, &table, &key, &actor, &reason, &fingerprint, &deletion)
	if err != nil {
		t.Fatal(err)
	}
	if action != "purge" || string(key) != `{"at": "2025-03-01", "id": 1}` || actor != "retention-job" || reason != "retention" || fingerprint != nil || time.Since(deletion) < 99*day {
		t.Errorf("audit row: %s %s %s %s %s %v %s", action, table, key, actor, reason, fingerprint, deletion)
	}

	// The twin: the same data, the same parents removed by hard DELETEs,
	// PostgreSQL cascading. Both must hold the same rows.
	twin := twinDatabase(t, pg)
	for _, sql := range []string{
		"DELETE FROM contacts WHERE id IN (1, 2, 3, 4, 5, 9, 10)",
		"DELETE FROM orders WHERE id = 102",
		"DELETE FROM categories WHERE id = 1",
		"DELETE FROM events WHERE id IN (1, 2)",
	} {
		if _, err := twin.Exec(context.Background(), sql); err != nil {
			t.Fatalf("twin: %s: %v", sql, err)
		}
	}
	for _, table := range []string{"contacts", "orders", "notes", "categories", "events"} {
		q := "SELECT id FROM " + table + " ORDER BY id"
		if a, b := ids(t, conn, q), ids(t, twin, q); !reflect.DeepEqual(a, b) {
			t.Errorf("%s after purge: %v; after hard deletes with PostgreSQL's cascade: %v", table, a, b)
		}
	}

	// A second run finds nothing more and holds the same rows.
	again, err := purge.Run(context.Background(), conn, p, purge.Options{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if again.Removed() != 0 || result(t, again, "public.contacts").Held != 3 {
		t.Errorf("second run removed %d, held %d contacts; want 0 and 3", again.Removed(), result(t, again, "public.contacts").Held)
	}
}

// twinDatabase is a second database holding shop, without Tombstone.
func twinDatabase(t *testing.T, pg *pgtest.Server) *pgx.Conn {
	t.Helper()
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, shop)
	return connect(t, pg.DSN(db))
}

// TestDryRun counts exactly what a purge then removes, and removes
// nothing.
func TestDryRun(t *testing.T) {
	conn, _ := database(t, shop)
	p := resolve(t, conn, shopSpec)
	snapshot := func() string {
		var s string
		err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM contacts) || ' ' || (SELECT count(*) FROM orders) || ' ' ||
(SELECT count(*) FROM categories) || ' ' || (SELECT count(*) FROM events) || ' ' || (SELECT count(*) FROM tombstone.audit_log)`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	dry, err := purge.Run(context.Background(), conn, p, purge.Options{Batch: 3, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(); after != before {
		t.Fatalf("dry run changed the counts of contacts, orders, categories, events, audit rows: %s -> %s", before, after)
	}
	real, err := purge.Run(context.Background(), conn, p, purge.Options{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Removed() != real.Removed() || dry.Removed() != 7+16+5+2 {
		t.Errorf("dry run counted %d rows, the purge removed %d; want 30", dry.Removed(), real.Removed())
	}
	for i := range dry.Tables {
		d, r := dry.Tables[i], real.Tables[i]
		if d.Table != r.Table || d.Removed != r.Removed || d.Held != r.Held {
			t.Errorf("dry run %s: %d removed, %d held; purge %s: %d, %d", d.Table, d.Removed, d.Held, r.Table, r.Removed, r.Held)
		}
	}
	var out strings.Builder
	dry.WriteSummary(&out)
	if !strings.HasPrefix(out.String(), "30 rows would be removed from 5 tables (dry run: nothing was removed)\n") {
		t.Errorf("summary:\n%s", out.String())
	}
}

// TestInterruptedPurgeResumes stops a purge after three committed
// batches, as SIGINT does, and runs it again: the second run removes the
// rest, and every row is removed and audited exactly once.
func TestInterruptedPurgeResumes(t *testing.T) {
	conn, _ := database(t, `
CREATE TABLE contacts (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, contact_id int REFERENCES contacts ON DELETE CASCADE, deleted_at timestamptz);
INSERT INTO contacts SELECT i, now() - interval '40 days' FROM generate_series(1, 10) i;
INSERT INTO orders SELECT i, 1 + i % 10, now() - interval '40 days' - i * interval '1 second' FROM generate_series(1, 50) i;`)
	p := resolve(t, conn, policy.Spec{Tables: []policy.TableSpec{soft("contacts", 0), soft("orders", 0)}, Audit: auditLog})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := purge.Run(ctx, conn, p, purge.Options{OlderThan: 30 * day, Batch: 5, Progress: func(pr purge.Progress) {
		if pr.Batches == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run the purge again to go on") {
		t.Fatalf("interrupted run: %v, want context.Canceled saying to run again", err)
	}
	if first.Removed() != 15 || count(t, conn, "SELECT count(*) FROM orders") != 35 || count(t, conn, "SELECT count(*) FROM contacts") != 10 {
		t.Fatalf("after 3 batches of 5: removed %d, %d orders and %d contacts left; want 15, 35, 10",
			first.Removed(), count(t, conn, "SELECT count(*) FROM orders"), count(t, conn, "SELECT count(*) FROM contacts"))
	}
	second, err := purge.Run(context.Background(), conn, p, purge.Options{OlderThan: 30 * day, Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	if o, c := result(t, second, "public.orders"), result(t, second, "public.contacts"); o.Removed != 35 || o.Batches != 7 || c.Removed != 10 {
		t.Errorf("resumed run removed %d orders in %d batches and %d contacts; want 35 in 7, and 10", o.Removed, o.Batches, c.Removed)
	}
	if n := count(t, conn, "SELECT count(*) FROM orders") + count(t, conn, "SELECT count(*) FROM contacts"); n != 0 {
		t.Errorf("%d rows left after the resumed run", n)
	}
	if n := count(t, conn, "SELECT count(DISTINCT key) FROM tombstone.audit_log WHERE table_name = 'public.orders'"); n != 50 {
		t.Errorf("%d distinct audited orders, want 50", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM tombstone.audit_log"); n != 60 {
		t.Errorf("%d audit rows, want 60 (each row once)", n)
	}
}

// TestAuditSameTransaction checks, with a trigger that records the
// transaction of each removal, that every audit row was written by the
// transaction that removed its row, and that a batch that fails writes
// no audit row.
func TestAuditSameTransaction(t *testing.T) {
	conn, _ := database(t, `
CREATE TABLE orders (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE removals (id int, xid xid8 DEFAULT pg_current_xact_id());
CREATE FUNCTION record_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.id = 13 AND current_setting('test.fail', true) = 'on' THEN RAISE EXCEPTION 'refusing order 13'; END IF;
  INSERT INTO removals (id) VALUES (OLD.id); RETURN OLD;
END $$;
CREATE TRIGGER record_removal BEFORE DELETE ON orders FOR EACH ROW EXECUTE FUNCTION record_removal();
INSERT INTO orders SELECT i, now() - interval '10 days' - i * interval '1 minute' FROM generate_series(1, 12) i;`)
	p := resolve(t, conn, policy.Spec{Tables: []policy.TableSpec{soft("orders", 7*day)}, Audit: auditLog})
	if _, err := purge.Run(context.Background(), conn, p, purge.Options{Batch: 5}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, `SELECT count(*) FROM tombstone.audit_log a JOIN removals r ON a.key = pg_catalog.jsonb_build_object('id', r.id) AND a.xid = r.xid`); n != 12 {
		t.Errorf("%d of 12 audit rows share the transaction of their row's removal", n)
	}
	if n := count(t, conn, "SELECT count(DISTINCT xid) FROM tombstone.audit_log"); n != 3 {
		t.Errorf("audit rows from %d transactions, want 3 batches", n)
	}

	if _, err := conn.Exec(context.Background(), `INSERT INTO orders VALUES (13, now() - interval '10 days'); SET test.fail = 'on'`); err != nil {
		t.Fatal(err)
	}
	_, err := purge.Run(context.Background(), conn, p, purge.Options{Batch: 5})
	if err == nil || !strings.Contains(err.Error(), "refusing order 13") || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("purge with a failing trigger: %v", err)
	}
	if n := count(t, conn, "SELECT count(*) FROM tombstone.audit_log"); n != 12 {
		t.Errorf("%d audit rows after a failed batch, want the 12 from before", n)
	}
}

// erasureShop: contact 1 has orders (one live, one deleted) with lines
// (plain, cascading), a ticket (declared cascade, no constraint) and a
// subscription whose key is SET NULL; contact 2 has a note that does not
// cascade.
const erasureShop = `
CREATE TABLE contacts (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, contact_id int REFERENCES contacts ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE order_lines (order_id int REFERENCES orders ON DELETE CASCADE, n int, PRIMARY KEY (order_id, n));
CREATE TABLE tickets (id int PRIMARY KEY, contact_id int, deleted_at timestamptz);
CREATE TABLE subscriptions (id int PRIMARY KEY, contact_id int REFERENCES contacts ON DELETE SET NULL);
CREATE TABLE notes (id int PRIMARY KEY, contact_id int REFERENCES contacts);
INSERT INTO contacts VALUES (1, NULL), (2, NULL), (3, now());
INSERT INTO orders VALUES (10, 1, NULL), (11, 1, '2026-01-02 03:04:05+00'), (20, 3, now());
INSERT INTO order_lines VALUES (10, 1), (10, 2), (11, 1), (20, 1);
INSERT INTO tickets VALUES (1, 1, NULL), (2, 2, NULL);
INSERT INTO subscriptions VALUES (1, 1), (2, 2);
INSERT INTO notes VALUES (1, 2);
`

var erasureSpec = policy.Spec{
	Tables: []policy.TableSpec{
		soft("contacts", 0, policy.CascadeSpec{Table: "tickets", Column: "contact_id"}),
		soft("orders", 0), soft("tickets", 0),
	},
	Audit: auditLog,
}

func TestErasure(t *testing.T) {
	conn, _ := database(t, erasureShop)
	p := resolve(t, conn, erasureSpec)
	ctx := context.Background()
	total := func() int {
		return count(t, conn, "SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM order_lines) + (SELECT count(*) FROM tickets) + (SELECT count(*) FROM subscriptions)")
	}
	before := total()

	// Without --cascade, referencing rows refuse it.
	_, err := purge.Erase(ctx, conn, p, purge.Erasure{Table: policy.RelName{Name: "contacts"}, Where: "id = 1", Actor: "dpo"})
	if !errors.Is(err, purge.ErrRefused) || !strings.Contains(err.Error(), "public.orders holds 2 rows referencing them through public.orders (orders_contact_id_fkey, ON DELETE CASCADE)") ||
		!strings.Contains(err.Error(), "rerun with --cascade") {
		t.Errorf("erasure without cascade: %v", err)
	}
	// A key that does not cascade refuses it even with --cascade.
	_, err = purge.Erase(ctx, conn, p, purge.Erasure{Table: policy.RelName{Name: "contacts"}, Where: "id = 2", Cascade: true, Actor: "dpo"})
	if !errors.Is(err, purge.ErrRefused) || !strings.Contains(err.Error(), "public.notes holds 1 row referencing them through public.notes (notes_contact_id_fkey, ON DELETE NO ACTION)") {
		t.Errorf("erasure blocked by a NO ACTION key: %v", err)
	}
	if n := total(); n != before || count(t, conn, "SELECT count(*) FROM tombstone.audit_log") != 0 {
		t.Fatalf("refused erasures changed something: %d rows, were %d", n, before)
	}

	// A dry run counts and removes nothing.
	dry, err := purge.Erase(ctx, conn, p, purge.Erasure{Table: policy.RelName{Name: "contacts"}, Where: "contacts.id = 1", Cascade: true, DryRun: true, Actor: "dpo"})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Rows() != 7 || total() != before || count(t, conn, "SELECT count(*) FROM tombstone.audit_log") != 0 {
		t.Errorf("dry run: counted %d rows (want 7), %d rows left (want %d)", dry.Rows(), total(), before)
	}

	report, err := purge.Erase(ctx, conn, p, purge.Erasure{Table: policy.RelName{Name: "contacts"}, Where: "id = 1", Cascade: true, Actor: "dpo", Reason: "request 7"})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	report.WriteSummary(&out)
	for _, want := range []string{
		"7 rows erased in one transaction\n",
		"  public.order_lines: 3 rows\n", "  public.orders: 2 rows\n", "  public.tickets: 1 row\n", "  public.contacts: 1 row\n",
		"  public.subscriptions: 1 row kept, their reference changed by public.subscriptions (subscriptions_contact_id_fkey, ON DELETE SET NULL)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Index(out.String(), "public.contacts:") < strings.Index(out.String(), "public.orders:") {
		t.Errorf("contacts removed before their orders:\n%s", out.String())
	}
	if got := ids(t, conn, "SELECT id FROM contacts ORDER BY id"); !reflect.DeepEqual(got, []int{2, 3}) {
		t.Errorf("contacts left: %v", got)
	}
	if got := ids(t, conn, "SELECT order_id FROM order_lines ORDER BY 1"); !reflect.DeepEqual(got, []int{20}) {
		t.Errorf("order lines left: %v", got)
	}
	if got := ids(t, conn, "SELECT id FROM tickets ORDER BY id"); !reflect.DeepEqual(got, []int{2}) {
		t.Errorf("tickets left: %v", got)
	}
	if n := count(t, conn, "SELECT count(*) FROM subscriptions WHERE contact_id IS NULL"); n != 1 {
		t.Errorf("%d subscriptions unlinked, want 1", n)
	}
	rows, err := conn.Query(ctx, "SELECT table_name || ' ' || key::text || ' ' || coalesce((deletion AT TIME ZONE 'UTC')::text, 'live') || ' ' || actor || ' ' || reason FROM tombstone.audit_log ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	audit, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`public.contacts {"id": 1} live dpo request 7`,
		`public.order_lines {"n": 1, "order_id": 10} live dpo request 7`,
		`public.order_lines {"n": 1, "order_id": 11} live dpo request 7`,
		`public.order_lines {"n": 2, "order_id": 10} live dpo request 7`,
		`public.orders {"id": 10} live dpo request 7`,
		`public.orders {"id": 11} 2026-01-02 03:04:05 dpo request 7`,
		`public.tickets {"id": 1} live dpo request 7`,
	}
	if !reflect.DeepEqual(audit, want) {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(audit, "\n"), strings.Join(want, "\n"))
	}
	if n := count(t, conn, "SELECT count(DISTINCT xid) FROM tombstone.audit_log"); n != 1 {
		t.Errorf("audit rows from %d transactions, want the erasure's one", n)
	}
}

// TestConcurrentTransactions: a purge waits for no one. A row another
// transaction has locked is skipped and reported, and a parent that an
// uncommitted insert is starting to reference (its foreign-key check
// holds a lock on the parent) is skipped too, so the insert can commit
// and the next run finds the parent referenced and keeps it.
func TestConcurrentTransactions(t *testing.T) {
	conn, pg := database(t, `
CREATE TABLE contacts (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, contact_id int REFERENCES contacts ON DELETE CASCADE, deleted_at timestamptz);
INSERT INTO contacts SELECT i, now() - interval '10 days' FROM generate_series(1, 4) i;`)
	p := resolve(t, conn, policy.Spec{Tables: []policy.TableSpec{soft("contacts", 7*day), soft("orders", 7*day)}, Audit: auditLog})
	ctx := context.Background()
	other := connect(t, pg.DSN(conn.Config().Database))
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT FROM contacts WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO orders VALUES (1, 2, NULL)"); err != nil {
		t.Fatal(err)
	}
	report, err := purge.Run(ctx, conn, p, purge.Options{Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	c := result(t, report, "public.contacts")
	if c.Removed != 2 || c.Held != 2 || len(c.HeldBy) != 1 || c.HeldBy[0].By != "locked by another transaction during the purge" {
		t.Errorf("contacts: removed %d, held %d by %+v; want 2 removed and 2 held, locked", c.Removed, c.Held, c.HeldBy)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("the concurrent insert of a live order could not commit: %v", err)
	}
	report, err = purge.Run(ctx, conn, p, purge.Options{Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	if c := result(t, report, "public.contacts"); c.Removed != 1 || c.Held != 1 {
		t.Errorf("second run: contacts removed %d, held %d; want 1 (contact 1) and 1 (contact 2, its live order)", c.Removed, c.Held)
	}
	if got := ids(t, conn, "SELECT id FROM orders"); !reflect.DeepEqual(got, []int{1}) {
		t.Errorf("orders: %v, want the live order 1", got)
	}
}

// TestPartitionedParent: a foreign key onto a partitioned table covers its
// partitions, which are purged each on its own: a partition's row that
// the key's child references is kept, the others go, and an erasure
// through the partitioned table cascades to the child.
func TestPartitionedParent(t *testing.T) {
	conn, _ := database(t, `
CREATE TABLE accounts (id int, region text, deleted_at timestamptz, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE accounts_eu PARTITION OF accounts FOR VALUES IN ('eu');
CREATE TABLE accounts_us PARTITION OF accounts FOR VALUES IN ('us');
CREATE TABLE logins (id int PRIMARY KEY, account_id int, region text, FOREIGN KEY (account_id, region) REFERENCES accounts ON DELETE CASCADE);
INSERT INTO accounts VALUES (1, 'eu', now() - interval '100 days'), (2, 'eu', now() - interval '100 days'), (3, 'us', now() - interval '100 days'), (4, 'us', NULL);
INSERT INTO logins VALUES (1, 2, 'eu'), (2, 4, 'us');`)
	p := resolve(t, conn, policy.Spec{Tables: []policy.TableSpec{soft("accounts", 90*day)}, Audit: auditLog})
	report, err := purge.Run(context.Background(), conn, p, purge.Options{Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	eu, us := result(t, report, "public.accounts_eu"), result(t, report, "public.accounts_us")
	if eu.Removed != 1 || eu.Held != 1 || us.Removed != 1 || us.Held != 0 {
		t.Errorf("accounts_eu removed %d held %d, accounts_us removed %d held %d; want 1 1 1 0", eu.Removed, eu.Held, us.Removed, us.Held)
	}
	if len(eu.HeldBy) != 1 || eu.HeldBy[0].By != "referenced by public.logins (logins_account_id_region_fkey, ON DELETE CASCADE)" {
		t.Errorf("accounts_eu held by %+v", eu.HeldBy)
	}
	if got := ids(t, conn, "SELECT id FROM logins ORDER BY id"); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("logins: %v, want both kept", got)
	}
	erased, err := purge.Erase(context.Background(), conn, p, purge.Erasure{Table: policy.RelName{Name: "accounts"}, Where: "id IN (2, 4)", Cascade: true, Actor: "dpo"})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	erased.WriteSummary(&out)
	if want := "4 rows erased in one transaction\n  public.logins: 2 rows\n  public.accounts_eu: 1 row\n  public.accounts_us: 1 row\n"; out.String() != want {
		t.Errorf("erasure:\n%s\nwant:\n%s", out.String(), want)
	}
	if n := count(t, conn, "SELECT count(*) FROM accounts") + count(t, conn, "SELECT count(*) FROM logins"); n != 0 {
		t.Errorf("%d rows left", n)
	}
}

func TestMissingAuditLog(t *testing.T) {
	conn, _ := database(t, `DROP TABLE tombstone.audit_log;
CREATE TABLE orders (id int PRIMARY KEY, deleted_at timestamptz);
INSERT INTO orders VALUES (1, now() - interval '10 days');`)
	p := resolve(t, conn, policy.Spec{Tables: []policy.TableSpec{soft("orders", 7*day)}, Audit: auditLog})
	want := "the audit log tombstone.audit_log (audit.table) does not exist in this database; create it with tombstone migrate --apply"
	if _, err := purge.Run(context.Background(), conn, p, purge.Options{Batch: 10}); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("purge: %v", err)
	}
	if _, err := purge.Erase(context.Background(), conn, p, purge.Erasure{Table: policy.RelName{Name: "orders"}, Where: "true"}); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("erasure: %v", err)
	}
	if n := count(t, conn, "SELECT count(*) FROM orders"); n != 1 {
		t.Errorf("%d orders left, want 1", n)
	}
}

// TestDeclaredCascadeHolds: a declared cascade has no constraint, so the
// database would never stop a parent's removal; purge keeps the parent
// while a child row names it, as for a foreign key.
func TestDeclaredCascadeHolds(t *testing.T) {
	conn, _ := database(t, `
CREATE TABLE contacts (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE tickets (id int PRIMARY KEY, contact_id int, deleted_at timestamptz);
INSERT INTO contacts VALUES (1, now() - interval '10 days'), (2, now() - interval '10 days');
INSERT INTO tickets VALUES (1, 1, NULL), (2, 2, now() - interval '10 days');`)
	p := resolve(t, conn, policy.Spec{Tables: []policy.TableSpec{
		soft("contacts", 7*day, policy.CascadeSpec{Table: "tickets", Column: "contact_id"}), soft("tickets", 7*day),
	}, Audit: auditLog})
	report, err := purge.Run(context.Background(), conn, p, purge.Options{Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	if names := []string{report.Tables[0].Table.String(), report.Tables[1].Table.String()}; !reflect.DeepEqual(names, []string{"public.tickets", "public.contacts"}) {
		t.Errorf("purged in the order %v, want the declared child first", names)
	}
	c := result(t, report, "public.contacts")
	if c.Removed != 1 || c.Held != 1 || len(c.HeldBy) != 1 || c.HeldBy[0].By != "referenced by public.tickets (declared cascade on contact_id)" {
		t.Errorf("contacts: removed %d, held %d by %+v", c.Removed, c.Held, c.HeldBy)
	}
	if got := ids(t, conn, "SELECT id FROM contacts"); !reflect.DeepEqual(got, []int{1}) {
		t.Errorf("contacts left: %v, want 1 (its live ticket)", got)
	}
}
