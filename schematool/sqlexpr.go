package schematool

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/tombstone-proxy/tombstone/catalog"
)

// The expressions PostgreSQL prints (pg_get_expr, pg_get_indexdef,
// pg_get_constraintdef) are read with pg_query rather than by matching
// text: a string literal or a quoted name can hold anything.

// requiresLive reports whether pred (as pg_get_expr prints an index
// predicate) has "col IS NULL" among its top-level AND terms, so that the
// index holds live rows only.
func requiresLive(pred, col string) bool {
	if pred == "" {
		return false
	}
	where, err := parseWhere(pred)
	if err != nil {
		return false
	}
	terms := []*pg.Node{where}
	if b := where.GetBoolExpr(); b != nil && b.Boolop == pg.BoolExprType_AND_EXPR {
		terms = b.Args
	}
	for _, t := range terms {
		n := t.GetNullTest()
		if n == nil || n.Nulltesttype != pg.NullTestType_IS_NULL {
			continue
		}
		if c := n.Arg.GetColumnRef(); c != nil && len(c.Fields) == 1 && c.Fields[0].GetString_().GetSval() == col {
			return true
		}
	}
	return false
}

// mentions reports whether the expression expr names any of names (a
// column, a function, or a keyword such as current_timestamp): every
// token is compared as the server folds it.
func mentions(expr string, names ...string) bool {
	if expr == "" {
		return false
	}
	scan, err := pg.Scan(expr)
	if err != nil {
		return true // unreadable: assume the worst, the report says to look
	}
	for _, t := range scan.Tokens {
		if t.Token == pg.Token_SCONST || t.Start < 0 || t.End > int32(len(expr)) {
			continue
		}
		text := expr[t.Start:t.End]
		if strings.HasPrefix(text, `"`) && len(text) >= 2 {
			text = strings.ReplaceAll(text[1:len(text)-1], `""`, `"`)
		} else {
			text = strings.ToLower(text)
		}
		for _, n := range names {
			if text == n {
				return true
			}
		}
	}
	return false
}

// parseWhere parses a boolean expression.
func parseWhere(expr string) (*pg.Node, error) {
	tree, err := pg.Parse("SELECT WHERE " + expr)
	if err != nil {
		return nil, err
	}
	return tree.Stmts[0].Stmt.GetSelectStmt().WhereClause, nil
}

// andLive is where AND col IS NULL (col IS NULL when where is nil).
func andLive(where *pg.Node, col string) *pg.Node {
	live := &pg.Node{Node: &pg.Node_NullTest{NullTest: &pg.NullTest{
		Arg:          pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(col)}, -1),
		Nulltesttype: pg.NullTestType_IS_NULL, Location: -1,
	}}}
	if where == nil {
		return live
	}
	return pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, []*pg.Node{where, live}, -1)
}

// partialIndex turns def, an index definition as pg_get_indexdef prints
// it, into a CREATE INDEX [CONCURRENTLY] of the same index named name that
// holds only the rows where col IS NULL (and its predicate, if any), in
// tablespace (empty: the default). A key column col is left out: it is
// NULL in every row the index then holds.
func partialIndex(def, name, col, tablespace string, concurrently bool) (string, error) {
	tree, err := pg.Parse(def)
	if err != nil {
		return "", fmt.Errorf("read the definition %q: %w", def, err)
	}
	stmt := tree.Stmts[0].Stmt.GetIndexStmt()
	if stmt == nil {
		return "", fmt.Errorf("the definition %q is not a CREATE INDEX", def)
	}
	params := stmt.IndexParams[:0:0]
	for _, p := range stmt.IndexParams {
		if e := p.GetIndexElem(); e == nil || e.Name != col {
			params = append(params, p)
		}
	}
	if len(params) == 0 {
		return "", fmt.Errorf("the index has no key column but %s", col)
	}
	stmt.IndexParams = params
	stmt.Idxname, stmt.Concurrent, stmt.WhereClause, stmt.TableSpace = name, concurrently, andLive(stmt.WhereClause, col), tablespace
	return pg.Deparse(tree)
}

// partialExclusion turns def, an exclusion constraint as
// pg_get_constraintdef prints it, into ALTER TABLE table ADD CONSTRAINT
// name of the same constraint holding only the rows where col IS NULL.
func partialExclusion(table, def, name, col string) (string, error) {
	tree, err := pg.Parse("ALTER TABLE " + table + " ADD CONSTRAINT " + catalog.QuoteIdent(name) + " " + def)
	if err != nil {
		return "", fmt.Errorf("read the definition %q: %w", def, err)
	}
	alter := tree.Stmts[0].Stmt.GetAlterTableStmt()
	if alter == nil || len(alter.Cmds) != 1 {
		return "", fmt.Errorf("the definition %q is not one constraint", def)
	}
	con := alter.Cmds[0].GetAlterTableCmd().GetDef().GetConstraint()
	if con == nil || con.Contype != pg.ConstrType_CONSTR_EXCLUSION {
		return "", fmt.Errorf("the definition %q is not an exclusion constraint", def)
	}
	con.WhereClause = andLive(con.WhereClause, col)
	return pg.Deparse(tree)
}
