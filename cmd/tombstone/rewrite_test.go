package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

// rewrite --dsn reads the catalog as the proxy does: the cascade to a
// soft-delete child shows, and a configured table the database lacks is
// listed. --check runs the result and rolls it back.
func TestRewriteWithCatalog(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, `
CREATE TABLE contacts (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, contact_id int REFERENCES contacts ON DELETE CASCADE, deleted_at timestamptz);
CREATE TABLE invoices (id int PRIMARY KEY, contact_id int REFERENCES contacts, deleted_at timestamptz);
INSERT INTO contacts VALUES (1, NULL), (2, NULL);
INSERT INTO orders VALUES (10, 1, NULL);
INSERT INTO invoices VALUES (20, 2, NULL);`)
	dsn := pg.DSN(db)
	path := writeConfig(t, "tables:\n  - name: Contacts\n  - name: orders\n  - name: invoices\n  - name: missing_table\n")
	if code, out, errOut := runCmd(t, "", "migrate", "--config", path, "--dsn", dsn, "--apply"); code != exitOK {
		t.Fatalf("migrate --apply: exit %d\n%s%s", code, out, errOut)
	}
	rewriteOut := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCmd(t, "", append([]string{"rewrite", "--config", path, "--dsn", dsn}, args...)...)
		if code != exitOK || errOut != "" {
			t.Fatalf("rewrite %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}

	out := rewriteOut("DELETE FROM contacts WHERE id = 1")
	for _, want := range []string{
		"-- problem: missing_table: configured table missing_table does not exist in this database",
		"-- applied: delete on public.contacts",
		"-- applied: cascade on public.orders",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rewrite --dsn output lacks %q:\n%s", want, out)
		}
	}

	out = rewriteOut("--check", "DELETE FROM contacts WHERE id = 1")
	if !strings.Contains(out, "check: runs: DELETE 1 (rolled back)") {
		t.Errorf("rewrite --check of a cascading delete:\n%s", out)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var live int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM contacts c JOIN orders o ON o.contact_id = c.id WHERE c.deleted_at IS NULL AND o.deleted_at IS NULL").Scan(&live); err != nil || live != 1 {
		t.Fatalf("after --check: %d live contact-order pairs (%v), want 1: the check must roll back", live, err)
	}

	out = rewriteOut("--check", "DELETE FROM contacts WHERE id = 2")
	if !strings.Contains(out, "check: fails: SQLSTATE 23503") {
		t.Errorf("rewrite --check of a delete a live invoice restricts:\n%s", out)
	}

	out = rewriteOut("--check", "DELETE FROM contacts WHERE id = 1; COMMIT")
	if !strings.Contains(out, "check: not run: the text holds transaction control") {
		t.Errorf("rewrite --check with COMMIT:\n%s", out)
	}

	code, _, errOut := runCmd(t, "", "rewrite", "--config", path, "--check", "SELECT 1")
	if code != exitUsage || !strings.Contains(errOut, "--check needs --dsn DSN") {
		t.Errorf("--check without --dsn: exit %d %q", code, errOut)
	}
}
