package rewrite

import pg "github.com/pganalyze/pg_query_go/v6"

// Node builders for the few constructs the rules add. pg_query_go has no
// NullTest or SQLValueFunction helper, so these build the nodes directly.

// columnRef is qual.col where qual is the reference as written in FROM
// (alias, or [catalog.][schema.]name).
func columnRef(qual []string, col string) *pg.Node {
	fields := make([]*pg.Node, 0, len(qual)+1)
	for _, q := range qual {
		fields = append(fields, pg.MakeStrNode(q))
	}
	fields = append(fields, pg.MakeStrNode(col))
	return pg.MakeColumnRefNode(fields, -1)
}

// isNull is arg IS NULL.
func isNull(arg *pg.Node) *pg.Node {
	return &pg.Node{Node: &pg.Node_NullTest{NullTest: &pg.NullTest{
		Arg: arg, Nulltesttype: pg.NullTestType_IS_NULL, Location: -1,
	}}}
}

// and joins conditions with AND, skipping nil ones; it returns nil when all
// are nil and the condition itself when there is only one.
func and(conds ...*pg.Node) *pg.Node {
	var args []*pg.Node
	for _, c := range conds {
		if c != nil {
			args = append(args, c)
		}
	}
	switch len(args) {
	case 0:
		return nil
	case 1:
		return args[0]
	}
	return pg.MakeBoolExprNode(pg.BoolExprType_AND_EXPR, args, -1)
}

// refQual is how a filter refers to a relation: its alias when it has one,
// otherwise the name exactly as written (schema.t.deleted_at is valid when
// FROM names schema.t).
func refQual(rv *pg.RangeVar) []string {
	if rv.Alias != nil && rv.Alias.Aliasname != "" {
		return []string{rv.Alias.Aliasname}
	}
	var q []string
	if rv.Catalogname != "" {
		q = append(q, rv.Catalogname)
	}
	if rv.Schemaname != "" {
		q = append(q, rv.Schemaname)
	}
	return append(q, rv.Relname)
}

// liveRowsSubselect is (SELECT * FROM [ONLY] t WHERE deleted_at IS NULL) AS
// alias: the fallback where a filter cannot be placed exactly. It keeps the
// column names, so * expansion, USING merging and column-alias lists work
// as before. The inner RangeVar is returned so the caller can mark it.
func liveRowsSubselect(rv *pg.RangeVar, deletedAt string) (*pg.Node, *pg.RangeVar) {
	inner := &pg.RangeVar{
		Catalogname: rv.Catalogname, Schemaname: rv.Schemaname, Relname: rv.Relname,
		Inh: rv.Inh, Relpersistence: rv.Relpersistence, Location: -1,
	}
	sel := &pg.SelectStmt{
		TargetList:  []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeAStarNode()}, -1), -1)},
		FromClause:  []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: inner}}},
		WhereClause: isNull(columnRef(nil, deletedAt)),
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}
	alias := rv.Alias
	if alias == nil {
		alias = &pg.Alias{Aliasname: rv.Relname}
	}
	return &pg.Node{Node: &pg.Node_RangeSubselect{RangeSubselect: &pg.RangeSubselect{
		Subquery: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}},
		Alias:    alias,
	}}}, inner
}

// caseWhen is CASE WHEN cond THEN then ELSE otherwise END, which
// evaluates then only where cond holds.
func caseWhen(cond, then, otherwise *pg.Node) *pg.Node {
	return &pg.Node{Node: &pg.Node_CaseExpr{CaseExpr: &pg.CaseExpr{
		Args:      []*pg.Node{{Node: &pg.Node_CaseWhen{CaseWhen: &pg.CaseWhen{Expr: cond, Result: then, Location: -1}}}},
		Defresult: otherwise,
		Location:  -1,
	}}}
}

// boolConst is the constant true or false.
func boolConst(v bool) *pg.Node {
	return &pg.Node{Node: &pg.Node_AConst{AConst: &pg.A_Const{Val: &pg.A_Const_Boolval{Boolval: &pg.Boolean{Boolval: v}}, Location: -1}}}
}

// isCurrentOf reports WHERE CURRENT OF cursor, which must not be ANDed with
// anything.
func isCurrentOf(n *pg.Node) bool {
	return n != nil && n.GetCurrentOfExpr() != nil
}
