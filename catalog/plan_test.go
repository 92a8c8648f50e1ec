package catalog_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/policy"
)

const planSQL = `
CREATE ROLE planapp LOGIN PASSWORD 'planapp';
CREATE TABLE parents (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE children (id int PRIMARY KEY, parent_id int REFERENCES parents, deleted_at timestamptz);
CREATE TABLE plain_children (id int, parent_id int CONSTRAINT plain_fk REFERENCES parents);
CREATE TABLE cparents (a int, b text, deleted_at timestamptz, PRIMARY KEY (a, b));
CREATE TABLE cchildren (b text, a int, CONSTRAINT a_very_long_constraint_name_that_needs_cutting_down_to_size_x FOREIGN KEY (a, b) REFERENCES cparents (a, b));
CREATE TABLE cchildren2 (b text, a int, CONSTRAINT a_very_long_constraint_name_that_needs_cutting_down_to_size_y FOREIGN KEY (a, b) REFERENCES cparents (a, b));
CREATE TABLE parted (id int PRIMARY KEY, deleted_at timestamptz) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200);
CREATE TABLE pkids (id int, pid int CONSTRAINT pk_fk REFERENCES parted, deleted_at timestamptz) PARTITION BY RANGE (id);
CREATE TABLE pkids_1 PARTITION OF pkids FOR VALUES FROM (0) TO (100);
CREATE TABLE "Odd ""Name" (id int PRIMARY KEY, "Gone At" timestamptz);
CREATE TABLE odd_kids (pid int CONSTRAINT "it's odd" REFERENCES "Odd ""Name");
CREATE TABLE hard_parents (id int PRIMARY KEY);
CREATE TABLE hard_kids (parent_id int REFERENCES hard_parents);
INSERT INTO parents VALUES (1, NULL), (2, now());
INSERT INTO cparents VALUES (1, 'x', NULL), (2, 'y', now());
INSERT INTO parted VALUES (1, NULL), (150, now());
INSERT INTO "Odd ""Name" VALUES (1, now());
GRANT SELECT, INSERT, UPDATE ON children, plain_children, cchildren, cchildren2, pkids, odd_kids, hard_kids TO planapp;
`

func planSpec() policy.Spec {
	s := spec("parents", "children", "cparents", "parted", "pkids")
	s.Tables = append(s.Tables, policy.TableSpec{Name: `Odd "Name`, DeletedAt: "Gone At"})
	return s
}

// applyPlan reads the catalog and runs the plan in one transaction.
func applyPlan(t *testing.T, conn *pgx.Conn, sp policy.Spec) []string {
	t.Helper()
	ctx := context.Background()
	plan := catalog.Plan(sp, read(t, conn, sp))
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, stmt := range plan {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return plan
}

func pgErr(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

func TestPlanTriggers(t *testing.T) {
	pg, db, conn := setup(t, planSQL)
	sp := planSpec()
	plan := applyPlan(t, conn, sp)
	again := applyPlan(t, conn, sp)
	if strings.Join(plan, ";") != strings.Join(again, ";") {
		t.Error("the plan changed after it was applied")
	}
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tombstone_live_%' AND tgparentid = 0`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	// children, plain_children, both cchildren, pkids, odd_kids; not hard_kids.
	if n != 6 {
		t.Errorf("%d tombstone triggers after two runs, want 6\n%s", n, strings.Join(plan, ";\n"))
	}
	s := read(t, conn, sp)
	if !s.Helpers {
		t.Error("helpers not reported after the plan ran")
	}

	app := connect(t, pgcluster.URL(pg.Addr(), "planapp", "planapp", db))
	ctx := context.Background()
	exec := func(sql string) error {
		_, err := app.Exec(ctx, sql)
		return err
	}
	// PostgreSQL's own wording for a missing parent, to compare with.
	hard := pgErr(exec(`INSERT INTO hard_kids VALUES (7)`))
	if hard == nil || hard.Code != "23503" {
		t.Fatalf("hard foreign key: %v", hard)
	}
	for _, c := range []struct {
		sql             string
		message, detail string // empty: must succeed
	}{
		{`INSERT INTO children VALUES (1, 1, NULL)`, "", ""},
		{`INSERT INTO children VALUES (2, 2, NULL)`, `insert or update on table "children" violates foreign key constraint "children_parent_id_fkey"`, `Key (parent_id)=(2) is not present in table "parents".`},
		{`INSERT INTO children VALUES (3, NULL, NULL)`, "", ""},
		{`INSERT INTO children VALUES (4, 2, now())`, "", ""},
		{`UPDATE children SET deleted_at = NULL WHERE id = 4`, `insert or update on table "children" violates foreign key constraint "children_parent_id_fkey"`, `Key (parent_id)=(2) is not present in table "parents".`},
		{`UPDATE children SET parent_id = 2 WHERE id = 1`, `insert or update on table "children" violates foreign key constraint "children_parent_id_fkey"`, `Key (parent_id)=(2) is not present in table "parents".`},
		{`UPDATE children SET id = 10 WHERE id = 1`, "", ""},
		{`INSERT INTO plain_children VALUES (1, 2)`, `insert or update on table "plain_children" violates foreign key constraint "plain_fk"`, `Key (parent_id)=(2) is not present in table "parents".`},
		{`INSERT INTO plain_children VALUES (1, 1)`, "", ""},
		{`INSERT INTO cchildren VALUES ('y', 2)`, `insert or update on table "cchildren" violates foreign key constraint "a_very_long_constraint_name_that_needs_cutting_down_to_size_x"`, `Key (a, b)=(2, y) is not present in table "cparents".`},
		{`INSERT INTO cchildren2 VALUES ('y', 2)`, `insert or update on table "cchildren2" violates foreign key constraint "a_very_long_constraint_name_that_needs_cutting_down_to_size_y"`, `Key (a, b)=(2, y) is not present in table "cparents".`},
		{`INSERT INTO cchildren VALUES ('x', 1), (NULL, 2)`, "", ""},
		{`INSERT INTO pkids VALUES (1, 150, NULL)`, `insert or update on table "pkids_1" violates foreign key constraint "pk_fk"`, `Key (pid)=(150) is not present in table "parted".`},
		{`INSERT INTO pkids VALUES (1, 1, NULL)`, "", ""},
		{`INSERT INTO odd_kids VALUES (1)`, `insert or update on table "odd_kids" violates foreign key constraint "it's odd"`, `Key (pid)=(1) is not present in table "Odd "Name".`},
		// A missing parent is the foreign key's own error.
		{`INSERT INTO children VALUES (5, 9, NULL)`, `insert or update on table "children" violates foreign key constraint "children_parent_id_fkey"`, `Key (parent_id)=(9) is not present in table "parents".`},
	} {
		err := exec(c.sql)
		if c.message == "" {
			if err != nil {
				t.Errorf("%s: %v", c.sql, err)
			}
			continue
		}
		pe := pgErr(err)
		if pe == nil || pe.Code != "23503" || pe.Message != c.message || pe.Detail != c.detail {
			t.Errorf("%s:\n got %v (detail %q)\nwant 23503 %s (detail %q)", c.sql, err, detailOf(pe), c.message, c.detail)
		}
	}
	if !strings.HasPrefix(hard.Message, `insert or update on table "hard_kids" violates foreign key constraint "hard_kids_parent_id_fkey"`) ||
		hard.Detail != `Key (parent_id)=(7) is not present in table "hard_parents".` {
		t.Errorf("PostgreSQL's own wording changed: %q %q", hard.Message, hard.Detail)
	}
	// The application may not create triggers with the check function.
	if _, err := conn.Exec(ctx, `CREATE TABLE mine (x int); ALTER TABLE mine OWNER TO planapp`); err != nil {
		t.Fatal(err)
	}
	err := exec(`CREATE TRIGGER t AFTER INSERT ON mine FOR EACH ROW EXECUTE FUNCTION tombstone.` + catalog.CheckFunction(rn("public", "parents")) + `('x')`)
	if pe := pgErr(err); pe == nil || pe.Code != "42501" {
		t.Errorf("the application role creates a trigger with the check function of parents: %v", err)
	}
}

func detailOf(pe *pgconn.PgError) string {
	if pe == nil {
		return ""
	}
	return pe.Detail
}

func TestFail(t *testing.T) {
	_, _, conn := setup(t, "CREATE ROLE failapp LOGIN")
	for _, stmt := range catalog.Plan(policy.Spec{}, &policy.Schema{}) {
		if _, err := conn.Exec(context.Background(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "SET ROLE failapp; SET search_path = evil"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ detail, hint string }{{"", ""}, {"Key (id)=(1) is still referenced from table \"ch\".", ""}, {"", "make it soft"}, {"d", "h"}} {
		_, err := conn.Exec(ctx, "SELECT tombstone.fail('23503', 'update or delete on table \"p\" violates foreign key constraint \"c\" on table \"ch\"', "+catalog.Literal(c.detail)+", "+catalog.Literal(c.hint)+")")
		pe := pgErr(err)
		if pe == nil || pe.Code != "23503" || pe.Message != `update or delete on table "p" violates foreign key constraint "c" on table "ch"` || pe.Detail != c.detail || pe.Hint != c.hint {
			t.Errorf("fail(%q, %q): %#v", c.detail, c.hint, pe)
		}
	}
}

func TestTriggerName(t *testing.T) {
	long := strings.Repeat("é", 40)
	a, b := catalog.TriggerName(long+"a"), catalog.TriggerName(long+"b")
	if len(a) > 63 || a == b || !strings.HasPrefix(a, "tombstone_live_") || !utf8Valid(a) {
		t.Errorf("TriggerName: %q %q", a, b)
	}
	if got := catalog.TriggerName("fk"); got != "tombstone_live_fk" {
		t.Errorf("TriggerName(fk) = %q", got)
	}
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }

// The check compares keys with the constraint's own equality operators:
// citext's case-insensitive = lives outside pg_catalog, and pg_catalog's
// text = would miss the soft-deleted parent.
func TestPlanConstraintOperators(t *testing.T) {
	_, _, conn := setup(t, `
CREATE EXTENSION citext;
CREATE TABLE users (email citext PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE posts (author citext REFERENCES users);
INSERT INTO users VALUES ('Ann@Example.com', now());`)
	sp := spec("users")
	applyPlan(t, conn, sp)
	_, err := conn.Exec(context.Background(), `INSERT INTO posts VALUES ('ann@example.com')`)
	if pe := pgErr(err); pe == nil || pe.Code != "23503" || pe.Detail != `Key (author)=(ann@example.com) is not present in table "users".` {
		t.Errorf("a citext key of a soft-deleted parent: %v", err)
	}
}

// Triggers whose foreign key went away are dropped by the next run; a
// trigger of the application's own that shares the name is not.
func TestPlanDropsStaleTriggers(t *testing.T) {
	_, _, conn := setup(t, `
CREATE TABLE parents (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE kids (pid int CONSTRAINT gone REFERENCES parents, qid int CONSTRAINT kept REFERENCES parents);
CREATE FUNCTION mine() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TRIGGER tombstone_live_other AFTER INSERT ON kids FOR EACH ROW EXECUTE FUNCTION mine();`)
	ctx := context.Background()
	sp := spec("parents")
	applyPlan(t, conn, sp)
	names := func() string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, `SELECT string_agg(tgname, ' ' ORDER BY tgname) FROM pg_trigger WHERE tgname LIKE 'tombstone%'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := names(); got != "tombstone_live_gone tombstone_live_kept tombstone_live_other" {
		t.Fatalf("triggers %s", got)
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE kids DROP CONSTRAINT gone`); err != nil {
		t.Fatal(err)
	}
	applyPlan(t, conn, sp)
	if got := names(); got != "tombstone_live_kept tombstone_live_other" {
		t.Errorf("after the constraint was dropped: triggers %s", got)
	}
	applyPlan(t, conn, policy.Spec{})
	if got := names(); got != "tombstone_live_other" {
		t.Errorf("with no soft-delete table: triggers %s", got)
	}
}

// Each check function belongs to its parent table's owner and runs as
// that owner, as PostgreSQL's own check does: a role inserting children
// needs no privilege on the parent, and nothing the parent's owner
// controls runs as the role that ran the migration.
func TestPlanRunsAsParentOwner(t *testing.T) {
	pg, db, conn := setup(t, `
CREATE ROLE ownerapp LOGIN PASSWORD 'ownerapp';
CREATE ROLE writer LOGIN PASSWORD 'writer';
CREATE SCHEMA owned AUTHORIZATION ownerapp;
SET ROLE ownerapp;
CREATE TABLE owned.parents (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE owned.kids (pid int REFERENCES owned.parents);
INSERT INTO owned.parents VALUES (1, now()), (2, NULL);
GRANT USAGE ON SCHEMA owned TO writer;
GRANT INSERT ON owned.kids TO writer;
RESET ROLE;`)
	ctx := context.Background()
	applyPlan(t, conn, spec("parents"))
	fn := catalog.CheckFunction(rn("owned", "parents"))
	var owner string
	var definer bool
	if err := conn.QueryRow(ctx, `SELECT proowner::regrole::text, prosecdef FROM pg_proc WHERE proname = $1 AND pronamespace = 'tombstone'::regnamespace`, fn).Scan(&owner, &definer); err != nil {
		t.Fatal(err)
	}
	if owner != "ownerapp" || !definer {
		t.Errorf("%s is owned by %s (security definer %v), want ownerapp", fn, owner, definer)
	}
	w := connect(t, pgcluster.URL(pg.Addr(), "writer", "writer", db))
	if _, err := w.Exec(ctx, `INSERT INTO owned.kids VALUES (2)`); err != nil {
		t.Errorf("a live parent, inserted by a role without privileges on it: %v", err)
	}
	_, err := w.Exec(ctx, `INSERT INTO owned.kids VALUES (1)`)
	if pe := pgErr(err); pe == nil || pe.Code != "23503" {
		t.Errorf("a soft-deleted parent, inserted by a role without privileges on it: %v", err)
	}
}

// A soft delete in flight makes a referencing insert wait (the check
// locks the parent FOR SHARE, which a soft delete's UPDATE conflicts
// with; FOR KEY SHARE would not) and then fail once it commits.
func TestPlanWaitsForSoftDelete(t *testing.T) {
	pg, db, conn := setup(t, `
CREATE TABLE parents (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE kids (pid int REFERENCES parents);
INSERT INTO parents VALUES (1, NULL);`)
	ctx := context.Background()
	applyPlan(t, conn, spec("parents"))
	other, watch := connect(t, pg.DSN(db)), connect(t, pg.DSN(db))
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE parents SET deleted_at = now() WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := other.Exec(ctx, `INSERT INTO kids VALUES (1)`)
		done <- err
	}()
	// The insert must be waiting on the soft delete's row lock.
	var waiting bool
	for i := 0; i < 200 && !waiting; i++ {
		if err := watch.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO kids%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if !waiting {
			select {
			case err := <-done:
				t.Fatalf("the insert did not wait for the soft delete: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if !waiting {
		t.Fatal("the insert never waited for the soft delete")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if pe := pgErr(<-done); pe == nil || pe.Code != "23503" {
		t.Errorf("an insert referencing a parent soft-deleted while it waited: %v, want 23503", pe)
	}
}

// A table without its deleted_at column (a problem the policy reports)
// must not make the migration fail, nor every insert of its children.
func TestPlanMissingDeletedAt(t *testing.T) {
	_, _, conn := setup(t, `
CREATE TABLE parents (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE bare (id int PRIMARY KEY);
CREATE TABLE kids (pid int REFERENCES parents, bid int REFERENCES bare);
INSERT INTO parents VALUES (1, now());
INSERT INTO bare VALUES (1);`)
	ctx := context.Background()
	plan := applyPlan(t, conn, spec("parents", "bare", "kids"))
	if text := strings.Join(plan, "\n"); strings.Contains(text, "kids_bid_fkey") || !strings.Contains(text, `UPDATE OF "pid" ON "public"."kids"`) {
		t.Errorf("plan:\n%s", text)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO kids VALUES (NULL, 1)`); err != nil {
		t.Errorf("a child of the table without deleted_at: %v", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO kids VALUES (1, NULL)`); pgErr(err) == nil || pgErr(err).Code != "23503" {
		t.Errorf("a child of a soft-deleted parent: %v", err)
	}
}

// CheckTriggers names exactly the triggers Plan creates, so that doctor
// can tell which are missing.
func TestCheckTriggers(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	// Roles are the cluster's: TestPlanTriggers creates planapp.
	_, _, conn := setup(t, strings.ReplaceAll(planSQL, "planapp", "checktriggersapp"))
	sp := planSpec()
	applyPlan(t, conn, sp)
	rows, err := conn.Query(context.Background(), `SELECT n.nspname || '.' || c.relname || ' ' || t.tgname FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.tgname LIKE 'tombstone_live_%' AND t.tgparentid = 0 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	created, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, c := range catalog.CheckTriggers(sp, read(t, conn, sp)) {
		listed = append(listed, c.Table.Schema+"."+c.Table.Name+" "+c.Name)
	}
	slices.Sort(listed)
	if strings.Join(listed, "\n") != strings.Join(created, "\n") {
		t.Errorf("CheckTriggers lists\n%s\nPlan created\n%s", strings.Join(listed, "\n"), strings.Join(created, "\n"))
	}
}

func TestStringConstant(t *testing.T) {
	for in, want := range map[string]string{`it's`: `E'it\'s'`, `a\b`: `E'a\\b'`, "two\nlines": "E'two\nlines'"} {
		if got := catalog.StringConstant(in); got != want {
			t.Errorf("StringConstant(%q) = %s, want %s", in, got, want)
		}
	}
}
