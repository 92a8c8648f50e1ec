package rewrite

import (
	"strings"
	"unicode"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// pg_query_go has no tree walker, so expressions are walked through
// protobuf reflection. Only subqueries matter inside an expression; the
// walk hands every SELECT it meets to selectStmt with the scope in force.

// expr rewrites the subqueries anywhere inside n.
func (e *engine) expr(n *pg.Node, sc *scope) error {
	if n == nil {
		return nil
	}
	return e.walkValue(n.ProtoReflect(), sc)
}

// exprs is expr over several lists.
func (e *engine) exprs(sc *scope, lists ...[]*pg.Node) error {
	for _, l := range lists {
		for _, n := range l {
			if err := e.expr(n, sc); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *engine) walkValue(m protoreflect.Message, sc *scope) error {
	switch x := m.Interface().(type) {
	case *pg.SelectStmt:
		return e.selectStmt(x, sc)
	case *pg.RangeVar:
		// Left unhandled: a table named outside a FROM list is for the
		// final check to judge.
		return nil
	case *pg.Node:
		if isLeaf(x) {
			return nil
		}
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		err = eachMessage(fd, v, func(c protoreflect.Message) error { return e.walkValue(c, sc) })
		return err == nil
	})
	return err
}

// isLeaf reports the most common expression nodes that can hold neither a
// subquery nor a table: skipping them saves most of the reflection.
func isLeaf(n *pg.Node) bool {
	switch n.Node.(type) {
	case *pg.Node_ColumnRef, *pg.Node_AConst, *pg.Node_ParamRef, *pg.Node_String_,
		*pg.Node_Integer, *pg.Node_AStar, *pg.Node_SqlvalueFunction, *pg.Node_TypeName:
		return true
	}
	return false
}

// eachMessage calls f for the message, or each message of the list, that
// field fd holds.
func eachMessage(fd protoreflect.FieldDescriptor, v protoreflect.Value, f func(protoreflect.Message) error) error {
	if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
		return nil
	}
	if !fd.IsList() {
		return f(v.Message())
	}
	l := v.List()
	for i := 0; i < l.Len(); i++ {
		if err := f(l.Get(i).Message()); err != nil {
			return err
		}
	}
	return nil
}

// eachNode calls f for m and every message in the tree under it, except
// below leaf expression nodes.
func eachNode(m protoreflect.Message, f func(protoreflect.Message) error) error {
	if err := f(m); err != nil {
		return err
	}
	if x, ok := m.Interface().(*pg.Node); ok && isLeaf(x) {
		return nil
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		err = eachMessage(fd, v, func(c protoreflect.Message) error { return eachNode(c, f) })
		return err == nil
	})
	return err
}

// rangeVars calls f for every RangeVar in the tree under m.
func rangeVars(m protoreflect.Message, f func(*pg.RangeVar) error) error {
	return eachNode(m, func(m protoreflect.Message) error {
		if rv, ok := m.Interface().(*pg.RangeVar); ok {
			return f(rv)
		}
		return nil
	})
}

// markOwn marks the table references of a CTE the rules wrote as
// handled and, for the audit INSERT, as Tombstone's own write to the
// audit log.
func (e *engine) markOwn(n *pg.Node) {
	e.markAll(n)
	if rv := n.GetCommonTableExpr().GetCtequery().GetInsertStmt().GetRelation(); rv != nil && e.isAudit(rv) {
		if e.ownAudit == nil {
			e.ownAudit = map[*pg.RangeVar]struct{}{}
		}
		e.ownAudit[rv] = struct{}{}
	}
}

// markAll marks every table reference under n as handled.
func (e *engine) markAll(n *pg.Node) {
	_ = rangeVars(n.ProtoReflect(), func(rv *pg.RangeVar) error { e.mark(rv); return nil })
}

// verify refuses a statement that still names a configured table no rule
// has handled: it would otherwise reach the server unfiltered. It also
// refuses, anywhere in the statement (DDL expressions such as DEFAULT,
// CHECK and index expressions included), a built-in that runs SQL of its
// own, whether called or bound by name as the function of an operator,
// aggregate, cast or transform, and settings that change how the server
// scans SQL (settings.go).
func (e *engine) verify(stmt *pg.Node) error {
	return eachNode(stmt.ProtoReflect(), func(m protoreflect.Message) error {
		switch x := m.Interface().(type) {
		case *pg.FuncCall:
			if name := sqlRunningFunc(x.Funcname, len(x.Args)); name != "" {
				return refuseSQLRunning(name)
			}
			return setConfigCall(x)
		case *pg.ObjectWithArgs:
			nargs := len(x.Objargs)
			if x.ArgsUnspecified {
				nargs = -1
			}
			if name := sqlRunningFunc(x.Objname, nargs); name != "" {
				return refuseSQLRunning(name)
			}
			return setConfigBound(x.Objname)
		case *pg.DefElem:
			// CREATE OPERATOR (FUNCTION = f), CREATE AGGREGATE (SFUNC =
			// f, FINALFUNC = f, ...): the function is a name.
			if name := sqlRunningFunc(defElemName(x), -1); name != "" {
				return refuseSQLRunning(name)
			}
			return setConfigBound(defElemName(x))
		case *pg.UpdateStmt:
			return settingsUpdate(x.Relation)
		case *pg.VariableSetStmt:
			return lexingSetting(x)
		case *pg.RangeVar:
			if _, own := e.ownAudit[x]; !own && e.isAudit(x) {
				// MERGE into it, a view or rule over it, a SELECT of
				// it: only the rewriter's own INSERT may name it.
				return refuseAuditWrite("a statement naming")
			}
			if _, ok := e.handled[x]; ok {
				return nil
			}
			if t, ok := e.policy.Lookup(x.Schemaname, x.Relname); ok {
				return unsupported(construct(stmt), t)
			}
		}
		return nil
	})
}

// defElemName is the name a definition element's argument spells, when it
// is one (a TypeName or a String, as the grammar's def_arg makes them).
func defElemName(d *pg.DefElem) []*pg.Node {
	switch a := d.Arg.GetNode().(type) {
	case *pg.Node_TypeName:
		return a.TypeName.Names
	case *pg.Node_String_:
		return []*pg.Node{d.Arg}
	case *pg.Node_List:
		return a.List.Items
	}
	return nil
}

// schemaOnlyStmts change or describe a table without reading or removing
// its rows, so naming a soft-delete table in them is safe.
var schemaOnlyStmts = map[protoreflect.Name]bool{
	"AlterTableStmt": true, "IndexStmt": true, "CommentStmt": true, "GrantStmt": true,
	"LockStmt": true, "VacuumStmt": true, "CreateTrigStmt": true, "RenameStmt": true,
	"CreateStmt": true, "AlterObjectSchemaStmt": true, "CreateStatsStmt": true,
	"ClusterStmt": true, "ReindexStmt": true, "SecLabelStmt": true, "AlterOwnerStmt": true,
}

func stmtName(n *pg.Node) protoreflect.Name {
	m := n.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("node")
	if od == nil {
		return m.Descriptor().Name()
	}
	fd := m.WhichOneof(od)
	if fd == nil {
		return ""
	}
	return fd.Message().Name()
}

func schemaOnly(n *pg.Node) bool { return schemaOnlyStmts[stmtName(n)] }

// construct names a statement kind for a refusal: RuleStmt -> RULE,
// CreatePolicyStmt -> CREATE POLICY.
func construct(n *pg.Node) string {
	name := strings.TrimSuffix(string(stmtName(n)), "Stmt")
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// sqlRunningFunc returns the name of a built-in that runs SQL of its own
// (query text, or every row of tables it names: query_to_xml,
// table_to_xml, schema_to_xml, database_to_xml and their xmlschema
// variants, ts_stat, two-argument ts_rewrite, dblink's functions), or "".
// nargs is the number of arguments, -1 when unknown (a function bound by
// name). The prefilter parses every text holding their names
// (refusedKeywords).
func sqlRunningFunc(names []*pg.Node, nargs int) string {
	if len(names) == 0 {
		return ""
	}
	name := strings.ToLower(names[len(names)-1].GetString_().GetSval())
	for _, kind := range []string{"query", "table", "schema", "database"} {
		switch strings.TrimPrefix(name, kind) {
		case "_to_xml", "_to_xmlschema", "_to_xml_and_xmlschema":
			return name
		}
	}
	switch {
	case name == "ts_stat", name == "ts_rewrite" && (nargs == 2 || nargs < 0), strings.HasPrefix(name, "dblink"):
		return name
	}
	return ""
}
