package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Mode says whether statements are rewritten (enforce) or only counted and
// logged (shadow).
type Mode string

const (
	ModeEnforce Mode = "enforce"
	ModeShadow  Mode = "shadow"
)

// Spec is what the configuration asks for, before any database is seen.
// Names are as PostgreSQL stores them: unquoted identifiers already
// folded to lower case (internal/server does that).
type Spec struct {
	Mode               Mode
	PrivilegedRoles    []string
	PrivilegedMemberOf []string
	Tables             []TableSpec
	// Audit names the audit log table (schema-qualified); the zero value
	// turns auditing off.
	Audit RelName
}

// TableSpec is one configured soft-delete table.
type TableSpec struct {
	Schema    string // empty: the name matches in any schema
	Name      string
	DeletedAt string
	DeletedBy string // empty: no such column
	// DeletedReason is the column a soft delete fills with its reason;
	// empty: no such column.
	DeletedReason string
	// AllowRestore lets non-privileged logins restore through the proxy
	// (UPDATE ... SET deleted_at = NULL).
	AllowRestore bool
	// Retention is how long tombstone purge keeps a deleted row; zero is
	// forever.
	Retention time.Duration
	// Cascade declares relationships that have no foreign-key
	// constraint: deleting a row of this table deletes the rows of
	// Table whose Column equals this row's primary key, as ON DELETE
	// CASCADE would.
	Cascade []CascadeSpec
}

// CascadeSpec is one declared relationship (see TableSpec.Cascade).
type CascadeSpec struct {
	Schema string // empty: the child's name matches in any schema
	Table  string
	Column string
}

// Table is one soft-delete relation: a configured table, or (once a
// catalog is applied) a partition or inheritance child of one, which is
// soft-delete under its own name too. A row is live while DeletedAt is
// NULL.
type Table struct {
	Schema        string // empty: the table name matches in any schema
	Name          string
	DeletedAt     string
	DeletedBy     string // empty: no such column
	DeletedReason string // empty: no such column
	AllowRestore  bool
	Retention     time.Duration

	// Configured is the table's name as the configuration gives it (the
	// root's, for a child): the value of the table label in metrics,
	// bounded by the configuration.
	Configured string

	// Known from the catalog; zero before one is applied.
	OID         uint32
	Partitioned bool   // relkind 'p': COPY ... TO refuses it, as the server does
	Inherited   bool   // has inheritance children (not partitions)
	Root        *Table // the configured table this one descends from; itself when configured
	// DeletedByType is the deleted_by column's type as format_type
	// prints it ("text", "uuid", "bigint", ...); empty when unknown.
	DeletedByType string
	// DeletedAtType is the deleted_at column's, likewise.
	DeletedAtType string
	// PrimaryKey lists the primary key's columns in key order; empty when
	// the table has none or no catalog is applied.
	PrimaryKey []string
	// KeyTypes are the PrimaryKey columns' types as format_type prints
	// them, in the same order.
	KeyTypes []string
}

// fromSpec is the table a spec entry configures, before a catalog says
// more about it.
func fromSpec(ts *TableSpec) *Table {
	return &Table{
		Schema: ts.Schema, Name: ts.Name,
		DeletedAt: ts.DeletedAt, DeletedBy: ts.DeletedBy, DeletedReason: ts.DeletedReason,
		AllowRestore: ts.AllowRestore, Retention: ts.Retention,
		Configured: specName(ts),
	}
}

// child is a partition or inheritance child of t's root, soft-delete with
// the root's settings under its own name.
func (t *Table) child(r *Relation) *Table {
	root := t.Root
	c := *root
	c.Schema, c.Name, c.OID, c.Partitioned, c.Inherited, c.Root = r.Schema, r.Name, r.OID, r.Partitioned, false, root
	c.DeletedByType, c.DeletedAtType, c.PrimaryKey, c.KeyTypes = columnType(r, root.DeletedBy), columnType(r, root.DeletedAt), r.PrimaryKey, keyTypes(r)
	return &c
}

// CoarseStamp reports that t's deleted_at rounds below microseconds
// (timestamp(0), as Laravel's softDeletes() makes it), so that two
// deletions in one second share a stamp and cannot be told apart.
func (t *Table) CoarseStamp() bool { return coarseStamp(t.DeletedAtType) }

// QualifiedName is schema.name, or name when the table matches any schema.
func (t *Table) QualifiedName() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Policy is the immutable rule set the rewriter and the proxy consult.
type Policy struct {
	spec       Spec
	privileged map[string]struct{}
	byName     map[string][]*Table // keyed by table name
	tables     []*Table
	// deps lists, by the parent's name, the foreign keys whose delete
	// rules involve a soft-delete table on either side.
	deps map[string][]*ForeignKey
	// refs lists the same foreign keys by the child's name.
	refs     map[string][]*ForeignKey
	helpers  bool
	problems []Problem
	schema   bool // a catalog was applied
}

// New builds the name-only Policy a spec describes: what applies before a
// database's catalog has been read. Its error says which declared cascade
// forms a cycle.
func New(spec Spec) (*Policy, error) {
	if err := cascadeCycle(spec.Tables); err != nil {
		return nil, err
	}
	p := newPolicy(spec)
	for i := range spec.Tables {
		ts := &spec.Tables[i]
		t := fromSpec(ts)
		t.Root = t
		p.add(t)
	}
	return p, nil
}

func newPolicy(spec Spec) *Policy {
	p := &Policy{
		spec:       spec,
		privileged: make(map[string]struct{}, len(spec.PrivilegedRoles)),
		byName:     make(map[string][]*Table, len(spec.Tables)),
		deps:       map[string][]*ForeignKey{},
		refs:       map[string][]*ForeignKey{},
	}
	for _, r := range spec.PrivilegedRoles {
		p.privileged[r] = struct{}{}
	}
	return p
}

func (p *Policy) add(t *Table) {
	p.tables = append(p.tables, t)
	p.byName[t.Name] = append(p.byName[t.Name], t)
}

// cascadeCycle rejects declared cascades that lead back to where they
// started: a delete would then chase itself.
func cascadeCycle(tables []TableSpec) error {
	edges := map[string][]string{}
	for _, t := range tables {
		for _, c := range t.Cascade {
			edges[t.Name] = append(edges[t.Name], c.Table)
		}
	}
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var path []string
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case visiting:
			return fmt.Errorf("tables: declared cascades form a cycle: %s -> %s; a delete would cascade back to the table it started from, so remove one of these cascade entries", strings.Join(path, " -> "), n)
		case done:
			return nil
		}
		state[n] = visiting
		path = append(path, n)
		for _, m := range edges[n] {
			if err := visit(m); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return nil
	}
	for _, t := range tables {
		if err := visit(t.Name); err != nil {
			return err
		}
	}
	return nil
}

// Mode reports whether statements are rewritten (enforce) or only counted
// and logged (shadow).
func (p *Policy) Mode() Mode { return p.spec.Mode }

// Spec is the spec this policy was built from.
func (p *Policy) Spec() Spec { return p.spec }

// Tables lists the soft-delete tables: configured ones in configuration
// order, then the children a catalog found. The slice must not be
// modified.
func (p *Policy) Tables() []*Table { return p.tables }

// Lookup finds the soft-delete table a reference names. schema is "" for an
// unqualified reference. An unqualified reference matches a soft-delete
// table of that name in any schema, since the search_path decides which
// one it is and filtering a live table too much is safer than leaking
// deleted rows. A qualified reference matches a table of that schema
// exactly, or a configured name without a schema.
func (p *Policy) Lookup(schema, name string) (*Table, bool) {
	for _, t := range p.byName[name] {
		if schema == "" || t.Schema == "" || t.Schema == schema {
			return t, true
		}
	}
	return nil, false
}

// Unique reports whether a reference can name only t: no other
// soft-delete table shares its name.
func (p *Policy) Unique(t *Table) bool { return len(p.byName[t.Name]) == 1 }

// Dependents lists the foreign keys whose parent a reference names (with
// Lookup's matching rules) and whose delete rule involves a soft-delete
// table: Tombstone must carry out or check each one when it rewrites a
// DELETE of that parent. Empty before a catalog is applied.
func (p *Policy) Dependents(schema, name string) []*ForeignKey {
	var out []*ForeignKey
	for _, fk := range p.deps[name] {
		if schema == "" || fk.Parent.Schema == "" || fk.Parent.Schema == schema {
			out = append(out, fk)
		}
	}
	return out
}

// References lists the foreign keys whose child a reference names (with
// Lookup's matching rules) and whose parent is a soft-delete table: a
// restore of the child's rows must find their parents live, or restored
// with them. Empty before a catalog is applied.
func (p *Policy) References(schema, name string) []*ForeignKey {
	var out []*ForeignKey
	for _, fk := range p.refs[name] {
		if fk.ParentTable != nil && (schema == "" || fk.Child.Schema == "" || fk.Child.Schema == schema) {
			out = append(out, fk)
		}
	}
	return out
}

// TableNames returns the distinct soft-delete table names (without
// schema), for the rewriter's text prefilter.
func (p *Policy) TableNames() []string {
	names := make([]string, 0, len(p.byName)+len(p.deps))
	for n := range p.byName {
		names = append(names, n)
	}
	// Writes to the audit log are refused: its name must reach the
	// parser.
	if a := p.spec.Audit; a.Name != "" {
		names = append(names, a.Name)
	}
	// A plain parent's DELETE must be checked too: its name must reach
	// the parser.
	for n := range p.deps {
		if _, ok := p.byName[n]; !ok {
			names = append(names, n)
		}
	}
	return names
}

// PrivilegedByName reports whether the login role is listed in
// privileged_roles.
func (p *Policy) PrivilegedByName(role string) bool {
	_, ok := p.privileged[role]
	return ok
}

// PrivilegedMemberOf lists the roles whose members (direct or inherited)
// are privileged. The proxy resolves membership once per connection.
func (p *Policy) PrivilegedMemberOf() []string { return p.spec.PrivilegedMemberOf }

// HasCatalog reports whether a database's catalog was applied.
func (p *Policy) HasCatalog() bool { return p.schema }

// Helpers reports whether the database holds Tombstone's helper functions
// (tombstone migrate installs them), which foreign-key checks call.
func (p *Policy) Helpers() bool { return p.helpers }

// Audit is the audit log table; the zero RelName when auditing is off.
func (p *Policy) Audit() RelName { return p.spec.Audit }

// Problems lists what applying the catalog found wrong: configured tables
// that do not exist or lack their columns.
func (p *Policy) Problems() []Problem { return p.problems }

// ErrNoSchema is returned by WithSchema for a nil schema.
var ErrNoSchema = errors.New("policy: no schema given")
