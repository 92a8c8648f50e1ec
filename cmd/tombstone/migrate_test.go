package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

// TestMigrate runs tombstone migrate against a real database: the plan is
// printed, a second --apply has nothing to do until a new foreign key
// needs a trigger, and the installed trigger refuses a row referencing a
// soft-deleted parent as PostgreSQL refuses one referencing a missing
// parent.
func TestMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, `
CREATE ROLE migrateapp LOGIN PASSWORD 'migrateapp';
CREATE TABLE Contacts (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, contact_id int REFERENCES contacts, deleted_at timestamptz);
CREATE TABLE notes (contact_id int CONSTRAINT notes_contact REFERENCES contacts);
INSERT INTO contacts VALUES (1, NULL), (2, now());
GRANT SELECT, INSERT, UPDATE ON orders, notes TO migrateapp;`)
	dsn := pg.DSN(db)
	path := writeConfig(t, "tables:\n  - name: Contacts\n  - name: public.orders\n")

	code, out, errOut := runCmd(t, "", "migrate", "--config", path, "--dsn", dsn)
	if code != exitOK || errOut != "" {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"CREATE SCHEMA IF NOT EXISTS tombstone;\n",
		"CREATE OR REPLACE FUNCTION tombstone.fail(sqlstate text, message text, detail text, hint text)",
		"DROP TRIGGER %I ON %I.%I",
		`CREATE CONSTRAINT TRIGGER "tombstone_live_orders_contact_id_fkey" AFTER INSERT OR UPDATE OF "contact_id", "deleted_at" ON "public"."orders" FOR EACH ROW EXECUTE FUNCTION tombstone."check_live_contacts_`,
		`CREATE CONSTRAINT TRIGGER "tombstone_live_notes_contact" AFTER INSERT OR UPDATE OF "contact_id" ON "public"."notes" FOR EACH ROW`,
		"run them with --apply",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if n := rows(t, dsn, liveTriggers); n != 0 {
		t.Fatalf("printing the plan created %d triggers", n)
	}

	for i, want := range []string{"applied 1/1: install schema tombstone, its helper functions and the foreign-key check triggers\n", "nothing to do\n"} {
		code, out, errOut = runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--apply")
		if code != exitOK || errOut != "" || !strings.HasPrefix(out, want) {
			t.Fatalf("migrate --apply (run %d): exit %d, want %q\n%s%s", i+1, code, want, out, errOut)
		}
		if n := rows(t, dsn, liveTriggers); n != 2 {
			t.Fatalf("after run %d of --apply: %d triggers, want 2", i+1, n)
		}
	}
	// A foreign key added later changes the plan: the next run installs
	// its trigger.
	pgtest.Exec(t, pg, db, `CREATE TABLE invoices (contact_id int CONSTRAINT invoices_contact REFERENCES contacts)`)
	code, out, errOut = runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--apply")
	if code != exitOK || !strings.HasPrefix(out, "applied 1/1: install schema tombstone") || rows(t, dsn, liveTriggers) != 3 {
		t.Fatalf("migrate --apply after a new foreign key: exit %d, %d triggers\n%s%s", code, rows(t, dsn, liveTriggers), out, errOut)
	}

	ctx := context.Background()
	app, err := pgx.Connect(ctx, pgcluster.URL(pg.Addr(), "migrateapp", "migrateapp", db))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	for _, c := range []struct {
		sql, message, detail string // message empty: must succeed
	}{
		{`INSERT INTO orders VALUES (1, 1, NULL)`, "", ""},
		{`INSERT INTO orders VALUES (2, NULL, NULL)`, "", ""},
		{`INSERT INTO orders VALUES (3, 2, NULL)`, `insert or update on table "orders" violates foreign key constraint "orders_contact_id_fkey"`, `Key (contact_id)=(2) is not present in table "contacts".`},
		{`INSERT INTO notes VALUES (2)`, `insert or update on table "notes" violates foreign key constraint "notes_contact"`, `Key (contact_id)=(2) is not present in table "contacts".`},
		{`INSERT INTO notes VALUES (1), (NULL)`, "", ""},
		{`UPDATE orders SET contact_id = 2 WHERE id = 1`, `insert or update on table "orders" violates foreign key constraint "orders_contact_id_fkey"`, `Key (contact_id)=(2) is not present in table "contacts".`},
		// PostgreSQL's own refusal of a missing parent reads the same.
		{`INSERT INTO notes VALUES (3)`, `insert or update on table "notes" violates foreign key constraint "notes_contact"`, `Key (contact_id)=(3) is not present in table "contacts".`},
	} {
		_, err := app.Exec(ctx, c.sql)
		var pe *pgconn.PgError
		switch {
		case c.message == "" && err != nil:
			t.Errorf("%s: %v", c.sql, err)
		case c.message == "":
		case !errors.As(err, &pe) || pe.Code != "23503" || pe.Message != c.message || pe.Detail != c.detail:
			t.Errorf("%s: got %v, want 23503 %s (%s)", c.sql, err, c.message, c.detail)
		}
	}
}

// liveTriggers counts the check triggers migrate installs.
const liveTriggers = `SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tombstone\_live\_%'`

func TestMigrateErrors(t *testing.T) {
	path := writeConfig(t, "tables:\n  - name: contacts\n")
	cycle := writeConfig(t, "tables:\n  - name: a\n    cascade: [{table: b, column: a_id}]\n  - name: b\n    cascade: [{table: a, column: b_id}]\n")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"migrate", "--config", path}, exitUsage, "tombstone migrate: --dsn DSN is required"},
		{[]string{"migrate", "--dsn", "postgres://x"}, exitUsage, "tombstone migrate: --config FILE is required"},
		{[]string{"migrate", "--config", path, "--dsn", "postgres://nobody@127.0.0.1:1/x?connect_timeout=5"}, exitRuntime, "tombstone migrate: connect:"},
		{[]string{"migrate", "--config", cycle, "--dsn", "postgres://nobody@127.0.0.1:1/x"}, exitUsage, "tombstone migrate: " + cycle + ": tables: declared cascades form a cycle"},
	} {
		code, _, errOut := runCmd(t, "", c.args...)
		if code != c.code || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want %d, %q", c.args, code, errOut, c.code, c.want)
		}
	}
	code, out, _ := runCmd(t, "", "migrate", "--help")
	if code != exitOK || !strings.HasPrefix(out, "Usage: tombstone migrate") {
		t.Errorf("migrate --help: %d %s", code, out)
	}
}
