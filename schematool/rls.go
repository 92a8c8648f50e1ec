package schematool

import (
	"fmt"
	"strings"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/policy"
)

// The optional objects: active_<table> views and row-level security
// policies, for clients that reach the database without the proxy. Each
// carries a comment with the hash of its definition, so that a second run
// knows it is current and a changed table or configuration replaces it.

const (
	viewMarker = "tombstone migrate --views "
	rlsMarker  = "tombstone migrate --rls "
)

// patchedColumns are the columns of the relation oid once the plan's
// columns are added.
func (a *analysis) patchedColumns(oid uint32) []policy.Column {
	for _, r := range a.patched.Relations {
		if r.OID == oid {
			return r.Columns
		}
	}
	return nil
}

func (a *analysis) view(section string, t *policy.Table, r *Relation) {
	name := ViewName(t.Name)
	view := catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(name)
	var cols []string
	for _, c := range a.patchedColumns(t.OID) {
		cols = append(cols, catalog.QuoteIdent(c.Name))
	}
	// security_invoker: the view reads with the caller's privileges and
	// row-level security, not its owner's (migrate runs as a privileged
	// role); the columns are named, so a column added later changes the
	// hash and the view is made again.
	create := fmt.Sprintf("CREATE VIEW %s WITH (security_invoker = true) AS SELECT %s FROM %s WHERE %s IS NULL",
		view, strings.Join(cols, ", "), qualified(policy.RelName{Schema: r.Schema, Name: r.Name}), catalog.QuoteIdent(t.DeletedAt))
	marker := viewMarker + hash(create)
	stmts := []Statement{
		{SQL: create},
		// The caller still needs SELECT on the table itself.
		{SQL: "GRANT SELECT ON " + view + " TO PUBLIC"},
		{SQL: "COMMENT ON VIEW " + view + " IS " + catalog.StringConstant(marker)},
	}
	v, exists := a.f.Views[t.OID]
	var is *issue
	switch {
	case !exists:
		is = a.add(section, Note, "views", fmt.Sprintf("no view %s.%s (optional: the live rows, for clients that reach the database without the proxy)", r.Schema, name))
	case !v.IsView || !strings.HasPrefix(v.Comment, viewMarker):
		is = a.add(section, Note, "views", fmt.Sprintf("%s.%s exists and is not Tombstone's view", r.Schema, name))
		is.cannot, is.option = "it would replace an object of yours; rename it or drop it first", "views"
		return
	case v.Comment == marker:
		a.add(section, OK, "views", fmt.Sprintf("view %s.%s shows the live rows", r.Schema, name))
		return
	default:
		is = a.add(section, Warn, "views", fmt.Sprintf("view %s.%s was made for other columns than %s has now", r.Schema, name, t.QualifiedName()))
		// DROP fails, rolling the step back, if an object of the
		// application depends on the view: never CASCADE.
		stmts = append([]Statement{{SQL: "DROP VIEW " + view}}, stmts...)
	}
	is.option = "views"
	is.step = &Step{order: orderViews, Title: "create view " + r.Schema + "." + name + " (live rows of " + t.QualifiedName() + ")", Transaction: true, Statements: stmts}
}

// Policy names migrate creates.
const (
	policyLive       = "tombstone_live"
	policyInsert     = "tombstone_insert"
	policyUpdate     = "tombstone_update"
	policyPrivileged = "tombstone_privileged"
)

// rls plans row-level security on a soft-delete relation:
//
//   - SELECT (to PUBLIC): live rows, and rows deleted by the statement
//     that reads them. PostgreSQL checks SELECT policies against the new
//     row of an UPDATE whose WHERE reads the table, as the proxy's
//     soft-delete UPDATE does, so without that term every DELETE through
//     the proxy would fail. The rewrite stamps deleted_at with the
//     clock during the statement, so no earlier than
//     statement_timestamp(); a hand-written SET deleted_at = now() is
//     the transaction's start. A reader's snapshot is taken when its
//     statement starts, so rows deleted after that are live to it
//     anyway: what the term lets through is rows whose deleted_at lies
//     in the future, and rows deleted at the very microsecond the
//     reader's transaction began.
//   - UPDATE (to PUBLIC): live rows; WITH CHECK true, so that the
//     soft-delete UPDATE may set deleted_at.
//   - INSERT (to PUBLIC): anything the grants allow.
//   - no DELETE policy: a client that bypasses the proxy cannot remove
//     rows for good (its DELETE finds none).
//   - ALL (to the privileged roles that exist): everything, for restore,
//     purge and migrations. Superusers, BYPASSRLS roles and the table's
//     owner are not subject to policies at all.
//
// FORCE ROW LEVEL SECURITY is not set: Tombstone's foreign-key check
// triggers read the parent as its owner and must see deleted rows.
func (a *analysis) rls(section string, t *policy.Table, r *Relation) {
	table := qualified(policy.RelName{Schema: r.Schema, Name: r.Name})
	col := catalog.QuoteIdent(t.DeletedAt)
	typ := ""
	for _, c := range a.patchedColumns(t.OID) {
		if c.Name == t.DeletedAt {
			typ = c.Type
		}
	}
	creates := []string{
		fmt.Sprintf("CREATE POLICY %s ON %s FOR SELECT TO PUBLIC USING (%s IS NULL OR %s OPERATOR(pg_catalog.>=) pg_catalog.statement_timestamp()::%s OR %s OPERATOR(pg_catalog.=) pg_catalog.now()::%s)", policyLive, table, col, col, typ, col, typ),
		fmt.Sprintf("CREATE POLICY %s ON %s FOR INSERT TO PUBLIC WITH CHECK (true)", policyInsert, table),
		fmt.Sprintf("CREATE POLICY %s ON %s FOR UPDATE TO PUBLIC USING (%s IS NULL) WITH CHECK (true)", policyUpdate, table, col),
	}
	names := []string{policyLive, policyInsert, policyUpdate}
	if len(a.f.Privileged) > 0 {
		roles := make([]string, len(a.f.Privileged))
		for i, p := range a.f.Privileged {
			roles[i] = catalog.QuoteIdent(p)
		}
		creates = append(creates, fmt.Sprintf("CREATE POLICY %s ON %s FOR ALL TO %s USING (true) WITH CHECK (true)", policyPrivileged, table, strings.Join(roles, ", ")))
		names = append(names, policyPrivileged)
	}
	marker := rlsMarker + hash(strings.Join(creates, "\n"))
	var ours, theirs []string
	current := 0
	for _, p := range r.Policies {
		if !strings.HasPrefix(p.Comment, rlsMarker) {
			theirs = append(theirs, p.Name)
			continue
		}
		ours = append(ours, p.Name)
		if p.Comment == marker {
			current++
		}
	}
	owner := ""
	if !r.OwnerTrusted {
		owner = fmt.Sprintf("; its owner %s is not privileged, and row-level security does not apply to a table's owner", r.Owner)
	}
	var is *issue
	switch {
	case t.Root.AllowRestore && len(ours) > 0:
		// Made before allow_restore was turned on: restores through the
		// proxy now change nothing, silently.
		is = a.add(section, Fail, "rls", "allow_restore is on for "+t.Root.QualifiedName()+", and Tombstone's row-level security hides deleted rows from the restore UPDATE (PostgreSQL applies SELECT policies to the rows an UPDATE reads): a restore through the proxy changes nothing")
		var stmts []Statement
		for _, p := range ours {
			stmts = append(stmts, Statement{SQL: "DROP POLICY " + catalog.QuoteIdent(p) + " ON " + table})
		}
		if len(theirs) == 0 {
			stmts = append(stmts, Statement{SQL: "ALTER TABLE " + table + " DISABLE ROW LEVEL SECURITY"})
		}
		is.step = &Step{order: orderRLS, Title: "remove Tombstone's row-level security from " + t.QualifiedName() + ", which allow_restore cannot work with", Transaction: true, Statements: stmts}
		return
	case t.Root.AllowRestore:
		is = a.add(section, Note, "rls", "allow_restore is on for "+t.Root.QualifiedName())
		is.cannot = "row-level security that hides deleted rows would hide them from the restore UPDATE too (PostgreSQL applies SELECT policies to the rows an UPDATE reads), so a restore through the proxy would change nothing; restore as a privileged role (tombstone restore), or turn allow_restore off to use --rls"
		is.option = "rls"
		return
	case len(theirs) > 0 || (r.RLS && len(ours) == 0):
		is = a.add(section, Note, "rls", fmt.Sprintf("row-level security of the application's own is set up (policies: %s)", strings.Join(theirs, ", ")))
		is.cannot = fmt.Sprintf("Tombstone's permissive policies would widen the application's (PostgreSQL ORs permissive policies); add (%s IS NULL OR %s >= pg_catalog.statement_timestamp()) to its SELECT policies, and keep %s out of its UPDATE policies' WITH CHECK", t.DeletedAt, t.DeletedAt, t.DeletedAt)
		is.option = "rls"
		return
	case r.RLS && current == len(names) && len(ours) == len(names):
		a.add(section, OK, "rls", "row-level security is on with Tombstone's current policies"+owner)
		return
	case len(ours) > 0:
		is = a.add(section, Warn, "rls", "Tombstone's row-level security policies were made for another configuration or column type"+owner)
	default:
		is = a.add(section, Note, "rls", "no row-level security (optional: policies that hide deleted rows from clients that reach the database without the proxy)"+owner)
	}
	var stmts []Statement
	if !r.RLS {
		stmts = append(stmts, Statement{SQL: "ALTER TABLE " + table + " ENABLE ROW LEVEL SECURITY"})
	}
	for _, p := range ours {
		stmts = append(stmts, Statement{SQL: "DROP POLICY " + catalog.QuoteIdent(p) + " ON " + table})
	}
	for i, c := range creates {
		stmts = append(stmts, Statement{SQL: c}, Statement{SQL: "COMMENT ON POLICY " + names[i] + " ON " + table + " IS " + catalog.StringConstant(marker)})
	}
	is.option = "rls"
	is.step = &Step{order: orderRLS, Title: "row-level security on " + t.QualifiedName() + ": SELECT sees live rows, the soft-delete UPDATE works, privileged roles see everything", Transaction: true, Statements: stmts}
}
