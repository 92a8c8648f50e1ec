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
// in a FROM list (or targeted by UPDATE) whose reference no
// "ref.deleted_at IS NULL" names, and for a DELETE of a configured table
// that survived. An unqualified filter (the live-rows subselect, COPY)
// covers unqualified references. Names of CTEs anywhere in the text are
// skipped, since they may shadow a table.
func unfilteredRead(p *policy.Policy, tree *pg.ParseResult) string {
	ctes := map[string]bool{}
	filtered := map[string]bool{}
	for _, raw := range tree.Stmts {
		visitAll(raw.Stmt.ProtoReflect(), func(m protoreflect.Message) {
			switch x := m.Interface().(type) {
			case *pg.CommonTableExpr:
				ctes[x.Ctename] = true
			case *pg.NullTest:
				if cr := x.Arg.GetColumnRef(); cr != nil && x.Nulltesttype == pg.NullTestType_IS_NULL {
					var parts []string
					for _, f := range cr.Fields {
						parts = append(parts, f.GetString_().GetSval())
					}
					filtered[strings.Join(parts, ".")] = true
				}
			}
		})
	}
	covered := func(rv *pg.RangeVar) bool {
		t, ok := p.Lookup(rv.Schemaname, rv.Relname)
		if !ok || (rv.Schemaname == "" && ctes[rv.Relname]) {
			return true
		}
		return filtered[strings.Join(append(refQual(rv), t.DeletedAt), ".")] || filtered[t.DeletedAt]
	}
	var fromRVs func(n *pg.Node, out *[]*pg.RangeVar)
	fromRVs = func(n *pg.Node, out *[]*pg.RangeVar) {
		switch {
		case n.GetRangeVar() != nil:
			*out = append(*out, n.GetRangeVar())
		case n.GetJoinExpr() != nil:
			fromRVs(n.GetJoinExpr().Larg, out)
			fromRVs(n.GetJoinExpr().Rarg, out)
		case n.GetRangeTableSample() != nil:
			fromRVs(n.GetRangeTableSample().Relation, out)
		}
	}
	msg := ""
	for _, raw := range tree.Stmts {
		visitAll(raw.Stmt.ProtoReflect(), func(m protoreflect.Message) {
			var reads []*pg.RangeVar
			switch x := m.Interface().(type) {
			case *pg.SelectStmt:
				for _, n := range x.FromClause {
					fromRVs(n, &reads)
				}
			case *pg.UpdateStmt:
				for _, n := range x.FromClause {
					fromRVs(n, &reads)
				}
				if !isCurrentOf(x.WhereClause) {
					reads = append(reads, x.Relation)
				}
			case *pg.DeleteStmt:
				if _, ok := p.Lookup(x.Relation.Schemaname, x.Relation.Relname); ok {
					msg = "a DELETE of soft-delete table " + x.Relation.Relname + " survived"
				}
				for _, n := range x.UsingClause {
					fromRVs(n, &reads)
				}
			case *pg.MergeStmt:
				fromRVs(x.SourceRelation, &reads)
				reads = append(reads, x.Relation)
			}
			for _, rv := range reads {
				if !covered(rv) && msg == "" {
					msg = "read of soft-delete table " + rv.Relname + " lost its filter"
				}
			}
		})
	}
	return msg
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
