package rewrite

import (
	"slices"
	"strings"
	"testing"
)

// probeCases are the second review's attempts to make the splicer place
// text where the tree does not say (issue 13): clause keywords and
// unlocated tokens at an expression's end (casts, IS NULL, COLLATE,
// subscripts), labels that look like keywords (AS for, c.for, an alias
// named within before GROUP BY), comments at insertion points, nested
// comments, multibyte text before an edit, E and U& strings (UESCAPE), dollar
// quotes, set operations with parenthesized arms and trailing clauses,
// CTEs with SEARCH/CYCLE, DELETE with comments between its keywords.
// None made the spliced text mean something else; they stay as
// regression cases and as FuzzSplice seeds.
var probeCases = []string{
	"SELECT * FROM contacts within GROUP BY ()",
	"SELECT count(*) FROM contacts within GROUP BY () FOR UPDATE",
	"SELECT * FROM contacts c WHERE c.id = 1 -- x\n",
	"SELECT * FROM contacts c -- x\n",
	"SELECT * FROM contacts c WHERE c.name = 'é' AND c.id = 1",
	"SELECT 'é'; SELECT * FROM contacts c WHERE c.id = 1",
	"SELECT * FROM contacts c WHERE c.x::int[] IS NOT NULL",
	"SELECT * FROM contacts c WHERE c.x COLLATE \"C\" = 'a'",
	"SELECT * FROM contacts c WHERE c.x = 'a' COLLATE \"C\"",
	"SELECT * FROM contacts c WHERE (c.x)[1]",
	"SELECT * FROM contacts c WHERE (c.x).f",
	"SELECT * FROM contacts c WHERE c.x IS NULL",
	"SELECT * FROM contacts c WHERE c.x IS TRUE",
	"SELECT * FROM contacts c WHERE c.x IS DOCUMENT",
	"SELECT * FROM contacts c WHERE c.x IS NORMALIZED",
	"SELECT * FROM contacts c WHERE c.x IS JSON WITH UNIQUE KEYS",
	"SELECT * FROM contacts c WHERE c.x AT TIME ZONE 'utc' > now()",
	"SELECT * FROM contacts c WHERE c.x > now() AT LOCAL",
	"SELECT * FROM contacts c WHERE c.x::timestamp with time zone > now()",
	"SELECT * FROM contacts c WHERE c.x > '1'::interval hour to second",
	"SELECT * FROM contacts c WHERE c.x > interval '1' hour",
	"SELECT * FROM contacts c FETCH FIRST ROW ONLY",
	"SELECT * FROM contacts c FETCH FIRST ROWS WITH TIES",
	"SELECT * FROM contacts c ORDER BY 1 FETCH FIRST ROW WITH TIES",
	"SELECT * FROM contacts c FOR UPDATE",
	"SELECT * FROM contacts c FOR NO KEY UPDATE SKIP LOCKED",
	"SELECT * FROM contacts c LIMIT ALL",
	"SELECT * FROM contacts c OFFSET 1 ROWS",
	"SELECT * FROM ONLY contacts",
	"SELECT * FROM contacts c, LATERAL (SELECT * FROM orders o WHERE o.cid = c.id) x",
	"SELECT * FROM contacts c CROSS JOIN LATERAL (SELECT 1) x",
	"SELECT * FROM contacts TABLESAMPLE SYSTEM (1) REPEATABLE (1)",
	"SELECT * FROM contacts c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.id = c.id FOR UPDATE)",
	"(SELECT * FROM contacts) ORDER BY 1",
	"(SELECT * FROM contacts) UNION (SELECT * FROM orders) ORDER BY 1 LIMIT 1",
	"SELECT 1 FROM contacts UNION SELECT 1 FROM orders ORDER BY 1 FOR UPDATE",
	"SELECT 1 FROM contacts UNION ALL (SELECT 1 FROM orders ORDER BY 1 LIMIT 1)",
	"SELECT 1 FROM contacts UNION ALL SELECT 1 FROM orders FETCH FIRST 1 ROW ONLY",
	"SELECT 1 FROM contacts UNION ALL SELECT 1 FROM orders OFFSET 1",
	"WITH RECURSIVE r(n) AS (SELECT id FROM contacts UNION ALL SELECT n FROM r) SEARCH DEPTH FIRST BY n SET o SELECT * FROM r",
	"WITH RECURSIVE r(n) AS (SELECT id FROM contacts UNION ALL SELECT n FROM r) CYCLE n SET c USING p SELECT * FROM r",
	"WITH x AS MATERIALIZED (SELECT * FROM contacts) SELECT * FROM x",
	"UPDATE contacts SET name = 'x' WHERE CURRENT OF cur",
	"DELETE FROM contacts WHERE CURRENT OF cur",
	"DELETE FROM contacts RETURNING *",
	"DELETE FROM contacts c RETURNING c.*",
	"DELETE FROM contacts -- x\n WHERE id = 1",
	"DELETE FROM contacts WHERE id = 1 -- x\n RETURNING id",
	"SELECT ';' ; SELECT * FROM contacts",
	"SELECT $$;$$; SELECT * FROM contacts; SELECT $a$ ; $a$",
	"SELECT E'\\';' ; SELECT * FROM contacts",
	"SELECT U&'d\\0061t' ; SELECT * FROM contacts",
	"SELECT U&'d!0061t' UESCAPE '!' ; SELECT * FROM contacts c WHERE c.id = U&'x!0061' UESCAPE '!'",
	"SELECT * FROM contacts c WHERE c.id = U&'x!0061' UESCAPE '!'",
	"SELECT * FROM contacts c WHERE c.id = U&'x' UESCAPE '!' ORDER BY 1",
	"SELECT * FROM contacts /* /* nested */ WHERE */ c",
	"SELECT * FROM contacts c /* /* */ */ WHERE c.id = 1",
	"SELECT * FROM contacts c WHERE c.id = 1 /* a -- */",
	"SELECT * FROM contacts c WHERE c.id = 1 --",
	"SELECT * FROM contacts c WHERE c.id = 1\r-- x\rORDER BY 1",
	"SELECT substring('abc' from 1 for 2) FROM contacts",
	"SELECT * FROM contacts WHERE overlay('abc' placing 'x' from 1 for 1) = 'x'",
	"SELECT * FROM contacts WHERE x = ANY (ARRAY[1]) ORDER BY x USING <",
	"SELECT * FROM contacts ORDER BY x USING <",
	"SELECT count(*) FILTER (WHERE x) OVER w FROM contacts WINDOW w AS ()",
	"SELECT * FROM contacts WHERE x IS NOT DISTINCT FROM y",
	"SELECT * FROM contacts WHERE x BETWEEN SYMMETRIC 1 AND 2",
	"SELECT * FROM contacts WHERE x LIKE 'a' ESCAPE '!'",
	"SELECT * FROM contacts WHERE x SIMILAR TO 'a' ESCAPE '!'",
	"SELECT * FROM contacts WHERE x OPERATOR(pg_catalog.=) 1",
	"SELECT * FROM contacts WHERE - x = 1",
	"SELECT * FROM contacts WHERE x = 1 !",
	"SELECT * FROM contacts WHERE NOT x",
	"SELECT * FROM contacts WHERE x IN (1) IS TRUE",
	"SELECT * FROM contacts WHERE ROW(1) IS NULL",
	"SELECT * FROM contacts WHERE x = 1 OR y = 2",
	"SELECT * FROM contacts WHERE x = 1 ORDER BY x NULLS FIRST",
	"SELECT * FROM contacts c JOIN orders o ON o.id = c.id::int WHERE true",
	"SELECT * FROM notes n LEFT JOIN contacts c ON c.id = n.id::text COLLATE \"C\"",
	"SELECT * FROM notes n LEFT JOIN contacts c ON c.id IS NULL",
	"SELECT * FROM notes n LEFT JOIN contacts c ON c.b IS TRUE",
	"SELECT * FROM notes n LEFT JOIN contacts c ON c.id = n.id OR c.x, orders o",
	"SELECT * FROM notes n LEFT JOIN contacts c ON c.id = n.id LEFT JOIN orders o ON o.id = c.id OR true",
	"SELECT * FROM notes n LEFT JOIN contacts c ON c.x = ANY (ARRAY[1]) WHERE n.x",
	"SELECT * FROM notes n LEFT JOIN (contacts c JOIN orders o ON o.id = c.id) ON c.x",
	"SELECT * FROM notes n LEFT JOIN contacts c ON c.x -- z\n WHERE n.x",
	"SELECT * FROM notes n RIGHT JOIN contacts c ON c.x",
	"SELECT * FROM notes n LEFT OUTER JOIN contacts c ON c.x AND n.y",
	"INSERT INTO archive SELECT * FROM contacts ON CONFLICT (id) WHERE true DO UPDATE SET x = 1",
	"INSERT INTO archive SELECT * FROM contacts c WHERE c.x RETURNING *",
	"INSERT INTO archive (a) OVERRIDING SYSTEM VALUE SELECT * FROM contacts",
	"INSERT INTO archive VALUES (1) ON CONFLICT DO NOTHING",
	"EXPLAIN SELECT * FROM contacts",
	"EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM contacts c WHERE c.id = 1",
	"EXPLAIN ANALYZE VERBOSE DELETE FROM contacts",
	"DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT * FROM contacts FOR UPDATE",
	"DECLARE c CURSOR FOR SELECT * FROM contacts FOR READ ONLY",
	"PREPARE p AS DELETE FROM contacts WHERE id = $1",
	"PREPARE p AS SELECT * FROM contacts",
	"CREATE VIEW v AS SELECT * FROM contacts",
	"CREATE TABLE x AS SELECT * FROM contacts WITH NO DATA",
	"SELECT * INTO TEMP x FROM contacts",
	"SELECT * FROM contacts c WHERE c.id = (SELECT 1 FROM orders o)",
	"SELECT (SELECT 1 FROM orders o) FROM contacts c",
	"SELECT (SELECT 1 FROM orders o LIMIT 1)::int FROM contacts c",
	"SELECT ARRAY(SELECT 1 FROM orders o) FROM contacts c",
	"SELECT * FROM contacts c WHERE c.id IN (SELECT id FROM orders) IS NOT TRUE",
	"SELECT * FROM (SELECT * FROM orders) AS s(a, b)",
	"SELECT * FROM (SELECT * FROM orders o ORDER BY 1) s",
	"SELECT * FROM (VALUES (1)) v, contacts",
	"SELECT * FROM contacts, (VALUES (1)) v",
	"SELECT * FROM contacts, unnest(ARRAY[1]) WITH ORDINALITY",
	"SELECT * FROM contacts, ROWS FROM (generate_series(1,2)) AS g",
	"SELECT * FROM contacts, XMLTABLE('/a' PASSING '<a/>' COLUMNS x int PATH 'x')",
	"SELECT * FROM contacts, JSON_TABLE('[]', '$[*]' COLUMNS (x int PATH '$')) jt",
	"SELECT DISTINCT ON (id) * FROM contacts",
	"SELECT ALL * FROM contacts",
	"SELECT FROM contacts",
	"SELECT * FROM contacts c WHERE c.id = 1 GROUP BY GROUPING SETS ((), (c.id))",
	"SELECT * FROM contacts c GROUP BY ROLLUP (c.id)",
	"SELECT * FROM contacts c GROUP BY DISTINCT c.id",
	"SELECT * FROM contacts c HAVING true",
	"SELECT 1 FROM contacts WINDOW w AS (PARTITION BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE TIES)",
	"SELECT * FROM contacts c WHERE c.id = 1 UNION SELECT * FROM orders WHERE x",
	"SELECT * FROM contacts c WHERE c.x = 'a''b' ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = $tag$ where $tag$",
	"SELECT * FROM contacts c WHERE c.x = B'101'",
	"SELECT * FROM contacts c WHERE c.x = X'ff'",
	"SELECT * FROM contacts c WHERE c.x = N'abc'",
	"SELECT * FROM contacts c WHERE c.x = 'a'\n'b'",
	"SELECT * FROM contacts c WHERE c.x = 'a' -- q\n'b'",
	"SELECT * FROM contacts c WHERE c.x = 1e5",
	"SELECT * FROM contacts c WHERE c.x = 0x1F",
	"SELECT * FROM contacts c WHERE c.x = 1_000",
	"SELECT * FROM contacts c WHERE c.x = 1.",
	"SELECT * FROM contacts c WHERE c.x = .5",
	"SELECT * FROM \"contacts\" WHERE \"x\" = 1",
	"SELECT * FROM public.contacts WHERE x = 1",
	"SELECT * FROM U&\"cont\\0061cts\" WHERE x = 1",
	"SELECT * FROM contacts WHERE x = 1;;",
	"SELECT * FROM contacts WHERE x = 1; ; SELECT * FROM orders",
	"  \n SELECT * FROM contacts",
	"/* lead */ SELECT * FROM contacts",
	"SELECT * FROM contacts c WHERE c.x = 'é' ORDER BY c.name COLLATE \"é\"",
	"SELECT \"é\" FROM contacts \"é\" WHERE \"é\".x",
	"SELECT * FROM contacts WHERE x = 1 IS NOT NULL",
	"SELECT * FROM contacts WHERE x ISNULL",
	"SELECT * FROM contacts WHERE x NOTNULL",
	"SELECT * FROM contacts WHERE x NOTNULL ORDER BY 1",
	"SELECT * FROM notes n LEFT JOIN contacts c ON c.x NOTNULL",
	"SELECT * FROM notes n LEFT JOIN contacts c ON c.x ISNULL WHERE c.y",
	"UPDATE contacts SET x = 1 WHERE y NOTNULL RETURNING *",
	"DELETE FROM contacts WHERE y ISNULL RETURNING *",
	"DELETE FROM contacts WHERE y IS UNKNOWN",
	"SELECT * FROM contacts WHERE x::text::int",
	"SELECT * FROM contacts WHERE x = 1::int ORDER BY 1",
	"SELECT * FROM contacts WHERE x = ARRAY[1][1]",
	"SELECT * FROM contacts WHERE x[1]",
	"SELECT * FROM contacts WHERE x[1:2] IS NULL",
	"SELECT * FROM contacts c WHERE (c).x",
	"SELECT * FROM contacts c WHERE c.* IS NULL",
	"SELECT * FROM contacts WHERE x = 1 UNION ALL SELECT * FROM contacts WHERE x = 2 ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.d = DATE '2020-01-01'",
	"SELECT * FROM contacts c WHERE c.d = TIMESTAMP WITH TIME ZONE '2020-01-01'",
	"SELECT * FROM contacts c WHERE c.d = int '1'",
	"SELECT * FROM contacts c WHERE c.x = CURRENT_DATE",
	"SELECT * FROM contacts c WHERE c.x = CURRENT_USER",
	"SELECT * FROM contacts c WHERE c.x = CURRENT_TIMESTAMP(0)",
	"SELECT * FROM contacts c WHERE c.x = SESSION_USER ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = DEFAULT",
	"UPDATE contacts SET x = DEFAULT",
	"UPDATE contacts SET (a, b) = (SELECT 1, 2) RETURNING *",
	"UPDATE contacts c SET x = 1 FROM orders o, notes n",
	"UPDATE ONLY contacts * SET x = 1",
	"SELECT * FROM contacts WHERE x = 1 AND true",
	"SELECT * FROM contacts WHERE TRUE",
	"SELECT * FROM contacts WHERE NULL",
	"SELECT * FROM contacts WHERE $1",
	"SELECT * FROM contacts WHERE CASE WHEN x THEN true END",
	"SELECT * FROM contacts WHERE COALESCE(x, y)",
	"SELECT * FROM contacts WHERE GREATEST(x, y) > 1",
	"SELECT * FROM contacts WHERE x = SOME (SELECT 1)",
	"SELECT * FROM contacts WHERE EXISTS (SELECT 1) ORDER BY 1",
	"SELECT * FROM contacts WHERE x IS OF (int)",
	"SELECT * FROM contacts WHERE JSON_EXISTS(x, '$')",
	"SELECT * FROM contacts WHERE x IS JSON",
	"SELECT * FROM contacts WHERE x IS JSON OBJECT",
	"SELECT * FROM contacts WHERE xmlexists('/a' PASSING BY VALUE x)",
	"SELECT * FROM contacts WHERE x = y::character varying(3)",
	"SELECT * FROM contacts WHERE x = y::bit varying",
	"SELECT * FROM contacts WHERE x = y::setof int",
	"SELECT * FROM contacts WHERE x = y::int array",
	"SELECT * FROM contacts WHERE x = y::int array[3]",
	"SELECT * FROM contacts WHERE x = y::national character",
	"SELECT * FROM contacts WHERE x = y::time without time zone",
	"SELECT * FROM contacts WHERE x = y::timestamp(3) with time zone ORDER BY 1",
	"SELECT * FROM contacts WHERE x = y::interval year to month",
	"SELECT * FROM contacts WHERE x = y::interval second(3)",
	"SELECT * FROM contacts WHERE x = y::double precision",
	"SELECT * FROM contacts WHERE x = y::pg_catalog.int4",
	"SELECT * FROM contacts WHERE x = y::%TYPE",
	"SELECT * FROM contacts WHERE x = y::int4[]",
	"(SELECT 1 FROM contacts) UNION ALL (SELECT 1 FROM orders) LIMIT 1",
	"SELECT 1 FROM contacts UNION ALL SELECT 1 FROM orders LIMIT ALL",
	"SELECT 1 FROM contacts EXCEPT ALL SELECT 1 FROM orders FETCH FIRST ROW ONLY",
	"SELECT 1 FROM contacts c UNION SELECT 1 FROM orders ORDER BY 1 OFFSET 2 ROWS FETCH NEXT 3 ROWS ONLY",
	"INSERT INTO archive SELECT 1 FROM contacts UNION SELECT 1 FROM orders RETURNING *",
	"EXPLAIN SELECT 1 FROM contacts UNION SELECT 1 FROM orders",
	"DECLARE c CURSOR FOR SELECT 1 FROM contacts UNION SELECT 1 FROM orders",
	"SELECT * FROM contacts WHERE id IN (SELECT 1 FROM orders UNION SELECT 2 FROM contacts ORDER BY 1 LIMIT 1)",
	"WITH x AS (SELECT 1 FROM contacts UNION ALL SELECT 1 FROM orders) SELECT * FROM x UNION SELECT 1 FROM contacts",
	"VALUES (1) UNION SELECT 1 FROM contacts",
	"SELECT 1 FROM contacts UNION VALUES (1)",
	"SELECT 1 FROM contacts UNION TABLE orders",
	"SELECT 1 FROM contacts UNION SELECT 1 FROM orders o LEFT JOIN contacts c ON c.x",
	"SELECT 1 FROM contacts UNION SELECT UNION SELECT 1 FROM orders",
	"(SELECT FROM contacts UNION SELECT) UNION SELECT FROM orders",
	"SELECT * FROM (SELECT FROM contacts UNION SELECT) s",
	"SELECT 1 FROM contacts UNION (SELECT 1 FROM orders UNION SELECT 2 FROM contacts) ORDER BY 1",
	"SELECT 1 FROM contacts INTERSECT SELECT 1 FROM orders UNION SELECT 1 FROM contacts c WHERE c.x",
	"SELECT 1 FROM contacts UNION SELECT 1 FROM orders INTERSECT SELECT 1 FROM contacts c WHERE c.x",
	"SELECT 1 FROM contacts UNION SELECT 1 FROM orders WHERE x UNION SELECT 1 FROM contacts ORDER BY 1",
	"DELETE -- c\n FROM contacts WHERE id = 1",
	"DELETE /* a */ FROM /* b */ contacts /* c */ WHERE /* d */ id = 1 /* e */",
	"DELETE FROM contacts c -- c\nUSING orders o WHERE o.x = c.x",
	"DELETE FROM contacts USING orders o, notes n",
	"DELETE FROM contacts USING orders o LEFT JOIN contacts c ON c.x",
	"DELETE FROM contacts WHERE x IN (SELECT 1 FROM orders)",
	"SELECT 1; DELETE FROM contacts; SELECT 2",
	"WITH d AS (DELETE FROM contacts RETURNING *), e AS (DELETE FROM orders o USING d WHERE o.x = d.x RETURNING o.*) SELECT * FROM e",
	"WITH d AS (UPDATE contacts SET x = 1 RETURNING *) DELETE FROM orders",
	"EXPLAIN (ANALYZE) WITH d AS (DELETE FROM contacts RETURNING *) SELECT 1",
	"DELETE FROM s1.accounts WHERE x",
	"DELETE FROM public.contacts AS pc WHERE pc.x",
	"DELETE FROM \"contacts\" WHERE \"contacts\".x",
	"SELECT * FROM contacts c WHERE c.x *-- c\n 1",
	"SELECT * FROM contacts c WHERE c.x !=-- c\n 1 ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x +/* c */ 1",
	"SELECT * FROM contacts c WHERE c.x </**/ 1 LIMIT 1",
	"SELECT a$b$ FROM contacts c WHERE c.x = 1",
	"SELECT * FROM contacts a$b$ WHERE a$b$.x = 1",
	"SELECT * FROM contacts a$b$ ORDER BY 1",
	"SELECT * FROM contacts é$ ORDER BY 1",
	"SELECT * FROM contacts x$1 ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = $1$a$",
	"SELECT 1AS x FROM contacts",
	"SELECT 1.e5x FROM contacts",
	"SELECT * FROM contacts c WHERE c.x = 1..2",
	"SELECT * FROM contacts c WHERE c.x = 1.2.3",
	"SELECT * FROM contacts c WHERE c.x = 1e+",
	"SELECT * FROM contacts c WHERE c.x = 'a' 'b'",
	"SELECT * FROM contacts c WHERE c.x = 'a'\n 'b' ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = e'a\\'b' ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = E'a\\\\' ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = $$a$$$$b$$",
	"SELECT * FROM contacts c WHERE c.x = $a$ $b$ $a$ ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = $a$ $A$ $a$ ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = U&'\\+000061' ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = u&\"a\" UESCAPE '\\'",
	"SELECT * FROM contacts c WHERE c.x = U&'a' uescape '#' ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = U&'a'   UESCAPE   '#'",
	"SELECT * FROM contacts c WHERE c.x = U&'a' /* c */ UESCAPE '#'",
	"SELECT * FROM contacts c WHERE c.x = U&'a' -- c\n UESCAPE '#'",
	"SELECT * FROM contacts c WHERE c.x = U&'a'\nUESCAPE '#' ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = b'1' ::bit",
	"SELECT * FROM contacts c WHERE c.x = x'1'",
	"SELECT * FROM contacts c WHERE c.x = n'1' ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = 0o17 ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = 0b1_0 ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = 1_000.000_1 ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x = .1e-3 ORDER BY 1",
	"SELECT * FROM contacts c /* a /* b */ c */ ORDER BY 1",
	"SELECT * FROM contacts c /* a /* b */ c ORDER BY 1 */ WHERE true",
	"SELECT * FROM contacts c /*/ ORDER BY */ WHERE true",
	"SELECT * FROM contacts c /**/ /*/**/*/ WHERE true",
	"SELECT * FROM contacts c --\r\n ORDER BY 1",
	"SELECT * FROM contacts c --\f ORDER BY 1\n",
	"SELECT * FROM contacts c --\v ORDER BY 1\n",
	"SELECT * FROM contacts c\f",
	"SELECT * FROM contacts c\v",
	"SELECT * FROM contacts\u00a0c",
	"SELECT * FROM contacts c\u3000",
	"SELECT * FROM contacts c ORDER BY c.x ->> 'a'",
	"SELECT * FROM contacts c WHERE c.x @@ 'a' ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.x ?| array['a']",
	"SELECT * FROM contacts c WHERE c.x = :x",
	"SELECT * FROM contacts c WHERE c.x = :'x'",
	"SELECT * FROM contacts \"c\"\"d\" WHERE \"c\"\"d\".x",
	"SELECT * FROM contacts \"where\" ORDER BY 1",
	"SELECT * FROM contacts AS \"order\"",
	"SELECT * FROM contacts \"ORDER\" ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.\"for\" = 1 ORDER BY 1",
	"SELECT * FROM contacts c WHERE c.for = 1 ORDER BY 1",
	"SELECT * FROM contacts c WHERE c. for = 1 ORDER BY 1",
	"SELECT * FROM contacts c WHERE c./**/for = 1 ORDER BY 1",
	"SELECT c.order FROM contacts c ORDER BY 1",
	"SELECT x AS for FROM contacts c ORDER BY 1",
	"SELECT x AS /* c */ for FROM contacts c ORDER BY 1",
	"SELECT x order FROM contacts",
	"SELECT x within FROM contacts c GROUP BY 1",
	"SELECT * FROM contacts within WHERE within.x GROUP BY 1",
	"SELECT * FROM contacts AS within GROUP BY ()",
	"SELECT * FROM contacts AS within GROUP BY 1",
	"SELECT 1 FROM contacts c WHERE c.x = within GROUP BY ()",
	"SELECT 1 FROM notes n LEFT JOIN contacts within ON within.x GROUP BY ()",
	"SELECT * FROM contacts c WHERE c.x IN (SELECT 1 FROM orders within GROUP BY ())",
	"DECLARE c CURSOR FOR SELECT * FROM contacts within GROUP BY () FOR UPDATE",
	"SELECT 1 FROM contacts within GROUP BY () UNION SELECT 1",
	"SELECT 1 FROM contacts within GROUP BY (), () ORDER BY 1",
}

// TestSpliceProbes runs the differential check on probeCases.
func TestSpliceProbes(t *testing.T) {
	p := testPolicy(t)
	n := 0
	for _, sql := range probeCases {
		msg, s := spliceDiff(p, sql)
		if s {
			n++
		}
		if msg != "" {
			t.Errorf("%s\n sql: %q", msg, sql)
		}
	}
	t.Logf("%d of %d spliced", n, len(probeCases))
}

// A template compiled from spliced output answers texts whose literals
// hold newlines, comment openers and quotes as the exact path does.
func TestSpliceTemplateLiterals(t *testing.T) {
	p := testPolicy(t)
	shapes := []string{
		"SELECT * FROM contacts c WHERE c.x = %s",
		"SELECT * FROM contacts c WHERE c.x = %s -- t\n",
		"SELECT * FROM contacts c WHERE c.x = %s\n ORDER BY 1",
		"SELECT * FROM contacts c WHERE c.x = %s/* a */ORDER BY 1",
		"SELECT * FROM contacts c WHERE c.x = %s\n",
		"SELECT * FROM contacts c LIMIT %s",
		"SELECT * FROM contacts c OFFSET %s\n",
		"SELECT %s FROM contacts c",
		"SELECT * FROM notes n LEFT JOIN contacts c ON c.x = %s\n",
		"SELECT * FROM notes n LEFT JOIN contacts c ON c.x = %s WHERE n.y = %s",
		"DELETE FROM contacts WHERE id = %s\n",
		"DELETE FROM contacts WHERE id = %s RETURNING %s",
		"UPDATE contacts SET x = %s",
		"UPDATE contacts SET x = %s -- z\n",
		"SELECT %s; SELECT * FROM contacts WHERE x = %s",
		"SELECT * FROM contacts WHERE x = %s; SELECT %s",
		"INSERT INTO archive SELECT %s FROM contacts ON CONFLICT DO NOTHING",
	}
	lits := []string{"'a'", "1", "'\n'", "'--'", "'-- x\n'", "'/*'", "'*/'", "''''", "'a''\nb'", "1.5", "12345678901", "'é'", "';'", "'$$'", "'\r'", "0"}
	exact := New(p, 0)
	templated := New(p, 1<<20)
	for _, shape := range shapes {
		for _, a := range lits {
			for _, b := range []string{"'q'", "2", "'\n--'"} {
				sql := strings.Replace(strings.Replace(shape, "%s", a, 1), "%s", b, 1)
				want, _, wr := exact.Rewrite(sql)
				got, _, gr := templated.Rewrite(sql)
				if msg := sameAnswer(want, wr, got, gr); msg != "" {
					t.Errorf("%s\n sql: %q", msg, sql)
				}
				checkSplice(t, p, sql)
			}
		}
	}
}

// Spliced texts with comments at the insertion points, labels that look
// like clause keywords and multi-statement texts, run on PostgreSQL: no
// deleted contact is read, and the DELETE is a soft one.
func TestSplicedTextsOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	c, send := softDB(t)
	r := New(testPolicy(t), 0)
	live := map[string]bool{"1": true, "2": true, "4": true, "6": true, "7": true, "12": true}
	for _, sql := range []string{
		"SELECT id FROM contacts -- where are the deleted?\n",
		"SELECT id FROM contacts c WHERE c.id > 0 -- and\n OR true",
		"SELECT id FROM contacts c WHERE c.id > 0 /* -- */ OR true ORDER BY 1",
		"SELECT within.id FROM contacts within WHERE within.id > 0 OR true GROUP BY within.id",
		"SELECT 'é;--' AS \"é\"; SELECT c.id FROM contacts c WHERE c.name <> 'é' OR true -- é\n",
		"SELECT n.id FROM notes n LEFT JOIN contacts c ON c.id = n.contact_id -- on\n WHERE c.id IS NOT NULL",
		"SELECT id FROM contacts WHERE id IN (1, 3, 5, 8) OR id IS NULL FOR UPDATE",
		"SELECT id FROM contacts UNION ALL SELECT id FROM contacts c WHERE c.id > 0 OR true ORDER BY 1 LIMIT 100",
		"SELECT id FROM contacts c WHERE c.name = U&'c!0069d' UESCAPE '!' OR c.id = 5",
		"SELECT id FROM contacts c WHERE c.name = $q$cid$q$ OR c.id = 8 -- $q$\n",
	} {
		checkSplice(t, r.policy, sql)
		res, err := send(sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		last := res[len(res)-1]
		for _, row := range last.Rows {
			if id := string(row[0]); !live[id] {
				t.Errorf("%q read deleted or unknown contact %s", sql, id)
			}
		}
	}
	if _, err := send("DELETE -- gone\n FROM contacts /* x */ WHERE id = 1 -- y\n OR id = 2"); err != nil {
		t.Fatal(err)
	}
	if got := queryRows(t, c, "SELECT id, deleted_at IS NOT NULL FROM contacts WHERE id IN (1, 2) ORDER BY id"); !slices.Equal(got, []string{"1|t", "2|t"}) {
		t.Errorf("after the spliced DELETE contacts 1 and 2 are %v, want both kept and soft-deleted", got)
	}
}
