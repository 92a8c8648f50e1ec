package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// runText sends sql as one simple Query (as ORMs send their multi-statement
// texts) and describes everything the client sees: for each statement its
// command tag, columns and rows, and the error that ended the text.
func runText(ctx context.Context, conn *pgx.Conn, sql string) string {
	results, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "%s", r.CommandTag)
		for _, fd := range r.FieldDescriptions {
			fmt.Fprintf(&b, " %s", fd.Name)
		}
		for _, row := range r.Rows {
			b.WriteString("\n  ")
			for i, v := range row {
				if i > 0 {
					b.WriteByte('|')
				}
				if v == nil {
					b.WriteString("NULL")
				} else {
					b.Write(v)
				}
			}
		}
		b.WriteByte('\n')
	}
	if pe := pgErr(err); pe != nil {
		fmt.Fprintf(&b, "ERROR %s %s\n", pe.Code, pe.Message)
	} else if err != nil {
		fmt.Fprintf(&b, "ERROR %v\n", err)
	}
	return b.String()
}

// findOrCreate is the text Sequelize's Model.findOrCreate() sends after
// its SELECT found nothing: a temporary PL/pgSQL function that inserts
// and catches the unique violation, called and dropped in the same Query.
const findOrCreate = `CREATE OR REPLACE FUNCTION pg_temp.testfunc(OUT response "users", OUT sequelize_caught_exception text) RETURNS RECORD AS $func_12ab$ BEGIN INSERT INTO "users" ("user_id","team_id","uname","score") VALUES (100,1,'x',5) RETURNING * INTO response; EXCEPTION WHEN unique_violation THEN GET STACKED DIAGNOSTICS sequelize_caught_exception = PG_EXCEPTION_DETAIL; END $func_12ab$ LANGUAGE plpgsql; SELECT (testfunc.response).*, testfunc.sequelize_caught_exception FROM pg_temp.testfunc(); DROP FUNCTION IF EXISTS pg_temp.testfunc();`

// Procedural code through Tombstone behaves as on a database whose deletes
// are real: the same statements, run through Tombstone on the soft-delete
// database and directly on its hard-delete twin, give the client the same
// answers, and afterwards no row of a soft-delete table is gone for good.
func TestProceduralCodeMatchesPostgres(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	soft, direct := connect(t, p.softDSN(appUser, appPassword)), connect(t, p.realDSN())
	steps := []string{
		// Sequelize: created, then found (the unique violation is caught
		// inside the function).
		findOrCreate,
		findOrCreate,
		// A stored procedure that deletes: soft through Tombstone.
		`CREATE PROCEDURE drop_user(u int) LANGUAGE plpgsql AS $$
		BEGIN
		  DELETE FROM orders WHERE user_id = u;
		  DELETE FROM users WHERE user_id = u;
		END $$`,
		"CALL drop_user(3)",
		"SELECT user_id FROM users WHERE user_id < 6",
		"SELECT count(*) FROM orders",
		// IF EXISTS over a soft-delete table must not see deleted rows.
		`CREATE FUNCTION user_exists(u int) RETURNS text LANGUAGE plpgsql AS $$
		BEGIN
		  IF EXISTS (SELECT 1 FROM users WHERE user_id = u) THEN
		    RETURN 'yes';
		  END IF;
		  RETURN 'no';
		END $$`,
		"SELECT user_exists(3), user_exists(4)",
		// An UPDATE inside a function is restricted to live rows: it
		// cannot undelete.
		`CREATE FUNCTION undelete(u int) RETURNS int LANGUAGE plpgsql AS $$
		DECLARE n int;
		BEGIN
		  UPDATE users SET removed_at = NULL, removed_by = NULL WHERE user_id = u;
		  GET DIAGNOSTICS n = ROW_COUNT;
		  RETURN n;
		END $$`,
		"SELECT undelete(3), undelete(4)",
		"SELECT user_exists(3)",
		// A DO block whose body hides its table behind E'' escapes.
		`DO E'BEGIN DELETE FROM \x75sers WHERE user_id = 6; END'`,
		"SELECT user_exists(6)",
		// ROW_COUNT, FOUND and RETURNING ... INTO after a soft delete.
		`CREATE FUNCTION pop_team(tid int) RETURNS text LANGUAGE plpgsql AS $$
		DECLARE n int; first int;
		BEGIN
		  DELETE FROM users WHERE team_id = tid;
		  GET DIAGNOSTICS n = ROW_COUNT;
		  DELETE FROM teams WHERE team_id = tid RETURNING team_id INTO first;
		  RETURN n || ' ' || FOUND || ' ' || coalesce(first::text, '-');
		END $$`,
		"SELECT pop_team(2)",
		"SELECT pop_team(2)",
		// RETURN QUERY and a FOR loop over a soft-delete table.
		`CREATE FUNCTION team_users(tid int) RETURNS SETOF users LANGUAGE plpgsql AS $$
		DECLARE r users;
		BEGIN
		  FOR r IN SELECT * FROM users WHERE team_id = tid LOOP
		    RETURN NEXT r;
		  END LOOP;
		  RETURN QUERY SELECT * FROM users WHERE team_id = tid + 1;
		END $$`,
		"SELECT user_id, uname FROM team_users(2)",
		"SELECT user_id, uname FROM team_users(4)",
		// A LANGUAGE sql string body.
		"CREATE FUNCTION drop_orders(u int) RETURNS bigint LANGUAGE sql AS 'DELETE FROM orders WHERE user_id = u; SELECT count(*) FROM orders'",
		"SELECT drop_orders(7)",
		// EXECUTE of one string literal is rewritten like any statement.
		"DO $$BEGIN EXECUTE 'DELETE FROM orders WHERE order_id = $1' USING 20; END$$",
		"SELECT count(*), min(order_id) FROM orders",
	}
	for _, sql := range steps {
		if got, want := runText(ctx, soft, sql), runText(ctx, direct, sql); got != want {
			t.Errorf("%s\n through Tombstone:\n%s directly:\n%s", sql, got, want)
		}
	}
	// The same routine sent as a prepared statement (Parse) is rewritten
	// the same way.
	for _, conn := range []*pgx.Conn{soft, direct} {
		if _, err := conn.Exec(ctx, `CREATE FUNCTION drop_one(u int) RETURNS void LANGUAGE plpgsql AS $$BEGIN DELETE FROM users WHERE user_id = u; END$$`, pgx.QueryExecModeExec); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SELECT drop_one(8)", pgx.QueryExecModeExec); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := runText(ctx, soft, "SELECT count(*) FROM users"), runText(ctx, direct, "SELECT count(*) FROM users"); got != want {
		t.Errorf("after a prepared CREATE FUNCTION: through Tombstone %s, directly %s", got, want)
	}

	// Dynamic SQL is refused, so the twin does not run it either.
	for _, sql := range []string{
		"DO $$BEGIN EXECUTE 'DELETE FROM ' || 'users WHERE user_id = 5'; END$$",
		"CREATE FUNCTION purge(t text) RETURNS void LANGUAGE plpgsql AS $$BEGIN EXECUTE format('DELETE FROM %I', t); END$$",
		"DO $$DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT * FROM ' || 'users' LOOP END LOOP; END$$",
	} {
		_, err := soft.Exec(ctx, sql)
		if pe := pgErr(err); pe == nil || pe.Code != "0A000" || !strings.HasPrefix(pe.Message, "tombstone:") {
			t.Errorf("%s: got %v, want Tombstone's 0A000 refusal", sql, err)
		}
	}

	// On disk: every row is still there; the deleted ones carry
	// removed_at and who removed them, the refused delete left user 5.
	super := p.super(t)
	if n := scalar[int](t, super, "SELECT count(*) FROM users"); n != 41 {
		t.Errorf("users holds %d rows, want 40 and the one findOrCreate made: a delete went through for real", n)
	}
	if n := scalar[int](t, super, "SELECT (SELECT count(*) FROM teams) + (SELECT count(*) FROM orders)"); n != 8+120 {
		t.Errorf("teams and orders hold %d rows, want %d: a delete went through for real", n, 8+120)
	}
	for _, tc := range []struct {
		user int
		want string
	}{{3, "deleted by " + appUser}, {6, "deleted by " + appUser}, {8, "deleted by " + appUser}, {4, "live"}, {5, "live"}, {100, "live"}} {
		got := scalar[string](t, super, "SELECT CASE WHEN removed_at IS NULL THEN 'live' ELSE 'deleted by ' || removed_by END FROM users WHERE user_id = $1", tc.user)
		if got != tc.want {
			t.Errorf("user %d is %s on disk, want %s", tc.user, got, tc.want)
		}
	}
	if n := scalar[int](t, super, "SELECT count(*) FROM orders WHERE gone_at IS NOT NULL AND order_id = 20"); n != 1 {
		t.Errorf("order 20, deleted by EXECUTE of a literal, is not soft-deleted on disk")
	}
}

// A function's body is stored as Tombstone rewrote it: what pg_proc holds
// is the soft-delete UPDATE, with every read filtered.
func TestStoredBodyIsTheRewrite(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	soft := connect(t, p.softDSN(appUser, appPassword))
	if _, err := soft.Exec(ctx, `CREATE FUNCTION f(u int) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM users WHERE user_id = u;
  RETURN (SELECT count(*) FROM orders o WHERE o.user_id = u);
END $$`); err != nil {
		t.Fatal(err)
	}
	src := scalar[string](t, p.super(t), "SELECT prosrc FROM pg_proc WHERE proname = 'f'")
	for _, want := range []string{
		"UPDATE users SET removed_at = (SELECT pg_catalog.clock_timestamp()), removed_by = COALESCE(CASE WHEN pg_catalog.current_setting('tombstone.actor', true) OPERATOR(pg_catalog.<>) '' THEN pg_catalog.current_setting('tombstone.actor', true) END, session_user::pg_catalog.text) WHERE user_id = u AND users.removed_at IS NULL;",
		"(SELECT count(*) FROM orders o WHERE o.user_id = u AND o.gone_at IS NULL)",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("stored body lacks %q:\n%s", want, src)
		}
	}
	if strings.Contains(strings.ToUpper(src), "DELETE") {
		t.Errorf("stored body still deletes:\n%s", src)
	}
}
