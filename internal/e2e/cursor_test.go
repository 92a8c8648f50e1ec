package e2e

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// DELETE ... WHERE CURRENT OF a cursor soft-deletes the row under the
// cursor (the condition cannot be ANDed with anything, and the cursor's
// query only sees live rows), and EXPLAIN ANALYZE of a DELETE performs the
// soft delete, as EXPLAIN ANALYZE performs a real one.
func TestCursorDeleteAndExplainAnalyze(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	soft, direct := connect(t, p.softDSN(appUser, appPassword)), connect(t, p.realDSN())
	steps := []string{
		"DELETE FROM users WHERE user_id = 2", // the cursor must skip it
		"BEGIN",
		"DECLARE c CURSOR FOR SELECT user_id, uname FROM users WHERE team_id = 3 ORDER BY user_id FOR UPDATE",
		"FETCH 1 FROM c",
		"DELETE FROM users WHERE CURRENT OF c",
		"FETCH 1 FROM c",
		"DELETE FROM users WHERE CURRENT OF c RETURNING user_id",
		"FETCH 1 FROM c",
		"UPDATE users SET score = 0 WHERE CURRENT OF c",
		"COMMIT",
		"SELECT user_id, score FROM users WHERE team_id = 3 ORDER BY user_id",
	}
	for _, sql := range steps {
		st := statement{SQL: sql, Mode: pgx.QueryExecModeSimpleProtocol, Ordered: true, SoftReturning: true}
		if d := execute(ctx, soft, st).diff(execute(ctx, direct, st), true); d != "" {
			t.Errorf("%s:\n%s", sql, d)
		}
	}
	super := p.super(t)
	if n := scalar[int](t, super, "SELECT count(*) FROM users WHERE user_id IN (20, 29) AND removed_at IS NOT NULL"); n != 2 {
		t.Errorf("%d of the 2 users deleted through the cursor are kept on disk marked deleted", n)
	}

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
