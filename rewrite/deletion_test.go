package rewrite

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
)

const deletionSchema = `
CREATE TABLE accounts (id int PRIMARY KEY, deleted_at timestamptz, deleted_by text, deleted_reason text);
CREATE TABLE projects (id int PRIMARY KEY, account_id int REFERENCES accounts ON DELETE CASCADE,
  deleted_at timestamptz, deleted_by uuid, deleted_reason text);
CREATE TABLE tasks (a int, b int, project_id int REFERENCES projects ON DELETE CASCADE,
  deleted_at timestamptz, deleted_by bigint, PRIMARY KEY (a, b));
INSERT INTO accounts VALUES (1, NULL, NULL, NULL), (2, NULL, NULL, NULL), (3, NULL, NULL, NULL);
INSERT INTO projects VALUES (10, 1, NULL, NULL, NULL), (11, 1, NULL, NULL, NULL), (20, 2, NULL, NULL, NULL), (30, 3, NULL, NULL, NULL);
INSERT INTO tasks VALUES (1, 1, 10, NULL, NULL), (1, 2, 11, NULL, NULL), (2, 1, 20, NULL, NULL);
`

// deletionRewriter is the rewriter for a database holding deletionSchema,
// with the helpers and the audit log installed, as tombstone migrate
// leaves a database.
func deletionRewriter(t *testing.T, dsn string) *Rewriter {
	t.Helper()
	spec := policy.Spec{Mode: policy.ModeEnforce, Audit: policy.RelName{Schema: "tombstone", Name: "audit_log"}}
	for _, n := range []string{"accounts", "projects", "tasks"} {
		ts := policy.TableSpec{Name: n, DeletedAt: "deleted_at", DeletedBy: "deleted_by"}
		if n != "tasks" {
			ts.DeletedReason = "deleted_reason"
		}
		spec.Tables = append(spec.Tables, ts)
	}
	return catalogRewriter(t, dsn, spec)
}

// A deletion stamps its rows and its cascades with one deleted_at and
// the actor and reason its comment, its settings or its login give, cast
// to each table's deleted_by type; the audit log gets one row per row;
// and the client's comments reach the server.
func TestDeletionValuesOnPostgres(t *testing.T) {
	s := pgtest.Shared(t)
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, deletionSchema)
	r := deletionRewriter(t, s.DSN(db))
	c := connect(t, s.DSN(db))
	ctx := context.Background()
	send := func(sql string) error {
		res, _, ref := r.Rewrite(sql)
		if ref != nil {
			t.Fatalf("%s: refused: %v", sql, ref)
		}
		if res != nil {
			sql = res.SQL
		}
		_, err := c.Exec(ctx, sql).ReadAll()
		return err
	}

	const uuidActor = "6f1c2a4e-9b7d-4c3e-8f21-0a5b6c7d8e9f"
	tag := "/*traceparent='00-ab-cd-01',actor='" + uuidActor + "',reason='gdpr%20request'*/"
	// Account 1's cascade reaches tasks, whose deleted_by is bigint: the
	// uuid actor does not convert, and nothing is deleted.
	if err := send("DELETE FROM accounts WHERE id = 1 " + tag); err == nil || !strings.Contains(err.Error(), "22P02") {
		t.Errorf("a uuid actor into a bigint deleted_by: %v, want SQLSTATE 22P02", err)
	}
	if got := queryRows(t, c, "SELECT count(*) FROM projects WHERE deleted_at IS NOT NULL"); got[0] != "0" {
		t.Errorf("%s projects deleted by the failed DELETE", got[0])
	}

	del := "DELETE FROM accounts WHERE id = 3 " + tag
	res, _, _ := r.Rewrite(del)
	if !strings.Contains(res.SQL, tag) {
		t.Errorf("the client's comment is not in the text sent upstream:\n%s", res.SQL)
	}
	if err := send(del); err != nil {
		t.Fatal(err)
	}
	// The actor comes from SET LOCAL for one transaction only; bigint
	// takes it as a number.
	for _, q := range []string{"BEGIN", "SET LOCAL tombstone.actor = '42'", "SET LOCAL tombstone.reason = 'cleanup'", "DELETE FROM tasks WHERE a = 2", "COMMIT"} {
		if err := send(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Without any actor, deleted_by falls back to the login role, which
	// is no uuid: account 2's cascade to project 20 fails.
	if err := send("DELETE FROM accounts WHERE id = 2"); err == nil || !strings.Contains(err.Error(), "22P02") {
		t.Errorf("the login role into a uuid deleted_by: %v, want SQLSTATE 22P02", err)
	}
	rows := queryRows(t, c, `SELECT 'accounts', id::text, deleted_at, deleted_by::text, deleted_reason FROM accounts WHERE deleted_at IS NOT NULL
		UNION ALL SELECT 'projects', id::text, deleted_at, deleted_by::text, deleted_reason FROM projects WHERE deleted_at IS NOT NULL
		UNION ALL SELECT 'tasks', a || ',' || b, deleted_at, deleted_by::text, NULL FROM tasks WHERE deleted_at IS NOT NULL ORDER BY 1, 2`)
	if len(rows) != 3 {
		t.Fatalf("deleted rows: %q, want account 3, project 30 and task (2,1)", rows)
	}
	stamp := strings.Split(rows[0], "|")[2]
	if want := "accounts|3|" + stamp + "|" + uuidActor + "|gdpr request"; rows[0] != want {
		t.Errorf("account row %q, want %q", rows[0], want)
	}
	if want := "projects|30|" + stamp + "|" + uuidActor + "|gdpr request"; rows[1] != want {
		t.Errorf("cascaded row %q, want %q (the same stamp, actor and reason)", rows[1], want)
	}
	if f := strings.Split(rows[2], "|"); f[0] != "tasks" || f[1] != "2,1" || f[2] == stamp || f[3] != "42" {
		t.Errorf("task row %q, want task 2,1 deleted by 42 with a stamp of its own", rows[2])
	}
	audit := queryRows(t, c, `SELECT action, table_name, key::text, actor, coalesce(reason, '-'), login_role = current_user, length(fingerprint) FROM tombstone.audit_log ORDER BY id`)
	slices.Sort(audit)
	want := []string{
		"delete|public.accounts|{\"id\": 3}|" + uuidActor + "|gdpr request|t|16",
		"delete|public.projects|{\"id\": 30}|" + uuidActor + "|gdpr request|t|16",
		"delete|public.tasks|{\"a\": 2, \"b\": 1}|42|cleanup|t|16",
	}
	if !slices.Equal(audit, want) {
		t.Errorf("audit rows:\n%s\nwant:\n%s", strings.Join(audit, "\n"), strings.Join(want, "\n"))
	}
	if got := queryRows(t, c, "SELECT count(DISTINCT deletion) FROM tombstone.audit_log WHERE deletion = (SELECT deleted_at FROM accounts WHERE id = 3)"); got[0] != "1" {
		t.Errorf("the audit rows of account 3's deletion do not carry its stamp")
	}
}

// Only the rewriter's own INSERT writes the audit log through Tombstone:
// PUBLIC's insert grant is for it.
func TestAuditLogWritesRefused(t *testing.T) {
	p, err := policy.New(policy.Spec{Mode: policy.ModeEnforce, Audit: policy.RelName{Schema: "tombstone", Name: "audit_log"},
		Tables: []policy.TableSpec{{Name: "contacts", DeletedAt: "deleted_at"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := New(p, 0)
	for _, sql := range []string{
		"INSERT INTO tombstone.audit_log (action, table_name) VALUES ('delete', 'public.contacts')",
		"insert into TOMBSTONE.AUDIT_LOG (action, table_name) select 'restore', 'x'",
		"COPY tombstone.audit_log (action, table_name) FROM STDIN",
		"WITH x AS (INSERT INTO tombstone.audit_log (action, table_name) VALUES ('purge', 'x') RETURNING 1) SELECT 1",
		"MERGE INTO tombstone.audit_log a USING (SELECT 1) s ON false WHEN NOT MATCHED THEN INSERT (action, table_name) VALUES ('delete', 'x')",
		"CREATE TEMP VIEW v AS SELECT action, table_name FROM tombstone.audit_log",
		"SELECT * FROM tombstone.audit_log",
		"CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'INSERT INTO tombstone.audit_log (action, table_name) VALUES (''delete'', ''x'')'",
	} {
		if _, _, ref := r.Rewrite(sql); ref == nil || ref.Code != "42501" {
			t.Errorf("%s: %v, want a 42501 refusal", sql, ref)
		}
	}
	if res, _, ref := r.Rewrite("DELETE FROM contacts WHERE id = 1"); ref != nil || !strings.Contains(res.SQL, `INSERT INTO tombstone.audit_log`) {
		t.Errorf("the rewriter's own audit INSERT: %v\n%v", ref, res)
	}
	for _, sql := range []string{"INSERT INTO other.audit_log VALUES (1)", "INSERT INTO audit_log VALUES (1)"} {
		if _, _, ref := r.Rewrite(sql); ref != nil {
			t.Errorf("%s (the application's own table): %v", sql, ref)
		}
	}
}

// An audited DELETE with literals is templated like any other statement:
// its fingerprint (written into the audit INSERT) is the same for the
// template as for the texts it stands for, so the second text of a shape
// is answered by the template (compiled then, from the first text's
// answer) with its own literal, and the third is a template hit.
func TestAuditedDeleteIsTemplated(t *testing.T) {
	p, err := policy.New(policy.Spec{Mode: policy.ModeEnforce, Audit: policy.RelName{Schema: "tombstone", Name: "audit_log"},
		Tables: []policy.TableSpec{{Name: "contacts", DeletedAt: "deleted_at", DeletedBy: "deleted_by"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := New(p, 1<<20)
	first, _, _ := r.Rewrite("DELETE FROM contacts WHERE id = 1 /*actor='a'*/")
	second, _, ref := r.Rewrite("DELETE FROM contacts WHERE id = 2 /*actor='a'*/")
	if ref != nil || !strings.Contains(second.SQL, "id = 2") {
		t.Fatalf("second text of the shape: refusal %v\n%v", ref, second)
	}
	if strings.Replace(first.SQL, "id = 1", "id = 2", 1) != second.SQL {
		t.Errorf("spliced rewrite differs from the first beyond its literal:\n%s\n%s", first.SQL, second.SQL)
	}
	third, hit, ref := r.Rewrite("DELETE FROM contacts WHERE id = 3 /*actor='a'*/")
	if ref != nil || !hit || strings.Replace(first.SQL, "id = 1", "id = 3", 1) != third.SQL {
		t.Fatalf("third text of the shape: hit %v, refusal %v\n%v", hit, ref, third)
	}
}

// A soft delete written by hand is refused where Tombstone's promises
// depend on deletions being its own, and left alone elsewhere.
func TestHandWrittenSoftDelete(t *testing.T) {
	mk := func(audit bool, retention time.Duration) *Rewriter {
		spec := policy.Spec{Mode: policy.ModeEnforce, Tables: []policy.TableSpec{{Name: "contacts", DeletedAt: "deleted_at", Retention: retention}}}
		if audit {
			spec.Audit = policy.RelName{Schema: "tombstone", Name: "audit_log"}
		}
		p, err := policy.New(spec)
		if err != nil {
			t.Fatal(err)
		}
		return New(p, 0)
	}
	hand := []string{
		"UPDATE contacts SET deleted_at = now() WHERE id = 1",
		"UPDATE contacts SET name = 'x', deleted_at = '2000-01-01' WHERE id = 1",
		"UPDATE contacts SET (deleted_at, name) = (now(), 'x') WHERE id = 1",
		"INSERT INTO contacts VALUES (1) ON CONFLICT (id) DO UPDATE SET deleted_at = now()",
		"MERGE INTO contacts c USING (SELECT 1 AS id) s ON c.id = s.id WHEN MATCHED THEN UPDATE SET deleted_at = now()",
	}
	for _, r := range []*Rewriter{mk(true, 0), mk(false, 90*24*time.Hour)} {
		for _, sql := range hand {
			if _, _, ref := r.Rewrite(sql); ref == nil || ref.Code != "0A000" || !strings.Contains(ref.Hint, "Use DELETE") {
				t.Errorf("%s: %v, want a 0A000 refusal pointing to DELETE", sql, ref)
			}
		}
	}
	restorable, err := policy.New(policy.Spec{Mode: policy.ModeEnforce, Audit: policy.RelName{Schema: "tombstone", Name: "audit_log"},
		Tables: []policy.TableSpec{{Name: "contacts", DeletedAt: "deleted_at", AllowRestore: true}}})
	if err != nil {
		t.Fatal(err)
	}
	// A bound NULL is a restore the text cannot show: the hint says how
	// to write one.
	if _, _, ref := New(restorable, 0).Rewrite("UPDATE contacts SET deleted_at = $1, updated_at = $2 WHERE id = $3"); ref == nil || !strings.Contains(ref.Hint, "SET \"deleted_at\" = NULL") {
		t.Errorf("bound deleted_at on an allow_restore table: %v, want a hint with the restore statement", ref)
	}
	plain := mk(false, 0)
	for _, sql := range append(hand, "UPDATE contacts SET deleted_at = NULL WHERE id = 1") {
		if _, _, ref := plain.Rewrite(sql); ref != nil {
			t.Errorf("%s on a table without keys, audit or retention: %v", sql, ref)
		}
	}
}
