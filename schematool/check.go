package schematool

import (
	"fmt"
	"strings"
	"time"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/policy"
)

// Level is how much a finding matters.
type Level int

const (
	// OK: checked and fine.
	OK Level = iota
	// Note: worth knowing; nothing to change.
	Note
	// Warn: probably unintended or slow, but Tombstone works.
	Warn
	// Fail: something Tombstone promises does not hold (a DELETE fails
	// through the proxy, a deleted row blocks a new one, a helper is
	// missing). tombstone doctor exits non-zero.
	Fail
)

func (l Level) String() string {
	return [...]string{"ok", "note", "warn", "FAIL"}[l]
}

// Finding is one line of the report.
type Finding struct {
	Level   Level
	Topic   string // columns, grants, indexes, unique, exclusion, foreign keys, deleted rows, interference, helpers, audit, views, rls
	Message string
	// Fix says what tombstone migrate does about it, or why it cannot;
	// empty when there is nothing to do.
	Fix string
}

// Section groups the findings of one table, or of the database.
type Section struct {
	Title    string
	Findings []Finding
}

// Report is what Check found.
type Report struct{ Sections []Section }

// Count is the number of findings at level l.
func (r *Report) Count(l Level) int {
	n := 0
	for _, s := range r.Sections {
		for _, f := range s.Findings {
			if f.Level == l {
				n++
			}
		}
	}
	return n
}

// issue is a finding with the change that fixes it: analyze produces
// them, Check reports them, NewPlan schedules their steps. One source
// for both commands, so that migrate fixes exactly what doctor reports.
type issue struct {
	section string
	Finding
	step *Step
	// cannot is why migrate cannot fix it safely; empty when step does,
	// or when there is nothing to fix.
	cannot string
	// option names the migrate flag that asks for the step (views, rls);
	// empty for steps migrate always plans.
	option string
}

// Check judges the facts.
func Check(f *Facts) *Report {
	r := &Report{}
	index := map[string]int{}
	for _, is := range analyze(f) {
		fd := is.Finding
		switch {
		case is.step != nil && is.step.Blocking != "":
			fd.Fix = "tombstone migrate --allow-blocking: " + is.step.Title + " (" + is.step.Blocking + ")"
		case is.step != nil && is.option != "":
			fd.Fix = "tombstone migrate --" + is.option + ": " + is.step.Title
		case is.step != nil:
			fd.Fix = "tombstone migrate: " + is.step.Title
		case is.cannot != "":
			fd.Fix = "tombstone migrate cannot: " + is.cannot
		}
		if is.step != nil && is.step.Note != "" {
			fd.Fix += "; note: " + is.step.Note
		}
		i, ok := index[is.section]
		if !ok {
			i = len(r.Sections)
			index[is.section] = i
			r.Sections = append(r.Sections, Section{Title: is.section})
		}
		r.Sections[i].Findings = append(r.Sections[i].Findings, fd)
	}
	return r
}

// database is the title of the section about the database as a whole.
const database = "database"

// analyze lists every finding, in report order: the database first, then
// each soft-delete relation.
func analyze(f *Facts) []*issue {
	a := &analysis{f: f}
	a.patched = a.patchedSchema()
	if !f.Trusted {
		a.add(database, Warn, "connection", fmt.Sprintf("connected as %s, which is neither a superuser nor a privileged role of the configuration: row-level security may hide rows from the counts, and tombstone migrate --apply may lack the privileges it needs; connect as the role migrations run as", f.User))
	}
	a.helpers()
	a.audit()
	for _, t := range f.Policy.Tables() {
		a.table(t)
	}
	return a.issues
}

type analysis struct {
	f      *Facts
	issues []*issue
	// patched is the schema as it will be once the plan has added the
	// missing columns: what is planned after them must be what a second
	// run would plan.
	patched *policy.Schema
}

func (a *analysis) add(section string, l Level, topic, msg string) *issue {
	is := &issue{section: section, Finding: Finding{Level: l, Topic: topic, Message: msg}}
	a.issues = append(a.issues, is)
	return is
}

// helpersMarker is the comment migrate leaves on schema tombstone: the
// hash of the helper plan it ran, so that a later run knows whether the
// foreign keys changed since.
func helpersMarker(plan []string) string {
	return "tombstone migrate " + hash(strings.Join(plan, "\n;\n"))
}

func (a *analysis) helpers() {
	plan := catalog.Plan(a.f.Spec, a.patched)
	marker := helpersMarker(plan)
	var why []string
	level := Fail
	if !a.f.Schema.Helpers {
		why = append(why, "tombstone.fail is not installed (or not owned by a superuser or privileged role): a DELETE or restore whose foreign keys need a check is refused (55000)")
		if !a.keysTouchSoftTables() {
			level = Warn // nothing calls it yet
		}
	}
	for _, t := range a.f.MissingTriggers {
		why = append(why, fmt.Sprintf("trigger %s on %s is missing: rows may reference a soft-deleted parent", t.Name, t.Table))
	}
	if len(why) == 0 && a.f.Marker != marker {
		// Every piece is there; what may differ is a function body or
		// a trigger's arguments, from an older Tombstone or since a
		// foreign key changed.
		level = Warn
		why = append(why, "the helpers and triggers were installed by another version of tombstone migrate, or for foreign keys the database no longer has")
	}
	if len(why) == 0 {
		a.add(database, OK, "helpers", fmt.Sprintf("schema tombstone, tombstone.fail and %d foreign-key check triggers are installed and current", len(catalog.CheckTriggers(a.f.Spec, a.f.Schema))))
		return
	}
	stmts := make([]Statement, 0, len(plan)+1)
	for _, s := range plan {
		stmts = append(stmts, Statement{SQL: s})
	}
	stmts = append(stmts, Statement{SQL: "COMMENT ON SCHEMA tombstone IS " + catalog.StringConstant(marker)})
	is := a.add(database, level, "helpers", strings.Join(why, "; "))
	is.step = &Step{order: orderHelpers, Title: "install schema tombstone, its helper functions and the foreign-key check triggers", Transaction: true, Statements: stmts}
}

func (a *analysis) audit() {
	t := a.f.Spec.Audit
	if t.Name == "" {
		a.add(database, Note, "audit", "no audit table configured (audit.table)")
		return
	}
	if a.f.Audit == nil {
		is := a.add(database, Fail, "audit", fmt.Sprintf("audit table %s does not exist: audited deletes, restores and purges fail", t))
		var stmts []Statement
		for _, s := range catalog.AuditTable(t) {
			stmts = append(stmts, Statement{SQL: s})
		}
		is.step = &Step{order: orderAudit, Title: "create the audit table " + t.String(), Transaction: true, Statements: stmts}
		return
	}
	var missing []string
	for _, c := range catalog.AuditColumns {
		if !contains(a.f.Audit, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		is := a.add(database, Fail, "audit", fmt.Sprintf("audit table %s lacks the columns %s", t, strings.Join(missing, ", ")))
		is.cannot = "it is not the table tombstone migrate creates; rename it and rerun tombstone migrate, or set audit.table to another name"
		return
	}
	if len(a.f.AuditClosed) > 0 {
		is := a.add(database, Fail, "audit", fmt.Sprintf("PUBLIC cannot write audit table %s (lacks %s): every audited DELETE through the proxy fails", t, strings.Join(a.f.AuditClosed, ", ")))
		var stmts []Statement
		for _, s := range catalog.AuditTable(t) {
			if strings.HasPrefix(s, "GRANT ") {
				stmts = append(stmts, Statement{SQL: s})
			}
		}
		is.step = &Step{order: orderAudit, Title: "let PUBLIC write the audit table " + t.String() + " (its writer's columns only)", Transaction: true, Statements: stmts}
		return
	}
	a.add(database, OK, "audit", fmt.Sprintf("audit table %s exists, and the application may write it", t))
}

// keysTouchSoftTables reports whether a foreign key or declared cascade
// has a soft-delete table on either side: the rewritten DELETEs and
// restores then call tombstone.fail.
func (a *analysis) keysTouchSoftTables() bool {
	for _, fk := range a.f.Schema.ForeignKeys {
		_, child := a.f.Policy.Lookup(fk.Child.Schema, fk.Child.Name)
		_, parent := a.f.Policy.Lookup(fk.Parent.Schema, fk.Parent.Name)
		if child || parent {
			return true
		}
	}
	for _, t := range a.f.Spec.Tables {
		if len(t.Cascade) > 0 {
			return true
		}
	}
	return false
}

// patchedSchema is the schema with the columns the plan adds.
func (a *analysis) patchedSchema() *policy.Schema {
	s := *a.f.Schema
	s.Relations = append([]policy.Relation(nil), s.Relations...)
	for _, t := range a.f.Policy.Tables() {
		if t.OID == 0 || t.Root != t {
			continue
		}
		add := missingColumns(a.f, t)
		if len(add) == 0 {
			continue
		}
		for i := range s.Relations {
			r := &s.Relations[i]
			if r.OID == t.OID || descends(a.f.Schema, r.OID, t.OID) {
				r.Columns = append(append([]policy.Column(nil), r.Columns...), add...)
			}
		}
	}
	return &s
}

// descends reports whether oid is a partition or inheritance descendant
// of root.
func descends(s *policy.Schema, oid, root uint32) bool {
	parents := map[uint32]uint32{}
	for _, r := range s.Relations {
		parents[r.OID] = r.Parent
	}
	for p := parents[oid]; p != 0; p = parents[p] {
		if p == root {
			return true
		}
	}
	return false
}

// missingColumns lists the configured columns t lacks, with the type
// migrate gives them.
func missingColumns(f *Facts, t *policy.Table) []policy.Column {
	var out []policy.Column
	for _, c := range []struct{ name, typ string }{{t.DeletedAt, "timestamp with time zone"}, {t.DeletedBy, "text"}, {t.DeletedReason, "text"}} {
		if c.name != "" && columnType(f.Schema, t.OID, c.name) == "" {
			out = append(out, policy.Column{Name: c.name, Type: c.typ})
		}
	}
	return out
}

func (a *analysis) table(t *policy.Table) {
	section := "table " + t.QualifiedName()
	if t.OID == 0 {
		is := a.add(section, Fail, "columns", fmt.Sprintf("configured table %s does not exist in this database (it is still enforced by name)", t.QualifiedName()))
		is.cannot = "Tombstone does not guess a table's columns; create it, or remove it from the configuration"
		return
	}
	r := a.f.Relations[t.OID]
	if r == nil {
		return
	}
	if t.Root != t {
		parent := t.Root.QualifiedName()
		if r.Kind == "r" && a.f.Relations[t.Root.OID] != nil && a.f.Relations[t.Root.OID].Kind == "p" {
			section += " (partition of " + parent + ")"
		} else {
			section += " (descendant of " + parent + ")"
		}
	} else {
		a.columns(section, t)
	}
	live := timestampType(columnType(a.patched, t.OID, t.DeletedAt))
	a.grants(section, r)
	if live {
		a.indexes(section, t, r)
	}
	a.foreignKeys(section, r)
	if t.Root == t {
		a.deletedRows(section, t)
	}
	a.interference(section, t, r)
	if t.Root == t && live {
		a.view(section, t, r)
	}
	if live {
		a.rls(section, t, r)
	}
}

// timestampType reports whether typ (as format_type prints it) is
// timestamp or timestamptz, with any precision.
func timestampType(typ string) bool {
	if !strings.HasPrefix(typ, "timestamp") {
		return false
	}
	return strings.HasSuffix(typ, " with time zone") || strings.HasSuffix(typ, " without time zone")
}

func (a *analysis) columns(section string, t *policy.Table) {
	var ok []string
	check := func(role, col string, usable func(string) bool, want string) {
		typ := columnType(a.f.Schema, t.OID, col)
		switch {
		case col == "" || typ == "":
			// Not configured, or missing: missingColumns adds it.
		case !usable(typ):
			is := a.add(section, Fail, "columns", fmt.Sprintf("%s column %s is %s; it must be %s", role, col, typ, want))
			is.cannot = "changing a column's type rewrites the table under an ACCESS EXCLUSIVE lock, blocking reads and writes for the whole rewrite; convert it in a maintenance window, or point " + role + " at another column"
		case role == col:
			ok = append(ok, fmt.Sprintf("%s (%s)", col, typ))
		default:
			ok = append(ok, fmt.Sprintf("%s: %s (%s)", role, col, typ))
		}
	}
	check("deleted_at", t.DeletedAt, timestampType, "timestamptz or timestamp")
	check("deleted_by", t.DeletedBy, func(typ string) bool {
		return typ == "text" || strings.HasPrefix(typ, "character varying") || typ == "integer" || typ == "bigint" || typ == "uuid"
	}, "text, varchar, integer, bigint or uuid")
	check("deleted_reason", t.DeletedReason, func(typ string) bool {
		return typ == "text" || strings.HasPrefix(typ, "character varying")
	}, "text")
	if len(ok) > 0 {
		a.add(section, OK, "columns", strings.Join(ok, ", "))
	}
	missing := missingColumns(a.f, t)
	if len(missing) == 0 {
		return
	}
	var adds, names []string
	for _, c := range missing {
		adds = append(adds, "ADD COLUMN IF NOT EXISTS "+catalog.QuoteIdent(c.Name)+" "+c.Type)
		names = append(names, c.Name)
	}
	is := a.add(section, Fail, "columns", fmt.Sprintf("missing column(s) %s: a DELETE through the proxy fails", strings.Join(names, ", ")))
	// A nullable column without a default is a change of the catalog
	// only: the statement is short, but waits for the table's lock,
	// hence lock_timeout.
	is.step = &Step{order: orderColumns, Title: "add column(s) " + strings.Join(names, ", ") + " to " + t.QualifiedName(), Transaction: true,
		Statements: []Statement{{SQL: "ALTER TABLE " + qualified(policy.RelName{Schema: t.Schema, Name: t.Name}) + " " + strings.Join(adds, ", ")}}}
}

func (a *analysis) grants(section string, r *Relation) {
	name := policy.RelName{Schema: r.Schema, Name: r.Name}
	found := false
	for _, g := range a.f.Grants {
		// Reported with the table whose DELETE needs it.
		if g.For != name {
			continue
		}
		found = true
		cols := make([]string, len(g.Columns))
		for i, c := range g.Columns {
			cols[i] = catalog.QuoteIdent(c)
		}
		role := "PUBLIC"
		if g.Role != "public" {
			role = catalog.QuoteIdent(g.Role)
		}
		stmt := fmt.Sprintf("GRANT %s (%s) ON %s TO %s", g.Privilege, strings.Join(cols, ", "), qualified(g.Table), role)
		is := a.add(section, Fail, "grants", fmt.Sprintf("role %s lacks %s (%s) on %s (%s): a DELETE that works directly fails through the proxy (42501)",
			g.Role, g.Privilege, strings.Join(g.Columns, ", "), g.Table, g.Why))
		is.step = &Step{order: orderGrants, Title: stmt, Transaction: true, Statements: []Statement{{SQL: stmt}}}
	}
	if !found && len(r.DeleteGrantees) > 0 {
		a.add(section, OK, "grants", fmt.Sprintf("the roles that may DELETE (%s) can write the soft-delete columns", strings.Join(r.DeleteGrantees, ", ")))
	}
}

// replacement is an index that migrate builds beside an old one and then
// swaps in: its name while it is built.
func replacementName(old string) string { return catalog.BoundedName(old+"_tombstone", old) }

// replaceMarker is the comment on a replacement index once built, so
// that a run interrupted between dropping the old index and renaming the
// new one is finished by the next: the old name, a newline, and the old
// index's comment.
const replaceMarker = "tombstone migrate: replaces "

func (a *analysis) indexes(section string, t *policy.Table, r *Relation) {
	table := qualified(policy.RelName{Schema: r.Schema, Name: r.Name})
	byName := map[string]*Index{}
	for i := range r.Indexes {
		byName[r.Indexes[i].Name] = &r.Indexes[i]
	}
	// Replacements of ours, and the old indexes they replace: neither is
	// judged on its own.
	ours := map[string]bool{}
	for _, idx := range r.Indexes {
		if byName[replacementName(idx.Name)] != nil {
			ours[replacementName(idx.Name)] = true
		}
		if old, comment, ok := strings.Cut(strings.TrimPrefix(idx.Comment, replaceMarker), "\n"); strings.HasPrefix(idx.Comment, replaceMarker) && ok && old != idx.Name {
			ours[idx.Name] = true
			if byName[old] == nil && idx.Valid {
				// Interrupted after the old index was dropped.
				is := a.add(section, Fail, "indexes", fmt.Sprintf("index %s replaces %s, which is gone, but was not renamed (an interrupted tombstone migrate)", idx.Name, old))
				is.step = &Step{order: orderIndexes, Title: "rename index " + idx.Name + " to " + old, Transaction: true, Statements: []Statement{
					{SQL: "ALTER INDEX " + catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(idx.Name) + " RENAME TO " + catalog.QuoteIdent(old)},
					{SQL: "COMMENT ON INDEX " + catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(old) + " IS " + commentValue(comment)},
				}}
			}
		}
	}
	fkCols := map[string]string{}
	for _, fk := range a.f.Schema.ForeignKeys {
		if fk.Child == (policy.RelName{Schema: r.Schema, Name: r.Name}) {
			fkCols[strings.Join(fk.ChildCols, "\x00")] = fk.Name
		}
	}
	partial, whole := 0, 0
	for i := range r.Indexes {
		idx := &r.Indexes[i]
		switch {
		case ours[idx.Name], idx.ConstraintType == "p", idx.Parent != "":
			// A partition's index attached to its parent's is replaced
			// with the parent's.
			continue
		case !idx.Valid && byName[replacementName(idx.Name)] == nil && !strings.HasPrefix(idx.Comment, replaceMarker):
			// (An INVALID index that has a replacement is what an
			// interrupted DROP INDEX CONCURRENTLY leaves: the swap below
			// finishes it.)
			a.add(section, Warn, "indexes", fmt.Sprintf("index %s is INVALID (a CREATE INDEX CONCURRENTLY or REINDEX that did not finish): queries do not use it, yet every write updates it; drop it with DROP INDEX CONCURRENTLY or rebuild it with REINDEX INDEX CONCURRENTLY", idx.Name))
			continue
		case requiresLive(idx.Predicate, t.DeletedAt):
			partial++
			continue
		case idx.Unique && contains(idx.Columns, t.DeletedAt) && !strings.Contains(idx.Def, " NULLS NOT DISTINCT"):
			// UNIQUE (email, deleted_at): the usual attempt, which
			// enforces nothing among live rows, whose deleted_at are
			// all NULL and so never equal. Replaced below by the
			// partial index on the other columns.
		case contains(idx.Columns, t.DeletedAt) || mentions(idx.Predicate, t.DeletedAt):
			a.add(section, OK, "indexes", fmt.Sprintf("index %s reads %s: it serves queries on deleted rows (purge), left whole", idx.Name, t.DeletedAt))
			continue
		}
		if idx.ConstraintType == "x" {
			a.exclusion(section, t, r, idx, table)
			continue
		}
		holds := "holds deleted rows too: re-inserting a deleted key fails, and the error's DETAIL shows the deleted row's key"
		if contains(idx.Columns, t.DeletedAt) {
			holds = fmt.Sprintf("has %s among its columns: live rows, whose %s is NULL, never conflict with each other, so it keeps no live key unique (live duplicates must go before its partial form can be built)", t.DeletedAt, t.DeletedAt)
		}
		newName := replacementName(idx.Name)
		create, err := partialIndex(idx.Def, newName, t.DeletedAt, idx.Tablespace, !idx.Partitioned)
		if err != nil {
			a.add(section, Warn, "indexes", fmt.Sprintf("index %s: %v", idx.Name, err))
			continue
		}
		newIdx := byName[newName]
		if idx.ConstraintType == "u" {
			is := a.add(section, Fail, "unique", fmt.Sprintf("unique constraint %s (%s) %s. Replace it with the partial unique index: %s",
				idx.Constraint, idx.ConstraintDef, holds, withoutConcurrently(create)))
			switch {
			case len(idx.ReferencedBy) > 0:
				is.Level = Warn
				is.cannot = fmt.Sprintf("foreign key(s) %s reference it, and a foreign key needs a unique constraint or a non-partial unique index on the columns it references; it stays as it is", strings.Join(idx.ReferencedBy, ", "))
			case idx.Deferrable:
				is.Level = Warn
				is.cannot = "it is DEFERRABLE, and a unique index cannot be; it stays as it is"
			case idx.Partitioned:
				is.step, is.cannot = a.partitioned(idx, r, create, Statement{SQL: "ALTER TABLE " + table + " DROP CONSTRAINT " + catalog.QuoteIdent(idx.Constraint)})
				if is.step != nil {
					is.step.Note = onConflictNote(idx, t) + "; ON CONFLICT ON CONSTRAINT " + idx.Constraint + " stops working, as the constraint becomes an index"
				}
			default:
				is.step = a.swap(idx, newIdx, r, create, []Statement{
					{SQL: "ALTER TABLE " + table + " DROP CONSTRAINT " + catalog.QuoteIdent(idx.Constraint)},
					{SQL: "ALTER INDEX " + catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(newName) + " RENAME TO " + catalog.QuoteIdent(idx.Name)},
					{SQL: "COMMENT ON INDEX " + catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(idx.Name) + " IS NULL"},
				}, "unique constraint "+idx.Constraint)
				is.step.Note = onConflictNote(idx, t) + "; ON CONFLICT ON CONSTRAINT " + idx.Constraint + " stops working, as the constraint becomes an index"
			}
			continue
		}
		if !idx.Unique && fkCols[leading(idx.Columns, fkCols)] != "" {
			a.add(section, OK, "indexes", fmt.Sprintf("index %s serves foreign key %s: PostgreSQL's own check of a removed parent row (purge) reads deleted rows too, so it is left whole", idx.Name, fkCols[leading(idx.Columns, fkCols)]))
			continue
		}
		whole++
		var is *issue
		if idx.Unique {
			is = a.add(section, Fail, "unique", fmt.Sprintf("unique index %s %s. Replace it with the partial unique index: %s", idx.Name, holds, withoutConcurrently(create)))
			if len(idx.ReferencedBy) > 0 {
				is.Level = Warn
				is.cannot = fmt.Sprintf("foreign key(s) %s use it, and a foreign key needs a non-partial unique index; it stays as it is", strings.Join(idx.ReferencedBy, ", "))
				continue
			}
		} else {
			is = a.add(section, Warn, "indexes", fmt.Sprintf("index %s is not partial: it holds deleted rows, which every live-row query through Tombstone skips. Partial form: %s", idx.Name, withoutConcurrently(create)))
		}
		if idx.Partitioned {
			is.step, is.cannot = a.partitioned(idx, r, create, Statement{SQL: "DROP INDEX " + catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(idx.Name)})
			if is.step != nil && idx.Unique {
				is.step.Note = onConflictNote(idx, t)
			}
			continue
		}
		is.step = a.swap(idx, newIdx, r, create, []Statement{
			{SQL: "DROP INDEX CONCURRENTLY IF EXISTS " + catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(idx.Name), Concurrently: true},
			{SQL: "ALTER INDEX " + catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(newName) + " RENAME TO " + catalog.QuoteIdent(idx.Name)},
			{SQL: "COMMENT ON INDEX " + catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(idx.Name) + " IS " + commentValue(idx.Comment)},
		}, "index "+idx.Name)
		if idx.Unique {
			is.step.Note = onConflictNote(idx, t)
		}
	}
	if partial > 0 && whole == 0 {
		a.add(section, OK, "indexes", fmt.Sprintf("%d partial index(es) on live rows (WHERE %s IS NULL)", partial, t.DeletedAt))
	}
}

// onConflictNote says what INSERT ... ON CONFLICT needs once idx is
// partial: PostgreSQL infers a partial unique index only from a conflict
// target that names its predicate, which the rewriter adds for the
// statements it sees.
func onConflictNote(idx *Index, t *policy.Table) string {
	var cols []string
	for _, c := range idx.Columns {
		if c != t.DeletedAt {
			cols = append(cols, c)
		}
	}
	return fmt.Sprintf("INSERT ... ON CONFLICT (%s) through Tombstone gets WHERE %s IS NULL added; clients that bypass it must write ON CONFLICT (%s) WHERE %s IS NULL, or PostgreSQL finds no index to match (42P10)",
		strings.Join(cols, ", "), t.DeletedAt, strings.Join(cols, ", "), t.DeletedAt)
}

// leading is the key of fkCols that idx's leading columns equal, "" for
// none.
func leading(cols []string, fkCols map[string]string) string {
	for k := range fkCols {
		n := len(strings.Split(k, "\x00"))
		if len(cols) >= n && strings.Join(cols[:n], "\x00") == k {
			return k
		}
	}
	return ""
}

func commentValue(c string) string {
	if c == "" {
		return "NULL"
	}
	return catalog.StringConstant(c)
}

// withoutConcurrently is a CREATE INDEX CONCURRENTLY as the report
// shows it: the index to have, not how to build it.
func withoutConcurrently(create string) string {
	return strings.Replace(create, " CONCURRENTLY", "", 1)
}

// partitioned is the step that replaces idx, an index of the
// partitioned table r, with its partial form, which PostgreSQL cannot
// build CONCURRENTLY on a partitioned table (a plain CREATE INDEX would
// lock writes on every partition for the whole build): the new index is
// created on the parent alone (ON ONLY, a change of the catalog), each
// partition's built CONCURRENTLY and attached to it, and once all are
// attached the old index (dropped by drop) and the new one swap names,
// the partitions' too, in one short transaction. An interrupted run is
// resumed: the built pieces are kept, an INVALID one is built again.
func (a *analysis) partitioned(idx *Index, r *Relation, create string, drop Statement) (*Step, string) {
	q := func(name string) string { return catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(name) }
	newName := replacementName(idx.Name)
	var stmts []Statement
	if !hasIndex(r, newName) {
		stmts = append(stmts, Statement{SQL: create})
	}
	then := []Statement{drop, {SQL: "ALTER INDEX " + q(newName) + " RENAME TO " + catalog.QuoteIdent(idx.Name)}}
	for _, rel := range a.f.Schema.Relations {
		if rel.Parent != r.OID {
			continue
		}
		part := a.f.Relations[rel.OID]
		if part == nil || rel.Partitioned {
			return nil, fmt.Sprintf("%s is on a partitioned table with a partition that is itself partitioned or not a soft-delete relation (%s.%s); build the partial index by hand: CREATE INDEX ... ON ONLY %s.%s ... WHERE (... IS NULL), CREATE INDEX CONCURRENTLY the same on each leaf partition and ALTER INDEX ... ATTACH PARTITION each one, then drop %s",
				idx.Name, rel.Schema, rel.Name, r.Schema, r.Name, idx.Name)
		}
		var old *Index
		for i := range part.Indexes {
			if part.Indexes[i].Parent == idx.Name {
				old = &part.Indexes[i]
			}
		}
		if old == nil {
			return nil, fmt.Sprintf("%s has no index on partition %s.%s (it is INVALID on the partitioned table); attach or build that partition's index first", idx.Name, rel.Schema, rel.Name)
		}
		pq := func(name string) string { return catalog.QuoteIdent(part.Schema) + "." + catalog.QuoteIdent(name) }
		partNew := replacementName(old.Name)
		built := indexNamed(part, partNew)
		if built != nil && !built.Valid {
			stmts = append(stmts, Statement{SQL: "DROP INDEX CONCURRENTLY IF EXISTS " + pq(partNew), Concurrently: true})
			built = nil
		}
		if built == nil {
			build, err := partialIndex(old.Def, partNew, a.deletedAt(rel.OID), old.Tablespace, true)
			if err != nil {
				return nil, fmt.Sprintf("the index %s of partition %s.%s: %v", old.Name, rel.Schema, rel.Name, err)
			}
			stmts = append(stmts, Statement{SQL: build, Concurrently: true})
		}
		if built == nil || built.Parent != newName {
			stmts = append(stmts, Statement{SQL: "ALTER INDEX " + q(newName) + " ATTACH PARTITION " + pq(partNew)})
		}
		then = append(then, Statement{SQL: "ALTER INDEX " + pq(partNew) + " RENAME TO " + catalog.QuoteIdent(old.Name)})
	}
	then = append(then, Statement{SQL: "COMMENT ON INDEX " + q(idx.Name) + " IS " + commentValue(idx.Comment)})
	return &Step{order: orderIndexes, Title: "build " + newName + " on " + r.Schema + "." + r.Name + " partition by partition (CONCURRENTLY on each), then swap it in for " + idx.Name,
		Statements: stmts, Then: then}, ""
}

func hasIndex(r *Relation, name string) bool { return indexNamed(r, name) != nil }

func indexNamed(r *Relation, name string) *Index {
	for i := range r.Indexes {
		if r.Indexes[i].Name == name {
			return &r.Indexes[i]
		}
	}
	return nil
}

// deletedAt is the deleted_at column of the soft-delete relation oid.
func (a *analysis) deletedAt(oid uint32) string {
	for _, t := range a.f.Policy.Tables() {
		if t.OID == oid {
			return t.DeletedAt
		}
	}
	return ""
}

// swap is the step that builds the replacement of idx (create, a CREATE
// INDEX CONCURRENTLY of newName) and swaps it in with then, resuming
// where an interrupted run stopped: an INVALID replacement (a build that
// did not finish) is dropped and built again; a valid one is kept.
func (a *analysis) swap(idx, newIdx *Index, r *Relation, create string, then []Statement, what string) *Step {
	newName := replacementName(idx.Name)
	qualNew := catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(newName)
	var stmts []Statement
	title := "build " + newName + " CONCURRENTLY, then swap it in for " + what
	switch {
	case newIdx != nil && !newIdx.Valid:
		title = "drop the INVALID " + newName + " an interrupted run left, build it again CONCURRENTLY, then swap it in for " + what
		stmts = append(stmts, Statement{SQL: "DROP INDEX CONCURRENTLY IF EXISTS " + qualNew, Concurrently: true})
		fallthrough
	case newIdx == nil:
		stmts = append(stmts,
			Statement{SQL: create, Concurrently: true},
			Statement{SQL: "COMMENT ON INDEX " + qualNew + " IS " + catalog.StringConstant(replaceMarker+idx.Name+"\n"+idx.Comment)})
	default:
		title = "swap the already built " + newName + " in for " + what
	}
	step := &Step{order: orderIndexes, Title: title, Statements: stmts}
	if idx.ConstraintType == "u" {
		// The constraint is dropped and the index renamed in one
		// transaction: no moment without the rule.
		step.Then = then
	} else {
		step.Statements = append(step.Statements, then...)
	}
	return step
}

func (a *analysis) exclusion(section string, t *policy.Table, r *Relation, idx *Index, table string) {
	newName := replacementName(idx.Constraint)
	add, err := partialExclusion(table, idx.ConstraintDef, newName, t.DeletedAt)
	if err != nil {
		a.add(section, Warn, "exclusion", fmt.Sprintf("exclusion constraint %s: %v", idx.Constraint, err))
		return
	}
	partialDef := strings.TrimPrefix(add, "ALTER TABLE "+table+" ADD CONSTRAINT "+catalog.QuoteIdent(newName)+" ")
	is := a.add(section, Fail, "exclusion", fmt.Sprintf("exclusion constraint %s (%s) holds deleted rows too: a new row conflicts with a deleted one, and the error's DETAIL shows the deleted row's values. Partial form: %s",
		idx.Constraint, idx.ConstraintDef, partialDef))
	is.step = &Step{order: orderExclusion, Title: "replace exclusion constraint " + idx.Constraint + " with its partial form", Transaction: true,
		Blocking: "ADD CONSTRAINT ... EXCLUDE builds its index under an ACCESS EXCLUSIVE lock on " + r.Schema + "." + r.Name + ", blocking its reads and writes for the whole build: PostgreSQL has no CONCURRENTLY or NOT VALID form for exclusion constraints",
		Statements: []Statement{
			{SQL: add},
			{SQL: "ALTER TABLE " + table + " DROP CONSTRAINT " + catalog.QuoteIdent(idx.Constraint)},
			{SQL: "ALTER TABLE " + table + " RENAME CONSTRAINT " + catalog.QuoteIdent(newName) + " TO " + catalog.QuoteIdent(idx.Constraint)},
		}}
}

func (a *analysis) foreignKeys(section string, r *Relation) {
	name := policy.RelName{Schema: r.Schema, Name: r.Name}
	for _, fk := range a.f.Policy.Dependents(r.Schema, r.Name) {
		if fk.Parent != name {
			continue
		}
		l, msg := fkBehaviour(fk)
		a.add(section, l, "foreign keys", msg)
	}
	for i := range a.f.Schema.ForeignKeys {
		fk := &a.f.Schema.ForeignKeys[i]
		if fk.Child != name {
			continue
		}
		parent, soft := a.f.Policy.Lookup(fk.Parent.Schema, fk.Parent.Name)
		switch {
		case soft && parent.DeletedAt != "":
			a.add(section, OK, "foreign keys", fmt.Sprintf("out: %s references soft-delete %s: a row that references a soft-deleted parent is refused (23503) by Tombstone's trigger, as if the parent were gone; a DELETE of the parent does what that table's section says", fkName(fk), fk.Parent))
		default:
			a.add(section, Note, "foreign keys", fmt.Sprintf("out: %s references plain %s (ON DELETE %s): PostgreSQL carries it out when a row of %s is really deleted", fkName(fk), fk.Parent, fk.OnDelete, fk.Parent))
		}
	}
}

func fkName(fk *policy.ForeignKey) string {
	if fk.Declared {
		return fmt.Sprintf("the declared cascade %s(%s)", fk.Child, strings.Join(fk.ChildCols, ", "))
	}
	return fmt.Sprintf("%s (%s(%s) -> %s(%s))", fk.Name, fk.Child, strings.Join(fk.ChildCols, ", "), fk.Parent, strings.Join(fk.ParentCols, ", "))
}

// fkBehaviour says what a DELETE of fk's parent through the proxy does
// with fk, as rewrite.foreignKeys carries it out.
func fkBehaviour(fk *policy.ForeignKey) (Level, string) {
	in := "in: " + fkName(fk) + " ON DELETE " + fk.OnDelete.String() + ": "
	child := "plain"
	if fk.ChildTable != nil {
		child = "soft-delete"
	}
	switch {
	case fk.ParentTable == nil && fk.OnDelete == policy.Cascade:
		return Warn, in + "the parent is a plain table, and its DELETE would remove this soft-delete child's rows for good (deleted ones too): Tombstone refuses it (0A000) while such rows exist"
	case fk.ParentTable == nil:
		return Note, in + "the parent is a plain table: PostgreSQL carries the action out on this soft-delete child, counting its deleted rows too"
	case fk.ChildTable != nil && fk.OnDelete == policy.Cascade:
		return OK, in + "soft cascade: the live rows of " + fk.Child.String() + " that reference a deleted row are soft-deleted in the same statement, with the same deleted_at, so they can be restored together"
	case fk.OnDelete == policy.Restrict || fk.OnDelete == policy.NoAction:
		what := "rows"
		if fk.ChildTable != nil {
			what = "live rows (soft-deleted ones do not count)"
		}
		return OK, in + "checked: the DELETE fails with 23503 and PostgreSQL's message while " + what + " of the " + child + " child " + fk.Child.String() + " reference the row"
	default:
		return Warn, in + "refused (0A000) while rows of the " + child + " child " + fk.Child.String() + " reference the row: carrying it out would change or remove them for good, which a restore cannot undo"
	}
}

func (a *analysis) deletedRows(section string, t *policy.Table) {
	if why, ok := a.f.Uncounted[t.OID]; ok {
		a.add(section, Warn, "deleted rows", "not counted: "+why)
		return
	}
	d, ok := a.f.Rows[t.OID]
	if !ok {
		return
	}
	msg := fmt.Sprintf("%d deleted row(s)", d.Deleted)
	if d.Deleted > 0 {
		msg += ", the oldest deleted " + days(d.Oldest) + " ago"
	}
	if t.Retention == 0 {
		a.add(section, Note, "deleted rows", msg+"; retention: never (tombstone purge keeps them)")
		return
	}
	msg += fmt.Sprintf("; retention %s: %d past it", days(t.Retention), d.PastRetention)
	if d.PastRetention > 0 {
		a.add(section, Warn, "deleted rows", msg+" (tombstone purge removes them)")
		return
	}
	a.add(section, OK, "deleted rows", msg)
}

func (a *analysis) interference(section string, t *policy.Table, r *Relation) {
	for _, g := range r.Triggers {
		if g.Clone || g.Enabled == "D" || strings.HasPrefix(g.Function, "tombstone.") {
			continue
		}
		when := "AFTER"
		if g.Type&triggerBefore != 0 {
			when = "BEFORE"
		}
		if g.Type&triggerDelete != 0 && g.Type&triggerInstead == 0 {
			a.add(section, Warn, "interference", fmt.Sprintf("%s DELETE trigger %s (%s) does not fire on a soft delete, which is an UPDATE; it fires on purge and privileged deletes. If it must run when a row is deleted, make it an UPDATE OF %s trigger with WHEN (OLD.%s IS NULL AND NEW.%s IS NOT NULL)",
				when, g.Name, g.Function, t.DeletedAt, t.DeletedAt, t.DeletedAt))
		}
		if g.Type&triggerUpdate != 0 {
			a.add(section, Note, "interference", fmt.Sprintf("%s UPDATE trigger %s (%s) fires on every soft delete and restore (both are UPDATEs of %s)", when, g.Name, g.Function, t.DeletedAt))
		}
	}
	for _, w := range r.Rules {
		kind := "ALSO"
		if w.Instead {
			kind = "INSTEAD"
		}
		switch w.Event {
		case "2":
			a.add(section, Fail, "interference", fmt.Sprintf("rule %s ON UPDATE DO %s runs on every soft delete (the proxy sends an UPDATE): it %s the soft delete, and the client's DELETE n no longer counts what happened; drop it, or make it leave changes of %s alone",
				w.Name, kind, map[bool]string{true: "replaces", false: "adds its commands to"}[w.Instead], t.DeletedAt))
		case "4":
			a.add(section, Warn, "interference", fmt.Sprintf("rule %s ON DELETE DO %s does not run on a soft delete (an UPDATE); it runs on purge and privileged deletes", w.Name, kind))
		}
	}
	if !r.RLS {
		return
	}
	for _, p := range r.Policies {
		if strings.HasPrefix(p.Comment, rlsMarker) {
			continue
		}
		if p.Command == "w" || p.Command == "*" {
			check := p.WithCheck
			if check == "" {
				check = p.Using
			}
			if mentions(check, t.DeletedAt) {
				a.add(section, Fail, "interference", fmt.Sprintf("row-level security policy %s checks the row an UPDATE writes with (%s), which reads %s: it may refuse the soft-delete UPDATE (42501); give it a WITH CHECK that allows %s to be set", p.Name, check, t.DeletedAt, t.DeletedAt))
			}
		}
		if (p.Command == "r" || p.Command == "*") && mentions(p.Using, t.DeletedAt) {
			if mentions(p.Using, "statement_timestamp", "now", "clock_timestamp", "transaction_timestamp", "current_timestamp") {
				a.add(section, Warn, "interference", fmt.Sprintf("row-level security policy %s filters SELECT with (%s), which reads %s and the clock: PostgreSQL also checks SELECT policies against the row an UPDATE writes, so it must let through rows the statement itself deletes (%s >= pg_catalog.statement_timestamp()), or a DELETE through the proxy fails with 42501", p.Name, p.Using, t.DeletedAt, t.DeletedAt))
				continue
			}
			a.add(section, Fail, "interference", fmt.Sprintf("row-level security policy %s filters SELECT with (%s): PostgreSQL also checks SELECT policies against the row an UPDATE writes when its WHERE reads the table, as the soft-delete UPDATE's does, so a DELETE through the proxy fails with 42501 \"new row violates row-level security policy\"; let the policy pass rows the statement itself deletes (OR %s >= pg_catalog.statement_timestamp()), as tombstone migrate --rls does", p.Name, p.Using, t.DeletedAt))
		}
	}
	var deletes, updates []string
	for _, p := range r.Policies {
		if p.Permissive && (p.Command == "d" || p.Command == "*") {
			deletes = append(deletes, p.Name)
		}
		if p.Permissive && (p.Command == "w" || p.Command == "*") {
			updates = append(updates, p.Name)
		}
	}
	if len(deletes) > 0 && len(updates) == 0 {
		a.add(section, Fail, "interference", fmt.Sprintf("row-level security lets rows be deleted (policy %s) but none be updated: through the proxy a DELETE is an UPDATE, which then changes no row; give UPDATE a policy with the same USING", strings.Join(deletes, ", ")))
	}
	if r.ForceRLS && len(a.f.Policy.Dependents(r.Schema, r.Name)) > 0 {
		a.add(section, Warn, "interference", "FORCE ROW LEVEL SECURITY applies the policies to the table's owner too, as whom Tombstone's foreign-key check triggers read it: a policy that hides deleted rows keeps them from seeing a soft-deleted parent")
	}
}

// days prints d in days, or hours when shorter than two days.
func days(d time.Duration) string {
	h := d.Hours()
	if h < 48 {
		return fmt.Sprintf("%.0fh", h)
	}
	return fmt.Sprintf("%.0fd", h/24)
}
