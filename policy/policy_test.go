package policy

import (
	"testing"

	"github.com/tombstone-proxy/tombstone/internal/config"
)

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	f, err := config.Parse([]byte(`
privileged_roles: [postgres, admin]
privileged_member_of: [bypass]
defaults: {deleted_by: removed_by}
tables:
  - name: contacts
  - name: billing.invoices
    deleted_at: voided_at
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return New(f)
}

func TestLookup(t *testing.T) {
	p := testPolicy(t)
	cases := []struct {
		schema, name string
		want         string // QualifiedName, "" for no match
	}{
		{"", "contacts", "contacts"},
		{"public", "contacts", "contacts"}, // unqualified config: any schema
		{"crm", "contacts", "contacts"},    // idem
		{"billing", "invoices", "billing.invoices"},
		{"", "invoices", "billing.invoices"}, // search_path may resolve to billing
		{"public", "invoices", ""},           // another schema's invoices
		{"", "Contacts", ""},                 // names are case-sensitive, as in the catalog
		{"", "orders", ""},
	}
	for _, c := range cases {
		tab, ok := p.Lookup(c.schema, c.name)
		got := ""
		if ok {
			got = tab.QualifiedName()
		}
		if got != c.want {
			t.Errorf("Lookup(%q, %q) = %q, want %q", c.schema, c.name, got, c.want)
		}
	}
	inv, _ := p.Lookup("billing", "invoices")
	if inv.DeletedAt != "voided_at" || inv.DeletedBy != "removed_by" {
		t.Errorf("invoices columns = %q, %q; want the table's deleted_at and the default deleted_by", inv.DeletedAt, inv.DeletedBy)
	}
}

func TestPrivileged(t *testing.T) {
	p := testPolicy(t)
	for role, want := range map[string]bool{"postgres": true, "admin": true, "app": false, "Admin": false, "": false} {
		if got := p.PrivilegedByName(role); got != want {
			t.Errorf("PrivilegedByName(%q) = %v, want %v", role, got, want)
		}
	}
	if got := p.PrivilegedMemberOf(); len(got) != 1 || got[0] != "bypass" {
		t.Errorf("PrivilegedMemberOf() = %v, want [bypass]", got)
	}
	if p.Mode() != config.ModeEnforce {
		t.Errorf("Mode() = %q, want the default enforce", p.Mode())
	}
}
