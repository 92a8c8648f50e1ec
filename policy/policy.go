package policy

import (
	"strings"

	"github.com/tombstone-proxy/tombstone/internal/config"
)

// Mode re-exports the configuration's enforce/shadow switch.
type Mode = config.Mode

// Table is one soft-delete table. A row is live while DeletedAt is NULL.
type Table struct {
	Schema    string // empty: the table name matches in any schema
	Name      string
	DeletedAt string
	DeletedBy string // empty: no audit column
}

// QualifiedName is schema.name, or name when the table matches any schema.
// It is the value of the table label in metrics.
func (t *Table) QualifiedName() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Policy is the immutable rule set the rewriter and the proxy consult.
type Policy struct {
	mode       Mode
	privileged map[string]struct{}
	memberOf   []string
	byName     map[string][]*Table // keyed by table name
	tables     []*Table
}

// New builds a Policy from a validated configuration.
func New(f *config.File) *Policy {
	p := &Policy{
		mode:       f.Mode,
		privileged: make(map[string]struct{}, len(f.PrivilegedRoles)),
		memberOf:   append([]string(nil), f.PrivilegedMemberOf...),
		byName:     make(map[string][]*Table, len(f.Tables)),
	}
	for _, r := range f.PrivilegedRoles {
		p.privileged[r] = struct{}{}
	}
	for _, ct := range f.Tables {
		t := &Table{Name: ct.Name, DeletedAt: ct.DeletedAt, DeletedBy: ct.DeletedBy}
		if i := strings.IndexByte(ct.Name, '.'); i >= 0 {
			t.Schema, t.Name = ct.Name[:i], ct.Name[i+1:]
		}
		p.tables = append(p.tables, t)
		p.byName[t.Name] = append(p.byName[t.Name], t)
	}
	return p
}

// Mode reports whether statements are rewritten (enforce) or only counted
// and logged (shadow).
func (p *Policy) Mode() Mode { return p.mode }

// Tables lists the configured soft-delete tables in configuration order.
// The slice must not be modified.
func (p *Policy) Tables() []*Table { return p.tables }

// Lookup finds the soft-delete table a reference names. schema is "" for an
// unqualified reference. An unqualified reference matches a configured table
// of that name in any schema, since the search_path decides which one it is
// and filtering a live table too much is safer than leaking deleted rows. A
// qualified reference matches a configured schema.table exactly, or an
// unqualified configured name.
func (p *Policy) Lookup(schema, name string) (*Table, bool) {
	for _, t := range p.byName[name] {
		if schema == "" || t.Schema == "" || t.Schema == schema {
			return t, true
		}
	}
	return nil, false
}

// TableNames returns the distinct configured table names (without schema),
// for the rewriter's text prefilter.
func (p *Policy) TableNames() []string {
	names := make([]string, 0, len(p.byName))
	for n := range p.byName {
		names = append(names, n)
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
func (p *Policy) PrivilegedMemberOf() []string { return p.memberOf }
