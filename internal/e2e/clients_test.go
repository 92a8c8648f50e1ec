package e2e

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/lib/pq" // registers the "postgres" database/sql driver

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

// psql runs the psql client with args against dsn and returns its output.
func psql(t *testing.T, dsn string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("psql")
	if err != nil {
		dir, derr := pgcluster.BinDir()
		if derr != nil {
			t.Fatalf("psql not found: %v; %v", err, derr)
		}
		bin = filepath.Join(dir, "psql")
	}
	cmd := exec.CommandContext(testCtx(t), bin, append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-d", dsn}, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PSQLRC=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// psql prints each statement's command tag: a soft DELETE must print
// DELETE n exactly as a real one, also for several statements in one -c
// (one simple Query message), in a script, in a transaction, and through
// PREPARE/EXECUTE.
func TestPsqlShowsDeleteTags(t *testing.T) {
	p := newPair(t, proxyConfig)
	soft, direct := p.softDSN(appUser, appPassword), p.realDSN()

	c := "DELETE FROM users WHERE user_id IN (10, 11)"
	if got := psql(t, soft, "-c", c); got != "DELETE 2\n" {
		t.Errorf("psql -c %q through Tombstone printed %q, want %q", c, got, "DELETE 2\n")
	}
	if got, want := psql(t, soft, "-c", c), "DELETE 0\n"; got != want {
		t.Errorf("deleting the same rows again printed %q, want %q (a deleted row stays deleted)", got, want)
	}
	psql(t, direct, "-c", c)

	multi := "DELETE FROM orders WHERE order_id = 1; DELETE FROM orders WHERE order_id IN (2, 3); SELECT count(*) FROM orders"
	gotSoft, gotReal := psql(t, soft, "-c", multi), psql(t, direct, "-c", multi)
	if gotSoft != gotReal || !strings.HasPrefix(gotSoft, "DELETE 1\nDELETE 2\n") {
		t.Errorf("psql -c with three statements:\nthrough Tombstone:\n%s\ndirect:\n%s", gotSoft, gotReal)
	}

	script := filepath.Join(t.TempDir(), "script.sql")
	if err := os.WriteFile(script, []byte(`
DELETE FROM users WHERE user_id IN (1, 2, 3);
DELETE FROM users WHERE user_id IN (1, 2, 3);
SELECT count(*) FROM users;
DELETE FROM orders o USING users u WHERE o.user_id = u.user_id AND u.team_id = 4;
DELETE FROM users WHERE user_id = 12 RETURNING user_id, uname;
UPDATE users SET score = 0 WHERE user_id < 10;
BEGIN;
DELETE FROM teams WHERE team_id = 2;
ROLLBACK;
DELETE FROM teams WHERE team_id = 2; DELETE FROM orders WHERE order_id = 4;
SELECT t.team_id, count(u.user_id) FROM teams t LEFT JOIN users u USING (team_id) GROUP BY 1 ORDER BY 1;
PREPARE d(int) AS DELETE FROM orders WHERE order_id = $1;
EXECUTE d(6);
EXECUTE d(6);
WITH gone AS (DELETE FROM orders WHERE order_id BETWEEN 7 AND 9 RETURNING order_id) SELECT count(*) FROM gone;
`), 0o644); err != nil {
		t.Fatal(err)
	}
	gotSoft, gotReal = psql(t, soft, "-f", script), psql(t, direct, "-f", script)
	if gotSoft != gotReal {
		t.Errorf("psql -f through Tombstone:\n%s\ndirect:\n%s", gotSoft, gotReal)
	}
	for _, want := range []string{"DELETE 3\nDELETE 0\n", "DELETE 10\n", "(1 row)\n\nDELETE 1\n", "ROLLBACK\nDELETE 1\nDELETE 1\n", "PREPARE\nDELETE 1\nDELETE 0\n"} {
		if !strings.Contains(gotSoft, want) {
			t.Errorf("psql -f output lacks %q:\n%s", want, gotSoft)
		}
	}
	// The rows are still there, marked deleted by the application role.
	if n := scalar[int](t, p.super(t), "SELECT count(*) FROM users WHERE user_id IN (1, 2, 3, 10, 11) AND removed_at IS NOT NULL AND removed_by = $1", appUser); n != 5 {
		t.Errorf("%d of 5 deleted users are kept on disk marked as deleted by %s", n, appUser)
	}
}

// pgx reads the tag through CommandTag().Delete() and RowsAffected(), in
// every query mode: the simple protocol, named (cached) prepared
// statements, described statements and the unnamed statement.
func TestPgxDeleteTagEveryMode(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	soft, direct := connect(t, p.softDSN(appUser, appPassword)), connect(t, p.realDSN())
	modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement,
		pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec}
	for i, mode := range modes {
		id := 20 + i
		for _, want := range []int64{1, 0} { // the second delete finds the row already gone
			for side, conn := range map[string]*pgx.Conn{"Tombstone": soft, "direct": direct} {
				tag, err := conn.Exec(ctx, "DELETE FROM users WHERE user_id = $1", mode, id)
				if err != nil {
					t.Fatalf("%s, %v: %v", side, mode, err)
				}
				if !tag.Delete() || tag.RowsAffected() != want {
					t.Errorf("%s, %v: DELETE of user %d reported %q, want DELETE %d", side, mode, id, tag, want)
				}
			}
		}
		// A real UPDATE keeps its own tag.
		tag, err := soft.Exec(ctx, "UPDATE users SET score = 1 WHERE user_id BETWEEN 30 AND 32", mode)
		if err != nil || !tag.Update() || tag.RowsAffected() != 3 {
			t.Errorf("%v: UPDATE through Tombstone reported %q, %v; want UPDATE 3", mode, tag, err)
		}
	}
}

// lib/pq sends statements without parameters as a simple Query and those
// with parameters through an unnamed extended-protocol statement; Prepare
// makes a named one. RowsAffected comes from the DELETE n tag.
func TestLibpqRowsAffected(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	for side, dsn := range map[string]string{"Tombstone": p.softDSN(appUser, appPassword), "direct": p.realDSN()} {
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		check := func(what string, res sql.Result, err error, want int64) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s, %s: %v", side, what, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != want {
				t.Errorf("%s, %s: RowsAffected() = %d, %v; want %d", side, what, n, err, want)
			}
		}
		res, err := db.ExecContext(ctx, "DELETE FROM orders WHERE user_id = 14")
		check("simple query", res, err, 3)
		res, err = db.ExecContext(ctx, "DELETE FROM orders WHERE user_id = 14")
		check("simple query again", res, err, 0)
		res, err = db.ExecContext(ctx, "DELETE FROM orders WHERE user_id = $1", 28)
		check("with a parameter", res, err, 3)
		stmt, err := db.PrepareContext(ctx, "DELETE FROM users WHERE user_id = $1")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			id   int
			want int64
		}{{5, 1}, {6, 1}, {5, 0}} {
			res, err = stmt.ExecContext(ctx, c.id)
			check("prepared statement", res, err, c.want)
		}
		stmt.Close()
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM orders WHERE user_id IN (14, 28)").Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d orders of deleted users still visible (%v), want 0", side, n, err)
		}
	}
}

// Batches: pgx's default mode pipelines Parse/Bind/Execute for every
// queued statement before one Sync; in the simple protocol it sends them
// all as one Query message. Every result keeps its own tag, in order.
func TestBatchedDeletes(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			p := newPair(t, proxyConfig)
			ctx := testCtx(t)
			var tags [2][]string
			for i, dsn := range []string{p.softDSN(appUser, appPassword), p.realDSN()} {
				cfg, err := pgx.ParseConfig(dsn)
				if err != nil {
					t.Fatal(err)
				}
				cfg.DefaultQueryExecMode = mode
				conn, err := pgx.ConnectConfig(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close(context.Background()) })
				b := &pgx.Batch{}
				b.Queue("DELETE FROM orders WHERE order_id IN (1, 2, 3)")
				b.Queue("DELETE FROM orders WHERE order_id IN (1, 2, 3, 4)")
				b.Queue("UPDATE orders SET qty = 9 WHERE order_id IN (4, 5)")
				b.Queue("SELECT count(*) FROM orders")
				b.Queue("DELETE FROM users WHERE team_id = 3 RETURNING user_id")
				b.Queue("INSERT INTO items VALUES (99, 'new', 1)")
				b.Queue("DELETE FROM items WHERE item_id = 99")
				br := conn.SendBatch(ctx, b)
				for range b.Len() {
					rows, err := br.Query()
					if err != nil {
						t.Fatal(err)
					}
					for rows.Next() {
					}
					rows.Close()
					if rows.Err() != nil {
						t.Fatal(rows.Err())
					}
					tags[i] = append(tags[i], rows.CommandTag().String())
				}
				if err := br.Close(); err != nil {
					t.Fatal(err)
				}
			}
			want := []string{"DELETE 3", "DELETE 1", "UPDATE 1", "SELECT 1", "DELETE 4", "INSERT 0 1", "DELETE 1"}
			if strings.Join(tags[0], ",") != strings.Join(want, ",") || strings.Join(tags[1], ",") != strings.Join(want, ",") {
				t.Errorf("batch tags:\n through Tombstone %v\n direct            %v\n want              %v", tags[0], tags[1], want)
			}
		})
	}
}

// A pipeline far longer than any buffer: 600 DELETEs before one Sync,
// every one answered with its own tag, in order.
func TestLongPipelineOfDeletes(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	conn := connect(t, p.softDSN(appUser, appPassword))
	b := &pgx.Batch{}
	for i := range 600 {
		b.Queue("DELETE FROM orders WHERE order_id = $1", 1+i%150) // orders above 120 do not exist; each existing one is deleted once
	}
	br := conn.SendBatch(ctx, b)
	deleted := 0
	for i := range b.Len() {
		tag, err := br.Exec()
		want := "DELETE 0"
		if i < 120 {
			want = "DELETE 1"
		}
		if err != nil || tag.String() != want {
			t.Fatalf("statement %d of the pipeline: %q, %v; want %s", i, tag, err, want)
		}
		deleted += int(tag.RowsAffected())
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if n := scalar[int](t, p.super(t), "SELECT count(*) FROM orders WHERE gone_at IS NOT NULL"); n != deleted || deleted != 120 {
		t.Errorf("%d orders reported deleted, %d marked on disk; want 120 and 120", deleted, n)
	}
}

// A named prepared statement is parsed once and executed many times; each
// execution must report DELETE with its own count.
func TestNamedPreparedDeleteReused(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	conn := connect(t, p.softDSN(appUser, appPassword))
	if _, err := conn.Prepare(ctx, "del_order", "DELETE FROM orders WHERE order_id = $1 OR user_id = $2"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Prepare(ctx, "count_orders", "SELECT count(*) FROM orders"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		order, user int
		want        string
	}{{1, 0, "DELETE 1"}, {1, 0, "DELETE 0"}, {2, 14, "DELETE 3"}, {3, 14, "DELETE 1"}} {
		tag, err := conn.Exec(ctx, "del_order", c.order, c.user)
		if err != nil || tag.String() != c.want {
			t.Errorf("EXECUTE del_order(%d, %d): %q, %v; want %s", c.order, c.user, tag, err, c.want)
		}
	}
	if n := scalar[int](t, conn, "count_orders"); n != 120-5 {
		t.Errorf("prepared count sees %d live orders, want %d", n, 120-5)
	}
}

// SQL-level PREPARE ... AS DELETE and EXECUTE: the EXECUTE's tag is
// DELETE n, in the simple and the extended protocol; a name re-prepared
// as something else stops being a delete.
func TestSQLPrepareExecuteDelete(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	for side, conn := range map[string]*pgx.Conn{"Tombstone": connect(t, p.softDSN(appUser, appPassword)), "direct": connect(t, p.realDSN())} {
		steps := []struct {
			sql  string
			mode pgx.QueryExecMode
			want string
		}{
			{"PREPARE d(int) AS DELETE FROM orders WHERE user_id = $1", pgx.QueryExecModeSimpleProtocol, "PREPARE"},
			{"EXECUTE d(14)", pgx.QueryExecModeSimpleProtocol, "DELETE 3"},
			{"EXECUTE d(14)", pgx.QueryExecModeExec, "DELETE 0"},
			{"EXECUTE d(28)", pgx.QueryExecModeCacheStatement, "DELETE 3"},
			{"DEALLOCATE d", pgx.QueryExecModeSimpleProtocol, "DEALLOCATE"},
			{"PREPARE d(int) AS UPDATE orders SET qty = 1 WHERE user_id = $1", pgx.QueryExecModeSimpleProtocol, "PREPARE"},
			{"EXECUTE d(29)", pgx.QueryExecModeSimpleProtocol, "UPDATE 3"},
			{"PREPARE e AS DELETE FROM users WHERE user_id = 7 RETURNING user_id, uname", pgx.QueryExecModeExec, "PREPARE"},
			{"EXECUTE e", pgx.QueryExecModeSimpleProtocol, "DELETE 1"},
			{"DEALLOCATE ALL", pgx.QueryExecModeSimpleProtocol, "DEALLOCATE ALL"},
		}
		for _, s := range steps {
			tag, err := conn.Exec(ctx, s.sql, s.mode)
			if err != nil || tag.String() != s.want {
				t.Errorf("%s: %s (%v): %q, %v; want %s", side, s.sql, s.mode, tag, err, s.want)
			}
		}
	}
}

// A DELETE inside a data-modifying CTE: the statement's tag is its top
// statement's (SELECT n, INSERT 0 n), as in Postgres, and the rows it
// returns are the deleted ones.
func TestDeleteInDataModifyingCTE(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	soft, direct := connect(t, p.softDSN(appUser, appPassword)), connect(t, p.realDSN())
	for _, c := range []struct{ sql, tag string }{
		{"WITH d AS (DELETE FROM orders WHERE order_id BETWEEN 10 AND 14 RETURNING order_id) SELECT count(*) FROM d", "SELECT 1"},
		{"WITH d AS (DELETE FROM users WHERE user_id IN (7, 8) RETURNING user_id, uname) INSERT INTO items SELECT 1000 + user_id, uname, 1 FROM d", "INSERT 0 2"},
		{"WITH d AS (DELETE FROM users WHERE user_id IN (7, 8, 9) RETURNING user_id) SELECT user_id FROM d ORDER BY 1", "SELECT 1"},
		{"WITH d AS (DELETE FROM teams WHERE team_id = 1 RETURNING team_id) DELETE FROM users u USING d WHERE u.team_id = d.team_id", "DELETE 3"},
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			st := statement{SQL: c.sql, Mode: mode, Ordered: true}
			a, b := execute(ctx, soft, st), execute(ctx, direct, st)
			if d := a.diff(b, true); d != "" {
				t.Errorf("%s (%v):\n%s", c.sql, mode, d)
			}
			if mode == pgx.QueryExecModeSimpleProtocol && a.tag != c.tag {
				t.Errorf("%s: tag %q, want %q", c.sql, a.tag, c.tag)
			}
		}
	}
}
