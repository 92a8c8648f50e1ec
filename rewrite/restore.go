package rewrite

import (
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/tombstone-proxy/tombstone/policy"
)

// Restore is a deletion undone. On a table with allow_restore,
//
//	UPDATE t SET deleted_at = NULL [, deleted_by = NULL, deleted_reason = NULL] WHERE ...
//
// with the NULLs written in the text and no other column set, matches
// deleted rows instead of live ones. Anything else stays an ordinary
// UPDATE of live rows: an ORM that writes every field on each save sends
// deleted_at = NULL for live rows too, and a bound $1 is known only at
// Bind. A restore brings back what the rows' deletion took with it: the
// rows that reference a restored row through an ON DELETE CASCADE key (or
// a declared cascade) and carry the same deleted_at stamp (deletion.go),
// at any depth. A child deleted on its own
// has a stamp of its own and stays deleted. tombstone restore runs the
// same statement (RestoreSQL).
//
//	WITH tombstone_target AS MATERIALIZED (SELECT t.tableoid, t.ctid,
//	       t.deleted_at AS tombstone_stamp, keys FROM t WHERE <client's>
//	       AND t.deleted_at IS NOT NULL FOR UPDATE OF t),
//	  tombstone_r1 AS (UPDATE ONLY child SET deleted_at = NULL, ...
//	       FROM tombstone_target p WHERE child.deleted_at = p.tombstone_stamp
//	       AND child.fk = p.key RETURNING ...),
//	  tombstone_y1 AS (SELECT tombstone.fail('23503', ...) FROM <restored
//	       rows> JOIN <their soft-delete parent> WHERE the parent is deleted
//	       and not restored by this statement LIMIT 1),
//	  tombstone_target_audit AS (INSERT INTO <audit log> ...)
//	UPDATE t SET deleted_at = NULL, ... FROM tombstone_target
//	WHERE t.tableoid = ... AND t.ctid = ... AND NOT EXISTS (tombstone_y1)
//
// A restored key that a live row has taken since fails on the partial
// unique index that guards live rows (tombstone doctor and migrate set
// them up), with PostgreSQL's own 23505 naming the key.

// restoreOptions are tombstone restore's choices (RestoreSQL); a restore
// through the proxy always cascades.
type restoreOptions struct {
	cascade bool
}

// restoredSet is one CTE of rows a restore makes live: the target, or
// the rows one foreign key brings back with those of another set.
type restoredSet struct {
	cte   string
	rel   policy.RelName // the table as the rules name it (the target maybe unqualified)
	table *policy.Table
	via   *policy.ForeignKey // the key it was restored through; nil for the target
	cols  []string           // the key columns it carries, as tombstone_k<i>
}

// key is the column of the set that holds column col of its table.
func (s *restoredSet) key(col string) string {
	return fmt.Sprintf("tombstone_k%d", slices.Index(s.cols, col))
}

// restorePlan accumulates the CTEs one restore needs.
type restorePlan struct {
	e       *engine
	cascade bool
	sets    []*restoredSet
	ctes    []string
	checks  []string
	path    []string // tables on the current cascade path, for cycles
}

// isRestore reports whether u is the restore statement on t: every SET
// item one of t's soft-delete columns set to NULL, deleted_at among them.
func isRestore(u *pg.UpdateStmt, t *policy.Table) bool {
	deletedAt := false
	for _, n := range u.TargetList {
		rt := n.GetResTarget()
		if rt == nil || len(rt.Indirection) > 0 || rt.Val.GetAConst() == nil || !rt.Val.GetAConst().Isnull {
			return false
		}
		switch rt.Name {
		case t.DeletedAt:
			deletedAt = true
		case t.DeletedBy, t.DeletedReason:
		default:
			return false
		}
	}
	return deletedAt
}

// keyCols are the columns of rel that restore's joins read: the keys
// its children reference, and its own references to soft-delete parents.
func (p *restorePlan) keyCols(rel policy.RelName) []string {
	var cols []string
	for _, fk := range p.e.policy.Dependents(rel.Schema, rel.Name) {
		cols = append(cols, fk.ParentCols...)
	}
	for _, fk := range p.e.policy.References(rel.Schema, rel.Name) {
		cols = append(cols, fk.ChildCols...)
	}
	slices.Sort(cols)
	return slices.Compact(cols)
}

// restore rewrites u, the restore statement on t, in place. pending are
// the filters of its FROM items.
func (e *engine) restore(u *pg.UpdateStmt, t *policy.Table, pending []*pg.Node) error {
	rv := u.Relation
	switch {
	case isCurrentOf(u.WhereClause):
		return refuseCurrentOf("UPDATE", t)
	case e.cteDepth > 0:
		// Its CTEs would have to move to the top-level WITH, outside the
		// client's own names; a restore is a statement of its own.
		return unsupported("a restore (UPDATE ... SET deleted_at = NULL) inside a WITH", t)
	case len(u.FromClause) > 0 && len(u.ReturningList) > 0:
		return unsupported("a restore with FROM and RETURNING", t)
	}
	e.noText()
	p := &restorePlan{e: e, cascade: e.restoring == nil || e.restoring.cascade, path: []string{t.QualifiedName()}}
	// Names unique in the text: a DELETE in the client's WITH has a
	// target CTE of its own.
	name := "tombstone_target"
	if e.fkSeq++; e.fkSeq > 1 {
		name = fmt.Sprintf("tombstone_target%d", e.fkSeq)
	}
	target := &restoredSet{cte: name, rel: policy.RelName{Schema: rv.Schemaname, Name: rv.Relname}, table: t}
	target.cols = p.keyCols(target.rel)
	p.sets = append(p.sets, target)
	e.apply(t, KindRestore)
	if err := p.expand(target, nil); err != nil {
		return err
	}
	for _, s := range p.sets {
		p.check(s)
	}
	if len(p.checks) > 0 && !e.policy.Helpers() {
		return refuseRestoreNoHelpers(t.QualifiedName())
	}

	qual := refQual(rv)
	q := strings.Join(quoteQual(qual), ".")
	colText := []string{q + ".tableoid AS tombstone_oid", q + ".ctid AS tombstone_ctid", q + "." + quoteIdent(t.DeletedAt) + " AS tombstone_stamp"}
	for _, c := range target.cols {
		colText = append(colText, q+"."+quoteIdent(c)+" AS "+target.key(c))
	}
	for i, c := range primaryKey(t) {
		colText = append(colText, fmt.Sprintf("%s.%s AS tombstone_pk%d", q, quoteIdent(c), i))
	}
	colText = append(colText, keyJSON(t, q)+" AS tombstone_key")
	cols, err := parseTargets(colText)
	if err != nil {
		return err
	}
	deleted := &pg.Node{Node: &pg.Node_NullTest{NullTest: &pg.NullTest{
		Arg: columnRef(qual, t.DeletedAt), Nulltesttype: pg.NullTestType_IS_NOT_NULL, Location: -1,
	}}}
	where := and(append([]*pg.Node{u.WhereClause, deleted}, pending...)...)
	items := []*pg.Node{lockedRows(e, target.cte, rv, cols, u.FromClause, where)}
	ctes := append(p.ctes, p.checks...)
	if e.audited() {
		sources := make([]string, len(p.sets))
		for i, s := range p.sets {
			sources[i] = "SELECT tombstone_oid, tombstone_key, tombstone_stamp FROM " + s.cte
		}
		sources[0] = targetRows(target.cte, "tombstone_oid, tombstone_key, tombstone_stamp")
		if !e.ctxMade {
			e.ctxMade = true
			ctes = append([]string{e.ctxCTE(deletionCtx)}, ctes...)
		}
		ctes = append(ctes, e.auditCTE(target.cte+"_audit", "restore", deletionCtx, "tombstone_a.tombstone_stamp", sources))
	}
	for _, c := range ctes {
		item, err := parseCTE(c)
		if err != nil {
			return refuseInternal(err)
		}
		e.markOwn(item)
		items = append(items, item)
	}
	if u.WithClause == nil {
		u.WithClause = &pg.WithClause{Location: -1}
	}
	u.WithClause.Ctes = append(u.WithClause.Ctes, items...)

	cond := rowMatch(q, target.cte, primaryKey(t))
	for _, c := range p.checks {
		name, _, _ := strings.Cut(c, " ")
		cond += " AND NOT EXISTS (SELECT FROM " + name + ")"
	}
	if u.WhereClause, err = parseExpr(cond); err != nil {
		return refuseInternal(err)
	}
	if u.TargetList, err = nullTargets(t); err != nil {
		return err
	}
	qualifyStar(u.ReturningList, rv)
	from := &pg.RangeVar{Relname: target.cte, Inh: true, Relpersistence: "p", Location: -1}
	e.mark(from)
	u.FromClause = []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: from}}}
	e.changed = true
	return nil
}

// expand adds the rows the deletion of s's rows took with it: those of
// every soft-delete child of an ON DELETE CASCADE key onto s's table with
// the same stamp, then theirs. except is the self-referencing key whose
// closure s already is.
func (p *restorePlan) expand(s *restoredSet, except *policy.ForeignKey) error {
	if !p.cascade {
		return nil
	}
	for _, fk := range p.e.policy.Dependents(s.rel.Schema, s.rel.Name) {
		if fk.ChildTable == nil || fk.OnDelete != policy.Cascade || fk == except {
			continue
		}
		self := fk.Child == fk.Parent
		name := fk.Child.String()
		if !self {
			if slices.Contains(p.path, name) {
				return refuseCascadeCycle(append(slices.Clone(p.path), name))
			}
		}
		if p.e.restoring == nil && !fk.ChildTable.AllowRestore {
			// allow_restore is per table: a restore through the proxy
			// must not bring back rows of a table that does not allow
			// it (the application can set deleted_at by hand, so it
			// could copy any row's stamp onto a parent it may restore).
			return refuseRestoreCascade(p.sets[0].table, fk)
		}
		for _, x := range []*policy.Table{s.table, fk.ChildTable} {
			if x.CoarseStamp() {
				return refuseCoarseRestore(x)
			}
		}
		child := &restoredSet{cte: fmt.Sprintf("%s_r%d", p.sets[0].cte, len(p.sets)), rel: fk.Child, table: fk.ChildTable, via: fk}
		child.cols = p.keyCols(fk.Child)
		p.ctes = append(p.ctes, p.cascadeCTE(s, child, fk, self))
		p.sets = append(p.sets, child)
		p.e.apply(fk.ChildTable, KindRestore)
		next := except
		if self {
			next = fk
		} else {
			p.path = append(p.path, name)
		}
		err := p.expand(child, next)
		if !self {
			p.path = p.path[:len(p.path)-1]
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// cascadeCTE restores the rows of child's table that reference a row of
// source through fk and carry its stamp; for a key of a table onto
// itself, the whole subtree under source's rows that carries it.
func (p *restorePlan) cascadeCTE(source, child *restoredSet, fk *policy.ForeignKey, self bool) string {
	rel, only := childRel(fk)
	set, _ := softNulls(child.table)
	at := "tombstone_child." + quoteIdent(child.table.DeletedAt)
	ret := []string{"tombstone_child.tableoid AS tombstone_oid"}
	for _, c := range child.cols {
		ret = append(ret, "tombstone_child."+quoteIdent(c)+" AS "+child.key(c))
	}
	ret = append(ret, keyJSON(child.table, "tombstone_child")+" AS tombstone_key")
	if !self {
		return fmt.Sprintf("%s AS (UPDATE %s%s AS tombstone_child SET %s FROM %s AS tombstone_p WHERE %s OPERATOR(pg_catalog.=) tombstone_p.tombstone_stamp AND %s RETURNING %s, tombstone_p.tombstone_stamp AS tombstone_stamp)",
			child.cte, only, rel, set, source.cte, at, joinKeys(fk, "tombstone_child", "tombstone_p", source.key), strings.Join(ret, ", "))
	}
	// tombstone_q: the deleted rows under source's with its stamp, at
	// any depth. UNION ends the recursion even where the data holds a
	// loop.
	step := map[string]string{}
	cols, names := "tombstone_child.tableoid, tombstone_child.ctid", "tombstone_oid, tombstone_ctid, tombstone_stamp"
	for i, pc := range fk.ParentCols {
		step[pc] = fmt.Sprintf("tombstone_q%d", i)
		cols += ", tombstone_child." + quoteIdent(pc)
		names += ", " + step[pc]
	}
	closure := fmt.Sprintf("(WITH RECURSIVE tombstone_q(%s) AS (SELECT tombstone_child.tableoid, tombstone_child.ctid, tombstone_p.tombstone_stamp%s FROM %s%s AS tombstone_child, %s AS tombstone_p WHERE %s OPERATOR(pg_catalog.=) tombstone_p.tombstone_stamp AND %s UNION SELECT tombstone_child.tableoid, tombstone_child.ctid, tombstone_q.tombstone_stamp%s FROM %s%s AS tombstone_child, tombstone_q WHERE %s OPERATOR(pg_catalog.=) tombstone_q.tombstone_stamp AND %s) SELECT * FROM tombstone_q) AS tombstone_q",
		names, strings.TrimPrefix(cols, "tombstone_child.tableoid, tombstone_child.ctid"), only, rel, source.cte, at, joinKeys(fk, "tombstone_child", "tombstone_p", source.key),
		strings.TrimPrefix(cols, "tombstone_child.tableoid, tombstone_child.ctid"), only, rel, at, joinKeys(fk, "tombstone_child", "tombstone_q", func(c string) string { return step[c] }))
	where := "tombstone_child.tableoid OPERATOR(pg_catalog.=) tombstone_q.tombstone_oid AND tombstone_child.ctid OPERATOR(pg_catalog.=) tombstone_q.tombstone_ctid"
	if source.via == nil {
		// The statement's own UPDATE restores the target's rows; a
		// second change in the same statement would drop one.
		where += fmt.Sprintf(" AND NOT EXISTS (SELECT FROM %[1]s WHERE %[1]s.tombstone_oid OPERATOR(pg_catalog.=) tombstone_q.tombstone_oid AND %[1]s.tombstone_ctid OPERATOR(pg_catalog.=) tombstone_q.tombstone_ctid)", source.cte)
	}
	return fmt.Sprintf("%s AS (UPDATE %s%s AS tombstone_child SET %s FROM %s WHERE %s RETURNING %s, tombstone_q.tombstone_stamp AS tombstone_stamp)",
		child.cte, only, rel, set, closure, where, strings.Join(ret, ", "))
}

// check refuses (23503, through tombstone.fail) to make a row of s live
// while a soft-delete parent it references stays deleted: one that no set
// of this restore brings back.
func (p *restorePlan) check(s *restoredSet) {
	for _, fk := range p.e.policy.References(s.rel.Schema, s.rel.Name) {
		if fk == s.via {
			continue // its parents are the rows it was restored with
		}
		parent := fk.ParentTable
		prel := quoteIdent(fk.Parent.Name)
		if fk.Parent.Schema != "" {
			prel = quoteIdent(fk.Parent.Schema) + "." + prel
		}
		if !parent.Partitioned {
			prel = "ONLY " + prel
		}
		conds := make([]string, len(fk.ChildCols))
		for i := range fk.ChildCols {
			conds[i] = fmt.Sprintf("tombstone_s.%s OPERATOR(pg_catalog.=) tombstone_parent.%s", s.key(fk.ChildCols[i]), quoteIdent(fk.ParentCols[i]))
		}
		cond := strings.Join(conds, " AND ") + " AND tombstone_parent." + quoteIdent(parent.DeletedAt) + " IS NOT NULL"
		for _, r := range p.sets {
			if r.rel.Name != fk.Parent.Name || (r.rel.Schema != "" && fk.Parent.Schema != "" && r.rel.Schema != fk.Parent.Schema) {
				continue
			}
			in := make([]string, len(fk.ParentCols))
			for i, pc := range fk.ParentCols {
				in[i] = fmt.Sprintf("%s.%s OPERATOR(pg_catalog.=) tombstone_parent.%s", r.cte, r.key(pc), quoteIdent(pc))
			}
			cond += fmt.Sprintf(" AND NOT EXISTS (SELECT FROM %s WHERE %s)", r.cte, strings.Join(in, " AND "))
		}
		vals := make([]string, len(fk.ChildCols))
		for i, c := range fk.ChildCols {
			vals[i] = "tombstone_s." + s.key(c) + "::pg_catalog.text"
		}
		f := restoreOrphan(fk)
		detail := fmt.Sprintf("%s OPERATOR(pg_catalog.||) pg_catalog.concat_ws(', ', %s) OPERATOR(pg_catalog.||) %s",
			quoteLiteral(f.detailPrefix), strings.Join(vals, ", "), quoteLiteral(f.detailSuffix))
		name := fmt.Sprintf("tombstone_y%d", len(p.checks)+1)
		p.checks = append(p.checks, fmt.Sprintf("%s AS (SELECT tombstone.fail(%s, %s, %s, %s) FROM %s AS tombstone_s, %s AS tombstone_parent WHERE %s LIMIT 1)",
			name, quoteLiteral(f.code), quoteLiteral(f.message), detail, quoteLiteral(f.hint), s.cte, prel, cond))
	}
}

// softNulls is the SET list that makes a row of t live again.
func softNulls(t *policy.Table) (string, []string) {
	cols := []string{t.DeletedAt}
	if t.DeletedBy != "" {
		cols = append(cols, t.DeletedBy)
	}
	if t.DeletedReason != "" {
		cols = append(cols, t.DeletedReason)
	}
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = quoteIdent(c) + " = NULL"
	}
	return strings.Join(set, ", "), cols
}

// nullTargets is softNulls as an UPDATE's target list.
func nullTargets(t *policy.Table) ([]*pg.Node, error) {
	set, _ := softNulls(t)
	tree, err := pg.Parse("UPDATE tombstone SET " + set)
	if err != nil {
		return nil, refuseInternal(err)
	}
	return tree.Stmts[0].Stmt.GetUpdateStmt().TargetList, nil
}

// parseTargets parses "expr AS name" items into a target list.
func parseTargets(items []string) ([]*pg.Node, error) {
	tree, err := pg.Parse("SELECT " + strings.Join(items, ", "))
	if err != nil {
		return nil, refuseInternal(fmt.Errorf("target list %q: %w", items, err))
	}
	return tree.Stmts[0].Stmt.GetSelectStmt().TargetList, nil
}

// qualifyStar makes RETURNING * name rv's columns only: the statement now
// reads a CTE of Tombstone's too.
func qualifyStar(returning []*pg.Node, rv *pg.RangeVar) {
	for _, r := range returning {
		if c := r.GetResTarget().GetVal().GetColumnRef(); c != nil && len(c.Fields) == 1 && c.Fields[0].GetAStar() != nil {
			var fields []*pg.Node
			for _, q := range refQual(rv) {
				fields = append(fields, pg.MakeStrNode(q))
			}
			c.Fields = append(fields, c.Fields[0])
		}
	}
}

// RestoreSQL is the statement tombstone restore runs: it restores the
// deleted rows of table (as the configuration names it, or
// schema-qualified) that match where, an SQL condition on its columns,
// and with cascade what their deletions took with them, checked and
// audited as a restore through the proxy is. It returns one row per table
// restored into: the table, schema-qualified, and the number of rows.
// It runs whatever the table's allow_restore says: tombstone restore
// connects as a privileged role.
func (r *Rewriter) RestoreSQL(table, where string, cascade bool) (string, error) {
	tree, err := pgParse("SELECT FROM " + table + " WHERE " + where)
	switch {
	case err != nil:
		return "", fmt.Errorf("--table %q --where %q do not read as one table and one condition: %v", table, where, err)
	case len(tree.Stmts) != 1:
		return "", fmt.Errorf("--where %q holds more than one statement: give one condition on the rows of %s, such as \"id = 42\"", where, table)
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || len(sel.FromClause) != 1 || sel.FromClause[0].GetRangeVar() == nil || sel.WhereClause == nil ||
		sel.GroupClause != nil || sel.HavingClause != nil || sel.LimitCount != nil || sel.SortClause != nil || sel.WithClause != nil {
		return "", fmt.Errorf("--table %q --where %q do not read as one table and one condition", table, where)
	}
	rv := sel.FromClause[0].GetRangeVar()
	t, ok := r.policy.Lookup(rv.Schemaname, rv.Relname)
	if !ok {
		return "", fmt.Errorf("table %s is not a soft-delete table of the configuration", table)
	}
	set, err := nullTargets(t)
	if err != nil {
		return "", err
	}
	u := &pg.UpdateStmt{Relation: rv, TargetList: set, WhereClause: sel.WhereClause}
	e := &engine{policy: r.policy, filter: r.filter, handled: make(map[*pg.RangeVar]struct{}), restoring: &restoreOptions{cascade: cascade}}
	e.fingerprint = Fingerprint("UPDATE " + table + " SET deleted_at = NULL WHERE " + where)
	node := &pg.Node{Node: &pg.Node_UpdateStmt{UpdateStmt: u}}
	if _, err := e.statement(node, nil); err != nil {
		return "", err
	}
	if err := e.verify(node); err != nil {
		return "", err
	}
	// The UPDATE becomes a CTE too, so that the statement can answer
	// with every restored set's count.
	ctes := u.WithClause.Ctes
	u.WithClause = nil
	q := strings.Join(quoteQual(refQual(rv)), ".")
	if u.ReturningList, err = parseTargets([]string{q + ".tableoid AS tombstone_oid"}); err != nil {
		return "", err
	}
	sources := []string{"SELECT tombstone_oid FROM tombstone_main"}
	for _, c := range ctes {
		if name := c.GetCommonTableExpr().GetCtename(); strings.HasPrefix(name, "tombstone_target_r") {
			sources = append(sources, "SELECT tombstone_oid FROM "+name)
		}
	}
	outer, err := pgParse("SELECT pg_catalog.format('%I.%I', tombstone_n.nspname, tombstone_c.relname) AS table_name, pg_catalog.count(*) AS restored FROM (" +
		strings.Join(sources, " UNION ALL ") + ") AS tombstone_a JOIN pg_catalog.pg_class AS tombstone_c ON tombstone_c.oid OPERATOR(pg_catalog.=) tombstone_a.tombstone_oid" +
		" JOIN pg_catalog.pg_namespace AS tombstone_n ON tombstone_n.oid OPERATOR(pg_catalog.=) tombstone_c.relnamespace GROUP BY 1 ORDER BY 1")
	if err != nil {
		return "", refuseInternal(err)
	}
	main := &pg.Node{Node: &pg.Node_CommonTableExpr{CommonTableExpr: &pg.CommonTableExpr{Ctename: "tombstone_main", Ctequery: node, Location: -1}}}
	outer.Stmts[0].Stmt.GetSelectStmt().WithClause = &pg.WithClause{Ctes: append(ctes, main), Location: -1}
	return pgDeparse(outer)
}
