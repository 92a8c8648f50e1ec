package rewrite

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/tombstone-proxy/tombstone/internal/sqlquote"
	"github.com/tombstone-proxy/tombstone/policy"
)

// A deletion is one soft-deleting statement: the rows it deletes and the
// children its cascades take with them. Every row of it gets the same
// deleted_at, taken once when the statement runs (clock_timestamp, not
// now(): two deletions in one transaction must differ, so that restoring
// one leaves the other deleted), and the same actor and reason:
//
//   - actor: the statement's sqlcommenter actor tag, else the session
//     setting tombstone.actor (SET, SET LOCAL or set_config, resolved by
//     the server, so transaction scoping is exact), else the login role;
//   - reason: the reason tag, else tombstone.reason, else NULL.
//
// The deleted_at stamp is the deletion's identity: a restore brings back
// the rows that reference a restored row and carry its stamp (restore.go),
// and the audit log records it with every row.

// stampOnce is the deleted_at of a statement without CTEs: an
// uncorrelated scalar subquery is an InitPlan, evaluated once per
// execution, so every row of the statement gets the same value.
const stampOnce = "(SELECT pg_catalog.clock_timestamp())"

// setting is the value of a custom setting as text, NULL when unset or
// empty. Every operator is schema-qualified: the client chooses the
// search_path.
func setting(name string) string {
	get := "pg_catalog.current_setting(" + quoteLiteral(name) + ", true)"
	return "CASE WHEN " + get + " OPERATOR(pg_catalog.<>) '' THEN " + get + " END"
}

// actorText is the statement's actor as text.
func (e *engine) actorText() string {
	parts := []string{setting("tombstone.actor"), "CAST(SESSION_USER AS pg_catalog.text)"}
	if e.tags.actor != nil {
		parts = append([]string{sqlquote.Literal(*e.tags.actor)}, parts...)
	}
	return "COALESCE(" + strings.Join(parts, ", ") + ")"
}

// reasonText is the statement's reason as text, NULL when none is given.
func (e *engine) reasonText() string {
	if e.tags.reason != nil {
		return "COALESCE(" + sqlquote.Literal(*e.tags.reason) + ", " + setting("tombstone.reason") + ")"
	}
	return setting("tombstone.reason")
}

// deletionValues are the SQL expressions a deletion writes.
type deletionValues struct{ stamp, actor, reason string }

// inline is the values of a statement without CTEs.
func (e *engine) inline() deletionValues {
	return deletionValues{stamp: stampOnce, actor: e.actorText(), reason: e.reasonText()}
}

// fromContext is the values read from a plan's context CTE (ctxCTE).
func fromContext(ctx string) deletionValues {
	return deletionValues{
		stamp:  "(SELECT tombstone_at FROM " + ctx + ")",
		actor:  "(SELECT tombstone_actor FROM " + ctx + ")",
		reason: "(SELECT tombstone_reason FROM " + ctx + ")",
	}
}

// ctxCTE computes a deletion's values once, for every CTE of the
// statement to read.
func (e *engine) ctxCTE(name string) string {
	return fmt.Sprintf("%s AS MATERIALIZED (SELECT pg_catalog.clock_timestamp() AS tombstone_at, %s AS tombstone_actor, %s AS tombstone_reason)",
		name, e.actorText(), e.reasonText())
}

// castActor converts the text actor to t's deleted_by type. A value that
// does not convert fails the statement (22P02), never a silent NULL.
// Character types take the text by assignment, which also keeps a
// varchar(n) limit an error rather than a truncation.
func castActor(t *policy.Table, actor string) (string, error) {
	typ := t.Root.DeletedByType
	switch {
	case typ == "" || typ == "text" || typ == "name" || typ == "citext" ||
		strings.HasPrefix(typ, "character"):
		return actor, nil
	case typ == "uuid":
		return "CAST(" + actor + " AS pg_catalog.uuid)", nil
	case typ == "bigint":
		return "CAST(" + actor + " AS pg_catalog.int8)", nil
	case typ == "integer":
		return "CAST(" + actor + " AS pg_catalog.int4)", nil
	case typ == "smallint":
		return "CAST(" + actor + " AS pg_catalog.int2)", nil
	}
	return "", refuseActorType(t, typ)
}

// softSet is the SET list of a soft delete of t (its columns unqualified,
// as UPDATE's SET names them).
func softSet(t *policy.Table, v deletionValues) (string, error) {
	set := quoteIdent(t.DeletedAt) + " = " + v.stamp
	if t.DeletedBy != "" {
		actor, err := castActor(t, v.actor)
		if err != nil {
			return "", err
		}
		set += ", " + quoteIdent(t.DeletedBy) + " = " + actor
	}
	if t.DeletedReason != "" {
		set += ", " + quoteIdent(t.DeletedReason) + " = " + v.reason
	}
	return set, nil
}

// softSetTargets is softSet as an UPDATE's target list.
func softSetTargets(t *policy.Table, v deletionValues) ([]*pg.Node, error) {
	set, err := softSet(t, v)
	if err != nil {
		return nil, err
	}
	return setTargets(set)
}

// setTargets is a SET list's text as an UPDATE's target list.
func setTargets(set string) ([]*pg.Node, error) {
	tree, err := pg.Parse("UPDATE tombstone SET " + set)
	if err != nil {
		return nil, refuseInternal(fmt.Errorf("soft-delete SET %q: %w", set, err))
	}
	targets := tree.Stmts[0].Stmt.GetUpdateStmt().TargetList
	for _, n := range targets {
		// Locations in Tombstone's text, not the client's: the splicer
		// (splice.go) reads locations as the client's.
		clearLocations(n.ProtoReflect())
	}
	return targets, nil
}

// keyJSON is a row's primary key as a jsonb object, for the audit log;
// NULL for a table without one. qual is how the row is referred to.
func keyJSON(t *policy.Table, qual string) string {
	pk := t.PrimaryKey
	if len(pk) == 0 {
		pk = t.Root.PrimaryKey
	}
	if len(pk) == 0 {
		return "CAST(NULL AS pg_catalog.jsonb)"
	}
	args := make([]string, 0, 2*len(pk))
	for _, c := range pk {
		args = append(args, quoteLiteral(c), qual+"."+quoteIdent(c))
	}
	return "pg_catalog.jsonb_build_object(" + strings.Join(args, ", ") + ")"
}

// auditCTE writes one audit row per row of the sources (SELECTs of
// tombstone_oid, tombstone_key and, for a restore, tombstone_stamp), in
// the statement's own transaction. table_name comes from each row's
// tableoid, so a partition's row names the partition. deletion is the
// stamp the rows carry: the new one for a delete, each row's own
// (tombstone_a.tombstone_stamp) for a restore.
func (e *engine) auditCTE(name, action, ctx, deletion string, sources []string) string {
	a := e.policy.Audit()
	cols := []string{"action", "table_name", "key", "actor", "reason", "fingerprint", "deletion"}
	for i, c := range cols {
		cols[i] = quoteIdent(c)
	}
	return fmt.Sprintf(`%s AS (INSERT INTO %s.%s (%s) SELECT %s, pg_catalog.format('%%I.%%I', tombstone_n.nspname, tombstone_c.relname), tombstone_a.tombstone_key, tombstone_x.tombstone_actor, tombstone_x.tombstone_reason, %s, %s FROM (%s) AS tombstone_a JOIN pg_catalog.pg_class AS tombstone_c ON tombstone_c.oid OPERATOR(pg_catalog.=) tombstone_a.tombstone_oid JOIN pg_catalog.pg_namespace AS tombstone_n ON tombstone_n.oid OPERATOR(pg_catalog.=) tombstone_c.relnamespace, %s AS tombstone_x)`,
		name, quoteIdent(a.Schema), quoteIdent(a.Name), strings.Join(cols, ", "),
		quoteLiteral(action), quoteLiteral(e.fingerprint), deletion, strings.Join(sources, " UNION ALL "), ctx)
}

// targetRows selects the target CTE's rows for the audit log, each once:
// a DELETE ... USING or UPDATE ... FROM may choose a row once per match.
func targetRows(cte string, cols string) string {
	return "SELECT DISTINCT ON (tombstone_oid, tombstone_ctid) " + cols + " FROM " + cte
}

// isAudit reports whether rv names the audit log. The grants let PUBLIC
// insert the rows a deletion writes; through Tombstone only the
// rewriter's own INSERT does. An unqualified name is the application's
// own table far more often (audit_log is a common name) than the audit
// log reached through a search_path the application set itself, so only
// the qualified name is refused; a row written either way carries the
// login role the server fills in.
func (e *engine) isAudit(rv *pg.RangeVar) bool {
	a := e.policy.Audit()
	return e.audited() && rv.Relname == a.Name && rv.Schemaname == a.Schema
}

// handDelete refuses an UPDATE (or ON CONFLICT or MERGE update) that
// sets t's deleted_at to anything but NULL, a soft delete written by hand,
// where Tombstone's promises depend on deletions being its own: the
// table's foreign keys must be carried out or checked, the audit log
// written, or its retention (a backdated stamp would be purged early).
// Elsewhere it only hides the row, as a DELETE would, and is left alone.
func (e *engine) handDelete(targets []*pg.Node, rv *pg.RangeVar, t *policy.Table) error {
	sets := false
	for _, n := range targets {
		rt := n.GetResTarget()
		if rt == nil || rt.Name != t.DeletedAt {
			continue
		}
		if c := rt.Val.GetAConst(); c == nil || !c.Isnull {
			sets = true
		}
	}
	if !sets {
		return nil
	}
	var why string
	switch {
	case len(e.policy.Dependents(rv.Schemaname, rv.Relname)) > 0:
		why = "its foreign keys would be neither carried out nor checked"
	case e.audited():
		why = "no audit row would record it"
	case t.Retention > 0:
		why = "a stamp of the client's choosing would decide when purge removes the row"
	default:
		return nil
	}
	return refuseHandDelete(t, why, t.AllowRestore)
}

// audited reports whether soft deletes and restores write the audit log.
func (e *engine) audited() bool { return e.policy.Audit() != (policy.RelName{}) }
