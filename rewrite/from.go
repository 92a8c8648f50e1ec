package rewrite

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// FROM trees. Each node returns the "pending" filters that must hold above
// it. A configured table's RangeVar returns [ref.deleted_at IS NULL]. An
// inner or cross join passes both children's filters up. A LEFT or RIGHT
// join ANDs the nullable side's filters into its ON (in WHERE they would
// turn it into an inner join) and passes the other side's up. At the top of
// a FROM list the filters go into WHERE.
//
// Where no ON exists to take a filter (NATURAL and USING joins), where a
// join alias hides the table names from the level above, where a
// column-alias list or a MERGE source rules a qualified filter out, and on
// both sides of a FULL join, the table is replaced by
// (SELECT * FROM t WHERE deleted_at IS NULL) AS t: "inline" mode.
// PostgreSQL runs a FULL JOIN only on merge- or hash-joinable conditions,
// so a filter ANDed into its ON can make a valid statement (ON true,
// say) fail; the live-rows subquery is exact whatever the condition, and
// the planner flattens it.

// fromList rewrites a FROM (or USING) list and returns the filters to AND
// into the statement's WHERE.
func (e *engine) fromList(items []*pg.Node, sc *scope) ([]*pg.Node, error) {
	var pending []*pg.Node
	for _, it := range items {
		p, err := e.fromItem(it, sc, false)
		if err != nil {
			return nil, err
		}
		pending = append(pending, p...)
	}
	return pending, nil
}

// fromItem rewrites one FROM item in place. With inline set, no filter may
// be returned: configured tables are replaced by their live rows.
func (e *engine) fromItem(n *pg.Node, sc *scope, inline bool) ([]*pg.Node, error) {
	if n == nil {
		return nil, nil
	}
	inline = inline || e.view
	switch it := n.Node.(type) {
	case *pg.Node_RangeVar:
		return e.rangeVar(n, it.RangeVar, sc, inline), nil
	case *pg.Node_RangeSubselect:
		return nil, e.statement1(it.RangeSubselect.Subquery, sc)
	case *pg.Node_JoinExpr:
		return e.join(it.JoinExpr, sc, inline)
	case *pg.Node_RangeTableSample:
		rv := it.RangeTableSample.Relation.GetRangeVar()
		if rv == nil {
			return nil, e.expr(n, sc)
		}
		if err := e.exprs(sc, it.RangeTableSample.Args, []*pg.Node{it.RangeTableSample.Repeatable}); err != nil {
			return nil, err
		}
		t, ok := e.table(rv, sc)
		e.mark(rv)
		if !ok {
			return nil, nil
		}
		if inline || (rv.Alias != nil && len(rv.Alias.Colnames) > 0) {
			return nil, unsupported("TABLESAMPLE inside an outer join, a join alias, a view or with column aliases", t)
		}
		e.apply(t, KindSelect)
		return []*pg.Node{isNull(columnRef(refQual(rv), t.DeletedAt))}, nil
	}
	// Function calls, XMLTABLE, JSON_TABLE: their arguments may hold
	// subqueries.
	return nil, e.expr(n, sc)
}

// rangeVar filters one table reference, replacing it by its live rows in
// inline mode.
func (e *engine) rangeVar(n *pg.Node, rv *pg.RangeVar, sc *scope, inline bool) []*pg.Node {
	e.mark(rv)
	t, ok := e.table(rv, sc)
	if !ok {
		if isStatsView(rv, sc) {
			sub, inner := e.liveStats(rv)
			e.mark(inner)
			n.Node = sub.Node
			e.changed = true
			e.noText()
		}
		return nil
	}
	e.apply(t, KindSelect)
	if inline || (rv.Alias != nil && len(rv.Alias.Colnames) > 0) {
		sub, inner := liveRowsSubselect(rv, t.DeletedAt)
		e.mark(inner)
		e.noText()
		n.Node = sub.Node
		return nil
	}
	return []*pg.Node{isNull(columnRef(refQual(rv), t.DeletedAt))}
}

// join places its children's filters as described above.
func (e *engine) join(j *pg.JoinExpr, sc *scope, inline bool) ([]*pg.Node, error) {
	// A join alias hides the joined tables' names: nothing can refer to
	// them above this join.
	inline = inline || j.Alias != nil
	leftInline, rightInline := inline, inline
	if j.Jointype == pg.JoinType_JOIN_FULL {
		leftInline, rightInline = true, true
	} else if j.IsNatural || len(j.UsingClause) > 0 {
		// No ON clause to take the nullable side's filters.
		switch j.Jointype {
		case pg.JoinType_JOIN_LEFT:
			rightInline = true
		case pg.JoinType_JOIN_RIGHT:
			leftInline = true
		}
	}
	left, err := e.fromItem(j.Larg, sc, leftInline)
	if err != nil {
		return nil, err
	}
	right, err := e.fromItem(j.Rarg, sc, rightInline)
	if err != nil {
		return nil, err
	}
	if err := e.expr(j.Quals, sc); err != nil {
		return nil, err
	}
	var up, on []*pg.Node
	switch j.Jointype {
	case pg.JoinType_JOIN_LEFT:
		up, on = left, right
	case pg.JoinType_JOIN_RIGHT:
		up, on = right, left
	default: // inner and cross joins; FULL joins have inlined both sides
		up = append(left, right...)
	}
	if len(on) > 0 {
		e.record(textEdit{kind: editOn, owner: j, orig: j.Quals, add: on})
		j.Quals = and(append([]*pg.Node{j.Quals}, on...)...)
	}
	return up, nil
}

// statsViews show sampled column values (most_common_vals,
// histogram_bounds, their extended-statistics forms) of every row ANALYZE
// saw, deleted ones included. Their rows for configured tables are
// hidden: the views are replaced by their rows for other tables. Only
// superusers read pg_statistic itself.
var statsViews = map[string]bool{"pg_stats": true, "pg_stats_ext": true, "pg_stats_ext_exprs": true}

// isStatsView reports a reference to one of statsViews in pg_catalog (or
// unqualified: pg_catalog is searched first unless search_path says
// otherwise, and hiding rows of a look-alike is the safe mistake).
func isStatsView(rv *pg.RangeVar, sc *scope) bool {
	if rv.Schemaname == "" && sc.has(rv.Relname) {
		return false
	}
	return statsViews[rv.Relname] && (rv.Schemaname == "" || rv.Schemaname == "pg_catalog") && rv.Catalogname == ""
}

// liveStats is (SELECT * FROM pg_catalog.view WHERE NOT (rows of
// configured tables)) AS alias. Comparisons use OPERATOR(pg_catalog.=):
// an operator the client created ahead of pg_catalog in search_path must
// not decide which rows are hidden.
func (e *engine) liveStats(rv *pg.RangeVar) (*pg.Node, *pg.RangeVar) {
	inner := &pg.RangeVar{Schemaname: "pg_catalog", Relname: rv.Relname, Inh: true, Relpersistence: "p", Location: -1}
	var hidden []*pg.Node
	for _, t := range e.policy.Tables() {
		cond := nameEquals("tablename", t.Name)
		if t.Schema != "" {
			cond = and(nameEquals("schemaname", t.Schema), cond)
		}
		hidden = append(hidden, cond)
	}
	var where *pg.Node
	switch len(hidden) {
	case 0:
	case 1:
		where = pg.MakeBoolExprNode(pg.BoolExprType_NOT_EXPR, hidden, -1)
	default:
		where = pg.MakeBoolExprNode(pg.BoolExprType_NOT_EXPR, []*pg.Node{pg.MakeBoolExprNode(pg.BoolExprType_OR_EXPR, hidden, -1)}, -1)
	}
	alias := rv.Alias
	if alias == nil {
		alias = &pg.Alias{Aliasname: rv.Relname}
	}
	sel := &pg.SelectStmt{
		TargetList:  []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeAStarNode()}, -1), -1)},
		FromClause:  []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: inner}}},
		WhereClause: where,
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}
	return &pg.Node{Node: &pg.Node_RangeSubselect{RangeSubselect: &pg.RangeSubselect{
		Subquery: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}},
		Alias:    alias,
	}}}, inner
}

// nameEquals is col OPERATOR(pg_catalog.=) 'value'.
func nameEquals(col, value string) *pg.Node {
	return pg.MakeAExprNode(pg.A_Expr_Kind_AEXPR_OP, []*pg.Node{pg.MakeStrNode("pg_catalog"), pg.MakeStrNode("=")},
		columnRef(nil, col), pg.MakeAConstStrNode(value, -1), -1)
}
