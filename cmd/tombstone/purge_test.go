package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
)

// TestPurgeCommand runs tombstone purge against a real database: a dry
// run, the retention purge with its summary and log lines, and an
// erasure refused without --cascade and done with it.
func TestPurgeCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; skipped with -short")
	}
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, strings.Join(catalog.AuditTable(policy.RelName{Schema: "tombstone", Name: "audit_log"}), ";\n")+`;
CREATE TABLE contacts (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, contact_id int REFERENCES contacts ON DELETE CASCADE, deleted_at timestamptz);
INSERT INTO contacts VALUES (1, now() - interval '100 days'), (2, now() - interval '100 days'), (3, NULL), (4, NULL);
INSERT INTO orders VALUES (1, 1, now() - interval '100 days'), (2, 2, NULL), (3, 3, NULL), (4, 3, now() - interval '100 days'), (5, 3, now() - interval '10 days');`)
	dsn := pg.DSN(db)
	path := writeConfig(t, "tables:\n  - name: contacts\n    retention: 90d\n  - name: orders\n    retention: 90d\n  - name: Public.Missing\naudit:\n  table: tombstone.audit_log\n")

	code, out, errOut := runCmd(t, "", "purge", "--config", path, "--dsn", dsn, "--dry-run")
	if code != exitOK || !strings.HasPrefix(out, "3 rows would be removed from 3 tables (dry run: nothing was removed)\n") {
		t.Fatalf("purge --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	if n := rows(t, dsn, "SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM tombstone.audit_log)"); n != 9 {
		t.Fatalf("the dry run changed the database: %d rows, want 9", n)
	}

	code, out, errOut = runCmd(t, "", "purge", "--config", path, "--dsn", dsn, "--batch", "1", "--reason", "retention")
	if code != exitOK {
		t.Fatalf("purge: exit %d\n%s%s", code, out, errOut)
	}
	wantLines(t, "purge output", out, []string{
		"3 rows removed from 3 tables",
		"public.orders    2 rows in 2 batches (retention 90d: deleted before ",
		"public.contacts  1 row in 1 batch (retention 90d: deleted before ",
		"public.missing   skipped: the configured table is not in this database",
	})
	if !strings.Contains(out, "; 1 row past retention kept: 1 referenced by public.orders (orders_contact_id_fkey, ON DELETE CASCADE)") {
		t.Errorf("the summary does not say why contact 2 (a live order) was kept:\n%s", out)
	}
	for _, want := range []string{"component=purge", "table=public.orders removed=2 batches=2 held=0", "table=public.contacts removed=1 batches=1 held=1", `msg="purge skipped" component=purge table=public.missing`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("log lacks %q:\n%s", want, errOut)
		}
	}
	if n := rows(t, dsn, "SELECT count(*) FROM tombstone.audit_log WHERE action = 'purge' AND reason = 'retention' AND actor <> ''"); n != 3 {
		t.Errorf("%d audit rows, want 3", n)
	}

	code, out, errOut = runCmd(t, "", "purge", "--config", path, "--dsn", dsn, "--table", "Contacts", "--where", "id = 3", "--actor", "dpo")
	if code != exitRuntime || out != "" || !strings.Contains(errOut, "tombstone purge: erasure refused, nothing was removed: public.orders holds 2 rows referencing them") {
		t.Errorf("erasure without --cascade: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "purge", "--config", path, "--dsn", dsn, "--table", "contacts", "--where", "id = 3", "--cascade", "--actor", "dpo")
	if code != exitOK || out != "3 rows erased in one transaction\n  public.orders: 2 rows\n  public.contacts: 1 row\n" {
		t.Errorf("erasure with --cascade: exit %d\n%s%s", code, out, errOut)
	}
	if n := rows(t, dsn, "SELECT count(*) FROM tombstone.audit_log WHERE actor = 'dpo'"); n != 3 {
		t.Errorf("%d audit rows for the erasure, want 3", n)
	}
}

func TestPurgeErrors(t *testing.T) {
	path := writeConfig(t, "tables:\n  - name: contacts\n")
	dsn := "postgres://nobody@127.0.0.1:1/x?connect_timeout=5"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", path}, exitUsage, "tombstone purge: --dsn DSN is required"},
		{[]string{"--config", path, "--dsn", dsn, "--older-than", "ninety days"}, exitUsage, `tombstone purge: --older-than: "ninety days" is not a retention period`},
		{[]string{"--config", path, "--dsn", dsn, "--older-than", "never"}, exitUsage, "tombstone purge: --older-than never keeps every row"},
		{[]string{"--config", path, "--dsn", dsn, "--batch", "0"}, exitUsage, "tombstone purge: --batch 0: a batch must hold at least one row"},
		{[]string{"--config", path, "--dsn", dsn, "--where", "id = 1"}, exitUsage, "tombstone purge: --where needs --table"},
		{[]string{"--config", path, "--dsn", dsn, "--table", "contacts", "--where", "id = 1", "--batch", "10"}, exitUsage, "tombstone purge: --older-than and --batch are for retention purges"},
		{[]string{"--config", path, "--dsn", dsn, "--cascade"}, exitUsage, "tombstone purge: --cascade goes with --where"},
		{[]string{"--config", path, "--dsn", dsn, "--table", "a.b.c"}, exitUsage, `tombstone purge: --table: "a.b.c" is not table or schema.table`},
		{[]string{"--config", path, "--dsn", dsn}, exitRuntime, "tombstone purge: connect:"},
	} {
		code, _, errOut := runCmd(t, "", append([]string{"purge"}, c.args...)...)
		if code != c.code || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want %d, %q", c.args, code, errOut, c.code, c.want)
		}
	}
	code, out, _ := runCmd(t, "", "purge", "--help")
	if code != exitOK || !strings.HasPrefix(out, "Usage: tombstone purge") || !strings.Contains(out, "-cascade") {
		t.Errorf("purge --help: %d %s", code, out)
	}
}

func rows(t *testing.T, dsn, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
