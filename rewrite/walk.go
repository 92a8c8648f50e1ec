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

// markAll marks every table reference under n as handled.
func (e *engine) markAll(n *pg.Node) {
	_ = rangeVars(n.ProtoReflect(), func(rv *pg.RangeVar) error { e.mark(rv); return nil })
}

// verify refuses a statement that still names a configured table no rule
// has handled: it would otherwise reach the server unfiltered. It also
// refuses calls of built-ins that run SQL of their own anywhere in the
// statement, DDL expressions (DEFAULT, CHECK, index expressions) included.
func (e *engine) verify(stmt *pg.Node) error {
	return eachNode(stmt.ProtoReflect(), func(m protoreflect.Message) error {
		switch x := m.Interface().(type) {
		case *pg.FuncCall:
			if name := sqlRunningFunc(x); name != "" {
				return unseen(name+"() runs SQL that Tombstone cannot see",
					"The SQL it runs is text or a table name resolved inside the server; no soft-delete filter can be added to it.",
					"Run the query itself through Tombstone, or call the function as a privileged role.")
			}
		case *pg.RangeVar:
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
// The prefilter parses every text holding their names (rewriteKeywords).
func sqlRunningFunc(f *pg.FuncCall) string {
	if len(f.Funcname) == 0 {
		return ""
	}
	name := strings.ToLower(f.Funcname[len(f.Funcname)-1].GetString_().GetSval())
	for _, kind := range []string{"query", "table", "schema", "database"} {
		switch strings.TrimPrefix(name, kind) {
		case "_to_xml", "_to_xmlschema", "_to_xml_and_xmlschema":
			return name
		}
	}
	switch {
	case name == "ts_stat", name == "ts_rewrite" && len(f.Args) == 2, strings.HasPrefix(name, "dblink"):
		return name
	}
	return ""
}
