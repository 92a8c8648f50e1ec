package rewrite

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
)

func TestTemplateScan(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want string // the template; "" means not templated
	}{
		{"SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE id = $1"},
		{"SELECT 'it''s', 'a' || 'b'", "SELECT $1, $2 || $3"},
		{"SELECT -1, - 1, x-1, +2", "SELECT -$1, - $2, x-$3, +$4"},
		{"SELECT '5'::int, 5::text", "SELECT $1::int, $2::text"},
		{"SELECT 1e10, 1E-3, 2.5e+4, .5, 1., 1.e5", "SELECT $1, $2, $3, $4, $5, $6"},
		{"SELECT t1.c2, c3 FROM t1 JOIN \"t 2\" ON t1.x9 = \"t 2\".y", ""},                                                 // no literal
		{"SELECT t1.c2 FROM t1 WHERE \"col 1\" = 7 AND a$1 = 8", "SELECT t1.c2 FROM t1 WHERE \"col 1\" = $1 AND a$1 = $2"}, // $ inside an identifier
		{"SELECT \"it's\" FROM t WHERE a = 1", "SELECT \"it's\" FROM t WHERE a = $1"},
		{"SELECT 1 -- 'not' 2\n, 3", "SELECT $1 -- 'not' 2\n, $2"},
		{"SELECT /* 1 /* '2' */ 3 */ 4", "SELECT /* 1 /* '2' */ 3 */ $1"},
		{"SELECT a[1:2] FROM t", "SELECT a[$1:$2] FROM t"},
		{"SELECT 9223372036854775808", "SELECT $1"},
		{"SELECT 1 -- x\r, 2", "SELECT $1 -- x\r, $2"}, // -- ends at \r as well as \n
		{"SELECT 1 -- x\n, 2", "SELECT $1 -- x\n, $2"},
		{"SELECT 1\v,\f2", "SELECT $1\v,\f$2"},
		{"SELECT 1..2", "SELECT $1..$2"},
		// Other literals stay verbatim in the template: the text is a
		// shape of its own.
		{"SELECT B'101', 1", "SELECT B'101', $1"},
		{"SELECT X'1F', 1", "SELECT X'1F', $1"},
		{"SELECT U&'\\0041', 1", "SELECT U&'\\0041', $1"},
		{"SELECT U&\"\\0041\" FROM t WHERE a = 1", "SELECT U&\"\\0041\" FROM t WHERE a = $1"},
		{"SELECT $$x$$, 1", "SELECT $$x$$, $1"},
		{"SELECT $tag$ 'x' $tag$, 1", "SELECT $tag$ 'x' $tag$, $1"},
		{"SELECT E'a\\'' || 'b', 1", "SELECT E'a\\'' || $1, $2"},
		{"SELECT 'a\\' FROM t", "SELECT $1 FROM t"}, // standard_conforming_strings on, as pg_query and the proxy read it
		{"SELECT 'a'\n'b', 1", "SELECT 'a'\n'b', $1"},
		{"SELECT 0x1F, 1_000, 1", "SELECT 0x1F, 1_000, $1"},
		// Not templated: the scanner is unsure, the client numbers
		// parameters, or a placeholder would glue onto a neighbour.
		{"SELECT * FROM t WHERE id = $1 AND x = 2", ""},
		{"SELECT E'a\\'b' FROM t", ""}, // no literal to replace
		{"SELECT N'abc', 1", ""},       // n'abc' is NCHAR and a string: n$1 would be an identifier
		{"SELECT 'a'x", ""},
		{"SELECT 'a'$$x$$", ""},
		{"SELECT 1abc", ""},
		{"SELECT 1e", ""},
		{"SELECT 1e5$", ""},
		{"SELECT 1.2.3", ""}, // 1.2 and .3: $1$2 would read as one parameter
		{"SELECT t.5", ""},
		{"SELECT date'2020-01-01'", ""},
		{"SELECT 'unterminated", ""},
		{"SELECT \"unterminated = 1", ""},
		{"SELECT 1 /* unterminated", ""},
		{"SELECT 1, '\x00'", ""},
		{"SELECT 1, 'a\xd4'", ""},       // invalid UTF-8: pg_query refuses the text, not the template
		{"SELECT 'a' -- c\n'b', 1", ""}, // one literal to the server, two to pg_query
		{"SELECT a FROM t", ""},         // nothing to template
	} {
		var sc templateScratch
		got := ""
		if sc.scan(c.sql) {
			got = sc.template()
			// Every span is a literal the template replaced, in order.
			rebuilt := sc.template()
			for k := len(sc.spans); k >= 1; k-- {
				sp := sc.spans[k-1]
				rebuilt = strings.Replace(rebuilt, "$"+strconv.Itoa(k), c.sql[sp.start:sp.end], 1)
			}
			if !strings.Contains(c.sql, "a$1") && rebuilt != c.sql {
				t.Errorf("%q: spans rebuild %q", c.sql, rebuilt)
			}
		}
		if got != c.want {
			t.Errorf("%q:\n got  %q\n want %q", c.sql, got, c.want)
		}
	}
}

// templateCases are statements with literals in the places the template
// path must get right, on top of the golden cases.
var templateCases = []string{
	"SELECT * FROM contacts WHERE id = -1",
	"SELECT * FROM contacts WHERE id = - 1 OR id = 3-2",
	"SELECT * FROM contacts WHERE id = '5'::int",
	"SELECT 1e10, .5, 1., 2.5e-3, 9223372036854775808, -9223372036854775808 FROM contacts",
	"SELECT * FROM contacts c1 JOIN orders o2 ON o2.contact_id = c1.id AND o2.total > 100.50 WHERE c1.name = 'it''s'",
	"SELECT * FROM contacts WHERE created_at > now() - interval '2 days'",
	"SELECT * FROM contacts WHERE created_at > now() - '2 days'::interval",
	"SELECT CAST(name AS varchar(20)) FROM contacts WHERE id = 1",
	"CREATE TABLE x AS SELECT name::varchar(20), 1.5::numeric(10, 2) FROM contacts",
	"SELECT * FROM contacts WHERE created_at > date '2020-01-01' + interval '1' day",
	"SELECT * FROM contacts WHERE created_at > timestamptz '2020-01-01 10:00' - interval '1:2' hour to minute",
	"SELECT * FROM contacts WHERE created_at > timestamp with time zone '2020-01-01' AT TIME ZONE 'UTC'",
	"SELECT name COLLATE \"C\", count(*) FROM contacts GROUP BY 1 HAVING count(*) > 1 ORDER BY 2 DESC",
	"SELECT * FROM contacts WHERE id = 1 FOR UPDATE SKIP LOCKED",
	"SELECT * FROM contacts LIMIT ALL OFFSET 0",
	"SELECT substring(name FROM 1 FOR 3), overlay(name placing 'x' from 2), trim(both 'x' from name) FROM contacts",
	"SELECT * FROM contacts WHERE (id, name) = (1, 'a') AND id BETWEEN 1 AND 10",
	"SELECT CASE WHEN id = 1 THEN 'one' ELSE 'other' END FROM contacts",
	"SELECT * FROM contacts WHERE id = ANY ('{1,2}'::int[]) AND id <> ALL (ARRAY[3])",
	"SELECT json_build_object('a', 1) -> 'a', '{\"a\":1}'::jsonb ->> 'a' FROM contacts",
	"SELECT name FROM contacts ORDER BY 1 LIMIT 10 OFFSET 5",
	"SELECT name FROM contacts FETCH FIRST 5 ROWS ONLY",
	"SELECT * FROM contacts WHERE id IN (1, 2, 3) AND 't'::bool",
	"SELECT * FROM contacts WHERE name LIKE 'a!%' ESCAPE '!'",
	"SELECT ARRAY[1, 2], (ARRAY[3, 4])[1] FROM contacts",
	"SELECT * FROM contacts TABLESAMPLE SYSTEM (10) WHERE id = 1",
	"SELECT * FROM contacts c LEFT JOIN orders o ON o.contact_id = c.id AND o.total = 5 WHERE c.id = 7",
	"SELECT * FROM orders o RIGHT JOIN contacts c ON o.contact_id = c.id AND c.id > 2 LEFT JOIN orders o2 ON o2.id = 3",
	"DELETE FROM orders WHERE id = 3 RETURNING *",
	"DELETE FROM orders WHERE id = 1; DELETE FROM contacts WHERE id = 2",
	"UPDATE contacts SET name = 'x' WHERE id = 2",
	"INSERT INTO contacts (id, name) VALUES (1, 'a')",
	"INSERT INTO notes SELECT 1, name FROM contacts WHERE id = 4",
	"TRUNCATE contacts; SELECT 1",
	"PREPARE p AS DELETE FROM orders WHERE id = 5",
	"EXECUTE p(5)",
	"COPY (SELECT * FROM contacts WHERE id = 1) TO STDOUT",
	"WITH x AS (SELECT * FROM contacts WHERE id = 1) SELECT * FROM x, orders WHERE orders.id = 2",
	"SELECT * FROM contacts WHERE id = 1 -- 'comment'\n AND name = 'b' /* 3 */",
	"SELECT id FROM notes WHERE body = 'contacts'",
	"SELECT * FROM contacts WHERE id = (SELECT 1 FROM orders WHERE total = 2 LIMIT 1)",
	"SELECT * FROM contacts WHERE id = 0x1F",
	"SELECT * FROM contacts WHERE name = E'a\\'b'",
	"SELECT * FROM contacts WHERE id = $1 AND name = 'a'",
	"SELECT * FROM contacts WHERE name = 'ü' AND id = 1",
}

// templateCorpus is every golden case's SQL, the fuzz seed corpus and
// templateCases.
func templateCorpus(t testing.TB) []string {
	t.Helper()
	var texts []string
	for _, f := range loadGolden(t) {
		for _, c := range f.cases {
			texts = append(texts, c.SQL)
		}
	}
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzRewrite", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		body := strings.TrimSuffix(strings.TrimPrefix(lines[len(lines)-1], "string("), ")")
		s, err := strconv.Unquote(body)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		texts = append(texts, s)
	}
	return append(texts, templateCases...)
}

// otherLiterals returns sql with every literal replaced by a different one
// of the same kind, or "" when sql is not templated.
func otherLiterals(sql string) string {
	var sc templateScratch
	if !sc.scan(sql) {
		return ""
	}
	var b strings.Builder
	last := 0
	for _, sp := range sc.spans {
		b.WriteString(sql[last:sp.start])
		lit := sql[sp.start:sp.end]
		switch {
		case lit[0] == '\'':
			b.WriteString("'o''ther'")
		case lit == "42":
			b.WriteString("43")
		default:
			b.WriteString("42")
		}
		last = sp.end
	}
	b.WriteString(sql[last:])
	return b.String()
}

// TestTemplateMatchesExactPath: for every text of the corpus and a copy of
// it with other literals (a template hit), the templated Rewriter answers
// what the exact path answers: the same refusal reason, or the same
// statements, rules and SQL in canonical form.
func TestTemplateMatchesExactPath(t *testing.T) {
	p := testPolicy(t)
	exact, templated := New(p, 0), New(p, 1<<20)
	hits := 0
	for _, text := range templateCorpus(t) {
		variants := []string{text}
		if o := otherLiterals(text); o != "" {
			variants = append(variants, o)
		}
		for _, sql := range variants {
			want, _, wantErr := exact.Rewrite(sql)
			got, hit, gotErr := templated.Rewrite(sql)
			if _, inExact := templated.cache.get(sql); hit && !inExact {
				hits++ // answered from a template (texts repeat in the corpus)
			}
			if msg := sameAnswer(want, wantErr, got, gotErr); msg != "" {
				t.Errorf("%s\n sql: %s", msg, sql)
			}
		}
	}
	// Without template hits the test would prove nothing about splicing.
	t.Logf("%d template hits", hits)
	if hits < 100 {
		t.Fatalf("only %d template hits: the template path is not being exercised", hits)
	}
}

// FuzzTemplateMatchesExactPath is TestTemplateMatchesExactPath on any
// text: the text and a copy with other literals get the exact path's
// answer. The Rewriter is shared, so texts of one shape meet its template.
func FuzzTemplateMatchesExactPath(f *testing.F) {
	for _, sql := range templateCorpus(f) {
		f.Add(sql)
	}
	p := testPolicy(f)
	exact, templated := New(p, 0), New(p, 1<<20)
	f.Fuzz(func(t *testing.T, sql string) {
		for _, s := range []string{sql, otherLiterals(sql)} {
			want, _, wantErr := exact.Rewrite(s)
			got, _, gotErr := templated.Rewrite(s)
			if msg := sameAnswer(want, wantErr, got, gotErr); msg != "" {
				t.Fatalf("%s\n sql: %q", msg, s)
			}
		}
	})
}

func sameAnswer(want *Result, wr *Refusal, got *Result, gr *Refusal) string {
	switch {
	case wr != nil || gr != nil:
		if wr == nil || gr == nil || wr.Reason != gr.Reason || wr.Table != gr.Table {
			return "refusals differ: exact " + refusalString(wr) + ", templated " + refusalString(gr)
		}
		return ""
	case (want == nil) != (got == nil):
		return "one path skipped the text"
	case want == nil:
		return ""
	case want.Changed != got.Changed:
		return "changed differs: exact " + strconv.FormatBool(want.Changed)
	case !slices.Equal(want.Statements, got.Statements) || !slices.Equal(want.Applied, got.Applied):
		return "statements or applied rules differ"
	case canonicalOrSelf(want.SQL) != canonicalOrSelf(got.SQL):
		return "SQL differs:\n exact:     " + want.SQL + "\n templated: " + got.SQL
	}
	return ""
}

func refusalString(r *Refusal) string {
	if r == nil {
		return "none"
	}
	return r.Message
}

// canonicalOrSelf is the parse -> deparse form, or the text itself when
// pg_query cannot round-trip it (then the two texts must match exactly).
func canonicalOrSelf(sql string) string {
	tree, err := pg.Parse(sql)
	if err != nil {
		return sql
	}
	out, err := pg.Deparse(tree)
	if err != nil {
		return sql
	}
	return out
}

// A shape the template path cannot take is remembered as such, and its
// texts still get the exact path's answer.
func TestTemplateRemembersExactOnlyShapes(t *testing.T) {
	r := New(testPolicy(t), 1<<20)
	for _, sql := range []string{
		"CREATE TABLE x AS SELECT name::varchar(20) FROM contacts",
		"CREATE TABLE x AS SELECT name::varchar(30) FROM contacts",
	} {
		res := mustRewrite(t, r, sql)
		if !res.Changed || !strings.Contains(res.SQL, "deleted_at IS NULL") {
			t.Fatalf("not filtered: %s", res.SQL)
		}
	}
	var sc templateScratch
	if !sc.scan("CREATE TABLE x AS SELECT name::varchar(20) FROM contacts") {
		t.Fatal("not templated")
	}
	e, ok := r.templates.getBytes(sc.key)
	if !ok || e.tmpl != exactOnly {
		t.Fatalf("varchar($1) shape not remembered as exact-only: %+v %v", e, ok)
	}
	// TRUNCATE's refusal holds for every literal: cached under the
	// template, which the second text compiles.
	for i, sql := range []string{"TRUNCATE contacts; SELECT 1", "TRUNCATE contacts; SELECT 2", "TRUNCATE contacts; SELECT 3"} {
		_, hit, ref := r.Rewrite(sql)
		if ref == nil || ref.Reason != ReasonTruncate || hit != (i == 2) {
			t.Fatalf("%s: hit=%v refusal=%v", sql, hit, ref)
		}
	}
}

func TestCutAtPlaceholders(t *testing.T) {
	for _, c := range []struct {
		out  string
		n    int
		ok   bool
		segs []string
	}{
		{"SELECT $2, $1 FROM t WHERE x = 0", 2, true, []string{"SELECT ", ", ", " FROM t WHERE x = 0"}},
		{"SELECT $1, $1", 1, false, nil}, // duplicated
		{"SELECT $1", 2, false, nil},     // dropped
		{"SELECT $3", 2, false, nil},     // out of range
		{"SELECT \"$1\", $1", 1, true, []string{"SELECT \"$1\", ", ""}},
		{"SELECT 'x', $1", 1, true, []string{"SELECT 'x', ", ""}}, // a string the rules or the text wrote
		{"SELECT $1.5", 1, false, nil},                            // a spliced 1 would read 1.5
		{"SELECT x$1", 1, false, nil},                             // one identifier: no placeholder
		{"SELECT 'x'$1", 1, false, nil},                           // 'x''a' would be one string
		{"SELECT u&$1", 1, false, nil},                            // u&'a' would be a U& string
		{"SELECT 'x'\n$1", 1, false, nil},                         // 'x' \n 'a' would continue
		{"SELECT $1\n'x'", 1, false, nil},                         // 'a' \n 'x' would continue
		{"SELECT -- c\n$1", 1, false, nil},                        // a comment may hide a string
		{"SELECT $1\n-- c\n'x'", 1, false, nil},                   // as it may after
		{"SELECT x\n  FROM t\n WHERE a = $1\n ORDER BY a", 1, true, []string{"SELECT x\n  FROM t\n WHERE a = ", "\n ORDER BY a"}}, // the client's line breaks
		{"SELECT $1e", 1, false, nil},       // 5e is junk
		{"SELECT -$1, ($1)", 2, false, nil}, // duplicated
		{"SELECT -$1, ($2)::int", 2, true, []string{"SELECT -", ", (", ")::int"}},
	} {
		segs, _, ok := cutAtPlaceholders(c.out, c.n)
		if ok != c.ok || ok && !slices.Equal(segs, c.segs) {
			t.Errorf("%q: ok=%v segments %q", c.out, ok, segs)
		}
	}
}

func TestLiteralKind(t *testing.T) {
	for lit, want := range map[string]byte{
		"'x'": 's', "''": 's', "5": 'i', "007": 'i', "2147483647": 'i', "0002147483647": 'i',
		"2147483648": 'f', "99999999999": 'f', "1.5": 'f', "1.": 'f', ".5": 'f', "1e3": 'f',
	} {
		if got := literalKind(lit); got != want {
			t.Errorf("%s: kind %c, want %c", lit, got, want)
		}
	}
	// A number where only a string is valid (a typed literal) is a shape
	// of its own, which the exact path answers.
	r := New(testPolicy(t), 1<<20)
	for _, sql := range []string{"SELECT * FROM contacts WHERE d > date 1", "SELECT * FROM contacts WHERE d > date 2"} {
		if _, _, ref := r.Rewrite(sql); ref == nil || ref.Reason != ReasonUnparseable {
			t.Fatalf("%s: %v, want an unparseable refusal", sql, ref)
		}
	}
	res := mustRewrite(t, r, "SELECT * FROM contacts WHERE d > date '2020-01-01'")
	if !strings.Contains(res.SQL, "'2020-01-01'") || !strings.Contains(res.SQL, `"deleted_at" IS NULL`) {
		t.Fatalf("typed string literal: %s", res.SQL)
	}
}

// Regression: a "--" comment ends at \r as well as \n. The lexer that
// ended it only at \n read the two texts below as one shape: the same
// bytes up to their literals, with "' <X> AND body = '" a literal between
// the comment's \n and the last quote. To the server (and pg_query) the
// comment ends at \r, 'newline' is a string, and X is code: the first
// text reads notes, the second also contacts. The first seeded a
// template that the second hit, unfiltered.
func TestTemplateCommentEndsAtCarriageReturn(t *testing.T) {
	text := func(x string) string {
		return "SELECT * FROM notes WHERE id = 1 -- contacts\r AND body = '\n' " + x + " AND body = '\n-- '"
	}
	a, b := text("OR true"), text("UNION SELECT * FROM contacts WHERE true")
	var sa, sb templateScratch
	if !sa.scan(a) || !sb.scan(b) {
		t.Fatal("not templated")
	}
	if string(sa.key) == string(sb.key) {
		t.Fatalf("one template key for two statements: %q", sa.key)
	}
	if want := "SELECT * FROM notes WHERE id = $1 -- contacts\r AND body = $2 OR true AND body = $3"; sa.template() != want {
		t.Fatalf("template %q, want %q", sa.template(), want)
	}
	p := testPolicy(t)
	exact, templated := New(p, 0), New(p, 1<<20)
	for _, sql := range []string{a, b, text("OR false"), b} {
		want, _, wantErr := exact.Rewrite(sql)
		got, _, gotErr := templated.Rewrite(sql)
		if msg := sameAnswer(want, wantErr, got, gotErr); msg != "" {
			t.Fatalf("%s\n sql: %q", msg, sql)
		}
	}
	res := mustRewrite(t, templated, b)
	if !strings.Contains(res.SQL, "deleted_at IS NULL") && !strings.Contains(res.SQL, `"contacts"."deleted_at" IS NULL`) {
		t.Fatalf("contacts read unfiltered: %s", res.SQL)
	}
}

// Literals of each kind that stress what surrounds a spliced literal:
// quotes, comment and dollar starts, backslashes, dots and exponents.
var literalPool = map[byte][]string{
	's': {"''", "'x'", "'it''s'", "'--'", "'/*'", "'$1'", "'$$'", "'\\'", "'contacts'", "'ü'", "' '", "'a''b''c'", "'*/'", "'\r'", "'\n'"},
	'i': {"0", "1", "42", "2147483647", "007", "0000000000002"},
	'f': {"1.5", ".5", "1.", "1e5", "2147483648", "99999999999999999999", "1E-3", "0.0", "2.5e+10", "4294967296"},
}

// collide returns sql with each literal replaced by one of the same kind
// drawn from literalPool, and whether the result has sql's template key.
func collide(sql string, seed uint64) (string, bool) {
	var sc, other templateScratch
	if !sc.scan(sql) {
		return "", false
	}
	kinds := sc.key[sc.textLen+1:]
	var b strings.Builder
	last := 0
	for k, sp := range sc.spans {
		pool := literalPool[kinds[k]]
		seed = seed*6364136223846793005 + 1442695040888963407
		b.WriteString(sql[last:sp.start])
		b.WriteString(pool[(seed>>33)%uint64(len(pool))])
		last = sp.end
	}
	b.WriteString(sql[last:])
	out := b.String()
	return out, other.scan(out) && string(other.key) == string(sc.key)
}

// FuzzTemplateKeyCollisions: two texts that share a template key get the
// exact path's answers whichever seeds the template; and every template
// text scans as its text's tokens with literals made parameters.
func FuzzTemplateKeyCollisions(f *testing.F) {
	for i, sql := range templateCorpus(f) {
		f.Add(sql, uint64(i))
	}
	f.Add("SELECT * FROM notes WHERE id = 1 -- contacts\r AND body = '\n' OR true AND body = '\n-- '", uint64(7))
	p := testPolicy(f)
	exact := New(p, 0)
	f.Fuzz(func(t *testing.T, sql string, seed uint64) {
		var sc templateScratch
		if !sc.scan(sql) {
			return
		}
		if !relexesAsTemplate(sql, sc.template(), sc.spans) {
			t.Fatalf("template %q does not scan as %q", sc.template(), sql)
		}
		other, ok := collide(sql, seed)
		if !ok {
			return
		}
		for _, order := range [][2]string{{sql, other}, {other, sql}} {
			templated := New(p, 1<<20) // the first text seeds the template, the second hits it
			for _, s := range order {
				want, _, wantErr := exact.Rewrite(s)
				got, _, gotErr := templated.Rewrite(s)
				if msg := sameAnswer(want, wantErr, got, gotErr); msg != "" {
					t.Fatalf("%s\n sql: %q\n seeded by: %q", msg, s, order[0])
				}
			}
		}
	})
}
