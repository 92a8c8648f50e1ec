package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func testSpec() Spec {
	return Spec{
		Mode:               ModeEnforce,
		PrivilegedRoles:    []string{"postgres", "admin"},
		PrivilegedMemberOf: []string{"bypass"},
		Tables: []TableSpec{
			{Name: "contacts", DeletedAt: "deleted_at", DeletedBy: "removed_by"},
			{Schema: "billing", Name: "invoices", DeletedAt: "voided_at", DeletedBy: "removed_by"},
		},
	}
}

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := New(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	return p
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
	if inv.DeletedAt != "voided_at" || inv.DeletedBy != "removed_by" || inv.Root != inv || inv.OID != 0 {
		t.Errorf("invoices = %+v; want its own columns, itself as root and no OID before a catalog", inv)
	}
	if p.HasCatalog() || len(p.Problems()) != 0 || len(p.Dependents("", "contacts")) != 0 {
		t.Errorf("a name-only policy has a catalog, problems or dependents")
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
	if p.Mode() != ModeEnforce {
		t.Errorf("Mode() = %q, want enforce", p.Mode())
	}
}

func TestCascadeCycleIsRejected(t *testing.T) {
	table := func(name string, children ...string) TableSpec {
		ts := TableSpec{Name: name, DeletedAt: "deleted_at"}
		for _, c := range children {
			ts.Cascade = append(ts.Cascade, CascadeSpec{Table: c, Column: name + "_id"})
		}
		return ts
	}
	for _, c := range []struct {
		name   string
		tables []TableSpec
		cycle  string // "" for none
	}{
		{"chain", []TableSpec{table("a", "b"), table("b", "c"), table("c")}, ""},
		{"diamond", []TableSpec{table("a", "b", "c"), table("b", "d"), table("c", "d"), table("d")}, ""},
		{"child not configured", []TableSpec{table("a", "plain")}, ""},
		{"two tables", []TableSpec{table("a", "b"), table("b", "a")}, "a -> b -> a"},
		{"three tables", []TableSpec{table("a", "b"), table("b", "c"), table("c", "a")}, "a -> b -> c -> a"},
		{"self", []TableSpec{table("tree", "tree")}, "tree -> tree"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(Spec{Tables: c.tables})
			switch {
			case c.cycle == "" && err != nil:
				t.Fatalf("New: %v", err)
			case c.cycle != "" && (err == nil || !strings.Contains(err.Error(), c.cycle) || !strings.Contains(err.Error(), "remove one of these cascade entries")):
				t.Fatalf("New = %v, %v; want an error naming %s and what to do", p, err, c.cycle)
			}
		})
	}
}

// events is partitioned (events_2024, itself partitioned into
// events_2024_q1), contacts has an inheritance child, orders references
// contacts, billing.invoices is configured but absent.
func testSchema() *Schema {
	cols := func(names ...string) []Column {
		var out []Column
		for _, n := range names {
			out = append(out, Column{Name: n, Type: "text"})
		}
		return out
	}
	return &Schema{
		Relations: []Relation{
			{OID: 10, Schema: "public", Name: "contacts", Columns: cols("id", "deleted_at", "removed_by"), PrimaryKey: []string{"id"}},
			{OID: 11, Schema: "public", Name: "vip_contacts", Parent: 10, Columns: cols("id", "deleted_at", "removed_by")},
			{OID: 20, Schema: "public", Name: "events", Partitioned: true, Columns: cols("id", "gone_at"), PrimaryKey: []string{"id", "at"}},
			{OID: 21, Schema: "public", Name: "events_2024", Partitioned: true, Parent: 20, Columns: cols("id", "gone_at")},
			{OID: 22, Schema: "public", Name: "events_2024_q1", Parent: 21, Columns: cols("id", "gone_at")},
			{OID: 30, Schema: "public", Name: "orders", Columns: cols("id", "contact_id"), PrimaryKey: []string{"id"}},
			{OID: 40, Schema: "public", Name: "notes", Columns: cols("id", "contact_id")},
		},
		ForeignKeys: []ForeignKey{
			{Name: "orders_contact_fk", Child: RelName{"public", "orders"}, ChildCols: []string{"contact_id"}, Parent: RelName{"public", "contacts"}, ParentCols: []string{"id"}, OnDelete: Cascade},
			{Name: "notes_orders_fk", Child: RelName{"public", "notes"}, ChildCols: []string{"order_id"}, Parent: RelName{"public", "orders"}, ParentCols: []string{"id"}, OnDelete: Restrict},
		},
		Helpers: true,
	}
}

func schemaPolicy(t *testing.T, tables ...TableSpec) *Policy {
	t.Helper()
	p, err := New(Spec{Mode: ModeEnforce, Tables: tables})
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.WithSchema(testSchema())
	if err != nil {
		t.Fatal(err)
	}
	if !q.HasCatalog() || !q.Helpers() || p.HasCatalog() {
		t.Fatalf("WithSchema: HasCatalog %v, Helpers %v; the name-only policy changed: %v", q.HasCatalog(), q.Helpers(), p.HasCatalog())
	}
	return q
}

func TestWithSchemaMakesChildrenSoftUnderTheirOwnNames(t *testing.T) {
	p := schemaPolicy(t,
		TableSpec{Name: "contacts", DeletedAt: "deleted_at", DeletedBy: "removed_by"},
		TableSpec{Name: "events", DeletedAt: "gone_at"})
	for _, c := range []struct {
		name, root, deletedAt string
		oid                   uint32
		partitioned           bool
	}{
		{"contacts", "contacts", "deleted_at", 10, false},
		{"vip_contacts", "contacts", "deleted_at", 11, false},
		{"events", "events", "gone_at", 20, true},
		{"events_2024", "events", "gone_at", 21, true},
		{"events_2024_q1", "events", "gone_at", 22, false},
	} {
		tab, ok := p.Lookup("public", c.name)
		if !ok {
			t.Errorf("Lookup(public, %s): not soft-delete", c.name)
			continue
		}
		if tab.Root.Name != c.root || tab.DeletedAt != c.deletedAt || tab.OID != c.oid || tab.Partitioned != c.partitioned || tab.Schema != "public" {
			t.Errorf("%s = %+v (root %s), want root %s, deleted_at %s, OID %d, partitioned %v", c.name, tab, tab.Root.Name, c.root, c.deletedAt, c.oid, c.partitioned)
		}
	}
	if vip, _ := p.Lookup("", "vip_contacts"); vip.DeletedBy != "removed_by" {
		t.Errorf("a child's deleted_by = %q, want its root's", vip.DeletedBy)
	}
	if _, ok := p.Lookup("", "orders"); ok {
		t.Error("orders is soft-delete, but only contacts' children are")
	}
	names := p.TableNames()
	for _, want := range []string{"contacts", "vip_contacts", "events", "events_2024", "events_2024_q1"} {
		if !slices.Contains(names, want) {
			t.Errorf("TableNames() = %v lacks %s: the prefilter would skip it", names, want)
		}
	}
	if len(p.Problems()) != 0 {
		t.Errorf("Problems() = %v, want none", p.Problems())
	}
}

func TestWithSchemaReportsProblems(t *testing.T) {
	p := schemaPolicy(t,
		TableSpec{Name: "contacts", DeletedAt: "removed_at"},
		TableSpec{Name: "orders", DeletedAt: "deleted_at", DeletedBy: "deleted_by"},
		TableSpec{Schema: "billing", Name: "invoices", DeletedAt: "deleted_at"})
	probs := p.Problems()
	want := []struct{ table, text string }{
		{"contacts", `no column "removed_at" (deleted_at)`},
		{"orders", `no column "deleted_at" (deleted_at)`},
		{"orders", `no column "deleted_by" (deleted_by)`},
		{"billing.invoices", "does not exist in this database; it is still enforced by name"},
	}
	if len(probs) != len(want) {
		t.Fatalf("Problems() = %+v, want %d", probs, len(want))
	}
	for i, w := range want {
		if probs[i].Table != w.table || !strings.Contains(probs[i].Message, w.text) {
			t.Errorf("problem %d = %+v, want table %s and %q", i, probs[i], w.table, w.text)
		}
	}
	// A missing table stays enforced by name, so creating it later is
	// covered at once.
	if tab, ok := p.Lookup("billing", "invoices"); !ok || tab.OID != 0 {
		t.Errorf("Lookup(billing, invoices) = %+v, %v; want the name-only table", tab, ok)
	}
}

func TestDependents(t *testing.T) {
	p := schemaPolicy(t,
		TableSpec{Name: "contacts", DeletedAt: "deleted_at"},
		TableSpec{Name: "orders", DeletedAt: "contact_id"}) // any column: the test needs no problems
	deps := p.Dependents("", "contacts")
	if len(deps) != 1 || deps[0].Name != "orders_contact_fk" || deps[0].ChildTable == nil || deps[0].ChildTable.Name != "orders" ||
		deps[0].ParentTable == nil || deps[0].ParentTable.Name != "contacts" || deps[0].OnDelete != Cascade || deps[0].Declared {
		t.Fatalf("Dependents(contacts) = %+v, want orders_contact_fk with both sides soft-delete", deps)
	}
	if got := p.Dependents("other", "contacts"); len(got) != 0 {
		t.Errorf("Dependents(other.contacts) = %+v, want none: the parent is public.contacts", got)
	}
	// notes (plain) references orders (soft-delete): a delete of orders
	// must check it.
	deps = p.Dependents("public", "orders")
	if len(deps) != 1 || deps[0].ChildTable != nil || deps[0].ParentTable == nil || deps[0].OnDelete != Restrict {
		t.Fatalf("Dependents(orders) = %+v, want notes_orders_fk with a plain child", deps)
	}
	// Only contacts soft-delete: orders is a plain parent of a plain
	// child, so that key is none of Tombstone's business.
	q := schemaPolicy(t, TableSpec{Name: "contacts", DeletedAt: "deleted_at"})
	if got := q.Dependents("", "orders"); len(got) != 0 {
		t.Errorf("Dependents(orders) with two plain sides = %+v, want none", got)
	}
}

// A plain parent whose delete would cascade into a soft-delete child must
// reach the parser: its name is among the prefilter's.
func TestPlainParentNameReachesThePrefilter(t *testing.T) {
	p := schemaPolicy(t, TableSpec{Name: "orders", DeletedAt: "contact_id"})
	if got := p.Dependents("", "contacts"); len(got) != 1 || got[0].ParentTable != nil || got[0].ChildTable == nil {
		t.Fatalf("Dependents(contacts) = %+v, want the key into soft-delete orders", got)
	}
	if !slices.Contains(p.TableNames(), "contacts") {
		t.Errorf("TableNames() = %v lacks the plain parent contacts", p.TableNames())
	}
}

func TestDeclaredCascadeBecomesAForeignKey(t *testing.T) {
	p := schemaPolicy(t,
		TableSpec{Name: "contacts", DeletedAt: "deleted_at", Cascade: []CascadeSpec{{Table: "notes", Column: "contact_id"}}},
		TableSpec{Name: "events", DeletedAt: "gone_at", Cascade: []CascadeSpec{{Schema: "public", Table: "notes", Column: "event_id"}}})
	var declared *ForeignKey
	for _, fk := range p.Dependents("public", "contacts") {
		if fk.Declared {
			declared = fk
		}
	}
	if declared == nil {
		t.Fatalf("Dependents(contacts) = %+v, want a declared cascade", p.Dependents("public", "contacts"))
	}
	if declared.OnDelete != Cascade || declared.Child != (RelName{"public", "notes"}) || !slices.Equal(declared.ChildCols, []string{"contact_id"}) ||
		declared.Parent != (RelName{"public", "contacts"}) || !slices.Equal(declared.ParentCols, []string{"id"}) || declared.ParentTable == nil {
		t.Errorf("declared cascade = %+v, want public.notes.contact_id (resolved in the catalog) -> public.contacts(id) ON DELETE CASCADE", declared)
	}
	// events has a two-column primary key: the declared cascade cannot
	// say which column it holds, and that is a problem, not a guess.
	for _, fk := range p.Dependents("", "events") {
		if fk.Declared {
			t.Errorf("a declared cascade from a two-column key was kept: %+v", fk)
		}
	}
	probs := p.Problems()
	if len(probs) != 1 || probs[0].Table != "events" || !strings.Contains(probs[0].Message, "one-column primary key") {
		t.Errorf("Problems() = %+v, want the events key problem", probs)
	}
}

func TestWithSchemaNil(t *testing.T) {
	if _, err := testPolicy(t).WithSchema(nil); !errors.Is(err, ErrNoSchema) {
		t.Errorf("WithSchema(nil) = %v, want ErrNoSchema", err)
	}
}

// A foreign key onto a partitioned table covers its partitions, so a
// DELETE naming a partition (or a sub-partition) must carry it out; one
// onto an inheritance parent does not cover the child, as in PostgreSQL.
func TestPartitionsCarryTheirParentsForeignKeys(t *testing.T) {
	s := testSchema()
	s.ForeignKeys = append(s.ForeignKeys, ForeignKey{Name: "notes_events_fk", Child: RelName{"public", "notes"}, ChildCols: []string{"event_id"}, Parent: RelName{"public", "events"}, ParentCols: []string{"id"}, OnDelete: Restrict})
	p, err := New(Spec{Mode: ModeEnforce, Tables: []TableSpec{{Name: "contacts", DeletedAt: "deleted_at"}, {Name: "events", DeletedAt: "gone_at"}}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.WithSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"events", "events_2024", "events_2024_q1"} {
		deps := q.Dependents("public", name)
		if len(deps) != 1 || deps[0].Name != "notes_events_fk" || deps[0].Parent.Name != name || deps[0].ParentTable == nil || deps[0].ParentTable.Name != name {
			t.Errorf("Dependents(%s) = %+v, want notes_events_fk with %s as its parent", name, deps, name)
		}
	}
	if got := q.Dependents("public", "vip_contacts"); len(got) != 0 {
		t.Errorf("Dependents(vip_contacts) = %+v, want none: an inheritance child is not covered by its parent's keys", got)
	}
}

// A deleted_at that rounds below microseconds cannot tell deletions
// apart: it is a problem, with the ALTER that fixes it.
func TestCoarseStampIsAProblem(t *testing.T) {
	base, err := New(Spec{Tables: []TableSpec{{Name: "posts", DeletedAt: "deleted_at"}, {Name: "tags", DeletedAt: "deleted_at"}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := base.WithSchema(&Schema{Relations: []Relation{
		{OID: 1, Schema: "public", Name: "posts", Columns: []Column{{Name: "deleted_at", Type: "timestamp(0) without time zone"}}},
		{OID: 2, Schema: "public", Name: "tags", Columns: []Column{{Name: "deleted_at", Type: "timestamp with time zone"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	probs := p.Problems()
	if len(probs) != 1 || probs[0].Table != "posts" || !strings.Contains(probs[0].Message, `ALTER TABLE public.posts ALTER COLUMN "deleted_at" TYPE timestamp without time zone`) {
		t.Errorf("problems %+v, want one for posts with the ALTER", probs)
	}
}
