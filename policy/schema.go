package policy

import (
	"fmt"
	"strings"
)

// Schema is what a database's catalog says about the configured tables:
// plain data, read by package catalog, so that policy stays free of SQL.
type Schema struct {
	Relations   []Relation
	ForeignKeys []ForeignKey // constraints only; declared cascades come from the Spec
	// Helpers: Tombstone's helper functions (schema tombstone) are
	// installed and owned by a role the application cannot be.
	Helpers bool
}

// Relation is one table of the catalog.
type Relation struct {
	OID         uint32
	Schema      string
	Name        string
	Partitioned bool
	// Parent is the OID of the table this one inherits from or is a
	// partition of, 0 for none.
	Parent     uint32
	Columns    []Column
	PrimaryKey []string // column names, in key order; empty for none
}

// Column is one column of a Relation.
type Column struct {
	Name string
	Type string // format_type, e.g. "timestamp with time zone"
}

// RelName names a table by schema and name.
type RelName struct {
	Schema string
	Name   string
}

// String is the quoted-when-needed qualified name, for messages.
func (r RelName) String() string {
	if r.Schema == "" {
		return r.Name
	}
	return r.Schema + "." + r.Name
}

// Action is a foreign key's ON DELETE action, as pg_constraint spells it.
type Action byte

const (
	NoAction   Action = 'a'
	Restrict   Action = 'r'
	Cascade    Action = 'c'
	SetNull    Action = 'n'
	SetDefault Action = 'd'
)

func (a Action) String() string {
	switch a {
	case NoAction:
		return "NO ACTION"
	case Restrict:
		return "RESTRICT"
	case Cascade:
		return "CASCADE"
	case SetNull:
		return "SET NULL"
	case SetDefault:
		return "SET DEFAULT"
	}
	return fmt.Sprintf("action %q", byte(a))
}

// ForeignKey is one reference from Child's ChildCols to Parent's
// ParentCols.
type ForeignKey struct {
	Name       string // the constraint's name; empty for a declared cascade
	Child      RelName
	ChildCols  []string
	Parent     RelName
	ParentCols []string
	OnDelete   Action
	Deferrable bool
	Declared   bool // from the configuration's cascade key, not a constraint

	// Set by WithSchema: the soft-delete tables on each side, nil for a
	// plain table.
	ChildTable  *Table
	ParentTable *Table
}

// Problem is one thing wrong between the configuration and a database.
type Problem struct {
	Table   string // the configured name
	Message string
}

// WithSchema builds the policy for one database: the spec's tables
// resolved in its catalog, each partition and inheritance child of a
// configured table made soft-delete under its own name, and the foreign
// keys that touch them. A configured table the catalog lacks, or one
// without its deleted_at column, is kept by name (it stays enforced, so a
// table created later is covered at once) and reported in Problems.
func (p *Policy) WithSchema(s *Schema) (*Policy, error) {
	if s == nil {
		return nil, ErrNoSchema
	}
	q := newPolicy(p.spec)
	q.schema = true
	q.helpers = s.Helpers
	byOID := make(map[uint32]*Relation, len(s.Relations))
	kids := map[uint32][]*Relation{}
	for i := range s.Relations {
		r := &s.Relations[i]
		byOID[r.OID] = r
		if r.Parent != 0 {
			kids[r.Parent] = append(kids[r.Parent], r)
		}
	}
	seen := map[uint32]bool{}
	for i := range p.spec.Tables {
		ts := &p.spec.Tables[i]
		found := false
		for j := range s.Relations {
			r := &s.Relations[j]
			if r.Name != ts.Name || (ts.Schema != "" && r.Schema != ts.Schema) || seen[r.OID] {
				continue
			}
			found = true
			if !hasColumn(r, ts.DeletedAt) {
				q.problems = append(q.problems, Problem{Table: specName(ts), Message: fmt.Sprintf("table %s has no column %q (deleted_at); add it, or set deleted_at for this table to the column it has", r.Schema+"."+r.Name, ts.DeletedAt)})
			}
			if typ := columnType(r, ts.DeletedAt); coarseStamp(typ) {
				q.problems = append(q.problems, Problem{Table: specName(ts), Message: fmt.Sprintf("column %s.%q is %s: deletions in the same second (or tenth, ...) share a deleted_at stamp, and a restore with --cascade brings back the children of all of them; make it microsecond-precise: ALTER TABLE %s ALTER COLUMN %q TYPE %s", r.Schema+"."+r.Name, ts.DeletedAt, typ, r.Schema+"."+r.Name, ts.DeletedAt, strings.Replace(typ, typ[strings.IndexByte(typ, '('):strings.IndexByte(typ, ')')+1], "", 1))})
			}
			if ts.DeletedBy != "" && !hasColumn(r, ts.DeletedBy) {
				q.problems = append(q.problems, Problem{Table: specName(ts), Message: fmt.Sprintf("table %s has no column %q (deleted_by); add it, or remove deleted_by for this table", r.Schema+"."+r.Name, ts.DeletedBy)})
			}
			if ts.DeletedReason != "" && !hasColumn(r, ts.DeletedReason) {
				q.problems = append(q.problems, Problem{Table: specName(ts), Message: fmt.Sprintf("table %s has no column %q (deleted_reason); add it, or remove deleted_reason for this table", r.Schema+"."+r.Name, ts.DeletedReason)})
			}
			root := fromSpec(ts)
			root.OID, root.Partitioned = r.OID, r.Partitioned
			root.DeletedByType, root.DeletedAtType, root.PrimaryKey, root.KeyTypes = columnType(r, ts.DeletedBy), columnType(r, ts.DeletedAt), r.PrimaryKey, keyTypes(r)
			if ts.Schema == "" {
				// Several schemas may hold the name; each is its own
				// entry so that Dependents and children resolve by schema.
				root.Schema = r.Schema
			}
			root.Root = root
			seen[r.OID] = true
			q.add(root)
			q.addChildren(root, r.OID, kids, seen)
		}
		if !found {
			q.problems = append(q.problems, Problem{Table: specName(ts), Message: fmt.Sprintf("configured table %s does not exist in this database; it is still enforced by name", specName(ts))})
			t := fromSpec(ts)
			t.Root = t
			q.add(t)
		}
	}
	for i := range s.ForeignKeys {
		fk := s.ForeignKeys[i]
		q.addDependent(&fk)
	}
	q.partitionDependents(byOID)
	for i := range p.spec.Tables {
		ts := &p.spec.Tables[i]
		for _, c := range ts.Cascade {
			// The child is written schema-qualified in the rewrite, so the
			// client's search_path (or a temporary table of the same name)
			// cannot choose which table the cascade changes.
			child := RelName{Schema: c.Schema, Name: c.Table}
			var found []string
			for j := range s.Relations {
				if r := &s.Relations[j]; r.Name == c.Table && (c.Schema == "" || r.Schema == c.Schema) {
					found = append(found, r.Schema)
				}
			}
			if len(found) != 1 {
				q.problems = append(q.problems, Problem{Table: specName(ts), Message: fmt.Sprintf("declared cascade to %s: %d tables of that name in this database; it is not carried out until exactly one is (qualify it with its schema)", child, len(found))})
				continue
			}
			child.Schema = found[0]
			for _, parent := range q.byName[ts.Name] {
				if parent.OID == 0 || parent.Root != parent || (ts.Schema != "" && parent.Schema != ts.Schema) {
					continue
				}
				pk := byOID[parent.OID].PrimaryKey
				if len(pk) != 1 {
					q.problems = append(q.problems, Problem{Table: specName(ts), Message: fmt.Sprintf("declared cascade to %s.%s needs %s to have a one-column primary key; it has %d key columns", c.Table, c.Column, parent.QualifiedName(), len(pk))})
					continue
				}
				q.addDependent(&ForeignKey{
					Child:      child,
					ChildCols:  []string{c.Column},
					Parent:     RelName{Schema: parent.Schema, Name: parent.Name},
					ParentCols: pk,
					OnDelete:   Cascade,
					Declared:   true,
				})
			}
		}
	}
	return q, nil
}

func (q *Policy) addChildren(parent *Table, oid uint32, kids map[uint32][]*Relation, seen map[uint32]bool) {
	for _, k := range kids[oid] {
		if seen[k.OID] {
			continue
		}
		seen[k.OID] = true
		parent.Inherited = parent.Inherited || !parent.Partitioned
		t := parent.child(k)
		q.add(t)
		q.addChildren(t, k.OID, kids, seen)
	}
}

// partitionDependents gives each partition the foreign keys onto its
// partitioned parent: such a key covers the partitions, so a DELETE that
// names a partition must carry it out too. (An inheritance child is not
// covered by its parent's keys, as in PostgreSQL.) Parents come before
// their children in q.tables, so keys onto a grandparent reach the
// leaves.
func (q *Policy) partitionDependents(byOID map[uint32]*Relation) {
	for _, t := range q.tables {
		r := byOID[t.OID]
		if t.OID == 0 || r == nil || r.Parent == 0 || t.Root == t {
			continue
		}
		parent := byOID[r.Parent]
		if parent == nil || !parent.Partitioned {
			continue
		}
		for _, fk := range q.Dependents(parent.Schema, parent.Name) {
			if fk.Parent.Schema != "" && fk.Parent.Schema != parent.Schema {
				continue
			}
			c := *fk
			c.Parent = RelName{Schema: t.Schema, Name: t.Name}
			c.ParentTable = t
			// Not in refs: the key onto the partitioned parent checks
			// a restored child already.
			q.deps[t.Name] = append(q.deps[t.Name], &c)
		}
	}
}

// addDependent records fk when a soft-delete table is on either side.
func (q *Policy) addDependent(fk *ForeignKey) {
	fk.ChildTable, _ = q.Lookup(fk.Child.Schema, fk.Child.Name)
	fk.ParentTable, _ = q.Lookup(fk.Parent.Schema, fk.Parent.Name)
	if fk.ChildTable == nil && fk.ParentTable == nil {
		return
	}
	q.deps[fk.Parent.Name] = append(q.deps[fk.Parent.Name], fk)
	q.refs[fk.Child.Name] = append(q.refs[fk.Child.Name], fk)
}

// coarseStamp reports a timestamp type with fewer than six fractional
// digits, such as Laravel's timestamp(0): a stamp that rounds can no
// longer tell one deletion from the next.
func coarseStamp(typ string) bool {
	if !strings.HasPrefix(typ, "timestamp(") {
		return false
	}
	return !strings.HasPrefix(typ, "timestamp(6)")
}

func hasColumn(r *Relation, name string) bool { return columnType(r, name) != "" }

// columnType is the type of r's column name, "" when r has no such column.
func columnType(r *Relation, name string) string {
	for _, c := range r.Columns {
		if c.Name == name && name != "" {
			return c.Type
		}
	}
	return ""
}

// keyTypes are the types of r's primary key columns, in key order.
func keyTypes(r *Relation) []string {
	types := make([]string, len(r.PrimaryKey))
	for i, c := range r.PrimaryKey {
		types[i] = columnType(r, c)
	}
	return types
}

func specName(ts *TableSpec) string {
	if ts.Schema == "" {
		return ts.Name
	}
	return ts.Schema + "." + ts.Name
}
