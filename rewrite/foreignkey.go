package rewrite

import (
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/tombstone-proxy/tombstone/policy"
)

// Foreign keys behave as their declared actions say (issue 10). A soft
// delete leaves the parent row in place, so PostgreSQL's own referential
// actions never fire; the rewritten DELETE carries them out itself:
//
//	WITH <client's CTEs>,
//	  tombstone_target AS MATERIALIZED (
//	    SELECT t.tableoid, t.ctid, <referenced keys> FROM t [, USING items]
//	    WHERE <client's WHERE> AND t.deleted_at IS NULL FOR UPDATE OF t),
//	  tombstone_c1 AS (UPDATE child SET deleted_at = now() WHERE live
//	    AND EXISTS (its parent key in tombstone_target) RETURNING keys),
//	  tombstone_x1 AS (SELECT tombstone.fail(...) FROM ... LIMIT 1),
//	UPDATE t SET deleted_at = now() FROM tombstone_target
//	WHERE t.tableoid = ... AND t.ctid = ... AND NOT EXISTS (tombstone_x1)
//
// The target rows are chosen once (the client's WHERE, volatile or not,
// runs once) and locked; the main statement stays an UPDATE of the table,
// so its row count is the client's DELETE n. Cascades are data-modifying
// CTEs, which PostgreSQL always runs to completion; a check is a CTE that
// raises through tombstone.fail (installed by tombstone migrate) when a
// referencing row exists, and the main statement's NOT EXISTS makes it
// run. Every operator is OPERATOR(pg_catalog.=): the client chooses the
// search_path, and an = of its own could otherwise skip a check.

// fkPlan accumulates the CTEs one DELETE needs.
type fkPlan struct {
	e      *engine
	ctes   []string // WITH items, as SQL text
	checks []string // names of the check CTEs the main statement must read
	// keys maps a referenced column of the target table to its column
	// in tombstone_target.
	keys   map[string]string
	path   []string // the soft tables on the current cascade path, for cycles
	target string   // the name of the target CTE
	// cascaded names the cascade CTEs, whose RETURNING carries
	// tombstone_oid and tombstone_key for the audit log.
	cascaded []string
}

// deletionCtx is the name of the CTE holding a statement's deletion values
// (deletion.go): one per top-level statement, shared by all its DELETEs.
const deletionCtx = "tombstone_ctx"

// foreignKeys rewrites the DELETE n (already the soft-delete UPDATE when
// soft is set, still a DELETE for a plain parent) so that the foreign keys
// deps lists are carried out or checked. rv is the DELETE's target.
func (e *engine) foreignKeys(n *pg.Node, rv *pg.RangeVar, soft *policy.Table, deps []*policy.ForeignKey) error {
	// Names are unique in the text: several DELETEs may be CTEs of one
	// statement.
	p := &fkPlan{e: e, keys: map[string]string{}, target: "tombstone_target"}
	if e.fkSeq++; e.fkSeq > 1 {
		p.target = fmt.Sprintf("tombstone_target%d", e.fkSeq)
	}
	parent := rv.Relname
	if soft != nil {
		p.path = []string{soft.QualifiedName()}
	}
	audit := soft != nil && e.audited()
	if err := p.expand(p.target, parent, soft != nil, deps, p.targetKey); err != nil {
		return err
	}
	if len(p.ctes) == 0 && !audit {
		return nil // nothing to carry out: SET NULL or RESTRICT from a plain parent, which the server does
	}
	if len(p.checks) > 0 && !e.policy.Helpers() {
		return refuseNoHelpers(rv.Relname)
	}
	e.changed = true // a plain parent's DELETE applies no rule of its own
	e.noText()
	var (
		with      **pg.WithClause
		from      *[]*pg.Node
		where     **pg.Node
		returning []*pg.Node
	)
	switch s := n.Node.(type) {
	case *pg.Node_UpdateStmt:
		with, from, where, returning = &s.UpdateStmt.WithClause, &s.UpdateStmt.FromClause, &s.UpdateStmt.WhereClause, s.UpdateStmt.ReturningList
	case *pg.Node_DeleteStmt:
		with, from, where, returning = &s.DeleteStmt.WithClause, &s.DeleteStmt.UsingClause, &s.DeleteStmt.WhereClause, s.DeleteStmt.ReturningList
	}
	if e.cteDepth > 0 && *with != nil {
		// The hoisted CTEs would sit outside the DELETE's own WITH, whose
		// names the client's WHERE sees (and which could shadow ours):
		// nothing can place both exactly.
		return unsupported("a DELETE with a WITH of its own inside a WITH, on a table with foreign keys", soft)
	}
	if len(*from) > 0 && len(returning) > 0 {
		// RETURNING may name the USING items, which move into the
		// target CTE.
		return unsupported("DELETE ... USING ... RETURNING on a table with foreign keys", soft)
	}
	target, err := p.targetSelect(rv, soft, *from, *where, audit)
	if err != nil {
		return err
	}
	items := []*pg.Node{target}
	ctes := p.ctes
	if soft != nil {
		if !e.ctxMade {
			// First in the statement: the context goes ahead of every
			// CTE that reads it.
			e.ctxMade = true
			ctx, err := parseCTE(e.ctxCTE(deletionCtx))
			if err != nil {
				return refuseInternal(err)
			}
			items = append([]*pg.Node{ctx}, items...)
		}
		set, err := softSetTargets(soft, fromContext(deletionCtx))
		if err != nil {
			return err
		}
		n.GetUpdateStmt().TargetList = set
		if audit {
			sources := []string{targetRows(p.target, "tombstone_oid, tombstone_key")}
			for _, c := range p.cascaded {
				sources = append(sources, "SELECT tombstone_oid, tombstone_key FROM "+c)
			}
			ctes = append(ctes, e.auditCTE(p.target+"_audit", "delete", deletionCtx, "tombstone_x.tombstone_at", sources))
		}
	}
	for _, c := range ctes {
		item, err := parseCTE(c)
		if err != nil {
			return refuseInternal(err)
		}
		items = append(items, item)
	}
	// Only the CTEs written here are marked: the target CTE holds the
	// client's WHERE and USING, whose references the final walk must
	// still judge.
	for _, it := range items[1:] {
		e.markOwn(it)
	}
	if e.cteDepth > 0 {
		e.hoist = append(e.hoist, items...)
	} else {
		if *with == nil {
			*with = &pg.WithClause{Location: -1}
		}
		(*with).Ctes = append((*with).Ctes, items...)
	}
	q := strings.Join(quoteQual(refQual(rv)), ".")
	cond := rowMatch(q, p.target, primaryKey(soft))
	for _, c := range p.checks {
		cond += " AND NOT EXISTS (SELECT FROM " + c + ")"
	}
	expr, err := parseExpr(cond)
	if err != nil {
		return refuseInternal(err)
	}
	// RETURNING * would now include tombstone_target's columns too.
	qualifyStar(returning, rv)
	*from = []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: &pg.RangeVar{Relname: p.target, Inh: true, Relpersistence: "p", Location: -1}}}}
	*where = expr
	return nil
}

// targetKey is the column of tombstone_target that holds the target
// table's column col, added on first use.
func (p *fkPlan) targetKey(col string) string {
	if k, ok := p.keys[col]; ok {
		return k
	}
	k := fmt.Sprintf("tombstone_k%d", len(p.keys))
	p.keys[col] = k
	return k
}

// targetSelect builds tombstone_target: the rows the client's DELETE
// chooses, locked, with the keys the cascades and checks read, and with
// audit their primary key for the audit log.
func (p *fkPlan) targetSelect(rv *pg.RangeVar, soft *policy.Table, from []*pg.Node, where *pg.Node, audit bool) (*pg.Node, error) {
	qual := refQual(rv)
	cols := []*pg.Node{
		pg.MakeResTargetNodeWithNameAndVal("tombstone_oid", columnRef(qual, "tableoid"), -1),
		pg.MakeResTargetNodeWithNameAndVal("tombstone_ctid", columnRef(qual, "ctid"), -1),
	}
	for i, c := range primaryKey(soft) {
		cols = append(cols, pg.MakeResTargetNodeWithNameAndVal(fmt.Sprintf("tombstone_pk%d", i), columnRef(qual, c), -1))
	}
	if audit {
		key, err := parseExpr(keyJSON(soft, strings.Join(quoteQual(qual), ".")))
		if err != nil {
			return nil, refuseInternal(err)
		}
		cols = append(cols, pg.MakeResTargetNodeWithNameAndVal("tombstone_key", key, -1))
	}
	names := make([]string, 0, len(p.keys))
	for col := range p.keys {
		names = append(names, col)
	}
	// Stable output: the cache and the golden files compare texts.
	slices.Sort(names)
	// A foreign key onto an inheritance parent covers the parent's own
	// rows, not its children's (partitions are covered): the keys of a
	// child's row are NULL, which no referencing row matches.
	// Only where the name is unique: the OID is then the table's.
	own := soft != nil && rv.Inh && soft.Inherited && soft.OID != 0 && p.e.policy.Unique(soft)
	for _, col := range names {
		val := columnRef(qual, col)
		if own {
			cond, err := parseExpr(fmt.Sprintf("%s.tableoid OPERATOR(pg_catalog.=) %d::pg_catalog.oid", strings.Join(quoteQual(qual), "."), soft.OID))
			if err != nil {
				return nil, refuseInternal(err)
			}
			val = caseWhen(cond, val, nil)
		}
		cols = append(cols, pg.MakeResTargetNodeWithNameAndVal(p.keys[col], val, -1))
	}
	return lockedRows(p.e, p.target, rv, cols, from, where), nil
}

// primaryKey is the primary key of a soft-delete table, nil for a plain
// table (the policy knows soft-delete tables only) or one without.
func primaryKey(t *policy.Table) []string {
	switch {
	case t == nil:
		return nil
	case len(t.PrimaryKey) > 0:
		return t.PrimaryKey
	}
	return t.Root.PrimaryKey
}

// rowMatch is the condition that a row of the table (written q) is a row
// of the target CTE cte, which carries its tableoid, ctid and primary key
// (tombstone_pk<i>). By primary key where there is one: a row that
// another transaction updated while the target CTE waited for its lock is
// locked in its new version, which the statement's snapshot does not
// see; the UPDATE finds the old version and follows it to the new one
// only if the condition still holds there, as a key does and a ctid
// does not. Without a key, such a row is skipped.
func rowMatch(q, cte string, pk []string) string {
	cond := fmt.Sprintf("%s.tableoid OPERATOR(pg_catalog.=) %s.tombstone_oid", q, cte)
	if len(pk) == 0 {
		return cond + fmt.Sprintf(" AND %s.ctid OPERATOR(pg_catalog.=) %s.tombstone_ctid", q, cte)
	}
	for i, c := range pk {
		cond += fmt.Sprintf(" AND %s.%s OPERATOR(pg_catalog.=) %s.tombstone_pk%d", q, quoteIdent(c), cte, i)
	}
	return cond
}

// lockedRows is the CTE name AS MATERIALIZED (SELECT cols FROM rv, from
// WHERE where FOR UPDATE OF rv): the rows a statement chooses, once and
// locked, so that what its other CTEs do follows from exactly those.
func lockedRows(e *engine, name string, rv *pg.RangeVar, cols []*pg.Node, from []*pg.Node, where *pg.Node) *pg.Node {
	self := &pg.RangeVar{
		Catalogname: rv.Catalogname, Schemaname: rv.Schemaname, Relname: rv.Relname,
		Inh: rv.Inh, Relpersistence: rv.Relpersistence, Alias: rv.Alias, Location: -1,
	}
	e.mark(self)
	lockName := rv.Relname
	if rv.Alias != nil && rv.Alias.Aliasname != "" {
		lockName = rv.Alias.Aliasname
	}
	lock := &pg.RangeVar{Relname: lockName, Inh: true, Relpersistence: "p", Location: -1}
	e.mark(lock)
	sel := &pg.SelectStmt{
		TargetList:  cols,
		FromClause:  append([]*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: self}}}, from...),
		WhereClause: where,
		LockingClause: []*pg.Node{{Node: &pg.Node_LockingClause{LockingClause: &pg.LockingClause{
			LockedRels: []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: lock}}},
			Strength:   pg.LockClauseStrength_LCS_FORUPDATE,
			WaitPolicy: pg.LockWaitPolicy_LockWaitBlock,
		}}}},
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}
	return &pg.Node{Node: &pg.Node_CommonTableExpr{CommonTableExpr: &pg.CommonTableExpr{
		Ctename:         name,
		Ctematerialized: pg.CTEMaterialize_CTEMaterializeAlways,
		Ctequery:        &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}},
		Location:        -1,
	}}}
}

// expand adds what deleting the rows of source (rows of the table named
// parent; softParent when they are soft-deleted, not removed) requires of
// each foreign key in deps. key maps a parent column to source's column.
func (p *fkPlan) expand(source, parent string, softParent bool, deps []*policy.ForeignKey, key func(string) string) error {
	for _, fk := range deps {
		child := fk.ChildTable
		switch {
		case !softParent && child == nil:
			// Both plain: not Tombstone's business (Dependents does
			// not list these).
		case !softParent:
			// A plain parent really deleted: the server carries out the
			// action on the soft-delete child. CASCADE would remove its
			// rows, deleted ones too, for good.
			if fk.OnDelete == policy.Cascade {
				p.check(source, fk, key, false, plainParentCascade(fk))
			}
		case child != nil && fk.OnDelete == policy.Cascade:
			if err := p.cascade(source, fk, key); err != nil {
				return err
			}
		case fk.OnDelete == policy.Restrict || fk.OnDelete == policy.NoAction:
			p.check(source, fk, key, child != nil, restrictViolation(fk))
		default:
			// CASCADE into a plain child would remove its rows; SET NULL
			// and SET DEFAULT would change rows (soft-delete children's
			// included) in a way a restore cannot undo.
			p.check(source, fk, key, child != nil, lossyAction(fk))
		}
	}
	return nil
}

// cascade soft-deletes the live rows of fk's child that reference source,
// then what they in turn take with them. A key of a table onto itself
// (a tree: parent_id REFERENCES the same table) follows the tree to its
// leaves with a recursive query; any other cycle is refused.
func (p *fkPlan) cascade(source string, fk *policy.ForeignKey, key func(string) string) error {
	child := fk.ChildTable
	name := fk.Child.String()
	self := fk.Child == fk.Parent
	if !self {
		for _, seen := range p.path {
			if seen == name {
				return refuseCascadeCycle(append(append([]string(nil), p.path...), name))
			}
		}
		p.path = append(p.path, name)
		defer func() { p.path = p.path[:len(p.path)-1] }()
	}
	p.e.fkSeq++
	cte := fmt.Sprintf("tombstone_c%d", p.e.fkSeq)
	var deps []*policy.ForeignKey
	for _, d := range p.e.policy.Dependents(fk.Child.Schema, fk.Child.Name) {
		switch {
		case d.Child != d.Parent || !self:
			deps = append(deps, d)
		case d != fk && d.OnDelete == policy.Cascade:
			// The recursive query follows one key of the tree.
			return refuseCascadeCycle([]string{name, name + " (a second self-referencing key, " + fkName(d) + ")"})
		}
	}
	returning := map[string]string{}
	childKey := func(col string) string {
		if k, ok := returning[col]; ok {
			return k
		}
		k := fmt.Sprintf("tombstone_k%d", len(returning))
		returning[col] = k
		return k
	}
	// The child's own dependents decide which of its keys to return, so
	// expand them first into a plan of their own and append after.
	sub := &fkPlan{e: p.e, keys: map[string]string{}, path: p.path, target: p.target}
	if err := sub.expand(cte, fk.Child.Name, true, deps, childKey); err != nil {
		return err
	}
	rel, only := childRel(fk)
	set, err := softSet(child, fromContext(deletionCtx))
	if err != nil {
		return err
	}
	live := "tombstone_child." + quoteIdent(child.DeletedAt) + " IS NULL"
	var text string
	if !self {
		text = fmt.Sprintf("%s AS (UPDATE %s%s AS tombstone_child SET %s WHERE %s AND EXISTS (SELECT FROM %s WHERE %s)",
			cte, only, rel, set, live, source, joinKeys(fk, "tombstone_child", source, key))
	} else {
		// tombstone_r: the live rows under source, at any depth. UNION
		// ends the recursion even where the data holds a loop.
		cols, names := "tombstone_child.tableoid, tombstone_child.ctid", "tombstone_oid, tombstone_ctid"
		step := map[string]string{}
		for i, pc := range fk.ParentCols {
			step[pc] = fmt.Sprintf("tombstone_r%d", i)
			cols += ", tombstone_child." + quoteIdent(pc)
			names += ", " + step[pc]
		}
		closure := fmt.Sprintf("(WITH RECURSIVE tombstone_r(%s) AS (SELECT %s FROM %s%s AS tombstone_child WHERE %s AND EXISTS (SELECT FROM %s WHERE %s) UNION SELECT %s FROM %s%s AS tombstone_child, tombstone_r WHERE %s AND %s) SELECT * FROM tombstone_r) AS tombstone_r",
			names, cols, only, rel, live, source, joinKeys(fk, "tombstone_child", source, key),
			cols, only, rel, live, joinKeys(fk, "tombstone_child", "tombstone_r", func(c string) string { return step[c] }))
		where := "tombstone_child.tableoid OPERATOR(pg_catalog.=) tombstone_r.tombstone_oid AND tombstone_child.ctid OPERATOR(pg_catalog.=) tombstone_r.tombstone_ctid"
		if source == p.target {
			// The statement's own UPDATE changes those; a second change
			// in the same statement would drop it from DELETE n.
			where += fmt.Sprintf(" AND NOT EXISTS (SELECT FROM %[1]s WHERE %[1]s.tombstone_oid OPERATOR(pg_catalog.=) tombstone_r.tombstone_oid AND %[1]s.tombstone_ctid OPERATOR(pg_catalog.=) tombstone_r.tombstone_ctid)", p.target)
		}
		text = fmt.Sprintf("%s AS (UPDATE %s%s AS tombstone_child SET %s FROM %s WHERE %s", cte, only, rel, set, closure, where)
	}
	cols := make([]string, 0, len(returning))
	for col := range returning {
		cols = append(cols, col)
	}
	slices.Sort(cols)
	ret := make([]string, len(cols))
	for i, col := range cols {
		ret[i] = "tombstone_child." + quoteIdent(col) + " AS " + returning[col]
	}
	if p.e.audited() {
		ret = append(ret, "tombstone_child.tableoid AS tombstone_oid", keyJSON(child, "tombstone_child")+" AS tombstone_key")
	}
	if len(ret) > 0 {
		text += " RETURNING " + strings.Join(ret, ", ")
	}
	p.ctes = append(p.ctes, text+")")
	p.e.apply(child, KindCascade)
	p.ctes = append(p.ctes, sub.ctes...)
	p.checks = append(p.checks, sub.checks...)
	p.cascaded = append(append(p.cascaded, cte), sub.cascaded...)
	return nil
}

// childRel is fk's child as the rules write it, and ONLY unless the child
// is partitioned: a foreign key on a partitioned table covers its
// partitions, one on an inheritance parent only its own rows.
func childRel(fk *policy.ForeignKey) (rel, only string) {
	rel = quoteIdent(fk.Child.Name)
	if fk.Child.Schema != "" {
		rel = quoteIdent(fk.Child.Schema) + "." + rel
	}
	if fk.ChildTable != nil && fk.ChildTable.Partitioned {
		return rel, ""
	}
	return rel, "ONLY "
}

// check adds a CTE that raises (code, message, detail, hint) through
// tombstone.fail when a row of fk's child references a row of source;
// liveOnly counts only live rows of a soft-delete child.
func (p *fkPlan) check(source string, fk *policy.ForeignKey, key func(string) string, liveOnly bool, f fkFailure) {
	p.e.fkSeq++
	cte := fmt.Sprintf("tombstone_x%d", p.e.fkSeq)
	rel, only := childRel(fk)
	vals := make([]string, len(fk.ParentCols))
	for i, col := range fk.ParentCols {
		vals[i] = source + "." + key(col) + "::pg_catalog.text"
	}
	detail := fmt.Sprintf("%s OPERATOR(pg_catalog.||) pg_catalog.concat_ws(', ', %s) OPERATOR(pg_catalog.||) %s",
		quoteLiteral(f.detailPrefix), strings.Join(vals, ", "), quoteLiteral(f.detailSuffix))
	live := ""
	if liveOnly {
		live = " AND tombstone_child." + quoteIdent(fk.ChildTable.DeletedAt) + " IS NULL"
	}
	p.ctes = append(p.ctes, fmt.Sprintf("%s AS (SELECT tombstone.fail(%s, %s, %s, %s) FROM %s, %s%s AS tombstone_child WHERE %s%s LIMIT 1)",
		cte, quoteLiteral(f.code), quoteLiteral(f.message), detail, quoteLiteral(f.hint),
		source, only, rel, joinKeys(fk, "tombstone_child", source, key), live))
	p.checks = append(p.checks, cte)
}

// joinKeys is the condition that a child row references a source row.
func joinKeys(fk *policy.ForeignKey, child, source string, key func(string) string) string {
	conds := make([]string, len(fk.ChildCols))
	for i := range fk.ChildCols {
		conds[i] = fmt.Sprintf("%s.%s OPERATOR(pg_catalog.=) %s.%s", child, quoteIdent(fk.ChildCols[i]), source, key(fk.ParentCols[i]))
	}
	return strings.Join(conds, " AND ")
}

// parseCTE parses "name AS (query)" into a WITH item.
func parseCTE(item string) (*pg.Node, error) {
	tree, err := pg.Parse("WITH " + item + " SELECT")
	if err != nil {
		return nil, fmt.Errorf("foreign-key CTE %q: %w", item, err)
	}
	return tree.Stmts[0].Stmt.GetSelectStmt().WithClause.Ctes[0], nil
}

// parseExpr parses a condition.
func parseExpr(cond string) (*pg.Node, error) {
	tree, err := pg.Parse("SELECT WHERE " + cond)
	if err != nil {
		return nil, fmt.Errorf("foreign-key condition %q: %w", cond, err)
	}
	return tree.Stmts[0].Stmt.GetSelectStmt().WhereClause, nil
}

// quoteIdent quotes an identifier for the SQL text the rules build.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteQual(parts []string) []string {
	out := make([]string, len(parts))
	for i, s := range parts {
		out[i] = quoteIdent(s)
	}
	return out
}
