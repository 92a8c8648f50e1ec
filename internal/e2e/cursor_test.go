package e2e

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A cursor over a soft-delete table sees live rows only, and fetching
// from it matches the hard-delete twin. DELETE or UPDATE ... WHERE CURRENT
// OF it is refused: the condition takes no filter, and the row under the
// cursor may have been deleted since it was fetched (a second CURRENT OF
// on the same row would change or even undelete a row that is gone).
// EXPLAIN ANALYZE of a DELETE performs the soft delete, as EXPLAIN ANALYZE
// performs a real one.
func TestCursorDeleteAndExplainAnalyze(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	soft, direct := connect(t, p.softDSN(appUser, appPassword)), connect(t, p.realDSN())
	steps := []string{
		"DELETE FROM users WHERE user_id = 2", // the cursor must skip it
		"BEGIN",
		"DECLARE c CURSOR FOR SELECT user_id, uname FROM users WHERE team_id = 3 ORDER BY user_id FOR UPDATE",
		"FETCH 2 FROM c",
		"FETCH 1 FROM c",
		"COMMIT",
	}
	for _, sql := range steps {
		st := statement{SQL: sql, Mode: pgx.QueryExecModeSimpleProtocol, Ordered: true, SoftReturning: true}
		if d := execute(ctx, soft, st).diff(execute(ctx, direct, st), true); d != "" {
			t.Errorf("%s:\n%s", sql, d)
		}
	}
	for _, sql := range []string{"DELETE FROM users WHERE CURRENT OF c", "UPDATE users SET removed_at = NULL WHERE CURRENT OF c"} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			if _, err := soft.Exec(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			if _, err := soft.Exec(ctx, "DECLARE c CURSOR FOR SELECT user_id FROM users ORDER BY user_id FOR UPDATE; FETCH 1 FROM c"); err != nil {
				t.Fatal(err)
			}
			_, err := soft.Exec(ctx, sql, mode)
			if pe := pgErr(err); pe == nil || pe.Code != "0A000" || !strings.Contains(pe.Message, "WHERE CURRENT OF") {
				t.Errorf("%s (%v): got %v, want Tombstone's 0A000 refusal", sql, mode, err)
			}
			if _, err := soft.Exec(ctx, "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
		}
	}
	super := p.super(t)

	explain := "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) DELETE FROM users WHERE user_id = 4"
	for _, conn := range []*pgx.Conn{soft, direct} {
		if _, err := conn.Exec(ctx, explain); err != nil {
			t.Fatalf("%s: %v", explain, err)
		}
		if n := scalar[int](t, conn, "SELECT count(*) FROM users WHERE user_id = 4"); n != 0 {
			t.Errorf("after %s the user is still visible", explain)
		}
	}
	if n := scalar[int](t, super, "SELECT count(*) FROM users WHERE user_id = 4 AND removed_at IS NOT NULL"); n != 1 {
		t.Errorf("EXPLAIN ANALYZE DELETE through Tombstone did not soft-delete the row")
	}
}
