package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

// doctorSchema has one of each problem doctor reports and migrate fixes.
const doctorSchema = `
CREATE ROLE doctorapp LOGIN PASSWORD 'doctorapp';
CREATE ROLE doctoradmin LOGIN PASSWORD 'doctoradmin';
CREATE TABLE contacts (id int PRIMARY KEY, email text CONSTRAINT contacts_email_key UNIQUE, name text, deleted_at timestamptz);
CREATE INDEX contacts_name_idx ON contacts (lower(name)) WHERE name IS NOT NULL;
CREATE TABLE orders (id int PRIMARY KEY, contact_id int REFERENCES contacts ON DELETE CASCADE, code text, deleted_at timestamptz);
CREATE UNIQUE INDEX orders_code_idx ON orders (code);
CREATE INDEX orders_contact_idx ON orders (contact_id);
CREATE TABLE notes (id int PRIMARY KEY, contact_id int REFERENCES contacts ON DELETE SET NULL);
CREATE TABLE bookings (id int PRIMARY KEY, during tstzrange, ref text, deleted_at timestamptz,
  CONSTRAINT bookings_during_excl EXCLUDE USING gist (during WITH &&),
  CONSTRAINT bookings_ref_key UNIQUE (ref, deleted_at));
CREATE FUNCTION forget() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN OLD; END$$;
CREATE TRIGGER contacts_forget BEFORE DELETE ON contacts FOR EACH ROW EXECUTE FUNCTION forget();
GRANT SELECT, INSERT, DELETE ON contacts, orders, bookings TO doctorapp;
GRANT UPDATE (name) ON contacts TO doctorapp;
GRANT SELECT ON notes TO doctorapp;
INSERT INTO contacts VALUES (1, 'a@example.com', 'A', NULL), (2, 'b@example.com', 'B', now() - interval '40 days');
INSERT INTO orders VALUES (10, 1, 'X1', NULL);
INSERT INTO bookings VALUES (1, tstzrange('2026-01-01', '2026-01-02'), 'R1', now());
`

const doctorConfig = `privileged_roles: [doctoradmin]
audit:
  table: tombstone.audit_log
tables:
  - name: contacts
    deleted_by: deleted_by
    retention: 30d
  - name: orders
  - name: bookings
`

// TestDoctorMigrate: doctor reports each problem and fails; migrate prints
// the fix without changing anything, --apply fixes it, doctor then
// passes, and a second migrate has nothing to do. Then the proxy's own
// statements run as the application role under the row-level security
// migrate created.
func TestDoctorMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, doctorSchema)
	dsn := pg.DSN(db)
	path := writeConfig(t, doctorConfig)

	code, out, errOut := runCmd(t, "", "doctor", "--config", path, "--dsn", dsn)
	if code != exitRuntime || !strings.Contains(errOut, "finding(s) need attention") {
		t.Fatalf("doctor before migrate: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"FAIL  helpers: tombstone.fail is not installed",
		"FAIL  audit: audit table tombstone.audit_log does not exist",
		"FAIL  columns: missing column(s) deleted_by",
		"FAIL  grants: role doctorapp lacks UPDATE (deleted_at, deleted_by) on public.contacts (a DELETE of public.contacts becomes an UPDATE of them)",
		"FAIL  grants: role doctorapp lacks UPDATE (deleted_at) on public.orders (a DELETE of public.contacts soft-deletes its rows through orders_contact_id_fkey",
		"FAIL  unique: unique constraint contacts_email_key (UNIQUE (email)) holds deleted rows too",
		`CREATE UNIQUE INDEX contacts_email_key_tombstone ON public.contacts USING btree (email) WHERE deleted_at IS NULL`,
		"FAIL  unique: unique index orders_code_idx holds deleted rows too",
		"FAIL  exclusion: exclusion constraint bookings_during_excl (EXCLUDE USING gist (during WITH &&)) holds deleted rows too",
		"EXCLUDE USING gist (during WITH &&) WHERE (deleted_at IS NULL)",
		"FAIL  unique: unique constraint bookings_ref_key (UNIQUE (ref, deleted_at)) has deleted_at among its columns: live rows, whose deleted_at is NULL, never conflict",
		"CREATE UNIQUE INDEX bookings_ref_key_tombstone ON public.bookings USING btree (ref) WHERE deleted_at IS NULL",
		"warn  indexes: index contacts_name_idx is not partial",
		"ok    indexes: index orders_contact_idx serves foreign key orders_contact_id_fkey",
		"ok    foreign keys: in: orders_contact_id_fkey (public.orders(contact_id) -> public.contacts(id)) ON DELETE CASCADE: soft cascade",
		"warn  foreign keys: in: notes_contact_id_fkey (public.notes(contact_id) -> public.contacts(id)) ON DELETE SET NULL: refused (0A000)",
		"ok    foreign keys: out: orders_contact_id_fkey",
		"warn  deleted rows: 1 deleted row(s), the oldest deleted 40d ago; retention 30d: 1 past it",
		"warn  interference: BEFORE DELETE trigger contacts_forget (public.forget) does not fire on a soft delete",
		"note  rls: no row-level security",
		"note  views: no view public.active_contacts",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor's report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("report:\n%s", out)
	}

	args := []string{"migrate", "--config", path, "--dsn", dsn, "--views", "--rls"}
	code, out, errOut = runCmd(t, "", args...)
	if code != exitOK || errOut != "" {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`ALTER TABLE "public"."contacts" ADD COLUMN IF NOT EXISTS "deleted_by" text;`,
		"CREATE SCHEMA IF NOT EXISTS tombstone;",
		`CREATE TABLE IF NOT EXISTS "tombstone"."audit_log"`,
		`GRANT UPDATE ("deleted_at", "deleted_by") ON "public"."contacts" TO "doctorapp";`,
		"SET lock_timeout = 0;\nCREATE UNIQUE INDEX CONCURRENTLY contacts_email_key_tombstone ON public.contacts USING btree (email) WHERE deleted_at IS NULL;",
		`CREATE INDEX CONCURRENTLY contacts_name_idx_tombstone ON public.contacts USING btree (lower(name)) WHERE name IS NOT NULL AND deleted_at IS NULL;`,
		`DROP INDEX CONCURRENTLY IF EXISTS "public"."orders_code_idx";`,
		`ALTER TABLE "public"."contacts" DROP CONSTRAINT "contacts_email_key";`,
		"not done without --allow-blocking: replace exclusion constraint bookings_during_excl",
		"-- note: INSERT ... ON CONFLICT (email) through Tombstone gets WHERE deleted_at IS NULL added; clients that bypass it must write ON CONFLICT (email) WHERE deleted_at IS NULL, or PostgreSQL finds no index to match (42P10); ON CONFLICT ON CONSTRAINT contacts_email_key stops working",
		"why: ADD CONSTRAINT ... EXCLUDE builds its index under an ACCESS EXCLUSIVE lock",
		`CREATE VIEW "public"."active_contacts" WITH (security_invoker = true)`,
		`CREATE POLICY tombstone_live ON "public"."contacts" FOR SELECT TO PUBLIC USING ("deleted_at" IS NULL OR "deleted_at" OPERATOR(pg_catalog.>=) pg_catalog.statement_timestamp()::timestamp with time zone OR "deleted_at" OPERATOR(pg_catalog.=) pg_catalog.now()::timestamp with time zone);`,
		`CREATE POLICY tombstone_privileged ON "public"."contacts" FOR ALL TO "doctoradmin"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate's script lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("script:\n%s", out)
	}
	if n := rows(t, dsn, `SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%tombstone%'`); n != 0 {
		t.Fatalf("printing the plan built %d indexes", n)
	}

	apply := append(args, "--apply", "--allow-blocking")
	code, out, errOut = runCmd(t, "", apply...)
	if code != exitOK || errOut != "" || !strings.Contains(out, "step(s) applied") {
		t.Fatalf("migrate --apply: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "doctor", "--config", path, "--dsn", dsn)
	if code != exitOK || strings.Contains(out, "FAIL") {
		t.Fatalf("doctor after migrate: exit %d\n%s%s", code, out, errOut)
	}
	// An audit log the application may no longer write is found, and
	// its grants put back.
	pgtest.Exec(t, pg, db, `REVOKE INSERT ON tombstone.audit_log FROM PUBLIC`)
	code, out, _ = runCmd(t, "", "doctor", "--config", path, "--dsn", dsn)
	if code != exitRuntime || !strings.Contains(out, "FAIL  audit: PUBLIC cannot write audit table tombstone.audit_log (lacks action, table_name, key, actor, reason, fingerprint, deletion)") {
		t.Fatalf("doctor after REVOKE INSERT on the audit log: exit %d\n%s", code, out)
	}
	if code, out, errOut := runCmd(t, "", apply...); code != exitOK || !strings.Contains(out, "let PUBLIC write the audit table") {
		t.Fatalf("migrate --apply after REVOKE INSERT on the audit log: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "doctor", "--config", path, "--dsn", dsn)
	if code != exitOK {
		t.Fatalf("doctor after migrate: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"ok    helpers: schema tombstone, tombstone.fail and 2 foreign-key check triggers are installed and current",
		"ok    rls: row-level security is on with Tombstone's current policies",
		"ok    views: view public.active_contacts shows the live rows",
		"ok    indexes: 2 partial index(es)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor after migrate lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCmd(t, "", apply...)
	if code != exitOK || errOut != "" || out != "nothing to do\n" {
		t.Fatalf("second migrate --apply: exit %d, want only \"nothing to do\"\n%s%s", code, out, errOut)
	}
	code, out, _ = runCmd(t, "", args...)
	if code != exitOK || out != "-- nothing to do\n" {
		t.Fatalf("second migrate: exit %d, want only \"-- nothing to do\"\n%s", code, out)
	}
	if n := rows(t, dsn, `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('contacts_email_key', 'orders_code_idx', 'contacts_name_idx') AND i.indpred IS NOT NULL AND i.indisvalid`); n != 3 {
		t.Fatalf("%d of the 3 swapped indexes are partial and valid under their old names", n)
	}

	// What the proxy sends for a DELETE, run as the application role:
	// with row-level security on, the soft delete and its cascade work,
	// the deleted rows are hidden from the role but not from the
	// privileged one, the key is free again, and a hard DELETE that
	// bypasses the proxy removes nothing.
	code, out, errOut = runCmd(t, "", "rewrite", "--config", path, "--dsn", dsn, "--role", "doctorapp", "DELETE FROM contacts WHERE id = 1")
	if code != exitOK {
		t.Fatalf("rewrite: exit %d\n%s%s", code, out, errOut)
	}
	softDelete, _, _ := strings.Cut(out, "\n")
	if !strings.Contains(softDelete, "tombstone_c") {
		t.Fatalf("the rewrite carries no cascade: %s", softDelete)
	}
	ctx := context.Background()
	app, err := pgx.Connect(ctx, pgcluster.URL(pg.Addr(), "doctorapp", "doctorapp", db))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	tag, err := app.Exec(ctx, softDelete)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("the proxy's soft delete as doctorapp under row-level security: %v (%s)\n%s", err, tag, softDelete)
	}
	for _, c := range []struct {
		sql  string
		want int
	}{
		{`SELECT count(*) FROM contacts`, 0},
		{`SELECT count(*) FROM orders`, 0},
		{`SELECT count(*) FROM public.active_contacts`, 0},
	} {
		var n int
		if err := app.QueryRow(ctx, c.sql).Scan(&n); err != nil || n != c.want {
			t.Errorf("as doctorapp, %s: %d, %v; want %d", c.sql, n, err, c.want)
		}
	}
	if tag, err := app.Exec(ctx, `DELETE FROM bookings`); err != nil || tag.RowsAffected() != 0 {
		t.Errorf("a hard DELETE bypassing the proxy: %v, %s; want DELETE 0", err, tag)
	}
	if _, err := app.Exec(ctx, `INSERT INTO contacts (id, email) VALUES (3, 'a@example.com')`); err != nil {
		t.Errorf("re-inserting a deleted key: %v", err)
	}
	admin, err := pgx.Connect(ctx, pgcluster.URL(pg.Addr(), "doctoradmin", "doctoradmin", db))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	pgtest.Exec(t, pg, db, `GRANT SELECT, UPDATE ON contacts TO doctoradmin`)
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM contacts WHERE deleted_at IS NOT NULL`).Scan(&n); err != nil || n != 2 {
		t.Errorf("the privileged role sees %d deleted contacts (%v), want 2", n, err)
	}
	if tag, err := admin.Exec(ctx, `UPDATE contacts SET deleted_at = NULL WHERE id = 2`); err != nil || tag.RowsAffected() != 1 {
		t.Errorf("the privileged role restores: %v, %s", err, tag)
	}

	// allow_restore turned on later: the policies would keep restores
	// from seeing deleted rows, so migrate takes them away.
	restorable := writeConfig(t, strings.Replace(doctorConfig, "  - name: orders\n", "  - name: orders\n    allow_restore: true\n", 1))
	code, out, _ = runCmd(t, "", "doctor", "--config", restorable, "--dsn", dsn)
	if code != exitRuntime || !strings.Contains(out, "FAIL  rls: allow_restore is on for public.orders, and Tombstone's row-level security hides deleted rows from the restore UPDATE") {
		t.Fatalf("doctor with allow_restore: exit %d\n%s", code, out)
	}
	if code, out, errOut := runCmd(t, "", "migrate", "--config", restorable, "--dsn", dsn, "--rls", "--views", "--apply"); code != exitOK ||
		!strings.Contains(out, "remove Tombstone's row-level security from public.orders") {
		t.Fatalf("migrate --rls with allow_restore: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCmd(t, "", "migrate", "--config", restorable, "--dsn", dsn, "--rls", "--views", "--apply"); code != exitOK ||
		!strings.HasPrefix(out, "nothing to do\ncannot do safely: table public.orders: allow_restore is on for public.orders") {
		t.Fatalf("second migrate --rls with allow_restore: exit %d\n%s%s", code, out, errOut)
	}
	if n := rows(t, dsn, `SELECT count(*) FROM pg_policy WHERE polrelid = 'orders'::regclass`); n != 0 || rows(t, dsn, `SELECT count(*) FROM pg_class WHERE oid = 'orders'::regclass AND relrowsecurity`) != 0 {
		t.Fatalf("orders keeps %d policies, or row-level security", n)
	}
}

// TestMigrateResumes: a concurrent build that failed leaves an INVALID
// index; the next run drops it and builds it again, and a swap
// interrupted after the old index was dropped is finished.
func TestMigrateResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, `
CREATE TABLE items (id int PRIMARY KEY, sku text, label text, deleted_at timestamptz);
CREATE UNIQUE INDEX items_sku_idx ON items (sku);
CREATE INDEX items_label_idx ON items (label);
CREATE INDEX items_code_idx ON items (id, label);
COMMENT ON INDEX items_label_idx IS 'for the search page';
INSERT INTO items VALUES (1, 'a', 'x', NULL), (2, 'b', 'y', NULL);`)
	dsn := pg.DSN(db)
	path := writeConfig(t, "tables:\n  - name: items\n")
	// A build interrupted halfway: what CREATE INDEX CONCURRENTLY leaves
	// when it fails (here on a duplicate key) is an INVALID index.
	pgtest.Exec(t, pg, db, `DROP INDEX items_sku_idx; UPDATE items SET sku = 'a' WHERE id = 2`)
	err := pg.Exec(context.Background(), db, `CREATE UNIQUE INDEX CONCURRENTLY items_sku_idx_tombstone ON items (sku) WHERE deleted_at IS NULL`)
	if err == nil {
		t.Fatal("the duplicate did not stop the build")
	}
	pgtest.Exec(t, pg, db, `UPDATE items SET sku = 'b' WHERE id = 2; CREATE UNIQUE INDEX items_sku_idx ON items (sku)`)
	// A swap interrupted after the old index was dropped.
	pgtest.Exec(t, pg, db, `CREATE INDEX items_label_idx_tombstone ON items (label) WHERE deleted_at IS NULL;
COMMENT ON INDEX items_label_idx_tombstone IS E'tombstone migrate: replaces items_label_idx\nfor the search page';
DROP INDEX items_label_idx;`)
	// A DROP INDEX CONCURRENTLY interrupted after it marked the old index
	// INVALID, its replacement built.
	pgtest.Exec(t, pg, db, `CREATE INDEX items_code_idx_tombstone ON items (id, label) WHERE deleted_at IS NULL;
COMMENT ON INDEX items_code_idx_tombstone IS E'tombstone migrate: replaces items_code_idx\n';
UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'items_code_idx'::regclass;`)
	if n := rows(t, dsn, `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'items_sku_idx_tombstone' AND NOT i.indisvalid`); n != 1 {
		t.Fatal("no INVALID index to recover from")
	}

	code, out, errOut := runCmd(t, "", "doctor", "--config", path, "--dsn", dsn)
	if code != exitRuntime || !strings.Contains(out, "index items_label_idx_tombstone replaces items_label_idx, which is gone, but was not renamed") {
		t.Fatalf("doctor: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--apply")
	if code != exitOK || !strings.Contains(out, "drop the INVALID items_sku_idx_tombstone an interrupted run left, build it again CONCURRENTLY, then swap it in for index items_sku_idx") ||
		!strings.Contains(out, "rename index items_label_idx_tombstone to items_label_idx") ||
		!strings.Contains(out, "swap the already built items_code_idx_tombstone in for index items_code_idx") {
		t.Fatalf("migrate --apply: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--apply")
	if code != exitOK || out != "nothing to do\n" {
		t.Fatalf("second migrate --apply: exit %d\n%s%s", code, out, errOut)
	}
	if n := rows(t, dsn, `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relname IN ('items_sku_idx', 'items_label_idx', 'items_code_idx') AND i.indisvalid AND pg_get_expr(i.indpred, i.indrelid) = '(deleted_at IS NULL)'`); n != 3 {
		t.Fatalf("%d of 3 indexes are valid and partial under their own names", n)
	}
	if n := rows(t, dsn, `SELECT count(*) FROM pg_class WHERE relname LIKE '%tombstone%' AND relkind = 'i'`); n != 0 {
		t.Fatalf("%d replacement indexes left behind", n)
	}
	if n := rows(t, dsn, `SELECT count(*) FROM pg_class WHERE relname = 'items_label_idx' AND obj_description(oid, 'pg_class') = 'for the search page'`); n != 1 {
		t.Fatal("the swapped index lost its comment")
	}
}

// TestMigratePartitioned: an index and a unique constraint of a
// partitioned table are replaced partition by partition, resuming a run
// that stopped with the parent's index created and one partition's built
// but not attached.
func TestMigratePartitioned(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, `
CREATE TABLE readings (id int, at date, value int, deleted_at timestamptz, CONSTRAINT readings_key UNIQUE (id, at)) PARTITION BY RANGE (at);
CREATE TABLE readings_2025 PARTITION OF readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE readings_2026 PARTITION OF readings FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE INDEX readings_value_idx ON readings (value);
COMMENT ON INDEX readings_value_idx IS 'for reports';
INSERT INTO readings VALUES (1, '2025-06-01', 10, NULL), (1, '2026-06-01', 20, now());
-- Stopped halfway: the parent's index exists, one partition's is built.
CREATE INDEX readings_value_idx_tombstone ON ONLY readings (value) WHERE deleted_at IS NULL;
CREATE INDEX readings_2025_value_idx_tombstone ON readings_2025 (value) WHERE deleted_at IS NULL;`)
	dsn := pg.DSN(db)
	path := writeConfig(t, "tables:\n  - name: readings\n")
	code, out, errOut := runCmd(t, "", "migrate", "--config", path, "--dsn", dsn)
	for _, want := range []string{
		"build readings_value_idx_tombstone on public.readings partition by partition (CONCURRENTLY on each), then swap it in for readings_value_idx",
		`CREATE INDEX CONCURRENTLY readings_2026_value_idx_tombstone ON public.readings_2026 USING btree (value) WHERE deleted_at IS NULL;`,
		`ALTER INDEX "public"."readings_value_idx_tombstone" ATTACH PARTITION "public"."readings_2025_value_idx_tombstone";`,
		`CREATE UNIQUE INDEX readings_key_tombstone ON ONLY public.readings USING btree (id, at) WHERE deleted_at IS NULL;`,
		`ALTER TABLE "public"."readings" DROP CONSTRAINT "readings_key";`,
	} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("migrate (exit %d) lacks %q", code, want)
		}
	}
	if strings.Contains(out, "CREATE INDEX CONCURRENTLY readings_2025_value_idx_tombstone") {
		t.Errorf("migrate builds again the partition index an earlier run built")
	}
	if t.Failed() {
		t.Fatalf("%s%s", out, errOut)
	}
	for i, want := range []string{"step(s) applied", "nothing to do\n"} {
		code, out, errOut = runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--apply")
		if code != exitOK || !strings.Contains(out, want) {
			t.Fatalf("migrate --apply (run %d): exit %d, want %q\n%s%s", i+1, code, want, out, errOut)
		}
	}
	if code, out, errOut := runCmd(t, "", "doctor", "--config", path, "--dsn", dsn); code != exitOK || strings.Contains(out, "warn  indexes") {
		t.Fatalf("doctor after migrate: exit %d\n%s%s", code, out, errOut)
	}
	if n := rows(t, dsn, `SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relname IN ('readings_value_idx', 'readings_2025_value_idx', 'readings_2026_value_idx', 'readings_key', 'readings_2025_id_at_key', 'readings_2026_id_at_key')
  AND i.indisvalid AND pg_get_expr(i.indpred, i.indrelid) = '(deleted_at IS NULL)'`); n != 6 {
		t.Fatalf("%d of 6 indexes are valid and partial under their old names", n)
	}
	if n := rows(t, dsn, `SELECT count(*) FROM pg_class WHERE relname = 'readings_value_idx' AND obj_description(oid, 'pg_class') = 'for reports'`); n != 1 {
		t.Fatal("the swapped index lost its comment")
	}
	// The constraint is now a partial unique index: a deleted key can be
	// inserted again, a live one cannot.
	pgtest.Exec(t, pg, db, `INSERT INTO readings VALUES (1, '2026-06-01', 21, NULL)`)
	if err := pg.Exec(context.Background(), db, `INSERT INTO readings VALUES (1, '2025-06-01', 11, NULL)`); err == nil || !strings.Contains(err.Error(), "23505") {
		t.Fatalf("a duplicate live key: %v, want 23505", err)
	}
}

// TestMigrateCannot: what migrate cannot do safely is reported with why,
// and left alone.
func TestMigrateCannot(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, `
CREATE TABLE accounts (id int PRIMARY KEY, deleted_at text);
CREATE TABLE codes (id int PRIMARY KEY, code text CONSTRAINT codes_code_key UNIQUE, deleted_at timestamptz);
CREATE TABLE sessions (id int PRIMARY KEY, code text REFERENCES codes (code), deleted_at timestamptz,
  CONSTRAINT sessions_id_key UNIQUE (id) DEFERRABLE);
CREATE TABLE events (id int, at date, deleted_at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY LIST (id);
CREATE TABLE events_2026_all PARTITION OF events_2026 DEFAULT;
CREATE INDEX events_at_idx ON events (at);
CREATE TABLE tickets (id int PRIMARY KEY, deleted_at timestamptz);
ALTER TABLE tickets ENABLE ROW LEVEL SECURITY;
CREATE POLICY tickets_live ON tickets USING (deleted_at IS NULL);
CREATE RULE tickets_log AS ON UPDATE TO tickets DO ALSO NOTIFY tickets;
CREATE TABLE drafts (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE memos (id int PRIMARY KEY, owner name, deleted_at timestamptz);
ALTER TABLE memos ENABLE ROW LEVEL SECURITY;
CREATE POLICY memos_own ON memos FOR SELECT USING (owner = current_user);
CREATE POLICY memos_delete ON memos FOR DELETE USING (owner = current_user);`)
	dsn := pg.DSN(db)
	path := writeConfig(t, `tables:
  - name: accounts
  - name: codes
  - name: sessions
  - name: events
  - name: tickets
  - name: drafts
    allow_restore: true
  - name: memos
  - name: missing
`)
	code, out, errOut := runCmd(t, "", "doctor", "--config", path, "--dsn", dsn)
	if code != exitRuntime {
		t.Fatalf("doctor: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"FAIL  columns: deleted_at column deleted_at is text; it must be timestamptz or timestamp",
		"FAIL  columns: configured table missing does not exist",
		"FAIL  interference: row-level security policy tickets_live filters SELECT with ((deleted_at IS NULL))",
		"FAIL  interference: row-level security policy tickets_live checks the row an UPDATE writes",
		"FAIL  interference: rule tickets_log ON UPDATE DO ALSO runs on every soft delete",
		"FAIL  interference: row-level security lets rows be deleted (policy memos_delete) but none be updated",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor's report lacks %q", want)
		}
	}
	code, out, errOut = runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--rls")
	if code != exitOK {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"cannot do safely: table public.accounts: deleted_at column deleted_at is text",
		"why: changing a column's type rewrites the table under an ACCESS EXCLUSIVE lock",
		"cannot do safely: table public.codes: unique constraint codes_code_key",
		"why: foreign key(s) sessions_code_fkey reference it",
		"cannot do safely: table public.sessions: unique constraint sessions_id_key",
		"why: it is DEFERRABLE, and a unique index cannot be",
		"cannot do safely: table public.events: index events_at_idx is not partial",
		"why: events_at_idx is on a partitioned table with a partition that is itself partitioned or not a soft-delete relation (public.events_2026)",
		"cannot do safely: table public.tickets: row-level security of the application's own",
		"cannot do safely: table public.drafts: allow_restore is on for public.drafts",
		"why: row-level security that hides deleted rows would hide them from the restore UPDATE too",
		"cannot do safely: table missing: configured table missing does not exist",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate's output lacks %q", want)
		}
	}
	if strings.Contains(out, `CREATE POLICY tombstone_live ON "public"."drafts"`) || strings.Contains(out, `ON "public"."tickets"`) {
		t.Errorf("migrate --rls plans policies where it must not:\n%s", out)
	}
	if t.Failed() {
		t.Logf("doctor:\n%s", out)
	}
}

func TestDoctorUsage(t *testing.T) {
	path := writeConfig(t, "tables:\n  - name: contacts\n")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"doctor", "--config", path}, exitUsage, "tombstone doctor: --dsn DSN is required"},
		{[]string{"doctor", "--dsn", "postgres://x"}, exitUsage, "tombstone doctor: --config FILE is required"},
		{[]string{"doctor", "--config", path, "--dsn", "postgres://x", "--app-role", ""}, exitUsage, `tombstone doctor: invalid value "" for flag -app-role: empty role name`},
		{[]string{"migrate", "--config", path, "--dsn", "postgres://x", "--lock-timeout", "0s"}, exitUsage, "tombstone migrate: --lock-timeout must be at least 1ms"},
	} {
		code, _, errOut := runCmd(t, "", c.args...)
		if code != c.code || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want %d, %q", c.args, code, errOut, c.code, c.want)
		}
	}
	code, out, _ := runCmd(t, "", "doctor", "--help")
	if code != exitOK || !strings.HasPrefix(out, "Usage: tombstone doctor") || !strings.Contains(out, "-app-role ROLE") {
		t.Errorf("doctor --help: %d %s", code, out)
	}
}

// An --app-role is checked through its memberships, and one that does
// not exist is an error that says so; a DELETE granted to PUBLIC makes
// PUBLIC an application role.
func TestDoctorAppRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, `
CREATE ROLE doctorgroup;
CREATE ROLE doctormember LOGIN IN ROLE doctorgroup;
CREATE ROLE doctorreader LOGIN PASSWORD 'doctorreader';
CREATE TABLE items (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE tags (id int PRIMARY KEY, deleted_at timestamptz);
GRANT SELECT, DELETE ON items TO doctorgroup;
GRANT SELECT, DELETE ON tags TO PUBLIC;`)
	dsn := pg.DSN(db)
	path := writeConfig(t, "tables:\n  - name: items\n  - name: tags\n")
	code, _, errOut := runCmd(t, "", "doctor", "--config", path, "--dsn", dsn, "--app-role", "nobody_here")
	if code != exitRuntime || !strings.Contains(errOut, `application role "nobody_here" (--app-role) does not exist`) {
		t.Errorf("doctor --app-role nobody_here: exit %d, %s", code, errOut)
	}
	code, out, errOut := runCmd(t, "", "doctor", "--config", path, "--dsn", dsn, "--app-role", "doctormember")
	for _, want := range []string{
		"FAIL  grants: role doctorgroup lacks UPDATE (deleted_at) on public.items",
		"FAIL  grants: role doctormember lacks UPDATE (deleted_at) on public.items",
		"FAIL  grants: role public lacks UPDATE (deleted_at) on public.tags",
	} {
		if code != exitRuntime || !strings.Contains(out, want) {
			t.Errorf("doctor (exit %d) lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	code, out, errOut = runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--app-role", "doctormember", "--app-role", "doctorreader")
	if code != exitOK || !strings.Contains(out, `GRANT UPDATE ("deleted_at") ON "public"."tags" TO PUBLIC;`) {
		t.Errorf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	// A role that may not DELETE gets nothing: UPDATE of deleted_at
	// would let it delete through the proxy.
	if strings.Contains(out, `ON "public"."items" TO "doctorreader"`) {
		t.Errorf("migrate grants to a role that may not DELETE:\n%s", out)
	}
	// Checking as a role that is not privileged is said to be unreliable.
	code, out, errOut = runCmd(t, "", "doctor", "--config", path, "--dsn", pgcluster.URL(pg.Addr(), "doctorreader", "doctorreader", db))
	if !strings.Contains(out, "warn  connection: connected as doctorreader, which is neither a superuser nor a privileged role") ||
		!strings.Contains(out, "warn  deleted rows: not counted: permission denied for table items") {
		t.Errorf("doctor as doctorreader: exit %d\n%s%s", code, out, errOut)
	}
}

// A step that cannot get its lock in time fails and changes nothing,
// instead of queueing the application's queries behind a long
// transaction; the next run does it.
func TestMigrateLockTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, `CREATE TABLE items (id int PRIMARY KEY)`)
	dsn := pg.DSN(db)
	path := writeConfig(t, "tables:\n  - name: items\n")
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT count(*) FROM items`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--apply", "--lock-timeout", "200ms")
	if code != exitRuntime || !strings.Contains(errOut, "step 1 of") || !strings.Contains(errOut, "not granted within --lock-timeout") {
		t.Fatalf("migrate --apply behind a reader's lock: exit %d\n%s%s", code, out, errOut)
	}
	if n := rows(t, dsn, `SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'deleted_at'`); n != 0 {
		t.Fatal("the step that timed out added its column")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--apply"); code != exitOK || !strings.Contains(out, "add column(s) deleted_at to public.items") {
		t.Fatalf("migrate --apply once the lock is gone: exit %d\n%s%s", code, out, errOut)
	}
}
