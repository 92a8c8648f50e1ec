package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/buildtest"
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

// TestPurgeStoppedBySignal sends SIGTERM to a running `tombstone purge`
// once two batches have committed: it stops, saying so, with every
// removed row audited; a second run removes the rest, and each row is
// removed and audited exactly once.
func TestPurgeStoppedBySignal(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL; skipped with -short")
	}
	bin := buildtest.Tombstone(t)
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	// A trigger slows each removal down so that the signal arrives while
	// batches are still to come.
	pgtest.Exec(t, pg, db, strings.Join(catalog.AuditTable(policy.RelName{Schema: "tombstone", Name: "audit_log"}), ";\n")+`;
CREATE TABLE orders (id int PRIMARY KEY, deleted_at timestamptz);
CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN OLD; END $$;
CREATE TRIGGER slow BEFORE DELETE ON orders FOR EACH ROW EXECUTE FUNCTION slow();
INSERT INTO orders SELECT i, now() - interval '1 day' - i * interval '1 second' FROM generate_series(1, 200) i;`)
	dsn := pg.DSN(db)
	path := writeConfig(t, "tables:\n  - name: orders\naudit:\n  table: tombstone.audit_log\n")
	args := []string{"purge", "--config", path, "--dsn", dsn, "--older-than", "1h", "--batch", "10"}

	cmd := exec.Command(bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Generous: this waits for two batches, it does not time them.
	deadline := time.Now().Add(time.Minute)
	for rows(t, dsn, "SELECT count(*) FROM tombstone.audit_log") < 20 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("no two batches committed within a minute:\n%s%s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitRuntime || !strings.Contains(errOut.String(), "stopped while purging public.orders") || !strings.Contains(errOut.String(), "run the purge again to go on") {
		t.Fatalf("stopped purge: %v\n%s%s", err, out.String(), errOut.String())
	}
	left := rows(t, dsn, "SELECT count(*) FROM orders")
	audited := rows(t, dsn, "SELECT count(*) FROM tombstone.audit_log")
	if left == 0 || left+audited != 200 || audited%10 != 0 {
		t.Fatalf("after SIGTERM: %d orders left, %d audited; want some left, whole batches of 10 removed, each audited", left, audited)
	}
	if !strings.Contains(errOut.String(), fmt.Sprintf(`msg="purge stopped" component=purge table=public.orders removed=%d batches=%d`, audited, audited/10)) {
		t.Errorf("the stopped run does not log the %d rows its batches committed:\n%s", audited, errOut.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("%d rows removed from 1 table", audited)) {
		t.Errorf("the stopped run's summary does not count the %d rows its batches committed:\n%s", audited, out.String())
	}

	code, stdout, stderr := runCmd(t, "", args...)
	if code != exitOK || !strings.HasPrefix(stdout, fmt.Sprintf("%d rows removed from 1 table\n", left)) {
		t.Fatalf("resumed purge: exit %d\n%s%s", code, stdout, stderr)
	}
	if n := rows(t, dsn, "SELECT count(*) FROM orders"); n != 0 {
		t.Errorf("%d orders left after the resumed run", n)
	}
	if n := rows(t, dsn, "SELECT count(DISTINCT key) FROM tombstone.audit_log"); n != 200 || rows(t, dsn, "SELECT count(*) FROM tombstone.audit_log") != 200 {
		t.Errorf("%d distinct audited keys, want 200, each once", n)
	}
}
