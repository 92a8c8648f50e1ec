package rewrite

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func mustRewrite(t *testing.T, r *Rewriter, sql string) *Result {
	t.Helper()
	res, _, err := r.Rewrite(sql)
	if err != nil {
		t.Fatalf("Rewrite(%q): %v", sql, err)
	}
	if res == nil {
		t.Fatalf("Rewrite(%q): prefilter skipped a statement it must parse", sql)
	}
	return res
}

func TestStatementsOnePerTopLevelStatement(t *testing.T) {
	r := New(testPolicy(t), 1<<20)
	for _, tc := range []struct {
		sql  string
		want []Statement
	}{
		{"DELETE FROM contacts WHERE id = 1; SELECT 1; DELETE FROM notes; delete from orders",
			[]Statement{{DeleteTag: true}, {}, {}, {DeleteTag: true}}},
		{"PREPARE d(int) AS DELETE FROM contacts WHERE id = $1", []Statement{{Prepare: "d", DeleteTag: true}}},
		{"PREPARE s AS SELECT * FROM contacts", []Statement{{Prepare: "s"}}},
		{"PREPARE n AS DELETE FROM notes WHERE body = 'orders'", []Statement{{Prepare: "n"}}},
		{"EXECUTE d(1)", []Statement{{Execute: "d"}}},
		{"DEALLOCATE d", []Statement{{Deallocate: "d"}}},
		{"DEALLOCATE ALL", []Statement{{DeallocateAll: true}}},
		{"DISCARD ALL", []Statement{{DeallocateAll: true}}},
		{"DISCARD PLANS", []Statement{{}}},
		{"EXPLAIN ANALYZE DELETE FROM contacts", []Statement{{}}},
		{"WITH g AS (DELETE FROM contacts RETURNING id) SELECT count(*) FROM g", []Statement{{}}},
		{"WITH g AS (SELECT 1) DELETE FROM contacts", []Statement{{DeleteTag: true}}},
		{"MERGE INTO contacts c USING notes n ON n.id = c.id WHEN MATCHED THEN DELETE", []Statement{{}}},
	} {
		res := mustRewrite(t, r, tc.sql)
		if !slices.Equal(res.Statements, tc.want) {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.sql, res.Statements, tc.want)
		}
	}
}

func TestAppliedKinds(t *testing.T) {
	p := testPolicy(t)
	r := New(p, 1<<20)
	for _, tc := range []struct {
		sql  string
		want []string // table:kind
	}{
		{"SELECT * FROM contacts c JOIN orders o ON o.contact_id = c.id JOIN contacts c2 ON true", []string{"contacts:select", "orders:select"}},
		{"DELETE FROM orders WHERE contact_id IN (SELECT id FROM contacts)", []string{"contacts:select", "orders:delete"}},
		{"UPDATE s1.accounts SET balance = 0", []string{"s1.accounts:update"}},
		{"MERGE INTO contacts c USING notes n ON n.id = c.id WHEN MATCHED THEN DELETE", []string{"contacts:delete", "contacts:merge"}},
		{"COPY orders TO STDOUT", []string{"orders:copy"}},
		{"INSERT INTO contacts VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = excluded.name", []string{"contacts:update"}},
		{"SELECT * FROM notes WHERE body = 'contacts'", nil},
	} {
		res := mustRewrite(t, r, tc.sql)
		var got []string
		for _, a := range res.Applied {
			got = append(got, a.Table.QualifiedName()+":"+a.Kind)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: applied %v, want %v", tc.sql, got, tc.want)
		}
		if res.Changed != (len(tc.want) > 0) {
			t.Errorf("%s: Changed = %v", tc.sql, res.Changed)
		}
	}
}

func TestPrefilter(t *testing.T) {
	r := New(testPolicy(t), 1<<20)
	skip := []string{
		"SELECT * FROM orgs WHERE id = 1",
		"",
		"INSERT INTO notes VALUES (1, 2, 'hello')",
		"SELECT 'contact' || 'orders_' FROM ledger", // "orders_" holds "orders": must parse, see below
	}
	for _, sql := range skip[:3] {
		if res, _, err := r.Rewrite(sql); res != nil || err != nil {
			t.Errorf("%q: prefilter should skip the parser, got %+v, %v", sql, res, err)
		}
	}
	parse := []string{
		skip[3],
		"select * from CONTACTS",
		`SELECT * FROM "Orders"`,
		"SELECT * FROM ACCOUNTS",
		`SELECT * FROM U&"\0063ontacts"`,
		`select * from u&"x"`,
		"ExEcUtE p",
		"DEALLOCATE ALL",
		"discard all",
		strings.Repeat("x ", 700) + "contacts",
	}
	for _, sql := range parse {
		res, _, err := r.Rewrite(sql)
		if res == nil && err == nil {
			t.Errorf("%.60q: prefilter skipped a text it must parse", sql)
		}
	}
	// Every alignment of the name against the skip windows.
	for n := 0; n <= 40; n++ {
		sql := strings.Repeat(" ", n) + "CoNtAcTs"
		if !r.filter.mayMatch(sql) {
			t.Errorf("name at offset %d not found", n)
		}
	}
}

func refusal(t *testing.T, r *Rewriter, sql string) *Refusal {
	t.Helper()
	_, _, ref := r.Rewrite(sql)
	if ref == nil {
		t.Fatalf("%.80q: want a refusal, got none", sql)
	}
	return ref
}

func TestRefusals(t *testing.T) {
	r := New(testPolicy(t), 1<<20)

	long := "SELECT * FROM contacts WHERE name = '" + strings.Repeat("x", MaxStatementBytes) + "'"
	if f := refusal(t, r, long); f.Reason != ReasonTooLong || f.Code != "54000" {
		t.Errorf("too long: %+v", f)
	}

	deep := "SELECT * FROM contacts WHERE id = " + strings.Repeat("(", MaxNestingDepth+1) + "1" + strings.Repeat(")", MaxNestingDepth+1)
	if f := refusal(t, r, deep); f.Reason != ReasonTooDeep || f.Code != "54001" {
		t.Errorf("too deep: %+v", f)
	}
	ok := "SELECT * FROM contacts WHERE id = " + strings.Repeat("(", MaxNestingDepth) + "1" + strings.Repeat(")", MaxNestingDepth)
	mustRewrite(t, r, ok)

	f := refusal(t, r, "DELETE FROM contacts WHERE")
	if f.Reason != ReasonUnparseable || f.Code != "42601" ||
		!strings.Contains(f.Message, "could not parse the statement") || !strings.Contains(f.Message, "syntax error at end of input") {
		t.Errorf("unparseable: %+v", f)
	}

	// The parser reads a C string: it must not judge only the part
	// before a NUL.
	if f := refusal(t, r, "SELECT 1;\x00 DELETE FROM contacts"); f.Reason != ReasonUnparseable {
		t.Errorf("NUL byte: %+v", f)
	}

	f = refusal(t, r, "TRUNCATE TABLE notes, contacts")
	if f.Reason != ReasonTruncate || f.Code != "42501" || f.Table != "contacts" ||
		f.Message != "tombstone: TRUNCATE of soft-delete table contacts refused" || !strings.Contains(f.Hint, "privileged role") {
		t.Errorf("truncate: %+v", f)
	}

	f = refusal(t, r, "CREATE RULE r AS ON UPDATE TO orders DO ALSO NOTIFY x")
	if f.Reason != ReasonPrivileged || f.Code != "42501" || !strings.Contains(f.Message, "RULE") || f.Table != "orders" {
		t.Errorf("rule on a soft-delete table: %+v", f)
	}

	f = refusal(t, r, "CREATE POLICY p ON orders USING (true)")
	if f.Reason != ReasonUnsupported || f.Code != "0A000" || !strings.Contains(f.Message, "CREATE POLICY") || f.Table != "orders" {
		t.Errorf("unsupported: %+v", f)
	}
}

func TestNestingDepthIgnoresQuotedBrackets(t *testing.T) {
	parens := strings.Repeat("(", 300)
	for _, tc := range []struct {
		sql  string
		want int
	}{
		{"SELECT ((1))", 2},
		{"SELECT '" + parens + "'", 0},
		{`SELECT "` + parens + `"`, 0},
		{"SELECT 1 -- " + parens + "\n, (2)", 1},
		{"SELECT /* /* " + parens + " */ */ (1)", 1},
		{"SELECT $$" + parens + "$$", 0},
		{"SELECT $tag$" + parens + "$tag$", 0},
		{"SELECT 'it''s' || (" + "'x')", 1},
		// With standard_conforming_strings off, \' does not end the
		// literal; measured both ways the deeper reading wins.
		{`SELECT 'a\' , ` + parens + " 'b'", MaxNestingDepth + 1}, // measuring stops there
		{`SELECT E'a\'` + parens + "'", 0},
		{"SELECT ARRAY[[1]]", 2},
		{"SELECT $1::int[]", 1},
		{"SELECT '" + parens, MaxNestingDepth + 1}, // unterminated: count
	} {
		if got := textShape(tc.sql).depth; got != tc.want {
			t.Errorf("textShape(%.40q...).depth = %d, want %d", tc.sql, got, tc.want)
		}
	}
}

func TestCacheAnswersRepeatsAndRefusals(t *testing.T) {
	r := New(testPolicy(t), 1<<20)
	sql := "SELECT * FROM contacts"
	first, hit, _ := r.Rewrite(sql)
	if hit {
		t.Fatal("first call reported a cache hit")
	}
	second, hit, _ := r.Rewrite(sql)
	if !hit || second != first {
		t.Fatalf("second call: hit=%v same=%v", hit, second == first)
	}
	if _, hit, err := r.Rewrite("TRUNCATE contacts"); hit || err == nil {
		t.Fatalf("refusal: hit=%v err=%v", hit, err)
	}
	if _, hit, err := r.Rewrite("TRUNCATE contacts"); !hit || err == nil {
		t.Fatalf("cached refusal: hit=%v err=%v", hit, err)
	}
	// The answer is a function of the text: another Rewriter agrees.
	other := mustRewrite(t, New(testPolicy(t), 0), sql)
	if other.SQL != first.SQL {
		t.Fatalf("two rewriters disagree: %q vs %q", other.SQL, first.SQL)
	}
}

func TestCacheStaysWithinItsByteBound(t *testing.T) {
	const limit = 64 << 10
	r := New(testPolicy(t), limit)
	// Each alias is a new shape, so both the exact (no literal) and the
	// template cache (a literal) fill up.
	for i := range 2000 {
		mustRewrite(t, r, fmt.Sprintf("SELECT * FROM contacts c%d", i))
		mustRewrite(t, r, fmt.Sprintf("SELECT * FROM contacts c%d WHERE id = 1", i))
	}
	var total int64
	for _, c := range []*cache{r.cache, r.templates} {
		var bytes int64
		entries := 0
		for i := range c.shards {
			s := &c.shards[i]
			var sum int64
			for k, e := range s.m {
				sum += e.cost
				if e.cost != entryCost(k, e) {
					t.Fatalf("entry cost drifted")
				}
			}
			if sum != s.bytes || s.bytes > s.limit {
				t.Fatalf("shard %d: accounted %d, actual %d, limit %d", i, s.bytes, sum, s.limit)
			}
			bytes += s.bytes
			entries += len(s.m)
		}
		if entries == 0 || entries >= 2000 {
			t.Fatalf("a cache holds %d entries in %d bytes: it must evict yet keep some", entries, bytes)
		}
		total += bytes
	}
	if total > limit {
		t.Fatalf("caches hold %d bytes (limit %d)", total, limit)
	}
}

func TestConcurrentRewritesAgree(t *testing.T) {
	r := New(testPolicy(t), 32<<10)
	want := map[string]string{}
	var texts []string
	for i := range 50 {
		sql := fmt.Sprintf("DELETE FROM orders WHERE id = %d", i)
		texts = append(texts, sql)
		want[sql] = mustRewrite(t, New(testPolicy(t), 0), sql).SQL
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				sql := texts[(i*7+g)%len(texts)]
				res, _, err := r.Rewrite(sql)
				if err != nil || res == nil || res.SQL != want[sql] {
					select {
					case errs <- fmt.Sprintf("%s: %+v %v", sql, res, err):
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// The proxy may hand Rewrite a string that aliases its read buffer; the
// cache and the Result must not change when that buffer is reused.
func TestRewriteKeepsItsOwnCopy(t *testing.T) {
	r := New(testPolicy(t), 1<<20)
	// The first text is cached by exact text, the others by template (the
	// second unchanged, the third rewritten), which the second Rewrite of
	// a shape compiles: a hit is the third.
	for i, text := range []string{"SELECT id FROM notes AS contacts", "SELECT id FROM notes WHERE body = 'contacts'", "SELECT id FROM contacts WHERE name = 'x'"} {
		buf := []byte(text)
		sql := unsafe.String(&buf[0], len(buf))
		res := mustRewrite(t, r, sql)
		want := res.SQL
		if !res.Changed && want != text {
			t.Fatalf("unchanged Result.SQL is %q, not the input", want)
		}
		copy(buf, "XXXXXX")
		if res.SQL != want || !res.Changed && res.SQL != text {
			t.Fatalf("Result.SQL changed with the caller's buffer: %q", res.SQL)
		}
		if i > 0 {
			if again, _, _ := r.Rewrite(text); again.SQL != want {
				t.Fatalf("%s: the template's answer differs: %q", text, again.SQL)
			}
		}
		again, hit, _ := r.Rewrite(text)
		if !hit || again.SQL != want {
			t.Fatalf("%s: cache key changed with the caller's buffer: hit=%v, %q", text, hit, again.SQL)
		}
	}
}

// The two-halves search must find a name wherever it sits, in texts of
// every length around the split.
func TestPrefilterFindsNamesAnywhere(t *testing.T) {
	f := newPrefilter(testPolicy(t).TableNames())
	for n := 0; n < 80; n++ {
		for pos := 0; pos <= n; pos++ {
			sql := strings.Repeat("x", pos) + "OrDeRs" + strings.Repeat("y", n-pos)
			if !f.mayMatch(sql) {
				t.Fatalf("missed the name at %d in %d bytes", pos, len(sql))
			}
		}
		if f.mayMatch(strings.Repeat("z", n)) {
			t.Fatalf("matched %d bytes of z", n)
		}
	}
}

// A refused statement after others keeps the ones ahead of it, rewritten
// and with literals intact, so the proxy can run them before the refusal
// as PostgreSQL would; a refusal of the first statement, or of the whole
// text, has nothing before it.
func TestRefusalKeepsStatementsBefore(t *testing.T) {
	r := New(testPolicy(t), 1<<20)
	for range 2 { // the second round comes from the cache
		ref := refusal(t, r, "BEGIN; DELETE FROM contacts WHERE id = 81; TRUNCATE contacts; DELETE FROM contacts WHERE id = 82")
		if ref.Reason != ReasonTruncate || ref.Before == nil {
			t.Fatalf("got reason %q, Before %v; want truncate with the statements before it", ref.Reason, ref.Before)
		}
		b := ref.Before
		if !b.Changed || len(b.Statements) != 2 || b.Statements[0].DeleteTag || !b.Statements[1].DeleteTag {
			t.Fatalf("Before = %+v; want BEGIN and a soft DELETE", b)
		}
		// The DELETE is spliced: the client's text with the soft-delete
		// edits in it (splice.go).
		if want := `BEGIN; UPDATE contacts SET "deleted_at" = (SELECT pg_catalog.clock_timestamp()) WHERE (id = 81) AND "contacts"."deleted_at" IS NULL`; b.SQL != want {
			t.Fatalf("Before.SQL =\n %s\nwant\n %s", b.SQL, want)
		}
	}
	// Statements no rule changed are sent as written, comments included.
	ref := refusal(t, r, "SELECT 1; /* keep */ SELECT 2; TRUNCATE contacts")
	if b := ref.Before; b == nil || b.Changed || !strings.HasPrefix(b.SQL, "SELECT 1;") ||
		!strings.HasSuffix(b.SQL, "/* keep */ SELECT 2") {
		t.Fatalf("Before = %+v, want the first two statements as written", ref.Before)
	}
	for _, sql := range []string{"TRUNCATE contacts; SELECT 1", "SELECT 1; SELEC * FROM contacts"} {
		if ref := refusal(t, r, sql); ref.Before != nil {
			t.Errorf("%q: Before = %+v, want nil (nothing of the text runs)", sql, ref.Before)
		}
	}
}

func TestOperatorChainIgnoresQuotedText(t *testing.T) {
	pluses := strings.Repeat("+", 3*MaxExpressionDepth)
	unions := strings.Repeat(" UNION JOIN", MaxJoins+1)
	for _, sql := range []string{
		"SELECT '" + pluses + unions + "'",
		`SELECT "` + pluses + unions + `"`,
		"SELECT 1 -- " + pluses + unions + "\n",
		"SELECT /* " + pluses + unions + " */ 1",
		"SELECT $q$" + pluses + unions + "$q$",
		"SELECT " + strings.Repeat("a+b, ", 3*MaxExpressionDepth) + "1",
		"SELECT " + strings.Repeat("a+b OR ", 3*MaxExpressionDepth) + "1",
		"SELECT 1" + strings.Repeat("||2", MaxExpressionDepth/2) + ", 1" + strings.Repeat("||2", MaxExpressionDepth/2),
	} {
		if s := textShape(sql); s.tooDeep() != nil {
			t.Errorf("%.60q...: refused, shape %+v", sql, s)
		}
	}
}

// Refusals found by the adversarial review (issue 3): each says what was
// refused and why, with the code the proxy sends.
func TestRefusalsOfHiddenSQLAndSchemaChanges(t *testing.T) {
	r := New(testPolicy(t), 1<<20)
	for _, tc := range []struct {
		sql, reason, code, msg, hint string
	}{
		{"SELECT Query_To_Xml('select * from contacts', true, false, '')", ReasonUnsupported, "0A000", "query_to_xml() runs SQL that Tombstone cannot see", "privileged role"},
		{"SELECT database_to_xml(true, false, '')", ReasonUnsupported, "0A000", "database_to_xml() runs SQL", "privileged role"},
		{"SELECT * FROM ts_stat('select v from docs')", ReasonUnsupported, "0A000", "ts_stat() runs SQL", "privileged role"},
		{"SELECT dblink_send_query('c', 'select 1')", ReasonUnsupported, "0A000", "dblink_send_query() runs SQL", "privileged role"},
		{"TRUNCATE orgs CASCADE", ReasonTruncate, "42501", "TRUNCATE ... CASCADE refused: it also empties every table that references", "privileged role"},
		{"DO LANGUAGE plperl $$spi_exec_query('DELETE FROM contacts WHERE id = 1');$$", ReasonUnsupported, "0A000", "DO block in LANGUAGE plperl: Tombstone cannot see into code in that language", "run it as a privileged role."},
		// No table name is needed: the code builds its SQL at run time.
		{"DO LANGUAGE plperl $$spi_exec_query('DELETE FROM con' . 'tacts');$$", ReasonUnsupported, "0A000", "DO block in LANGUAGE plperl", "run it as a privileged role."},
		{"CREATE OR REPLACE PROCEDURE p() LANGUAGE plperl AS 'spi_exec_query(\"DELETE FROM orders\")'", ReasonUnsupported, "0A000", "CREATE PROCEDURE in LANGUAGE plperl", "run it as a privileged role."},
		{"DO $$BEGIN EXECUTE 'DELETE FROM ' || 'orders'; END$$", ReasonUnsupported, "0A000", "dynamic SQL in the DO block", "privileged role"},
		{"ALTER TABLE contacts RENAME TO people", ReasonPrivileged, "42501", "ALTER TABLE RENAME of soft-delete table contacts refused: it would undo soft deletes", "migrations as a privileged role"},
		{"ALTER TABLE contacts DROP COLUMN deleted_at", ReasonPrivileged, "42501", "dropping or retyping column deleted_at of soft-delete table contacts", "migrations"},
		{"DROP TABLE s1.accounts", ReasonPrivileged, "42501", "DROP TABLE of soft-delete table s1.accounts", "migrations"},
	} {
		f := refusal(t, r, tc.sql)
		if f.Reason != tc.reason || f.Code != tc.code || !strings.Contains(f.Message, tc.msg) || !strings.Contains(f.Hint, tc.hint) {
			t.Errorf("%s:\n got  %+v\n want reason %s, code %s, message with %q, hint with %q", tc.sql, f, tc.reason, tc.code, tc.msg, tc.hint)
		}
	}
	// Look-alikes pass: other functions, ts_rewrite's three-argument form
	// (no query text), DDL that keeps deleted_at, procedural code that
	// names no soft-delete table.
	for _, sql := range []string{
		"SELECT cursor_to_xml('c', 1, true, false, '') FROM contacts",
		"SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery) FROM contacts",
		"ALTER TABLE contacts ALTER COLUMN name TYPE varchar(200)",
		"ALTER TABLE orders RENAME COLUMN note TO remark",
		"DROP TABLE archive; SELECT 1 FROM contacts",
		"CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'; SELECT 1 FROM contacts",
	} {
		if _, _, err := r.Rewrite(sql); err != nil {
			t.Errorf("%s: refused: %v", sql, err)
		}
	}
}
