package rewrite

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/tombstone-proxy/tombstone/policy"
)

// engine rewrites one parsed text. It lives for one Rewrite call: it
// records every RangeVar it has decided about (handled), so that a final
// walk over the whole tree can refuse any reference to a configured table
// that no rule saw. That walk is what makes "never pass through unfiltered"
// hold for statement kinds this file does not know.
type engine struct {
	policy  *policy.Policy
	filter  *prefilter // judges procedural code's text (plpgsql.go)
	handled map[*pg.RangeVar]struct{}
	applied []Applied
	changed bool
	// view: the statement being rewritten is a CREATE VIEW's query, so
	// every configured table is replaced by its live rows (see viewStmt).
	view bool
	// cteDepth counts the WITH items being rewritten around the current
	// statement; hoist collects the CTEs a DELETE inside one needs
	// (foreignkey.go), which withClause places just before that item:
	// PostgreSQL allows data-modifying CTEs only in the top-level WITH.
	cteDepth int
	hoist    []*pg.Node
	fkSeq    int // numbers the CTEs foreignkey.go adds, unique per text
	// The top-level statement being rewritten: the sqlcommenter tags of
	// its comments and its fingerprint, which a deletion writes
	// (deletion.go).
	tags        tags
	fingerprint string
	ctxMade     bool // the statement's deletion context CTE exists (foreignkey.go)
	// restoring is set by RestoreSQL: the text is tombstone restore's,
	// a restore whatever the table's allow_restore says.
	restoring *restoreOptions
	// ownAudit holds the audit INSERTs the rules wrote: the only
	// references to the audit log verify lets through.
	ownAudit map[*pg.RangeVar]struct{}
	// edits are the changes made so far, for the splicer (splice.go),
	// stmtIndex the top-level statement being rewritten; untextable is
	// set by any change the splicer cannot make in the text.
	edits      []textEdit
	stmtIndex  int
	untextable bool
	// setOps maps a set operation's arm to the operation (splice.go).
	setOps map[*pg.SelectStmt]*pg.SelectStmt
}

// scope is the chain of CTE names visible at a point of the query. An
// unqualified name found in scope is the CTE, not the table.
type scope struct {
	name   string
	parent *scope
}

func (s *scope) has(name string) bool {
	for ; s != nil; s = s.parent {
		if s.name == name {
			return true
		}
	}
	return false
}

func (s *scope) with(name string) *scope { return &scope{name: name, parent: s} }

func (e *engine) apply(t *policy.Table, kind string) {
	e.changed = true
	for _, a := range e.applied {
		if a.Table == t && a.Kind == kind {
			return
		}
	}
	e.applied = append(e.applied, Applied{Table: t, Kind: kind})
}

func (e *engine) mark(rv *pg.RangeVar) { e.handled[rv] = struct{}{} }

// table resolves a RangeVar that is read to a configured table, unless an
// unqualified name is a CTE in scope.
func (e *engine) table(rv *pg.RangeVar, sc *scope) (*policy.Table, bool) {
	if rv.Schemaname == "" && sc.has(rv.Relname) {
		return nil, false
	}
	return e.target(rv)
}

// target resolves the target of DELETE, UPDATE, MERGE or COPY. Postgres
// never resolves those to a CTE, so a CTE of the same name does not shadow
// the table here.
func (e *engine) target(rv *pg.RangeVar) (*policy.Table, bool) {
	return e.policy.Lookup(rv.Schemaname, rv.Relname)
}

// topLevel rewrites one top-level statement in place and says what the
// proxy must know about it.
func (e *engine) topLevel(n *pg.Node) (Statement, error) {
	var st Statement
	switch s := n.Node.(type) {
	case *pg.Node_PrepareStmt:
		st.Prepare = s.PrepareStmt.Name
		del, err := e.statement(s.PrepareStmt.Query, nil)
		st.DeleteTag = del
		return st, err
	case *pg.Node_ExecuteStmt:
		st.Execute = s.ExecuteStmt.Name
	case *pg.Node_DeallocateStmt:
		st.Deallocate = s.DeallocateStmt.Name
		st.DeallocateAll = s.DeallocateStmt.Isall || s.DeallocateStmt.Name == ""
	case *pg.Node_DiscardStmt:
		st.DeallocateAll = s.DiscardStmt.Target == pg.DiscardMode_DISCARD_ALL
	case *pg.Node_CreateStmt, *pg.Node_AlterTableStmt, *pg.Node_DropStmt, *pg.Node_RenameStmt,
		*pg.Node_AlterObjectSchemaStmt, *pg.Node_CreateSchemaStmt:
		// Only texts that name a soft-delete table (or a parent of one)
		// get here, past the prefilter: the DDL that can add a child or
		// a foreign key to one.
		st.SchemaChange = true
	}
	del, err := e.statement(n, nil)
	st.DeleteTag = del
	return st, err
}

// statement rewrites any statement node in place. deleteTag reports that n
// was a DELETE turned into an UPDATE, so its command tag must read DELETE.
func (e *engine) statement(n *pg.Node, sc *scope) (deleteTag bool, err error) {
	if n == nil {
		return false, nil
	}
	switch s := n.Node.(type) {
	case *pg.Node_SelectStmt:
		return false, e.selectStmt(s.SelectStmt, sc)
	case *pg.Node_DeleteStmt:
		return e.deleteStmt(n, s.DeleteStmt, sc)
	case *pg.Node_UpdateStmt:
		return false, e.updateStmt(s.UpdateStmt, sc)
	case *pg.Node_InsertStmt:
		return false, e.insertStmt(s.InsertStmt, sc)
	case *pg.Node_MergeStmt:
		return false, e.mergeStmt(s.MergeStmt, sc)
	case *pg.Node_CopyStmt:
		return false, e.copyStmt(s.CopyStmt, sc)
	case *pg.Node_ExplainStmt:
		// EXPLAIN ANALYZE performs the inner statement, so it gets the
		// same rewrite; the tag stays EXPLAIN.
		_, err := e.statement(s.ExplainStmt.Query, sc)
		return false, err
	case *pg.Node_PrepareStmt:
		return e.statement(s.PrepareStmt.Query, sc)
	case *pg.Node_DeclareCursorStmt:
		return false, e.statement1(s.DeclareCursorStmt.Query, sc)
	case *pg.Node_ViewStmt:
		return false, e.viewStmt(s.ViewStmt, sc)
	case *pg.Node_CreateTableAsStmt:
		if s.CreateTableAsStmt.Into != nil {
			e.mark(s.CreateTableAsStmt.Into.Rel)
		}
		_, err := e.statement(s.CreateTableAsStmt.Query, sc)
		return false, err
	case *pg.Node_TruncateStmt:
		return false, e.truncateStmt(s.TruncateStmt)
	case *pg.Node_CreateSchemaStmt:
		// CREATE SCHEMA s CREATE VIEW ... CREATE TABLE ...: each element
		// is a statement of its own and gets the same rules (a view made
		// here must not be an updatable view over a soft-delete table).
		for _, el := range s.CreateSchemaStmt.SchemaElts {
			if _, err := e.statement(el, sc); err != nil {
				return false, err
			}
		}
		return false, nil
	case *pg.Node_RuleStmt:
		return false, e.ruleStmt(s.RuleStmt, sc)
	case *pg.Node_CreateTrigStmt:
		if t, ok := e.lookupRel(s.CreateTrigStmt.Relation); ok {
			// A trigger runs inside the soft-delete UPDATE: it can reset
			// deleted_at or delete the row for good. Holding the TRIGGER
			// privilege is enough to create one, ownership is not needed.
			return false, refusePrivileged("CREATE TRIGGER on soft-delete table "+t.QualifiedName()+" refused: a trigger can undo or harden its soft deletes",
				"A trigger runs inside the UPDATE that a soft delete becomes; it could clear "+t.DeletedAt+" or remove the row for good.",
				t.QualifiedName())
		}
	case *pg.Node_DoStmt:
		return false, e.doStmt(s.DoStmt)
	case *pg.Node_CreateFunctionStmt:
		// A BEGIN ATOMIC or RETURN body (SqlBody) is statements the
		// parser already read: each gets the statement rules. A string
		// body is judged by functionBody (plpgsql.go).
		f := s.CreateFunctionStmt
		if f.SqlBody != nil {
			if err := e.atomicBody(f.SqlBody, sc); err != nil {
				return false, err
			}
		} else {
			what := "CREATE FUNCTION"
			if f.IsProcedure {
				what = "CREATE PROCEDURE"
			}
			if err := e.functionBody(what, f); err != nil {
				return false, err
			}
		}
		// Parameter defaults may hold subqueries.
		return false, e.exprs(sc, f.Parameters, f.Options)
	}
	if err := e.schemaChange(n); err != nil {
		return false, err
	}
	if schemaOnly(n) {
		// Statements that change or describe a table without reading or
		// deleting its rows: the table name is fine as it is.
		e.markAll(n)
		return false, nil
	}
	// Anything else (CALL, SET, ...) may still hold subqueries in its
	// expressions; rewrite them. A configured table named directly by such
	// a statement stays unhandled and the final check refuses it.
	return false, e.expr(n, sc)
}

// selectStmt filters every read of a configured table in a SELECT (or
// VALUES, or set operation) and in everything nested in it.
func (e *engine) selectStmt(s *pg.SelectStmt, sc *scope) error {
	if s == nil {
		return nil
	}
	sc, err := e.withClause(s.WithClause, sc)
	if err != nil {
		return err
	}
	if s.Larg != nil || s.Rarg != nil {
		e.armOf(s)
		if err := e.selectStmt(s.Larg, sc); err != nil {
			return err
		}
		if err := e.selectStmt(s.Rarg, sc); err != nil {
			return err
		}
	}
	pending, err := e.fromList(s.FromClause, sc)
	if err != nil {
		return err
	}
	if s.IntoClause != nil {
		e.mark(s.IntoClause.Rel)
	}
	for _, lc := range s.LockingClause {
		for _, r := range lc.GetLockingClause().GetLockedRels() {
			if rv := r.GetRangeVar(); rv != nil {
				e.mark(rv)
			}
		}
	}
	if err := e.exprs(sc, s.DistinctClause, s.TargetList, s.GroupClause, s.WindowClause, s.ValuesLists, s.SortClause); err != nil {
		return err
	}
	for _, x := range []*pg.Node{s.WhereClause, s.HavingClause, s.LimitOffset, s.LimitCount} {
		if err := e.expr(x, sc); err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		e.record(textEdit{kind: editWhere, owner: s, orig: s.WhereClause, add: pending})
		s.WhereClause = and(append([]*pg.Node{s.WhereClause}, pending...)...)
	}
	return nil
}

// withClause rewrites the CTE bodies and returns the scope in which the
// statement's body sees the CTE names. Without RECURSIVE a CTE sees only
// the CTEs before it (its own name inside it is the table); with RECURSIVE
// every name is visible everywhere.
func (e *engine) withClause(w *pg.WithClause, sc *scope) (*scope, error) {
	if w == nil {
		return sc, nil
	}
	ctes := make([]*pg.CommonTableExpr, 0, len(w.Ctes))
	for _, c := range w.Ctes {
		if cte := c.GetCommonTableExpr(); cte != nil {
			ctes = append(ctes, cte)
		}
	}
	var out []*pg.Node // w.Ctes with hoisted items placed
	item := func(n *pg.Node, c *pg.CommonTableExpr, sc *scope) error {
		e.cteDepth++
		// A DELETE in a data-modifying CTE becomes the soft UPDATE; the
		// command tag is the top statement's.
		_, err := e.statement(c.Ctequery, sc)
		e.cteDepth--
		out = append(append(out, e.hoist...), n)
		e.hoist = nil
		return err
	}
	if w.Recursive {
		for _, c := range ctes {
			sc = sc.with(c.Ctename)
		}
		for _, n := range w.Ctes {
			if c := n.GetCommonTableExpr(); c != nil {
				if err := item(n, c, sc); err != nil {
					return nil, err
				}
			}
		}
		w.Ctes = out
		return sc, nil
	}
	for _, n := range w.Ctes {
		if c := n.GetCommonTableExpr(); c != nil {
			if err := item(n, c, sc); err != nil {
				return nil, err
			}
			sc = sc.with(c.Ctename)
		}
	}
	w.Ctes = out
	return sc, nil
}

// deleteStmt turns DELETE on a configured table into the soft-delete
// UPDATE, replacing the node in place.
func (e *engine) deleteStmt(n *pg.Node, d *pg.DeleteStmt, sc *scope) (bool, error) {
	sc, err := e.withClause(d.WithClause, sc)
	if err != nil {
		return false, err
	}
	e.mark(d.Relation)
	pending, err := e.fromList(d.UsingClause, sc)
	if err != nil {
		return false, err
	}
	if err := e.expr(d.WhereClause, sc); err != nil {
		return false, err
	}
	if err := e.exprs(sc, d.ReturningList); err != nil {
		return false, err
	}
	t, ok := e.target(d.Relation)
	deps := e.policy.Dependents(d.Relation.Schemaname, d.Relation.Relname)
	if !ok {
		if isCurrentOf(d.WhereClause) && (len(pending) > 0 || len(deps) > 0) {
			return false, unsupported("DELETE with WHERE CURRENT OF on a table whose foreign keys Tombstone checks, or with USING", nil)
		}
		if len(pending) > 0 {
			e.record(textEdit{kind: editWhere, owner: d, orig: d.WhereClause, add: pending})
			d.WhereClause = and(append([]*pg.Node{d.WhereClause}, pending...)...)
		}
		if len(deps) > 0 {
			return false, e.foreignKeys(n, d.Relation, nil, deps)
		}
		return false, nil
	}
	if isCurrentOf(d.WhereClause) {
		return false, refuseCurrentOf("DELETE", t)
	}
	live := isNull(columnRef(refQual(d.Relation), t.DeletedAt))
	add := append([]*pg.Node{live}, pending...)
	where := and(append([]*pg.Node{d.WhereClause}, add...)...)
	setText, err := softSet(t, e.inline())
	if err != nil {
		return false, err
	}
	set, err := setTargets(setText)
	if err != nil {
		return false, err
	}
	e.record(textEdit{kind: editDelete, owner: d, node: n, orig: d.WhereClause, add: add, set: setText})
	n.Node = &pg.Node_UpdateStmt{UpdateStmt: &pg.UpdateStmt{
		Relation:      d.Relation,
		TargetList:    set,
		WhereClause:   where,
		FromClause:    d.UsingClause,
		ReturningList: d.ReturningList,
		WithClause:    d.WithClause,
	}}
	e.apply(t, KindDelete)
	if len(deps) > 0 || e.audited() {
		if err := e.foreignKeys(n, d.Relation, t, deps); err != nil {
			return false, err
		}
	}
	return true, nil
}

// updateStmt restricts an UPDATE of a configured table to live rows and
// filters the tables it reads.
func (e *engine) updateStmt(u *pg.UpdateStmt, sc *scope) error {
	sc, err := e.withClause(u.WithClause, sc)
	if err != nil {
		return err
	}
	e.mark(u.Relation)
	pending, err := e.fromList(u.FromClause, sc)
	if err != nil {
		return err
	}
	if err := e.exprs(sc, u.TargetList, u.ReturningList); err != nil {
		return err
	}
	if err := e.expr(u.WhereClause, sc); err != nil {
		return err
	}
	t, ok := e.target(u.Relation)
	if ok && (t.AllowRestore || e.restoring != nil) && isRestore(u, t) {
		return e.restore(u, t, pending)
	}
	if ok {
		if err := e.handDelete(u.TargetList, u.Relation, t); err != nil {
			return err
		}
	}
	if isCurrentOf(u.WhereClause) {
		if ok {
			return refuseCurrentOf("UPDATE", t)
		}
		if len(pending) > 0 {
			return unsupported("UPDATE ... FROM with WHERE CURRENT OF", nil)
		}
		return nil
	}
	conds := []*pg.Node{u.WhereClause}
	if ok {
		conds = append(conds, isNull(columnRef(refQual(u.Relation), t.DeletedAt)))
		e.apply(t, KindUpdate)
	}
	if len(conds) > 1 || len(pending) > 0 {
		e.record(textEdit{kind: editWhere, owner: u, orig: u.WhereClause, add: slices.Concat(conds[1:], pending)})
		u.WhereClause = and(append(conds, pending...)...)
	}
	return nil
}

// insertStmt leaves the target and VALUES alone and filters what the
// SELECT part and any subqueries read.
func (e *engine) insertStmt(s *pg.InsertStmt, sc *scope) error {
	sc, err := e.withClause(s.WithClause, sc)
	if err != nil {
		return err
	}
	e.mark(s.Relation)
	if e.isAudit(s.Relation) {
		return refuseAuditWrite("INSERT into")
	}
	if err := e.statement1(s.SelectStmt, sc); err != nil {
		return err
	}
	if oc := s.OnConflictClause; oc != nil {
		if t, ok := e.target(s.Relation); ok && oc.Infer != nil && len(oc.Infer.IndexElems) > 0 {
			// Unique keys of soft-delete tables are partial (WHERE
			// deleted_at IS NULL, as tombstone migrate makes them), and
			// a conflict target infers a partial index only when its
			// predicate is given. A non-partial unique index satisfies
			// it too, so adding it never loses the index the client
			// meant.
			oc.Infer.WhereClause = and(oc.Infer.WhereClause, isNull(columnRef(nil, t.DeletedAt)))
			e.changed = true
			e.noText()
		}
		if err := e.exprs(sc, oc.TargetList); err != nil {
			return err
		}
		if err := e.expr(oc.WhereClause, sc); err != nil {
			return err
		}
		// DO UPDATE on a conflicting deleted row would change it (SET
		// deleted_at = NULL even undeletes it) and RETURNING would show
		// it: only live rows may be updated. A deleted conflicting row
		// is then left alone and nothing is inserted, as for DO NOTHING.
		// The client's WHERE is evaluated on the conflicting row, so it
		// must not even run on a deleted one (its errors would show the
		// row's values): CASE fixes the order, which AND does not.
		if t, ok := e.target(s.Relation); ok && oc.Action == pg.OnConflictAction_ONCONFLICT_UPDATE {
			if err := e.handDelete(oc.TargetList, s.Relation, t); err != nil {
				return err
			}
			live := isNull(columnRef(refQual(s.Relation), t.DeletedAt))
			e.noText()
			if oc.WhereClause == nil {
				oc.WhereClause = live
			} else {
				oc.WhereClause = caseWhen(live, oc.WhereClause, boolConst(false))
			}
			e.apply(t, KindUpdate)
		}
	}
	return e.exprs(sc, s.ReturningList)
}

// viewStmt rewrites a CREATE VIEW's query. A view over one table with a
// WHERE is automatically updatable, so DELETE FROM the view would delete
// rows for good, past Tombstone (it sees only the view's name). Every
// configured table is therefore replaced by its live rows,
// (SELECT * FROM t WHERE deleted_at IS NULL) t, which PostgreSQL does not
// auto-update: DELETE FROM the view fails with "cannot delete from view".
//
// A view over pg_settings is refused: it would be auto-updatable, and an
// UPDATE of it changes settings through pg_settings' rule, under a name
// no check knows (settingsUpdate).
func (e *engine) viewStmt(v *pg.ViewStmt, sc *scope) error {
	e.mark(v.View)
	if err := viewOfSettings(v.Query); err != nil {
		return err
	}
	e.view = true
	defer func() { e.view = false }()
	return e.statement1(v.Query, sc)
}

// atomicBody rewrites a SQL-standard function body: BEGIN ATOMIC's
// statements (lists of statements) or a RETURN expression.
func (e *engine) atomicBody(n *pg.Node, sc *scope) error {
	switch b := n.Node.(type) {
	case *pg.Node_List:
		for _, it := range b.List.Items {
			if err := e.atomicBody(it, sc); err != nil {
				return err
			}
		}
		return nil
	case *pg.Node_ReturnStmt:
		return e.expr(b.ReturnStmt.Returnval, sc)
	}
	_, err := e.statement(n, sc)
	return err
}

// ruleStmt rewrites a rule's actions like the statements they are. An ON
// SELECT rule named _RETURN turns a table into a view (PostgreSQL 15 and
// older), so its query gets the view treatment: every configured table is
// replaced by its live rows and the view cannot be auto-updated.
//
// A rule on a soft-delete table itself is refused: an ON UPDATE rule
// rewrites the UPDATE a soft delete becomes (DO INSTEAD NOTHING makes it a
// no-op, DO INSTEAD DELETE hardens it).
func (e *engine) ruleStmt(r *pg.RuleStmt, sc *scope) error {
	if t, ok := e.lookupRel(r.Relation); ok {
		return refusePrivileged("CREATE RULE on soft-delete table "+t.QualifiedName()+" refused: a rule can undo or harden its soft deletes",
			"A rule rewrites the UPDATE that a soft delete becomes before it runs.", t.QualifiedName())
	}
	e.mark(r.Relation)
	if err := e.expr(r.WhereClause, sc); err != nil {
		return err
	}
	if r.Event == pg.CmdType_CMD_SELECT {
		for _, a := range r.Actions {
			if err := viewOfSettings(a); err != nil {
				return err
			}
		}
		e.view = true
		defer func() { e.view = false }()
	}
	for _, a := range r.Actions {
		if _, err := e.statement(a, sc); err != nil {
			return err
		}
	}
	return nil
}

// schemaChange refuses DDL that would undo soft deletes on a configured
// table: renaming it or moving it to another schema (the policy no longer
// names it, so its deleted rows become visible and DELETE hard), dropping
// or retyping its deleted_at column or renaming that column, and DROP
// TABLE. The code is 42501 (insufficient_privilege), as for TRUNCATE:
// nothing is wrong with the statement, it is reserved to privileged roles,
// which is how migrations are meant to run. Other DDL passes.
func (e *engine) schemaChange(n *pg.Node) error {
	var t *policy.Table
	var what string
	switch s := n.Node.(type) {
	case *pg.Node_AlterTableStmt:
		tb, ok := e.lookupRel(s.AlterTableStmt.Relation)
		if !ok {
			return nil
		}
		for _, c := range s.AlterTableStmt.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd != nil && cmd.Name == tb.DeletedAt &&
				(cmd.Subtype == pg.AlterTableType_AT_DropColumn || cmd.Subtype == pg.AlterTableType_AT_AlterColumnType) {
				t, what = tb, "ALTER TABLE dropping or retyping column "+tb.DeletedAt+" of"
			}
		}
	case *pg.Node_RenameStmt:
		tb, ok := e.lookupRel(s.RenameStmt.Relation)
		switch {
		case !ok:
		case s.RenameStmt.RenameType == pg.ObjectType_OBJECT_TABLE:
			t, what = tb, "ALTER TABLE RENAME of"
		case s.RenameStmt.RenameType == pg.ObjectType_OBJECT_COLUMN && s.RenameStmt.Subname == tb.DeletedAt:
			t, what = tb, "renaming column "+tb.DeletedAt+" of"
		}
	case *pg.Node_AlterObjectSchemaStmt:
		if tb, ok := e.lookupRel(s.AlterObjectSchemaStmt.Relation); ok && s.AlterObjectSchemaStmt.ObjectType == pg.ObjectType_OBJECT_TABLE {
			t, what = tb, "ALTER TABLE SET SCHEMA of"
		}
	case *pg.Node_DropOwnedStmt:
		return refusePrivileged("DROP OWNED refused: it drops every object the role owns, soft-delete tables and their columns included",
			"Rows of soft-delete tables would be removed for good.", "")
	case *pg.Node_DropStmt:
		if s.DropStmt.Behavior == pg.DropBehavior_DROP_CASCADE && dropsColumns[s.DropStmt.RemoveType] {
			return refusePrivileged("DROP "+objectKind(s.DropStmt.RemoveType)+" ... CASCADE refused: the columns that depend on it go with it, in soft-delete tables too",
				"A column whose type, collation, default-free generation expression or extension is dropped is removed from every row, deleted ones included.", "")
		}
		if s.DropStmt.RemoveType == pg.ObjectType_OBJECT_SCHEMA && s.DropStmt.Behavior == pg.DropBehavior_DROP_CASCADE {
			// The schema's tables go with it. A table configured without
			// a schema may live in any of them.
			for _, o := range s.DropStmt.Objects {
				for _, tb := range e.policy.Tables() {
					if tb.Schema == "" || tb.Schema == o.GetString_().GetSval() {
						t, what = tb, "DROP SCHEMA "+o.GetString_().GetSval()+" CASCADE, which may drop"
					}
				}
			}
		}
		if s.DropStmt.RemoveType != pg.ObjectType_OBJECT_TABLE {
			break
		}
		for _, o := range s.DropStmt.Objects {
			var name []string
			for _, part := range o.GetList().GetItems() {
				name = append(name, part.GetString_().GetSval())
			}
			schema := ""
			if len(name) > 1 {
				schema = name[len(name)-2]
			}
			if len(name) > 0 {
				if tb, ok := e.policy.Lookup(schema, name[len(name)-1]); ok {
					t, what = tb, "DROP TABLE of"
				}
			}
		}
	}
	if t == nil {
		return nil
	}
	return refuseSchemaChange(what, t.QualifiedName())
}

// dropsColumns are the objects a column can depend on: DROP ... CASCADE
// of one drops those columns (a type or domain of the column, its
// collation, a function of a generated column, a text search
// configuration of a generated tsvector, an extension that owns any of
// these) and their values in every row.
var dropsColumns = map[pg.ObjectType]bool{
	pg.ObjectType_OBJECT_TYPE: true, pg.ObjectType_OBJECT_DOMAIN: true, pg.ObjectType_OBJECT_COLLATION: true,
	pg.ObjectType_OBJECT_EXTENSION: true, pg.ObjectType_OBJECT_FUNCTION: true, pg.ObjectType_OBJECT_PROCEDURE: true,
	pg.ObjectType_OBJECT_ROUTINE: true, pg.ObjectType_OBJECT_AGGREGATE: true, pg.ObjectType_OBJECT_OPERATOR: true,
	pg.ObjectType_OBJECT_TSCONFIGURATION: true, pg.ObjectType_OBJECT_TSDICTIONARY: true,
	pg.ObjectType_OBJECT_TSPARSER: true, pg.ObjectType_OBJECT_TSTEMPLATE: true,
}

// objectKind names an object type for a message: OBJECT_TSCONFIGURATION
// -> TSCONFIGURATION.
func objectKind(t pg.ObjectType) string { return strings.TrimPrefix(t.String(), "OBJECT_") }

// lookupRel is target for a RangeVar that may be absent.
func (e *engine) lookupRel(rv *pg.RangeVar) (*policy.Table, bool) {
	if rv == nil {
		return nil, false
	}
	return e.target(rv)
}

// statement1 is statement for places where no DELETE tag can arise.
func (e *engine) statement1(n *pg.Node, sc *scope) error {
	_, err := e.statement(n, sc)
	return err
}

// mergeStmt keeps deleted target rows from matching, makes WHEN MATCHED
// THEN DELETE soft, and reads only live rows of configured sources.
func (e *engine) mergeStmt(m *pg.MergeStmt, sc *scope) error {
	sc, err := e.withClause(m.WithClause, sc)
	if err != nil {
		return err
	}
	e.mark(m.Relation)
	// A filter on the source cannot go into the join condition (a deleted
	// source row would then count as NOT MATCHED and be inserted), so
	// every configured source is replaced by its live rows: inline mode
	// leaves no pending filter.
	if _, err := e.fromItem(m.SourceRelation, sc, true); err != nil {
		return err
	}
	if err := e.expr(m.JoinCondition, sc); err != nil {
		return err
	}
	if err := e.exprs(sc, m.ReturningList); err != nil {
		return err
	}
	t, ok := e.target(m.Relation)
	for _, w := range m.MergeWhenClauses {
		wc := w.GetMergeWhenClause()
		if wc == nil {
			continue
		}
		if err := e.expr(wc.Condition, sc); err != nil {
			return err
		}
		if err := e.exprs(sc, wc.TargetList, wc.Values); err != nil {
			return err
		}
		if ok && wc.CommandType == pg.CmdType_CMD_UPDATE {
			if err := e.handDelete(wc.TargetList, m.Relation, t); err != nil {
				return err
			}
		}
		if wc.CommandType == pg.CmdType_CMD_DELETE && len(e.policy.Dependents(m.Relation.Schemaname, m.Relation.Relname)) > 0 {
			// The cascades and checks of foreignkey.go need the deleted
			// rows in a CTE, which a MERGE action cannot feed.
			return unsupported("MERGE ... THEN DELETE on a table with foreign keys", t)
		}
		if !ok {
			continue
		}
		e.noText()
		if wc.MatchKind == pg.MergeMatchKind_MERGE_WHEN_NOT_MATCHED_BY_SOURCE {
			// Target rows without a source row include deleted ones;
			// they must not be touched.
			wc.Condition = and(wc.Condition, isNull(columnRef(refQual(m.Relation), t.DeletedAt)))
		}
		if wc.CommandType == pg.CmdType_CMD_DELETE {
			if e.audited() {
				// The audit rows would need the deleted rows in a CTE,
				// which a MERGE action cannot feed.
				return unsupported("MERGE ... THEN DELETE, while the audit log is on,", t)
			}
			set, err := softSetTargets(t, e.inline())
			if err != nil {
				return err
			}
			wc.CommandType = pg.CmdType_CMD_UPDATE
			wc.TargetList = set
			e.apply(t, KindDelete)
		}
	}
	if ok {
		e.noText()
		m.JoinCondition = and(m.JoinCondition, isNull(columnRef(refQual(m.Relation), t.DeletedAt)))
		e.apply(t, KindMerge)
	}
	return nil
}

// copyStmt turns COPY t TO into COPY (SELECT cols FROM ONLY t WHERE
// deleted_at IS NULL) TO, keeping the options; COPY FROM is left alone.
func (e *engine) copyStmt(c *pg.CopyStmt, sc *scope) error {
	if c.Query != nil {
		return e.statement1(c.Query, sc)
	}
	if c.Relation == nil {
		return nil
	}
	e.mark(c.Relation)
	if c.IsFrom && e.isAudit(c.Relation) {
		return refuseAuditWrite("COPY into")
	}
	t, ok := e.target(c.Relation)
	if c.IsFrom || !ok {
		return nil
	}
	if t.Partitioned {
		return refuseCopyPartitioned(t)
	}
	cols := c.Attlist
	targets := make([]*pg.Node, 0, len(cols))
	for _, col := range cols {
		targets = append(targets, pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(col.GetString_().GetSval())}, -1), -1))
	}
	if len(targets) == 0 {
		targets = append(targets, pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeAStarNode()}, -1), -1))
	}
	rv := &pg.RangeVar{
		Catalogname: c.Relation.Catalogname, Schemaname: c.Relation.Schemaname, Relname: c.Relation.Relname,
		Inh:            false, // COPY t TO copies t alone, not its inheritance children
		Relpersistence: c.Relation.Relpersistence, Location: -1,
	}
	e.mark(rv)
	e.noText()
	c.Query = &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: &pg.SelectStmt{
		TargetList:  targets,
		FromClause:  []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: rv}}},
		WhereClause: isNull(columnRef(nil, t.DeletedAt)),
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}}}
	c.Relation, c.Attlist = nil, nil
	e.apply(t, KindCopy)
	return nil
}

// truncateStmt refuses TRUNCATE of any configured table: it would remove
// rows for good, which soft deletes exist to prevent.
func (e *engine) truncateStmt(s *pg.TruncateStmt) error {
	for _, r := range s.Relations {
		rv := r.GetRangeVar()
		if rv == nil {
			continue
		}
		e.mark(rv)
		if t, ok := e.target(rv); ok {
			return refuseTruncate(t.QualifiedName())
		}
	}
	if s.Behavior == pg.DropBehavior_DROP_CASCADE {
		return refuseTruncate("")
	}
	return nil
}
