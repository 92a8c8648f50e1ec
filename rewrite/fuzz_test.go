package rewrite

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tombstone-proxy/tombstone/policy"
)

// FuzzRewrite checks, for any text: Rewrite does not panic; a refusal has a
// known reason and a SQLSTATE; an unchanged result carries the input; a
// changed result parses (when pg_query can print the input itself), and every configured table it reads still carries
// its live-rows filter. The seed corpus (testdata/fuzz/FuzzRewrite) is the
// golden cases' SQL; `go test -run TestGolden -update` regenerates it.
func FuzzRewrite(f *testing.F) {
	p := testPolicy(f)
	r := New(p, 0)
	f.Fuzz(func(t *testing.T, sql string) {
		res, _, ref := r.Rewrite(sql)
		switch {
		case ref != nil:
			if !slices.Contains([]string{ReasonTruncate, ReasonUnparseable, ReasonTooLong, ReasonTooDeep, ReasonUnsupported, ReasonPrivileged, ReasonLexing}, ref.Reason) || len(ref.Code) != 5 || ref.Message == "" {
				t.Fatalf("malformed refusal %+v", ref)
			}
			return
		case res == nil:
			return
		case !res.Changed:
			if res.SQL != sql {
				t.Fatal("unchanged result does not carry the input")
			}
			return
		}
		tree, err := pg.Parse(res.SQL)
		if err != nil && !deparseRoundTrips(sql) {
			return
		}
		if err != nil {
			t.Fatalf("rewritten SQL does not parse: %v\n in: %s\nout: %s", err, sql, res.SQL)
		}
		if msg := unfilteredRead(p, tree); msg != "" {
			t.Fatalf("%s\n in: %s\nout: %s", msg, sql, res.SQL)
		}
	})
}

// unfilteredRead looks, in a rewritten tree, for a configured table read
// in a FROM list (or targeted by UPDATE or MERGE) whose own filter is not
// where it must be, and for a DELETE of a configured table that survived.
// Each reference is checked where it stands: its "ref.deleted_at IS NULL"
// must be a conjunct of the WHERE of the statement whose FROM holds it, or,
// below the nullable side of an outer join, of that join's ON; a reference
// that is the only FROM item of a SELECT may be filtered unqualified (the
// live-rows subselect, COPY). References whose name is a CTE anywhere in
// the text are skipped, since they may shadow a table.
func unfilteredRead(p *policy.Policy, tree *pg.ParseResult) string {
	ctes := map[string]bool{}
	for _, raw := range tree.Stmts {
		visitAll(raw.Stmt.ProtoReflect(), func(m protoreflect.Message) {
			if x, ok := m.Interface().(*pg.CommonTableExpr); ok {
				ctes[x.Ctename] = true
			}
		})
	}
	msg := ""
	fail := func(rv *pg.RangeVar) {
		if msg == "" {
			msg = "read of soft-delete table " + rv.Relname + " lost its filter"
		}
	}
	// check judges rv against the conjuncts that must hold its filter.
	check := func(rv *pg.RangeVar, conds map[string]bool, alone bool) {
		t, ok := p.Lookup(rv.Schemaname, rv.Relname)
		if !ok || (rv.Schemaname == "" && ctes[rv.Relname]) {
			return
		}
		if !conds[strings.Join(append(refQual(rv), t.DeletedAt), ".")] && !(alone && conds[t.DeletedAt]) {
			fail(rv)
		}
	}
	// from walks a FROM item: where is the conjunct set its filters
	// belong to unless an outer join makes it nullable.
	var from func(n *pg.Node, where map[string]bool, alone bool)
	from = func(n *pg.Node, where map[string]bool, alone bool) {
		switch {
		case n.GetRangeVar() != nil:
			check(n.GetRangeVar(), where, alone)
		case n.GetRangeTableSample() != nil:
			if rv := n.GetRangeTableSample().Relation.GetRangeVar(); rv != nil {
				check(rv, where, alone)
			}
		case n.GetJoinExpr() != nil:
			j := n.GetJoinExpr()
			on := nullTests(j.Quals)
			left, right := where, where
			switch j.Jointype {
			case pg.JoinType_JOIN_LEFT:
				right = on
			case pg.JoinType_JOIN_RIGHT:
				left = on
			case pg.JoinType_JOIN_FULL:
				left, right = on, on
			}
			from(j.Larg, left, false)
			from(j.Rarg, right, false)
		}
	}
	for _, raw := range tree.Stmts {
		visitAll(raw.Stmt.ProtoReflect(), func(m protoreflect.Message) {
			switch x := m.Interface().(type) {
			case *pg.SelectStmt:
				where := nullTests(x.WhereClause)
				for _, n := range x.FromClause {
					from(n, where, len(x.FromClause) == 1)
				}
			case *pg.UpdateStmt:
				where := nullTests(x.WhereClause)
				for _, n := range x.FromClause {
					from(n, where, false)
				}
				if !isCurrentOf(x.WhereClause) {
					check(x.Relation, where, false)
				}
			case *pg.DeleteStmt:
				if _, ok := p.Lookup(x.Relation.Schemaname, x.Relation.Relname); ok && msg == "" {
					msg = "a DELETE of soft-delete table " + x.Relation.Relname + " survived"
				}
				where := nullTests(x.WhereClause)
				for _, n := range x.UsingClause {
					from(n, where, false)
				}
			case *pg.MergeStmt:
				from(x.SourceRelation, map[string]bool{}, false) // must be inlined
				check(x.Relation, nullTests(x.JoinCondition), false)
			}
		})
	}
	return msg
}

// nullTests is the set of "qual.col IS NULL" conjuncts of cond (ANDs
// flattened), keyed by the dotted column reference.
func nullTests(cond *pg.Node) map[string]bool {
	out := map[string]bool{}
	var walk func(n *pg.Node)
	walk = func(n *pg.Node) {
		if b := n.GetBoolExpr(); b != nil && b.Boolop == pg.BoolExprType_AND_EXPR {
			for _, a := range b.Args {
				walk(a)
			}
			return
		}
		if x := n.GetNullTest(); x != nil && x.Nulltesttype == pg.NullTestType_IS_NULL {
			if cr := x.Arg.GetColumnRef(); cr != nil {
				var parts []string
				for _, f := range cr.Fields {
					parts = append(parts, f.GetString_().GetSval())
				}
				out[strings.Join(parts, ".")] = true
			}
		}
	}
	if cond != nil {
		walk(cond)
	}
	return out
}

// visitAll calls f for m and every message under it.
func visitAll(m protoreflect.Message, f func(protoreflect.Message)) {
	f(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		_ = eachMessage(fd, v, func(c protoreflect.Message) error { visitAll(c, f); return nil })
		return true
	})
}

// deparseRoundTrips reports whether pg_query can print sql's own tree as
// text that parses again. Some texts that Postgres rejects anyway (a $0
// parameter, a subquery as a type modifier) do not, and then the rewrite
// of them cannot either: that is pg_query's limit, not the rewriter's.
func deparseRoundTrips(sql string) bool {
	tree, err := pg.Parse(sql)
	if err != nil {
		return false
	}
	out, err := pg.Deparse(tree)
	if err != nil {
		return false
	}
	_, err = pg.Parse(out)
	return err == nil
}

// TestFuzzCorpusMatchesGolden keeps the seed corpus in step with the golden
// files, and writes it with -update.
func TestFuzzCorpusMatchesGolden(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRewrite")
	want := map[string]string{}
	for _, f := range loadGolden(t) {
		base := strings.TrimSuffix(filepath.Base(f.path), ".yaml")
		for _, c := range f.cases {
			name := base + "-" + strings.ReplaceAll(c.Name, " ", "-")
			want[name] = fmt.Sprintf("go test fuzz v1\nstring(%q)\n", c.SQL)
		}
	}
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range want {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, body := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != body {
			t.Errorf("seed %s is missing or stale; run go test ./rewrite -run 'TestGolden|TestFuzzCorpus' -update", name)
		}
	}
}

// The checker itself must fail on misplaced or missing filters, or the
// fuzz target proves nothing.
func TestUnfilteredReadCatchesMisplacedFilters(t *testing.T) {
	p := testPolicy(t)
	for _, tc := range []struct {
		sql  string
		leak bool
	}{
		{"SELECT * FROM contacts c WHERE c.deleted_at IS NULL", false},
		{"SELECT * FROM contacts c", true},
		// The filter of the nullable side belongs in ON, not WHERE.
		{"SELECT * FROM orgs g LEFT JOIN contacts c ON c.org_id = g.id WHERE c.deleted_at IS NULL", true},
		{"SELECT * FROM orgs g LEFT JOIN contacts c ON c.org_id = g.id AND c.deleted_at IS NULL", false},
		// A filter of the same name in another subquery does not count.
		{"SELECT * FROM contacts c WHERE c.id IN (SELECT c.id FROM contacts c WHERE c.deleted_at IS NULL)", true},
		// An OR does not filter.
		{"SELECT * FROM contacts c WHERE c.deleted_at IS NULL OR true", true},
		{"SELECT * FROM (SELECT * FROM contacts WHERE deleted_at IS NULL) c", false},
		{"SELECT * FROM contacts, orgs WHERE deleted_at IS NULL", true},
		{"UPDATE contacts SET name = 'x'", true},
		{"DELETE FROM contacts", true},
		{"MERGE INTO contacts c USING notes n ON n.id = c.id WHEN MATCHED THEN DO NOTHING", true},
	} {
		tree, err := pg.Parse(tc.sql)
		if err != nil {
			t.Fatal(err)
		}
		if got := unfilteredRead(p, tree) != ""; got != tc.leak {
			t.Errorf("%s: reported a leak %v, want %v", tc.sql, got, tc.leak)
		}
	}
}
