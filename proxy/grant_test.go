package proxy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

// A role that may DELETE but not UPDATE the soft-delete columns deletes
// fine directly and gets 42501 through Tombstone, where the DELETE is an
// UPDATE. The error keeps the server's code and message and gains a hint
// with the GRANT that fixes it; running that GRANT makes the DELETE pass.
// Other permission errors, and errors of statements that are not
// rewritten DELETEs, are left as the server sent them.
func TestPermissionDeniedOnSoftDeleteNamesTheGrant(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, "", `DO $$ BEGIN CREATE ROLE grant_hint_app LOGIN PASSWORD 'app'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	pgtest.Exec(t, pg, db, `CREATE TABLE contacts (id int PRIMARY KEY, name text, deleted_at timestamptz, deleted_by text);
		INSERT INTO contacts SELECT g, 'c' || g FROM generate_series(1, 20) g;
		CREATE TABLE secrets (id int);
		GRANT SELECT, INSERT, DELETE, UPDATE (name) ON contacts TO grant_hint_app`)
	p := proxytest.Start(t, pg, "privileged_roles: [postgres]\ntables:\n  - name: contacts\n    deleted_by: deleted_by\n")
	c := connect(t, p.DSN("grant_hint_app", "app", db))
	ctx := testCtx(t)
	const want = "GRANT UPDATE (deleted_at, deleted_by) ON public.contacts TO grant_hint_app;"

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		_, err := c.Exec(ctx, "DELETE FROM contacts WHERE id = $1", mode, 1)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Fatalf("%v: DELETE without the UPDATE grant: %v, want 42501", mode, err)
		}
		if pe.Message != "permission denied for table contacts" || !strings.HasSuffix(pe.Hint, want) {
			t.Errorf("%v: got message %q hint %q, want the server's message and a hint ending %q", mode, pe.Message, pe.Hint, want)
		}
	}
	// Not a DELETE: the server's error, untouched.
	_, err := c.Exec(ctx, "UPDATE contacts SET deleted_by = 'x' WHERE id = 2")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" || pe.Hint != "" {
		t.Errorf("UPDATE of a column without the grant: %v (hint %q), want 42501 without a hint", err, hintOf(err))
	}
	// A DELETE on a table that is not soft-delete: no hint either.
	_, err = c.Exec(ctx, "DELETE FROM secrets")
	if !errors.As(err, &pe) || pe.Code != "42501" || pe.Hint != "" {
		t.Errorf("DELETE on a plain table without privileges: %v (hint %q), want 42501 without a hint", err, hintOf(err))
	}

	// The hint's statement is the fix.
	pgtest.Exec(t, pg, db, want)
	tag, err := c.Exec(ctx, "DELETE FROM contacts WHERE id = $1", 1)
	if err != nil || tag.String() != "DELETE 1" {
		t.Fatalf("DELETE after %s: %v %v, want DELETE 1", want, tag, err)
	}
	if live, deleted := liveAndDeletedBy(t, pg, db); live != 19 || deleted != 1 {
		t.Errorf("after the DELETE: %d live, %d soft-deleted rows, want 19 and 1", live, deleted)
	}
}

func hintOf(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Hint
	}
	return ""
}

func liveAndDeletedBy(t *testing.T, pg *pgtest.Server, db string) (live, deleted int) {
	t.Helper()
	c := connect(t, pg.DSN(db))
	if err := c.QueryRow(testCtx(t), "SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL AND deleted_by = 'grant_hint_app') FROM contacts").Scan(&live, &deleted); err != nil {
		t.Fatal(err)
	}
	return live, deleted
}
