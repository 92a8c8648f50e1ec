package e2e

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Hand-picked statements at the edges of the rewrite rules, each run in the
// simple protocol and as an unnamed extended-protocol statement, through
// Tombstone on soft-delete tables and directly on real-delete tables. They
// run in order on the same data; the deletes among them must stay soft.
var edgeCases = []string{
	"DELETE FROM teams WHERE team_id IN (2, 5)",
	"DELETE FROM users WHERE user_id IN (3, 4, 5, 6)",
	// A FULL JOIN condition must stay merge- or hash-joinable, or
	// Postgres refuses the join.
	"SELECT count(*) FROM teams t FULL JOIN items i ON true",
	"SELECT count(*) FROM teams t FULL JOIN users u ON true",
	"SELECT count(*) FROM items i FULL JOIN orders o ON o.item_id = i.item_id AND o.qty > 2",
	"SELECT count(*) FROM teams t FULL JOIN users u ON t.team_id = u.team_id FULL JOIN orders o ON o.user_id = u.user_id",
	// The target of DELETE, UPDATE and MERGE is always a table, even when
	// a CTE of the same name is in scope.
	"WITH users AS (SELECT 1 AS x) DELETE FROM users WHERE user_id IN (7, 8)",
	"WITH teams AS (SELECT 1 AS x) UPDATE teams SET region = 3 WHERE team_id > 0",
	"WITH orders AS (SELECT 1 AS x) MERGE INTO orders o USING (SELECT 5 AS id) s ON o.order_id = s.id WHEN MATCHED THEN DELETE",
	// Aliases that are the names of other soft-delete tables.
	"DELETE FROM users AS teams WHERE teams.user_id = 9",
	"SELECT count(*) FROM users AS orders LEFT JOIN orders AS users ON users.user_id = orders.user_id",
	// Unicode-escaped identifiers name the same tables.
	`SELECT count(*) FROM U&"\0075sers"`,
	`SELECT count(*) FROM u&"tea\006Ds"`,
	// A DELETE that is the query of a COPY, with RETURNING.
	"COPY (DELETE FROM orders WHERE order_id < 4 RETURNING order_id) TO STDOUT",
	"DELETE FROM users a USING users b WHERE a.team_id = b.team_id AND a.user_id > b.user_id AND a.score = b.score RETURNING a.user_id",
	"WITH d AS (DELETE FROM users WHERE user_id IN (11, 12) RETURNING user_id) SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM d)",
	"WITH a AS (DELETE FROM orders WHERE qty = 5 AND order_id < 40 RETURNING user_id), b AS (DELETE FROM users WHERE user_id IN (SELECT user_id FROM a) RETURNING user_id) SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)",
	"SELECT * FROM (users NATURAL JOIN teams) AS j WHERE j.region = 2",
	"SELECT count(*) FROM users u1 JOIN users u2 USING (team_id) JOIN users u3 USING (team_id)",
	"SELECT 1 FROM users u LEFT JOIN teams t USING (team_id) RIGHT JOIN orders o USING (user_id) WHERE o.order_id < 10",
	"SELECT count(*) FROM users TABLESAMPLE BERNOULLI (100)",
	"DELETE FROM users* WHERE user_id = 10",
	"DELETE FROM users WHERE team_id IS NULL RETURNING (SELECT count(*) FROM teams)",
	"MERGE INTO users u USING teams t ON u.team_id = t.team_id AND t.team_id = 4 WHEN MATCHED THEN DELETE",
	// Reads of soft-delete tables hidden in VALUES, RETURNING, ON CONFLICT,
	// LIMIT and window clauses of statements about other tables.
	"VALUES ((SELECT count(*) FROM users)), ((SELECT max(team_id) FROM teams))",
	"INSERT INTO items VALUES (900, (SELECT min(uname) FROM users WHERE user_id < 6), (SELECT count(*) FROM users)) ON CONFLICT (item_id) DO UPDATE SET iname = excluded.iname, price = excluded.price RETURNING *",
	"INSERT INTO items VALUES (1, 'y', 1) ON CONFLICT (item_id) DO UPDATE SET price = (SELECT count(*) FROM users) RETURNING price, (SELECT count(*) FROM teams)",
	"UPDATE items SET price = (SELECT count(*) FROM users) WHERE item_id = 2 RETURNING price",
	"DELETE FROM items WHERE item_id IN (SELECT team_id FROM teams) RETURNING item_id",
	"SELECT user_id FROM users ORDER BY user_id LIMIT (SELECT count(*) FROM teams)",
	"SELECT t.team_id, count(*) OVER (ORDER BY (SELECT count(*) FROM users u WHERE u.team_id = t.team_id), t.team_id) FROM teams t",
	"SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM users u WHERE u.team_id = t.team_id)) FROM teams t",
	"SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM teams), (SELECT count(*) FROM orders)",
}

func TestEdgeCasesMatchPostgres(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	soft, direct := connect(t, p.softDSN(appUser, appPassword)), connect(t, p.realDSN())
	for _, sql := range edgeCases {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			st := statement{SQL: sql, Mode: mode, SoftReturning: true}
			if strings.HasPrefix(sql, "COPY") {
				st.Class = "copy"
			}
			if d := execute(ctx, soft, st).diff(execute(ctx, direct, st), false); d != "" {
				t.Errorf("%s (%v):\n%s", sql, mode, d)
			}
		}
	}
	if n := scalar[int](t, p.super(t), "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM teams) + (SELECT count(*) FROM orders)"); n != 40+8+120 {
		t.Errorf("%d rows left on disk in the soft-delete tables, want all %d: a delete went through for real", n, 40+8+120)
	}
}
