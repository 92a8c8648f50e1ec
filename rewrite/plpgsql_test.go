package rewrite

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// plpgsqlCases are the golden cases of testdata/plpgsql.yaml.
func plpgsqlCases(t *testing.T) []goldenCase {
	t.Helper()
	for _, f := range loadGolden(t) {
		if filepath.Base(f.path) == "plpgsql.yaml" {
			return f.cases
		}
	}
	t.Fatal("testdata/plpgsql.yaml is missing")
	return nil
}

// embeddedSQL lists the SQL that the routines of sql run on the server:
// each PL/pgSQL expression as a statement (an expression as SELECT expr),
// each LANGUAGE sql body, and the string literal of each EXECUTE.
func embeddedSQL(t *testing.T, sql string) []string {
	t.Helper()
	tree, err := pg.Parse(sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	var out []string
	for _, raw := range tree.Stmts {
		n := raw.Stmt
		lang := ""
		switch {
		case n.GetDoStmt() != nil:
			lang = "plpgsql"
			for _, a := range n.GetDoStmt().Args {
				if d := a.GetDefElem(); d.GetDefname() == "language" {
					lang = d.Arg.GetString_().GetSval()
				}
			}
		case n.GetCreateFunctionStmt() != nil:
			for _, o := range n.GetCreateFunctionStmt().Options {
				if d := o.GetDefElem(); d.GetDefname() == "language" {
					lang = d.Arg.GetString_().GetSval()
				}
			}
		default:
			continue
		}
		body := routineBodyOf(n)
		switch lang {
		case "sql":
			out = append(out, body)
			out = append(out, embeddedSQL(t, body)...)
		case "plpgsql":
			text, err := printOne(n)
			if err != nil {
				t.Fatal(err)
			}
			fn, err := plpgsqlFunction(text)
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			exprs, _ := collectExpressions(fn)
			for _, x := range exprs {
				q := x.query
				switch {
				case dynamicQuery(x):
					if s, ok := stringLiteral(q); ok {
						q = s
					}
				case x.mode >= modeAssign1:
					_, v, _ := splitAssignment(q)
					q = "SELECT " + v
				case x.mode == modeExpr:
					q = "SELECT " + q
				}
				out = append(out, q)
				out = append(out, embeddedSQL(t, q)...)
			}
		}
	}
	return out
}

// Every rewritten body must filter every read of a soft-delete table and
// hold no DELETE of one, by the fuzz target's own checker, run on each
// statement the body would run.
func TestPlpgsqlBodiesFilterEveryRead(t *testing.T) {
	p := testPolicy(t)
	checked := 0
	for _, c := range plpgsqlCases(t) {
		if c.Want == "" {
			continue
		}
		for _, sql := range embeddedSQL(t, c.Want) {
			tree, err := pg.Parse(sql)
			if err != nil {
				t.Errorf("%s: embedded SQL does not parse: %v\n%s", c.Name, err, sql)
				continue
			}
			if msg := unfilteredRead(p, tree); msg != "" {
				t.Errorf("%s: %s\n%s", c.Name, msg, sql)
			}
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("only %d embedded statements checked", checked)
	}
	// The checker sees through bodies: an unrewritten one fails it.
	bad := embeddedSQL(t, "DO $$BEGIN IF EXISTS (SELECT 1 FROM contacts) THEN DELETE FROM orders; END IF; END$$")
	failed := 0
	for _, sql := range bad {
		tree, _ := pg.Parse(sql)
		if unfilteredRead(p, tree) != "" {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("the checker flagged %d of the 2 unfiltered statements in %q", failed, bad)
	}
}

// The golden harness compares live rows with a real delete; it cannot see
// a live row removed for good on the soft side, since the hard side lost it
// too. Here each executable case runs on the soft-delete database alone and
// every row of every soft-delete table must still be there afterwards.
func TestPlpgsqlCasesRemoveNothingForGood(t *testing.T) {
	c, _ := softDB(t)
	p := testPolicy(t)
	ctx := context.Background()
	keys := func() ([]string, error) {
		var all []string
		for _, tb := range p.Tables() {
			res := c.ExecParams(ctx, "SELECT id::text FROM ONLY "+tb.QualifiedName()+" ORDER BY id", nil, nil, nil, nil).Read()
			if res.Err != nil {
				return nil, res.Err
			}
			for _, r := range res.Rows {
				all = append(all, tb.QualifiedName()+":"+string(r[0]))
			}
		}
		return all, nil
	}
	ran := 0
	for _, tc := range plpgsqlCases(t) {
		if tc.Error != "" || tc.NoExec != "" {
			continue
		}
		sql := tc.SQL
		if !tc.Unchanged {
			sql = tc.Want
		}
		t.Run(tc.Name, func(t *testing.T) {
			if _, err := c.Exec(ctx, "BEGIN").ReadAll(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if _, err := c.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
					t.Fatal(err)
				}
			}()
			before, err := keys()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, sql).ReadAll(); err != nil {
				t.Fatalf("%v\n%s", err, sql)
			}
			after, err := keys()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range before {
				if !slices.Contains(after, k) {
					t.Errorf("row %s was removed for good", k)
				}
			}
		})
		ran++
	}
	if ran < 30 {
		t.Fatalf("only %d cases ran", ran)
	}
	// The check sees a hard delete: the original text of a deleting case
	// fails it.
	before, err := keys()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "BEGIN; DO $$BEGIN DELETE FROM contacts WHERE id = 1; END$$").ReadAll(); err != nil {
		t.Fatal(err)
	}
	after, err := keys()
	if _, rbErr := c.Exec(ctx, "ROLLBACK").ReadAll(); err != nil || rbErr != nil {
		t.Fatal(err, rbErr)
	}
	if len(after) != len(before)-1 {
		t.Errorf("a hard delete left %d of %d rows", len(after), len(before))
	}
}

// reemittable must predict exactly when pg_query's printer writes a body
// back as a literal that does not read as the body.
func TestReemittableMatchesThePrinter(t *testing.T) {
	bodies := []string{
		"BEGIN NULL; END", "x$", "$", "$x", "a$$b", "a$$b$", "$$", "$outer", "a$$b$outer", "a$$b$outer$c",
		"a$$b$oute", "$outer$", "it's", `back\slash`, "a$$b'c\\d", "$1", "$$$", "end $tag$",
	}
	for _, body := range bodies {
		for _, do := range []bool{false, true} {
			var n *pg.Node
			if do {
				n = &pg.Node{Node: &pg.Node_DoStmt{DoStmt: &pg.DoStmt{Args: []*pg.Node{
					{Node: &pg.Node_DefElem{DefElem: &pg.DefElem{Defname: "as", Arg: pg.MakeStrNode(body)}}}}}}}
			} else {
				tree, err := pg.Parse("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS 'x'")
				if err != nil {
					t.Fatal(err)
				}
				n = tree.Stmts[0].Stmt
				for _, o := range n.GetCreateFunctionStmt().Options {
					if d := o.GetDefElem(); d.Defname == "as" {
						d.Arg.GetList().Items[0] = pg.MakeStrNode(body)
					}
				}
			}
			out, err := printOne(n)
			if err != nil {
				t.Fatal(err)
			}
			tree, err := pg.Parse(out)
			survives := err == nil && len(tree.Stmts) == 1 && routineBodyOf(tree.Stmts[0].Stmt) == body
			if got := reemittable(body, do); got != survives {
				t.Errorf("reemittable(%q, do=%v) = %v, but the printer gives %q (survives: %v)", body, do, got, out, survives)
			}
		}
	}
}

func TestScanInvariant(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`BEGIN PERFORM 'plain'; END`, true},
		{`BEGIN PERFORM regexp_replace(x, '\s+', ' '); END`, true},
		{`BEGIN PERFORM E'it\'s'; END`, true},
		{`BEGIN PERFORM $q$\'$q$; END`, true},
		{`BEGIN PERFORM 'a\'; DELETE FROM contacts; --'; END`, false},
		{`BEGIN PERFORM 'x\''; DELETE FROM contacts; --'; END`, false},
		{`BEGIN PERFORM N'\'; END`, false},
		{`BEGIN PERFORM U&'\'; END`, false},
	} {
		toks, err := pg.Scan(tc.body)
		if err != nil {
			t.Fatal(err)
		}
		if got := scanInvariant(tc.body, toks.Tokens, "DO block") == nil; got != tc.ok {
			t.Errorf("%s: invariant %v, want %v", tc.body, got, tc.ok)
		}
	}
}

// relocate refuses when a pattern is found more or fewer times than there
// are expressions of it, and lets a longer expression keep a text that
// also occurs inside it.
func TestRelocate(t *testing.T) {
	scan := func(s string) []*pg.ScanToken {
		toks, err := pg.Scan(s)
		if err != nil {
			t.Fatal(err)
		}
		return toks.Tokens
	}
	ed := func(how matching, pattern, repl string) *edit {
		return &edit{how: how, pattern: pattern, repl: repl}
	}
	for _, tc := range []struct {
		body  string
		edits []*edit
		want  string // "" refused
	}{
		{"BEGIN x; x; END", []*edit{ed(matchVerbatim, "x", "y"), ed(matchVerbatim, "x", "y")}, "BEGIN y; y; END"},
		{"BEGIN x; x; END", []*edit{ed(matchVerbatim, "x", "y")}, ""},
		{"BEGIN x; /* x */ 'x'; END", []*edit{ed(matchVerbatim, "x", "y")}, "BEGIN y; /* x */ 'x'; END"},
		{"BEGIN a := x + 1; b := x; END", []*edit{ed(matchVerbatim, "a := x + 1", "a := y + 1"), ed(matchVerbatim, "x", "y")}, "BEGIN a := y + 1; b := y; END"},
		{"BEGIN xx; END", []*edit{ed(matchVerbatim, "x", "y")}, ""},
		{"BEGIN Perform x; END", []*edit{ed(matchPerform, " x", "PERFORM y")}, "BEGIN PERFORM y; END"},
		{"IF(x)THEN", []*edit{ed(matchVerbatim, "(x)", "z")}, "IF z THEN"},
		{"BEGIN SELECT a INTO v FROM t; END", []*edit{ed(matchInto, "SELECT a        FROM t", "SELECT a FROM t2")}, "BEGIN SELECT a FROM t2 INTO v; END"},
		{"BEGIN SELECT a INTO v FROM t; END", []*edit{ed(matchInto, "SELECT a        FROM u", "SELECT a FROM t2")}, ""},
		{"BEGIN DELETE FROM t RETURNING a INTO v; DELETE FROM t RETURNING a; END", []*edit{ed(matchInto, "DELETE FROM t RETURNING a", "U"), ed(matchVerbatim, "DELETE FROM t RETURNING a", "U")}, "BEGIN U INTO v; U; END"},
		{"BEGIN SELECT a\n INTO v\n FROM t; END", []*edit{ed(matchInto, "SELECT a\n         FROM t", "SELECT a FROM t2")}, "BEGIN SELECT a FROM t2 INTO v\n\n; END"},
	} {
		got, ok := relocate(tc.body, scan(tc.body), tc.edits)
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("relocate(%q): got %q, want %q", tc.body, got, tc.want)
		}
	}
}

// A rewrite that reaches a soft-delete table through a PL/pgSQL variable
// or label is refused; one through names that plpgsql cannot take for a
// variable passes.
func TestPlpgsqlNameClashes(t *testing.T) {
	r := New(testPolicy(t), 0)
	for _, tc := range []struct {
		sql     string
		refused bool
	}{
		{"DO $$DECLARE deleted_at int; BEGIN DELETE FROM contacts; END$$", false},
		{"DO $$DECLARE deleted_at int; BEGIN PERFORM 1 FROM contacts c FULL JOIN orders o ON true; END$$", true},
		{"DO $$DECLARE deleted_by text; BEGIN PERFORM 1 FROM orders o FULL JOIN contacts c ON true; END$$", false},
		{"DO $$DECLARE c record; BEGIN PERFORM 1 FROM contacts c; END$$", true},
		{"DO $$DECLARE C record; BEGIN PERFORM 1 FROM contacts c; END$$", true},
		{"DO $$<<c>> DECLARE n int; BEGIN PERFORM 1 FROM contacts c; END$$", false},
		{"DO $$<<c>> DECLARE deleted_at int; BEGIN PERFORM 1 FROM contacts c; END$$", true},
		{"CREATE FUNCTION orders(p int) RETURNS SETOF orders LANGUAGE plpgsql AS $$BEGIN RETURN QUERY SELECT * FROM orders; END$$", false},
		{"CREATE FUNCTION orders(deleted_at int) RETURNS SETOF orders LANGUAGE plpgsql AS $$BEGIN RETURN QUERY SELECT * FROM orders; END$$", true},
		{"CREATE FUNCTION s1.accounts(deleted_at int) RETURNS bigint LANGUAGE plpgsql AS $$BEGIN RETURN (SELECT count(*) FROM s1.accounts); END$$", true},
		{"CREATE FUNCTION f(int) RETURNS void LANGUAGE plpgsql AS $$DECLARE deleted_at ALIAS FOR $1; BEGIN PERFORM 1 FROM contacts c FULL JOIN orders o ON true; END$$", true},
		{"CREATE FUNCTION f(int) RETURNS void LANGUAGE plpgsql AS $$DECLARE x ALIAS FOR $1; BEGIN PERFORM 1 FROM contacts c FULL JOIN orders o ON true; END$$", false},
		{"CREATE FUNCTION f(OUT deleted_at int) LANGUAGE plpgsql AS $$BEGIN SELECT 1 INTO deleted_at FROM contacts c FULL JOIN orders o ON true; END$$", true},
	} {
		_, _, ref := r.Rewrite(tc.sql)
		if (ref != nil) != tc.refused {
			t.Errorf("%s: refusal %v, want refused %v", tc.sql, ref, tc.refused)
		}
	}
}

// Rewrites of bodies agree across goroutines (pg_query's PL/pgSQL parser
// keeps its state per thread).
func TestPlpgsqlConcurrentRewritesAgree(t *testing.T) {
	cases := plpgsqlCases(t)
	want := map[string]string{}
	r := New(testPolicy(t), 0)
	for _, c := range cases {
		want[c.SQL] = describeOutcome(r, c.SQL)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(cases))
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := New(testPolicy(t), 0)
			for i := range cases {
				c := cases[(i+g*7)%len(cases)]
				if got := describeOutcome(r, c.SQL); got != want[c.SQL] {
					errs <- fmt.Sprintf("%s: %s, want %s", c.Name, got, want[c.SQL])
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

func describeOutcome(r *Rewriter, sql string) string {
	res, _, ref := r.Rewrite(sql)
	switch {
	case ref != nil:
		return "refused " + ref.Reason + ": " + ref.Message
	case res == nil:
		return "skipped"
	}
	return res.SQL
}

// Applied reports the rules used inside a body, and a body that needs no
// change leaves the text as it was.
func TestPlpgsqlApplied(t *testing.T) {
	r := New(testPolicy(t), 0)
	res := mustRewrite(t, r, "DO $$BEGIN DELETE FROM orders WHERE id IN (SELECT id FROM contacts); END$$")
	var got []string
	for _, a := range res.Applied {
		got = append(got, a.Table.QualifiedName()+":"+a.Kind)
	}
	slices.Sort(got)
	if want := []string{"contacts:select", "orders:delete"}; !slices.Equal(got, want) || !res.Changed {
		t.Errorf("applied %v (changed %v), want %v", got, res.Changed, want)
	}
	const same = "DO $x$ BEGIN /* keep */ INSERT INTO contacts VALUES (1, 'a'); END $x$"
	res = mustRewrite(t, r, same)
	if res.Changed || res.SQL != same || len(res.Applied) != 0 {
		t.Errorf("unchanged body: %+v", res)
	}
}

// A body as deep as the bounds allow is parsed; a deeper one is refused
// before it reaches the C parser.
func TestPlpgsqlBodyBounds(t *testing.T) {
	r := New(testPolicy(t), 0)
	deep := "DO $$BEGIN PERFORM " + strings.Repeat("(", MaxNestingDepth+1) + "1" + strings.Repeat(")", MaxNestingDepth+1) + " FROM contacts; END$$"
	if f := refusal(t, r, deep); f.Reason != ReasonTooDeep {
		t.Errorf("deep body: %+v", f)
	}
	nested := "DO $$BEGIN " + strings.Repeat("IF true THEN ", 200) + "DELETE FROM contacts;" + strings.Repeat(" END IF;", 200) + " END$$"
	if res := mustRewrite(t, r, nested); !strings.Contains(res.SQL, "UPDATE contacts SET deleted_at") {
		t.Errorf("nested IFs: %s", res.SQL)
	}
	// Deeper nesting of statements is bounded by the parsers (bison's
	// stack, the JSON decoder's depth): refused or rewritten, never a
	// crash.
	for _, n := range []int{3000, 5000, 20000} {
		very := "DO $$BEGIN " + strings.Repeat("IF true THEN ", n) + "DELETE FROM contacts;" + strings.Repeat(" END IF;", n) + " END$$"
		if res, _, ref := r.Rewrite(very); ref == nil && !strings.Contains(res.SQL, "UPDATE contacts SET deleted_at") {
			t.Errorf("%d nested IFs: neither refused nor rewritten", n)
		}
	}
}

// pg_query does not print a record variable's DEFAULT: every spelling of
// one that reads a soft-delete table is found in the tokens and refused,
// or (a type pg_query takes for a scalar) rewritten like any DEFAULT.
func TestRecordDefaults(t *testing.T) {
	r := New(testPolicy(t), 0)
	for _, tc := range []struct {
		decl string
		want string // refused, filtered (the default reads live rows), or passes
	}{
		{"r record := (SELECT c FROM contacts c LIMIT 1);", "refused"},
		{"DECLARE r record := (SELECT c FROM contacts c LIMIT 1);", "refused"},
		{"n int; r CONSTANT record = (SELECT c FROM contacts c LIMIT 1);", "refused"},
		{`"R" rec NOT NULL := (SELECT c FROM contacts c LIMIT 1);`, "refused"},
		{"r /* c */ re := (SELECT c FROM contacts c LIMIT 1);", "refused"},
		{"r RECORD /* c */ DEFAULT (SELECT c FROM contacts c LIMIT 1);", "filtered"},
		{"r contacts := (SELECT c FROM contacts c LIMIT 1);", "filtered"},
		{"r record := (SELECT n FROM notes n LIMIT 1);", "passes"},
		{"r record;", "passes"},
	} {
		sql := "DO $$DECLARE " + tc.decl + " BEGIN PERFORM 1 FROM contacts; END$$"
		res, _, ref := r.Rewrite(sql)
		got := "passes"
		switch {
		case ref != nil:
			got = "refused"
		case strings.Contains(res.SQL, "c.deleted_at IS NULL LIMIT 1"):
			got = "filtered"
		}
		if got != tc.want {
			t.Errorf("%s: %s (%v), want %s", sql, got, ref, tc.want)
		}
	}
}

// Routines inside routines are rewritten at every level, each body in a
// dollar quote of its own (pg_query's printer has only $$ and $outer$ for
// DO), down to a bounded depth.
func TestNestedRoutines(t *testing.T) {
	r := New(testPolicy(t), 0)
	nest := func(n int) string {
		body := "PERFORM 1 FROM contacts;"
		for i := range n {
			tag := fmt.Sprintf("$t%d$", i)
			body = "DO " + tag + "BEGIN " + body + " END" + tag + ";"
		}
		return body[:len(body)-1]
	}
	for _, n := range []int{2, 3, maxBodyNesting + 1} {
		res := mustRewrite(t, r, nest(n))
		if !strings.Contains(res.SQL, "PERFORM 1 FROM contacts WHERE contacts.deleted_at IS NULL") {
			t.Errorf("%d nested DO blocks: %s", n, res.SQL)
		}
		if got := strings.Count(res.SQL, "BEGIN DO"); got != n-1 {
			t.Errorf("%d nested DO blocks: %d inner ones left in %s", n, got, res.SQL)
		}
	}
	if f := refusal(t, r, nest(maxBodyNesting+2)); f.Reason != ReasonTooDeep {
		t.Errorf("%d nested DO blocks: %+v", maxBodyNesting+2, f)
	}
	// A U& literal is read too; one with UESCAPE is not, and counts as
	// deep as the bound.
	if res := mustRewrite(t, r, `DO $$BEGIN EXECUTE U&'DELETE FROM contacts'; END$$`); !strings.Contains(res.SQL, "UPDATE contacts SET deleted_at") {
		t.Errorf("EXECUTE of a U& literal: %s", res.SQL)
	}
	if f := refusal(t, r, `DO $$BEGIN PERFORM U&'!0063' UESCAPE '!' FROM contacts; END$$`); f.Reason != ReasonTooDeep {
		t.Errorf("U& literal with UESCAPE: %+v", f)
	}
	const viaExecute = "DO $$BEGIN EXECUTE 'DO $d$BEGIN DELETE FROM contacts WHERE id = 1; END$d$'; END$$"
	if res := mustRewrite(t, r, viaExecute); !strings.Contains(res.SQL, "UPDATE contacts SET deleted_at") || strings.Contains(res.SQL, "DELETE") {
		t.Errorf("DO in an EXECUTE string: %s", res.SQL)
	}
}
