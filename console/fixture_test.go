package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/policy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// consoleSchema: customer c has orders 10c, 10c+1, order o has lines 10o
// and 10o+1. Deletions, each with a stamp of its own:
//
//	t1: customer 1 (by mallory, with a script for a reason) and its
//	    orders 10, 11, lines 100, 101, 110, 111 and note 1: seven
//	    cascaded rows
//	t2: customer 2 with orders 20, 21 and their lines; then live customer
//	    7 took its email, so it cannot come back (23505)
//	t3: order 30 alone, with lines 300, 301; customer 3 stays live
//	t4: order 50 alone; t5: customer 5 with order 51 and its lines, so
//	    order 50 cannot come back while customer 5 is deleted (23503)
//
// notes is a declared cascade of customers (no constraint): note c
// belongs to customer c and went with its deletion.
//
// staff references itself: 1 <- 2 <- 3 and 2 <- 4, all deleted at t1;
// 5 deleted on its own at t3. pairs has a two-column key (b, a).
const consoleSchema = `
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, deleted_at timestamptz, deleted_by text, deleted_reason text);
CREATE UNIQUE INDEX customers_email_live ON customers (email) WHERE deleted_at IS NULL;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE,
  deleted_at timestamptz, deleted_by text, deleted_reason text);
CREATE TABLE order_lines (id int PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE notes (id int PRIMARY KEY, customer_id int NOT NULL, deleted_at timestamptz);
CREATE TABLE staff (id int PRIMARY KEY, manager_id int REFERENCES staff ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE pairs (a int, b text, PRIMARY KEY (b, a), deleted_at timestamptz);
INSERT INTO customers (id, email) SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 6) g;
INSERT INTO orders (id, customer_id) SELECT c * 10 + k, c FROM generate_series(1, 6) c, generate_series(0, 1) k;
INSERT INTO order_lines (id, order_id) SELECT o.id * 10 + k, o.id FROM orders o, generate_series(0, 1) k;
INSERT INTO notes SELECT g, g FROM generate_series(1, 6) g;
INSERT INTO staff VALUES (1, NULL), (2, 1), (3, 2), (4, 2), (5, 1), (6, NULL);
INSERT INTO pairs (a, b) VALUES (1, 'x'), (2, 'x'), (1, 'y');

UPDATE customers SET deleted_at = '2026-03-01 10:00:00+00', deleted_by = 'mallory', deleted_reason = '<script>alert(1)</script>' WHERE id = 1;
UPDATE orders SET deleted_at = '2026-03-01 10:00:00+00', deleted_by = 'mallory' WHERE customer_id = 1;
UPDATE order_lines SET deleted_at = '2026-03-01 10:00:00+00' WHERE order_id IN (10, 11);
UPDATE notes SET deleted_at = '2026-03-01 10:00:00+00' WHERE customer_id = 1;
UPDATE staff SET deleted_at = '2026-03-01 10:00:00+00' WHERE id IN (1, 2, 3, 4);
UPDATE customers SET deleted_at = '2026-03-02 10:00:00+00', deleted_by = 'bob', deleted_reason = 'duplicate' WHERE id = 2;
UPDATE orders SET deleted_at = '2026-03-02 10:00:00+00' WHERE customer_id = 2;
UPDATE order_lines SET deleted_at = '2026-03-02 10:00:00+00' WHERE order_id IN (20, 21);
UPDATE notes SET deleted_at = '2026-03-02 10:00:00+00' WHERE customer_id = 2;
INSERT INTO customers (id, email) VALUES (7, 'c2@example.com');
UPDATE orders SET deleted_at = '2026-03-03 10:00:00+00', deleted_by = 'alice', deleted_reason = 'typo' WHERE id = 30;
UPDATE order_lines SET deleted_at = '2026-03-03 10:00:00+00' WHERE order_id = 30;
UPDATE staff SET deleted_at = '2026-03-03 10:00:00+00' WHERE id = 5;
UPDATE orders SET deleted_at = '2026-03-04 10:00:00+00', deleted_by = 'alice' WHERE id = 50;
UPDATE order_lines SET deleted_at = '2026-03-04 10:00:00+00' WHERE order_id = 50;
UPDATE customers SET deleted_at = '2026-03-05 10:00:00+00', deleted_by = 'bob' WHERE id = 5;
UPDATE orders SET deleted_at = '2026-03-05 10:00:00+00' WHERE customer_id = 5 AND deleted_at IS NULL;
UPDATE order_lines SET deleted_at = '2026-03-05 10:00:00+00' WHERE order_id = 51;
UPDATE notes SET deleted_at = '2026-03-05 10:00:00+00' WHERE customer_id = 5;
UPDATE pairs SET deleted_at = '2026-03-06 10:00:00+00' WHERE (a, b) IN ((1, 'x'), (2, 'x'));
`

// consoleSpec configures consoleSchema's tables, with the audit log.
func consoleSpec() policy.Spec {
	table := func(name string, who bool) policy.TableSpec {
		ts := policy.TableSpec{Schema: "public", Name: name, DeletedAt: "deleted_at"}
		if who {
			ts.DeletedBy, ts.DeletedReason = "deleted_by", "deleted_reason"
		}
		return ts
	}
	customers := table("customers", true)
	customers.Cascade = []policy.CascadeSpec{{Schema: "public", Table: "notes", Column: "customer_id"}}
	return policy.Spec{
		Mode:            policy.ModeEnforce,
		PrivilegedRoles: []string{"postgres"},
		Tables:          []policy.TableSpec{customers, table("orders", true), table("order_lines", false), table("notes", false), table("staff", false), table("pairs", false)},
		Audit:           policy.RelName{Schema: "tombstone", Name: "audit_log"},
	}
}

// env is a console on a fresh database loaded with consoleSchema, the
// audit log and tombstone migrate's objects, served by httptest.
type env struct {
	ctx     context.Context
	conn    *pgx.Conn // direct, superuser: to look at what is on disk
	srv     *httptest.Server
	console *Console
	reg     *prometheus.Registry
	clock   *fakeClock
}

// Passwords of the test users; their hashes are bcrypt at MinCost.
const (
	supportPassword = "support-secret"
	dpoPassword     = "dpo-secret"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newEnv(t *testing.T) *env {
	t.Helper()
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	spec := consoleSpec()
	pgtest.Exec(t, pg, db, consoleSchema+strings.Join(catalog.AuditTable(spec.Audit), ";\n"))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	// What tombstone migrate --apply installs: the helpers a restore's
	// parent checks call.
	s, err := catalog.Read(ctx, conn, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, stmt := range catalog.Plan(spec, s) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%w\nin statement:\n%s", err, stmt)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	named, err := policy.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := catalog.Resolve(ctx, conn, named)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, pg.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := &env{ctx: ctx, conn: conn, reg: prometheus.NewRegistry(), clock: &fakeClock{time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}}
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	e.console, err = New(Options{
		Users: []User{
			{Name: "support", PasswordHash: hash(supportPassword), CanRestore: true},
			{Name: "dpo", PasswordHash: hash(dpoPassword), CanRestore: true, CanPurge: true},
		},
		DB: pool, Policy: p, Metrics: metrics.NewConsole(e.reg), Now: e.clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.console)
	t.Cleanup(e.srv.Close)
	return e
}

// response is what a request got back.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request as user (password pw; no credentials when user is
// ""), with headers as name, value pairs.
func (e *env) do(t *testing.T, method, path, user, pw, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// get and post send as support.
func (e *env) get(t *testing.T, path string) response {
	t.Helper()
	return e.do(t, "GET", path, "support", supportPassword, "")
}

func (e *env) postJSON(t *testing.T, user, pw, path, body string) response {
	t.Helper()
	return e.do(t, "POST", path, user, pw, body, "Content-Type", "application/json", "Origin", e.srv.URL)
}

// snapshot is every row of every table, the audit log included, as text:
// a 4xx must leave it as it was.
func (e *env) snapshot(t *testing.T) string {
	t.Helper()
	var out strings.Builder
	for _, table := range []string{"customers", "orders", "order_lines", "notes", "staff", "pairs", "tombstone.audit_log"} {
		rows, err := e.conn.Query(e.ctx, "SELECT x::text FROM "+table+" AS x ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s:\n  %s\n", table, strings.Join(lines, "\n  "))
	}
	return out.String()
}

// unchanged fails when the database differs from before.
func (e *env) unchanged(t *testing.T, what, before string) {
	t.Helper()
	if after := e.snapshot(t); after != before {
		t.Errorf("%s changed the database:\nbefore\n%s\nafter\n%s", what, before, after)
	}
}

// live lists the ids of table's live rows among ids.
func (e *env) deleted(t *testing.T, table string) string {
	t.Helper()
	var s string
	if err := e.conn.QueryRow(e.ctx, "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM "+table+" WHERE deleted_at IS NOT NULL").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// audit lists the audit rows as "action table key actor".
func (e *env) audit(t *testing.T) []string {
	t.Helper()
	rows, err := e.conn.Query(e.ctx, "SELECT action || ' ' || table_name || ' ' || coalesce(key::text, '-') || ' ' || coalesce(actor, '-') FROM tombstone.audit_log ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func failures(t *testing.T, e *env) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "tombstone_console_login_failures_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("tombstone_console_login_failures_total is not registered")
	return 0
}
