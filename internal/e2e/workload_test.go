package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/jackc/pgx/v5"
)

// statement is one step of the differential workload.
type statement struct {
	SQL  string
	Args []any
	Mode pgx.QueryExecMode
	// Ordered: the query's ORDER BY is a total order on a unique key, so
	// the row order must match too; otherwise rows compare as multisets.
	Ordered bool
	// SoftReturning: a DELETE ... RETURNING. On a soft-delete table
	// Tombstone turns it into an UPDATE whose RETURNING shows the
	// row after the soft delete, with deleted_at and deleted_by set, while
	// a real DELETE returns the row as it was (those columns NULL). Only
	// the other columns can be compared.
	SoftReturning bool
	// Class is setup, query, delete, update, merge, copy, insert or tx, for
	// the run's statistics; execute runs the copy class with COPY TO STDOUT.
	Class string
}

// workload generates a deterministic stream of statements from a seed. It
// never looks at results, so a seed always yields the same statements and a
// failure replays exactly. Identifiers only grow (soft-deleted rows keep
// their primary key on the Tombstone side, so a reused id would collide
// there and not on the direct side: a known property of soft deletes, not
// what this test is about).
type workload struct {
	r                                       *rand.Rand
	nextTeam, nextUser, nextOrder, nextItem int
	txLeft                                  int      // statements left in the open transaction; 0 = none open
	setup                                   []string // statements to run first, in order
	params                                  bool     // the statement being built may use $n parameters
	args                                    []any    // the values of its $n parameters so far
	queries, deletes, updates, inserts      []func() string
}

func newWorkload(seed uint64) *workload {
	// The initial ids follow the schema's generate_series ranges.
	w := &workload{r: rand.New(rand.NewPCG(seed, seed^0x7ab1e5)), nextTeam: 9, nextUser: 41, nextOrder: 121, nextItem: 11}
	w.queries = w.queryTemplates()
	w.deletes = w.deleteTemplates()
	w.updates = w.updateTemplates()
	w.inserts = w.insertTemplates()
	// Views and tables created through Tombstone store the rewritten,
	// filtered query: later reads of them (which name no soft-delete
	// table) must still see live rows only.
	w.setup = []string{
		"CREATE TEMP VIEW team_sizes AS SELECT t.team_id, t.tname, count(u.user_id) AS n FROM teams t LEFT JOIN users u USING (team_id) GROUP BY t.team_id, t.tname",
		"CREATE MATERIALIZED VIEW user_orders AS SELECT u.user_id, u.team_id, count(o.order_id) AS n FROM users u LEFT JOIN orders o ON o.user_id = u.user_id GROUP BY u.user_id, u.team_id",
		"CREATE TEMP TABLE first_users AS SELECT user_id, uname FROM users WHERE score > 4",
	}
	return w
}

// modes: the simple protocol, pgx's default (named prepared statements,
// cached per connection, so the same text reuses one statement), the
// unnamed statement of the extended protocol in one round trip, and the
// unnamed statement described first and executed in a second round trip.
var modes = []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement,
	pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec}

func (w *workload) next() statement {
	w.args = nil
	w.params = w.r.IntN(4) == 0
	st := statement{Mode: modes[w.r.IntN(len(modes))]}
	if len(w.setup) > 0 {
		st.SQL, st.Class, w.setup = w.setup[0], "setup", w.setup[1:]
		return st
	}
	switch {
	case w.txLeft == 1:
		w.txLeft = 0
		st.SQL, st.Class = pick(w.r, "COMMIT", "ROLLBACK", "END", "ABORT"), "tx"
		return st
	case w.txLeft > 1:
		w.txLeft--
	case w.r.IntN(50) == 0:
		w.txLeft = 3 + w.r.IntN(5)
		st.SQL, st.Class = pick(w.r, "BEGIN", "START TRANSACTION", "BEGIN ISOLATION LEVEL REPEATABLE READ"), "tx"
		return st
	}
	switch n := w.r.IntN(100); {
	case n < 60:
		st.Class = "query"
		st.SQL = w.queries[w.r.IntN(len(w.queries))]()
		// Only ORDER BY ... LIMIT queries mark themselves ordered (see ordered).
		if strings.HasPrefix(st.SQL, orderedMark) {
			st.SQL, st.Ordered = st.SQL[len(orderedMark):], true
		}
	case n < 77:
		st.Class = "delete"
		st.SQL = w.deletes[w.r.IntN(len(w.deletes))]()
		st.SoftReturning = strings.Contains(st.SQL, "RETURNING")
	case n < 84:
		st.Class = "update"
		st.SQL = w.updates[w.r.IntN(len(w.updates))]()
	case n < 86:
		st.Class = "merge"
		st.SQL = w.merge()
	case n < 88:
		st.Class = "copy"
		st.SQL = w.copyTo()
	default:
		st.Class = "insert"
		st.SQL = w.inserts[w.r.IntN(len(w.inserts))]()
	}
	st.Args = w.args
	return st
}

// orderedMark prefixes the text of a query whose rows must compare in order.
const orderedMark = "\x00ordered\x00"

func ordered(sql string) string { return orderedMark + sql }

// pick chooses one of xs. They are all evaluated first, so they must not
// draw parameters (num, str) of their own.
func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// num is an integer in [lo, hi], written inline or, in a statement that
// uses parameters, as the next $n: pgx sends it in Bind in the extended
// protocol and interpolates it client-side in the simple protocol.
func (w *workload) num(lo, hi int) string {
	v := lo + w.r.IntN(hi-lo+1)
	if w.params && w.r.IntN(2) == 0 {
		w.args = append(w.args, v)
		return fmt.Sprintf("$%d", len(w.args))
	}
	return fmt.Sprint(v)
}

// str is a text literal or parameter.
func (w *workload) str(s string) string {
	if w.params && w.r.IntN(2) == 0 {
		w.args = append(w.args, s)
		return fmt.Sprintf("$%d", len(w.args))
	}
	return "'" + s + "'"
}

func (w *workload) team() string { return w.num(1, w.nextTeam) }
func (w *workload) user() string { return w.num(1, w.nextUser) }
func (w *workload) item() string { return w.num(1, w.nextItem) }

// The predicate helpers take the reference (alias or table name) to
// qualify columns with.

func (w *workload) userPred(a string) string {
	switch w.r.IntN(8) {
	case 0:
		return fmt.Sprintf("%s.score > %s", a, w.num(0, 9))
	case 1:
		lo := w.r.IntN(8)
		return fmt.Sprintf("%s.score BETWEEN %d AND %d", a, lo, lo+3)
	case 2:
		return fmt.Sprintf("%s.team_id = %s", a, w.team())
	case 3:
		return a + ".team_id IS NULL"
	case 4:
		return fmt.Sprintf("%s.user_id %% %d = %s", a, 2+w.r.IntN(6), w.num(0, 1))
	case 5:
		return fmt.Sprintf("%s.uname LIKE %s", a, w.str(fmt.Sprintf("u%d%%", 1+w.r.IntN(9))))
	case 6:
		return fmt.Sprintf("%s.user_id IN (%s, %s, %s)", a, w.user(), w.user(), w.user())
	default:
		return fmt.Sprintf("(%s.team_id < %s OR %s.score < %s)", a, w.team(), a, w.num(0, 9))
	}
}

// narrowUserPred matches a few users at most, so deletes do not empty the table.
func (w *workload) narrowUserPred(a string) string {
	switch w.r.IntN(3) {
	case 0:
		return fmt.Sprintf("%s.user_id IN (%s, %s)", a, w.user(), w.user())
	case 1:
		return fmt.Sprintf("%s.user_id %% %d = %s AND %s.score > %s", a, 9+w.r.IntN(8), w.num(0, 8), a, w.num(4, 9))
	default:
		return fmt.Sprintf("%s.user_id = %s", a, w.user())
	}
}

func (w *workload) teamPred(a string) string {
	switch w.r.IntN(4) {
	case 0:
		return fmt.Sprintf("%s.region = %s", a, w.num(1, 3))
	case 1:
		return fmt.Sprintf("%s.team_id > %s", a, w.team())
	case 2:
		return fmt.Sprintf("%s.tname <> %s", a, w.str(fmt.Sprintf("team%d", 1+w.r.IntN(w.nextTeam))))
	default:
		return fmt.Sprintf("%s.team_id %% %d = %s", a, 2+w.r.IntN(3), w.num(0, 1))
	}
}

func (w *workload) orderPred(a string) string {
	switch w.r.IntN(5) {
	case 0:
		return fmt.Sprintf("%s.qty > %s", a, w.num(1, 5))
	case 1:
		return fmt.Sprintf("%s.item_id = %s", a, w.item())
	case 2:
		return a + ".item_id IS NULL"
	case 3:
		return fmt.Sprintf("%s.user_id < %s", a, w.user())
	default:
		return fmt.Sprintf("%s.order_id %% %d = %s", a, 2+w.r.IntN(6), w.num(0, 1))
	}
}

func (w *workload) narrowOrderPred(a string) string {
	switch w.r.IntN(3) {
	case 0:
		return fmt.Sprintf("%s.order_id IN (%s, %s, %s)", a, w.num(1, w.nextOrder), w.num(1, w.nextOrder), w.num(1, w.nextOrder))
	case 1:
		return fmt.Sprintf("%s.order_id %% %d = %s AND %s.qty = %s", a, 11+w.r.IntN(10), w.num(0, 10), a, w.num(1, 5))
	default:
		return fmt.Sprintf("%s.user_id = %s AND %s.qty >= %s", a, w.user(), a, w.num(2, 5))
	}
}

func (w *workload) itemPred(a string) string {
	if w.r.IntN(2) == 0 {
		return fmt.Sprintf("%s.price > %s", a, w.num(1, 20))
	}
	return fmt.Sprintf("%s.item_id %% 3 = %s", a, w.num(0, 2))
}

func (w *workload) queryTemplates() []func() string {
	return []func() string{
		// Single tables, TABLE, spellings of the name the prefilter and
		// rewriter must recognise.
		func() string {
			return "SELECT u.user_id, u.team_id, u.uname, u.score FROM users u WHERE " + w.userPred("u")
		},
		func() string { return "SELECT * FROM users WHERE " + w.userPred("users") },
		func() string { return pick(w.r, "TABLE teams", "TABLE orders", "TABLE items", "TABLE users") },
		func() string {
			return pick(w.r, "SELECT count(*) FROM USERS", `SELECT count(*) FROM "orders"`,
				"SELECT count(*), max(team_id) FROM public.teams", "SELECT count(*) FROM ONLY orders",
				"SELECT pu.user_id FROM public.users pu WHERE pu.score = 3", "SELECT Users.uname FROM Users WHERE Users.score < 2")
		},
		// Inner and comma joins.
		func() string {
			return "SELECT u.user_id, u.uname, t.tname, t.region FROM users u " +
				pick(w.r, "JOIN", "INNER JOIN") + " teams t ON t.team_id = u.team_id WHERE " + w.userPred("u")
		},
		func() string {
			return "SELECT o.order_id, u.uname, i.iname FROM orders o, users u, items i WHERE o.user_id = u.user_id AND i.item_id = o.item_id AND " + w.orderPred("o")
		},
		// Outer joins, where a misplaced filter changes the result.
		func() string {
			return "SELECT u.user_id, t.team_id, t.tname FROM users u LEFT JOIN teams t ON t.team_id = u.team_id AND " + w.teamPred("t")
		},
		func() string {
			return "SELECT t.team_id, t.tname FROM teams t LEFT OUTER JOIN users u ON u.team_id = t.team_id WHERE u.user_id IS NULL"
		},
		func() string {
			return "SELECT o.order_id, u.user_id, u.uname FROM orders o RIGHT JOIN users u ON u.user_id = o.user_id WHERE " + w.userPred("u")
		},
		func() string {
			q := "SELECT t.team_id, u.user_id FROM teams t FULL JOIN users u ON u.team_id = t.team_id"
			switch w.r.IntN(3) {
			case 0:
				return q
			case 1:
				return q + " WHERE t.team_id IS NULL OR u.user_id IS NULL"
			default:
				return q + " AND " + w.userPred("u")
			}
		},
		func() string {
			return "SELECT o.order_id, i.item_id, i.price FROM orders o FULL OUTER JOIN items i ON i.item_id = o.item_id AND " + w.orderPred("o")
		},
		// Cross joins.
		func() string {
			return "SELECT t.team_id, i.item_id FROM teams t CROSS JOIN items i WHERE " + w.itemPred("i") + " AND " + w.teamPred("t")
		},
		func() string { return "SELECT count(*) FROM users CROSS JOIN teams" },
		// USING and NATURAL joins: there is no ON clause to extend.
		func() string {
			return "SELECT team_id, u.uname, t.tname FROM users u " + pick(w.r, "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN") + " teams t USING (team_id)"
		},
		func() string {
			return "SELECT user_id, o.order_id, u.score FROM orders o " + pick(w.r, "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN") +
				" users u USING (user_id) WHERE " + pick(w.r, "u.score > 4", "o.qty < 3", "user_id < 20")
		},
		func() string {
			return pick(w.r, "SELECT * FROM users NATURAL JOIN teams", "SELECT * FROM orders NATURAL LEFT JOIN items",
				"SELECT user_id, uname, order_id FROM users NATURAL FULL JOIN orders", "SELECT * FROM teams NATURAL RIGHT JOIN users",
				"SELECT item_id, count(order_id) FROM items NATURAL LEFT JOIN orders GROUP BY item_id")
		},
		// Nested joins.
		func() string {
			return "SELECT t.team_id, u.user_id, o.order_id FROM teams t LEFT JOIN (users u JOIN orders o ON o.user_id = u.user_id) ON u.team_id = t.team_id WHERE " + w.teamPred("t")
		},
		func() string {
			return "SELECT o.order_id, u.user_id, t.team_id FROM orders o FULL JOIN (users u LEFT JOIN teams t ON t.team_id = u.team_id) ON u.user_id = o.user_id"
		},
		func() string {
			return "SELECT u.user_id, t.team_id, o.order_id FROM (teams t RIGHT JOIN users u ON u.team_id = t.team_id) LEFT JOIN orders o ON o.user_id = u.user_id AND " + w.orderPred("o")
		},
		func() string {
			return "SELECT i.item_id, o.order_id, user_id FROM items i LEFT JOIN (orders o FULL JOIN users u USING (user_id)) ON o.item_id = i.item_id"
		},
		func() string {
			return "SELECT t.team_id, u.user_id, o.order_id FROM teams t FULL JOIN users u ON u.team_id = t.team_id FULL JOIN orders o ON o.user_id = u.user_id WHERE " +
				pick(w.r, "o.order_id IS NULL", "t.team_id IS NULL", "u.user_id IS NULL", "true")
		},
		// Self joins.
		func() string {
			return "SELECT a.user_id, b.user_id FROM users a JOIN users b ON a.team_id = b.team_id AND a.user_id < b.user_id WHERE " + w.userPred("a")
		},
		func() string {
			return "SELECT a.user_id, b.user_id, b.score FROM users a LEFT JOIN users b ON b.user_id = a.user_id + 1"
		},
		// Subqueries: IN, NOT IN, ANY, EXISTS, scalar, LATERAL, derived tables.
		func() string {
			return "SELECT t.team_id, t.tname FROM teams t WHERE t.team_id IN (SELECT u.team_id FROM users u WHERE " + w.userPred("u") + ")"
		},
		func() string {
			return "SELECT t.team_id FROM teams t WHERE t.team_id NOT IN (SELECT u.team_id FROM users u WHERE u.team_id IS NOT NULL AND " + w.userPred("u") + ")"
		},
		func() string {
			return "SELECT o.order_id FROM orders o WHERE o.user_id = ANY (ARRAY(SELECT u.user_id FROM users u WHERE " + w.userPred("u") + "))"
		},
		func() string {
			return "SELECT u.user_id FROM users u WHERE " + pick(w.r, "EXISTS", "NOT EXISTS") +
				" (SELECT 1 FROM orders o WHERE o.user_id = u.user_id AND " + w.orderPred("o") + ")"
		},
		func() string {
			return "SELECT t.team_id, (SELECT count(*) FROM users u WHERE u.team_id = t.team_id) AS n, " +
				"(SELECT max(o.qty) FROM orders o JOIN users u ON u.user_id = o.user_id WHERE u.team_id = t.team_id) AS top FROM teams t"
		},
		func() string {
			return "SELECT u.user_id, u.score FROM users u WHERE u.score >= (SELECT avg(x.score) FROM users x WHERE x.team_id = u.team_id)"
		},
		func() string {
			return "SELECT t.team_id, x.n, x.top FROM teams t, LATERAL (SELECT count(*) AS n, max(u.score) AS top FROM users u WHERE u.team_id = t.team_id) x"
		},
		func() string {
			return "SELECT u.user_id, l.order_id FROM users u LEFT JOIN LATERAL (SELECT o.order_id FROM orders o WHERE o.user_id = u.user_id ORDER BY o.order_id DESC LIMIT 1) l ON true WHERE " + w.userPred("u")
		},
		func() string {
			return "SELECT u.user_id, l.qty FROM users u CROSS JOIN LATERAL (SELECT sum(o.qty) AS qty FROM orders o WHERE o.user_id = u.user_id) l WHERE l.qty > " + w.num(1, 8)
		},
		func() string {
			return "SELECT s.team_id, s.n, t.tname FROM (SELECT team_id, count(*) AS n FROM users GROUP BY team_id) s LEFT JOIN teams t USING (team_id)"
		},
		func() string {
			return "SELECT x.id FROM (SELECT user_id AS id FROM users UNION ALL SELECT order_id FROM orders) x WHERE x.id < " + w.num(5, 60)
		},
		func() string {
			return "SELECT u.user_id, CASE WHEN EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.user_id) THEN 'buyer' ELSE 'idle' END FROM users u"
		},
		func() string {
			return "SELECT v.x, u.uname FROM (VALUES (1), (2), (3), (" + w.user() + ")) v(x) LEFT JOIN users u ON u.user_id = v.x"
		},
		// CTEs: plain, used twice, recursive, shadowing a table name.
		func() string {
			return "WITH big AS (SELECT * FROM orders WHERE " + w.orderPred("orders") + ") SELECT u.uname, count(*) FROM users u JOIN big b ON b.user_id = u.user_id GROUP BY u.uname"
		},
		func() string {
			return "WITH a AS (SELECT team_id, count(*) AS n FROM users GROUP BY team_id), b AS MATERIALIZED (SELECT * FROM teams WHERE " + w.teamPred("teams") +
				") SELECT b.team_id, a.n FROM b LEFT JOIN a ON a.team_id = b.team_id UNION ALL SELECT a.team_id, a.n FROM a"
		},
		func() string {
			return "WITH RECURSIVE chain(user_id, depth) AS (SELECT user_id, 0 FROM users WHERE user_id = " + w.user() +
				" UNION ALL SELECT u.user_id, c.depth + 1 FROM chain c JOIN users u ON u.user_id = c.user_id + 1 WHERE c.depth < 6) SELECT * FROM chain"
		},
		func() string {
			return "WITH RECURSIVE up(n) AS (SELECT min(team_id) FROM teams UNION SELECT t.team_id FROM up JOIN teams t ON t.team_id = up.n + 1) SELECT n FROM up"
		},
		func() string {
			return "WITH users AS (SELECT item_id AS user_id, price AS score FROM items) SELECT * FROM users WHERE score > " + w.num(1, 15)
		},
		func() string {
			return "WITH teams AS (SELECT * FROM teams WHERE " + w.teamPred("teams") +
				") SELECT t.team_id, count(u.user_id) FROM teams t LEFT JOIN users u USING (team_id) GROUP BY t.team_id"
		},
		func() string {
			return "WITH orders AS (SELECT user_id, count(*) AS n FROM orders GROUP BY user_id) SELECT u.user_id, o.n FROM users u JOIN orders o USING (user_id)"
		},
		func() string {
			return "SELECT team_id FROM teams WHERE team_id IN (WITH users AS (SELECT team_id FROM teams WHERE region = " + w.num(1, 3) + ") SELECT team_id FROM users)"
		},
		// Aggregates.
		func() string {
			return "SELECT u.team_id, count(*), sum(u.score), min(u.uname), max(u.user_id) FROM users u GROUP BY u.team_id HAVING count(*) > " + w.num(0, 4)
		},
		func() string {
			return "SELECT t.region, count(DISTINCT u.user_id), sum(o.qty) FROM teams t JOIN users u ON u.team_id = t.team_id LEFT JOIN orders o ON o.user_id = u.user_id GROUP BY t.region HAVING count(*) > 0"
		},
		func() string {
			return "SELECT u.team_id, count(*) FROM users u GROUP BY u.team_id HAVING count(*) >= (SELECT count(*) FROM teams) / 4"
		},
		func() string {
			return "SELECT count(*), count(team_id), avg(score), sum(score) FILTER (WHERE score > 5) FROM users"
		},
		func() string {
			return "SELECT t.region, t.team_id, count(u.user_id) FROM teams t LEFT JOIN users u USING (team_id) GROUP BY ROLLUP (t.region, t.team_id)"
		},
		func() string {
			return "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM teams), (SELECT count(*) FROM orders), (SELECT count(*) FROM items)"
		},
		// Set operations.
		func() string {
			ops := []string{"UNION", "UNION ALL", "INTERSECT", "INTERSECT ALL", "EXCEPT", "EXCEPT ALL"}
			return "SELECT team_id FROM users WHERE " + w.userPred("users") + " " + pick(w.r, ops...) + " SELECT team_id FROM teams WHERE " + w.teamPred("teams")
		},
		func() string {
			return "SELECT user_id FROM orders " + pick(w.r, "INTERSECT", "INTERSECT ALL", "EXCEPT", "EXCEPT ALL") + " SELECT user_id FROM users WHERE " + w.userPred("users")
		},
		func() string {
			return "(SELECT user_id FROM users UNION SELECT user_id FROM orders) EXCEPT SELECT o.user_id FROM orders o WHERE " + w.orderPred("o")
		},
		func() string {
			return ordered("SELECT team_id FROM users UNION SELECT team_id FROM teams ORDER BY 1 LIMIT " + w.num(1, 8))
		},
		func() string {
			return "SELECT u.user_id FROM users u WHERE u.team_id IN (SELECT team_id FROM teams WHERE region = 1 UNION SELECT team_id FROM teams WHERE region = " + w.num(2, 3) + ")"
		},
		// ORDER BY, LIMIT, DISTINCT, windows.
		func() string {
			return ordered("SELECT user_id, uname, score FROM users ORDER BY score DESC, user_id LIMIT " + w.num(1, 10) + " OFFSET " + w.num(0, 5))
		},
		func() string {
			return ordered("SELECT o.order_id, u.uname FROM orders o JOIN users u USING (user_id) ORDER BY o.order_id LIMIT " + w.num(3, 20))
		},
		func() string {
			return ordered("SELECT DISTINCT ON (u.team_id) u.team_id, u.user_id, u.score FROM users u ORDER BY u.team_id, u.score DESC, u.user_id")
		},
		func() string { return "SELECT DISTINCT u.team_id FROM users u" },
		func() string {
			return "SELECT u.user_id, rank() OVER (PARTITION BY u.team_id ORDER BY u.score DESC), count(*) OVER (PARTITION BY u.team_id) FROM users u"
		},
		// Locking reads.
		func() string {
			return "SELECT u.user_id FROM users u WHERE " + w.userPred("u") + pick(w.r, " FOR UPDATE", " FOR SHARE")
		},
		func() string {
			return "SELECT o.order_id, u.user_id FROM orders o JOIN users u ON u.user_id = o.user_id WHERE " + w.orderPred("o") + " FOR UPDATE OF o"
		},
		// Join aliases and column-alias lists hide the table's own name.
		func() string {
			return "SELECT j.team_id, j.uname, o.order_id FROM (users u JOIN teams t USING (team_id)) AS j LEFT JOIN orders o ON o.user_id = j.user_id WHERE " + pick(w.r, "j.score > 3", "j.region = 2", "true")
		},
		func() string {
			return "SELECT x.a, x.c, t.tname FROM users AS x(a, b, c, d) LEFT JOIN teams t ON t.team_id = x.b WHERE x.d > " + w.num(0, 9)
		},
		func() string {
			return "SELECT public.users.user_id, public.teams.tname FROM public.users LEFT JOIN public.teams ON public.teams.team_id = public.users.team_id"
		},
		// Subqueries in ON, ORDER BY, function arguments, row comparisons, ALL.
		func() string {
			return "SELECT u.user_id, t.team_id FROM users u LEFT JOIN teams t ON t.team_id = u.team_id AND EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.user_id AND " + w.orderPred("o") + ")"
		},
		func() string {
			return ordered("SELECT u.user_id FROM users u ORDER BY (SELECT count(*) FROM orders o WHERE o.user_id = u.user_id) DESC, u.user_id LIMIT " + w.num(3, 12))
		},
		func() string {
			return "SELECT t.team_id, coalesce((SELECT max(u.score) FROM users u WHERE u.team_id = t.team_id), -1) FROM teams t"
		},
		func() string {
			return "SELECT u.user_id FROM users u WHERE (u.team_id, u.score) IN (SELECT team_id, max(score) FROM users GROUP BY team_id)"
		},
		func() string {
			return "SELECT u.user_id FROM users u WHERE u.score > ALL (SELECT x.score FROM users x WHERE x.team_id = " + w.team() + ")"
		},
		func() string {
			return "SELECT t.team_id, g FROM teams t, LATERAL generate_series(1, t.region) g WHERE " + w.teamPred("t")
		},
		func() string {
			return "TABLE teams EXCEPT SELECT * FROM teams WHERE " + w.teamPred("teams")
		},
		// CTE scoping: in WITH RECURSIVE the CTE's own name means the CTE
		// inside its body; a later sibling CTE sees an earlier one.
		func() string {
			return "WITH RECURSIVE users AS (SELECT 1 AS user_id UNION ALL SELECT user_id + 1 FROM users WHERE user_id < " + w.num(2, 6) + ") SELECT * FROM users"
		},
		func() string {
			return "WITH teams AS (SELECT * FROM teams WHERE " + w.teamPred("teams") + "), x AS (SELECT team_id FROM teams) SELECT x.team_id, u.user_id FROM x LEFT JOIN users u USING (team_id)"
		},
		// Views and tables made through Tombstone in the workload's setup.
		func() string { return "SELECT * FROM team_sizes WHERE n > " + w.num(0, 4) },
		func() string { return "SELECT team_id, sum(n) FROM user_orders GROUP BY team_id" },
		func() string { return "REFRESH MATERIALIZED VIEW user_orders" },
		func() string {
			return "SELECT f.user_id, u.score FROM first_users f LEFT JOIN users u USING (user_id)"
		},
		// Not a soft-delete table at all.
		func() string {
			return "SELECT i.item_id, i.iname, count(o.order_id) FROM items i LEFT JOIN orders o ON o.item_id = i.item_id GROUP BY i.item_id, i.iname"
		},
	}
}

func (w *workload) deleteTemplates() []func() string {
	return []func() string{
		func() string { return "DELETE FROM users WHERE " + w.narrowUserPred("users") },
		func() string { return "DELETE FROM orders o WHERE " + w.narrowOrderPred("o") },
		func() string {
			return "DELETE FROM orders o WHERE o.user_id IN (SELECT u.user_id FROM users u WHERE " + w.narrowUserPred("u") + ")"
		},
		func() string {
			return "DELETE FROM orders o USING users u WHERE o.user_id = u.user_id AND " + w.narrowUserPred("u")
		},
		func() string {
			return "DELETE FROM users u USING teams t WHERE u.team_id = t.team_id AND t.team_id = " + w.team() + " AND u.score > " + w.num(5, 9)
		},
		func() string { return "DELETE FROM teams WHERE team_id = " + w.team() },
		func() string {
			return "DELETE FROM teams t WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.team_id = t.team_id) AND " + w.teamPred("t")
		},
		func() string {
			return "DELETE FROM users WHERE " + w.narrowUserPred("users") + " RETURNING " + pick(w.r, "*", "user_id, uname", "users.*")
		},
		func() string {
			return "DELETE FROM orders AS o WHERE " + w.narrowOrderPred("o") + " RETURNING o.order_id, o.qty"
		},
		func() string {
			return "DELETE FROM orders o USING users u WHERE o.user_id = u.user_id AND " + w.narrowUserPred("u") + " RETURNING o.*, u.uname"
		},
		func() string { return "DELETE FROM items WHERE item_id = " + w.item() },
		func() string {
			return "WITH doomed AS (SELECT user_id FROM users WHERE " + w.narrowUserPred("users") + ") DELETE FROM orders WHERE user_id IN (SELECT user_id FROM doomed)"
		},
		// A DELETE inside a data-modifying CTE: the tag is the SELECT's.
		func() string {
			return "WITH d AS (DELETE FROM orders o WHERE " + w.narrowOrderPred("o") + " RETURNING o.order_id, o.qty) SELECT count(*), coalesce(sum(qty), 0) FROM d"
		},
		func() string { return "DELETE FROM ONLY orders WHERE order_id = " + w.num(1, w.nextOrder) },
		// An outer join in USING: the nullable side's filter belongs in ON.
		func() string {
			return "DELETE FROM orders o USING users u LEFT JOIN teams t ON t.team_id = u.team_id WHERE o.user_id = u.user_id AND t.team_id IS NULL AND " + w.narrowOrderPred("o")
		},
		func() string { return "DELETE FROM public.users WHERE user_id = " + w.user() },
		func() string {
			return "DELETE FROM orders WHERE order_id IN (SELECT order_id FROM orders WHERE " + w.orderPred("orders") + " ORDER BY order_id LIMIT 2)"
		},
	}
}

func (w *workload) updateTemplates() []func() string {
	return []func() string{
		func() string {
			return fmt.Sprintf("UPDATE users SET score = (score + %d) %% 10 WHERE %s", 1+w.r.IntN(9), w.userPred("users"))
		},
		// UPDATE ... FROM: the new value does not depend on which joined
		// row matched, so the result is deterministic.
		func() string {
			return "UPDATE orders o SET qty = o.qty % 5 + 1 FROM users u WHERE o.user_id = u.user_id AND " + w.userPred("u")
		},
		func() string {
			return "UPDATE users SET team_id = " + w.team() + " WHERE user_id = " + w.user() + " RETURNING user_id, team_id, uname"
		},
		func() string {
			return "UPDATE orders o SET qty = 1 FROM users u LEFT JOIN teams t ON t.team_id = u.team_id WHERE o.user_id = u.user_id AND t.team_id IS NULL AND " + w.orderPred("o")
		},
		func() string {
			return "UPDATE teams SET region = " + w.num(1, 3) + " WHERE team_id IN (SELECT team_id FROM users WHERE " + w.userPred("users") + ")"
		},
		func() string {
			return "UPDATE users u SET score = (SELECT count(*) FROM orders o WHERE o.user_id = u.user_id) % 10 WHERE " + w.userPred("u")
		},
		func() string {
			return fmt.Sprintf("UPDATE users SET uname = 'u' || user_id || 'v%d' WHERE %s RETURNING *", w.r.IntN(5), w.narrowUserPred("users"))
		},
	}
}

func (w *workload) insertTemplates() []func() string {
	userRow := func() string {
		team := "NULL"
		if w.r.IntN(8) != 0 {
			team = w.num(1, w.nextTeam+1) // sometimes a team that does not exist
		}
		id := w.nextUser
		w.nextUser++
		return fmt.Sprintf("(%d, %s, 'u%d', %s)", id, team, id, w.num(0, 9))
	}
	orderRow := func() string {
		item := "NULL"
		if w.r.IntN(10) != 0 {
			item = w.item()
		}
		id := w.nextOrder
		w.nextOrder++
		return fmt.Sprintf("(%d, %s, %s, %s)", id, w.num(1, w.nextUser), item, w.num(1, 5))
	}
	rows := func(row func() string) string {
		n := 1 + w.r.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = row()
		}
		return strings.Join(parts, ", ")
	}
	return []func() string{
		func() string { return "INSERT INTO users (user_id, team_id, uname, score) VALUES " + rows(userRow) },
		func() string { return "INSERT INTO users (user_id, team_id, uname, score) VALUES " + rows(userRow) },
		func() string {
			return "INSERT INTO orders (order_id, user_id, item_id, qty) VALUES " + rows(orderRow) + pick(w.r, "", " RETURNING order_id, user_id")
		},
		func() string { return "INSERT INTO orders (order_id, user_id, item_id, qty) VALUES " + rows(orderRow) },
		func() string {
			id := w.nextTeam
			w.nextTeam++
			return fmt.Sprintf("INSERT INTO teams (team_id, tname, region) VALUES (%d, 'team%d', %s)", id, id, w.num(1, 3))
		},
		func() string {
			id := w.nextItem
			w.nextItem++
			return fmt.Sprintf("INSERT INTO items VALUES (%d, 'item%d', %s)", id, id, w.num(1, 20))
		},
		// INSERT ... SELECT reads a soft-delete table: only live users get
		// orders. Each user gets at most one new order, so nextUser ids
		// are enough room.
		func() string {
			base := w.nextOrder
			w.nextOrder += w.nextUser + 1
			// The item is inline: a parameter in a select list has no type to infer.
			return fmt.Sprintf("INSERT INTO orders (order_id, user_id, item_id, qty) SELECT %d + row_number() OVER (ORDER BY u.user_id), u.user_id, %d, 1 FROM users u WHERE %s",
				base, 1+w.r.IntN(w.nextItem), w.narrowUserPred("u"))
		},
	}
}

// merge deletes and updates through MERGE (PostgreSQL 15 has no RETURNING
// for it). Values are inline: a parameter in VALUES has no type to infer.
// NOT MATCHED inserts only fresh ids: a soft-deleted row keeps its key.
func (w *workload) merge() string {
	ids := func(max int) string {
		return fmt.Sprintf("(VALUES (%d), (%d), (%d)) s(id)", 1+w.r.IntN(max), 1+w.r.IntN(max), 1+w.r.IntN(max))
	}
	switch w.r.IntN(3) {
	case 0:
		return fmt.Sprintf("MERGE INTO users u USING (SELECT DISTINCT id FROM %s) s ON u.user_id = s.id WHEN MATCHED AND u.score > %d THEN DELETE WHEN MATCHED THEN UPDATE SET score = (u.score + 1) %% 10",
			ids(w.nextUser), w.r.IntN(10))
	case 1:
		return fmt.Sprintf("MERGE INTO orders o USING users s ON o.user_id = s.user_id AND s.user_id IN (%d, %d) WHEN MATCHED AND o.qty > %d THEN DELETE",
			1+w.r.IntN(w.nextUser), 1+w.r.IntN(w.nextUser), w.r.IntN(5))
	default:
		fresh := w.nextTeam
		w.nextTeam++
		return fmt.Sprintf("MERGE INTO teams t USING (VALUES (%d), (%d)) s(id) ON t.team_id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED AND s.id >= %d THEN INSERT (team_id, tname, region) VALUES (s.id, 'team' || s.id, 2)",
			1+w.r.IntN(fresh-1), fresh, fresh)
	}
}

// copyTo reads a table or a query with COPY ... TO STDOUT.
func (w *workload) copyTo() string {
	return pick(w.r, "COPY users TO STDOUT", "COPY orders (order_id, user_id, qty) TO STDOUT WITH (FORMAT csv)", "COPY teams TO STDOUT",
		"COPY (SELECT t.team_id, count(u.user_id) FROM teams t LEFT JOIN users u USING (team_id) GROUP BY t.team_id) TO STDOUT",
		"COPY (SELECT o.order_id, u.uname FROM orders o JOIN users u ON u.user_id = o.user_id WHERE o.qty > 2) TO STDOUT WITH (FORMAT csv, HEADER)")
}
