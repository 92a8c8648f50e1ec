package catalog_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
)

const treeSQL = `
CREATE TABLE events (id int, at date, deleted_at timestamptz, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY HASH (id);
CREATE TABLE events_2025_h0 PARTITION OF events_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE base (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE mid (extra text) INHERITS (base);
CREATE TABLE leaf (more text) INHERITS (mid);
CREATE TABLE grandparent (id int);
CREATE TABLE items (id int PRIMARY KEY, deleted_at timestamptz) INHERITS (grandparent);
CREATE TABLE unrelated (id int) PARTITION BY LIST (id);
`

func TestPartitionsAndInheritance(t *testing.T) {
	_, _, conn := setup(t, treeSQL)
	s := read(t, conn, spec("events", "base", "items"))
	if got, want := relNames(s), "public.base public.events public.events_2025 public.events_2025_h0 public.events_2025_h1 public.events_2026 public.items public.leaf public.mid"; got != want {
		t.Fatalf("relations\n got %s\nwant %s", got, want)
	}
	parents := map[string]string{
		"events": "", "events_2025": "events", "events_2025_h0": "events_2025", "events_2025_h1": "events_2025", "events_2026": "events",
		"base": "", "mid": "base", "leaf": "mid",
		"items": "", // its parent grandparent is not configured
	}
	partitioned := map[string]bool{"events": true, "events_2025": true}
	for name, parent := range parents {
		r := rel(t, s, "public."+name)
		var want uint32
		if parent != "" {
			want = oidOf(t, conn, parent)
		}
		if r.Parent != want {
			t.Errorf("%s: parent oid %d, want %d (%s)", name, r.Parent, want, parent)
		}
		if r.Partitioned != partitioned[name] {
			t.Errorf("%s: partitioned %v", name, r.Partitioned)
		}
	}
	if got := rel(t, s, "public.leaf").Columns; len(got) != 4 || got[3].Name != "more" {
		t.Errorf("leaf columns %+v", got)
	}
	if pk := rel(t, s, "public.events_2025_h0").PrimaryKey; !reflect.DeepEqual(pk, []string{"id", "at"}) {
		t.Errorf("partition primary key %v", pk)
	}

	// A configured child whose parent is configured too reports it.
	s = read(t, conn, spec("mid", "base"))
	if r := rel(t, s, "public.mid"); r.Parent != oidOf(t, conn, "base") {
		t.Errorf("mid with base configured: parent %d", r.Parent)
	}
	s = read(t, conn, spec("mid"))
	if got := relNames(s); got != "public.leaf public.mid" {
		t.Errorf("mid alone: %s", got)
	}
	if r := rel(t, s, "public.mid"); r.Parent != 0 {
		t.Errorf("mid alone: parent %d, want 0", r.Parent)
	}
	// The policy makes every descendant soft under its own name.
	p, err := policy.New(spec("events", "base"))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := p.WithSchema(read(t, conn, spec("events", "base")))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"events_2025_h1", "leaf"} {
		if tb, ok := p2.Lookup("public", n); !ok || tb.Root == tb {
			t.Errorf("%s is not a soft-delete descendant: %+v %v", n, tb, ok)
		}
	}
	if len(p2.Problems()) != 0 {
		t.Errorf("problems %+v", p2.Problems())
	}
}

const fkSQL = `
CREATE SCHEMA app;
CREATE TABLE app.parents (a int, b text, id int UNIQUE, deleted_at timestamptz, PRIMARY KEY (a, b));
CREATE TABLE ch_noaction (id int, pid int REFERENCES app.parents (id));
CREATE TABLE ch_restrict (id int, pid int REFERENCES app.parents (id) ON DELETE RESTRICT);
CREATE TABLE ch_cascade (id int, pid int, CONSTRAINT cc FOREIGN KEY (pid) REFERENCES app.parents (id) ON DELETE CASCADE DEFERRABLE);
CREATE TABLE ch_setnull (id int, pid int REFERENCES app.parents (id) ON DELETE SET NULL);
CREATE TABLE ch_setdefault (id int, pid int DEFAULT 0 REFERENCES app.parents (id) ON DELETE SET DEFAULT);
-- composite, columns in an order different from the table's
CREATE TABLE ch_composite (y text, x int, CONSTRAINT comp FOREIGN KEY (x, y) REFERENCES app.parents (a, b));
CREATE TABLE ch_swapped (p text, q int, CONSTRAINT swapped FOREIGN KEY (p, q) REFERENCES app.parents (b, a));
-- out of the configured table
CREATE TABLE owners (id int PRIMARY KEY);
ALTER TABLE app.parents ADD COLUMN owner_id int CONSTRAINT parent_owner REFERENCES owners (id);
-- onto and from a partitioned table
CREATE TABLE parted (id int PRIMARY KEY, deleted_at timestamptz) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200);
CREATE TABLE onto_parted (pid int CONSTRAINT onto REFERENCES parted (id));
CREATE TABLE pchild (pid int, n int, CONSTRAINT from_parted FOREIGN KEY (pid) REFERENCES owners (id)) PARTITION BY LIST (n);
CREATE TABLE pchild_1 PARTITION OF pchild FOR VALUES IN (1);
-- neither side of interest
CREATE TABLE x1 (id int PRIMARY KEY);
CREATE TABLE x2 (id int REFERENCES x1);
`

func TestForeignKeys(t *testing.T) {
	_, _, conn := setup(t, fkSQL)
	sp := spec("parents", "parted", "pchild")
	s := read(t, conn, sp)
	got := map[string]policy.ForeignKey{}
	for _, fk := range s.ForeignKeys {
		if _, dup := got[fk.Name]; dup {
			t.Errorf("constraint %s reported twice", fk.Name)
		}
		got[fk.Name] = fk
	}
	want := []policy.ForeignKey{
		{Name: "ch_noaction_pid_fkey", Child: rn("public", "ch_noaction"), ChildCols: []string{"pid"}, Parent: rn("app", "parents"), ParentCols: []string{"id"}, OnDelete: policy.NoAction},
		{Name: "ch_restrict_pid_fkey", Child: rn("public", "ch_restrict"), ChildCols: []string{"pid"}, Parent: rn("app", "parents"), ParentCols: []string{"id"}, OnDelete: policy.Restrict},
		{Name: "cc", Child: rn("public", "ch_cascade"), ChildCols: []string{"pid"}, Parent: rn("app", "parents"), ParentCols: []string{"id"}, OnDelete: policy.Cascade, Deferrable: true},
		{Name: "ch_setnull_pid_fkey", Child: rn("public", "ch_setnull"), ChildCols: []string{"pid"}, Parent: rn("app", "parents"), ParentCols: []string{"id"}, OnDelete: policy.SetNull},
		{Name: "ch_setdefault_pid_fkey", Child: rn("public", "ch_setdefault"), ChildCols: []string{"pid"}, Parent: rn("app", "parents"), ParentCols: []string{"id"}, OnDelete: policy.SetDefault},
		{Name: "comp", Child: rn("public", "ch_composite"), ChildCols: []string{"x", "y"}, Parent: rn("app", "parents"), ParentCols: []string{"a", "b"}, OnDelete: policy.NoAction},
		{Name: "swapped", Child: rn("public", "ch_swapped"), ChildCols: []string{"p", "q"}, Parent: rn("app", "parents"), ParentCols: []string{"b", "a"}, OnDelete: policy.NoAction},
		{Name: "parent_owner", Child: rn("app", "parents"), ChildCols: []string{"owner_id"}, Parent: rn("public", "owners"), ParentCols: []string{"id"}, OnDelete: policy.NoAction},
		{Name: "onto", Child: rn("public", "onto_parted"), ChildCols: []string{"pid"}, Parent: rn("public", "parted"), ParentCols: []string{"id"}, OnDelete: policy.NoAction},
		{Name: "from_parted", Child: rn("public", "pchild"), ChildCols: []string{"pid"}, Parent: rn("public", "owners"), ParentCols: []string{"id"}, OnDelete: policy.NoAction},
	}
	for _, w := range want {
		if g, ok := got[w.Name]; !ok {
			t.Errorf("constraint %s missing", w.Name)
		} else if !reflect.DeepEqual(g, w) {
			t.Errorf("constraint %s:\n got %+v\nwant %+v", w.Name, g, w)
		}
		delete(got, w.Name)
	}
	for name, fk := range got {
		t.Errorf("unexpected constraint %s: %+v", name, fk)
	}
	// The policy sees the children of the soft-delete parent.
	p, _ := policy.New(sp)
	p2, err := p.WithSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p2.Dependents("app", "parents")); n != 7 {
		t.Errorf("Dependents(app.parents): %d, want 7", n)
	}
}

// Tables named in declared cascades are read too, with their foreign keys.
func TestDeclaredCascadeTables(t *testing.T) {
	_, _, conn := setup(t, `
CREATE TABLE contacts (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, contact_id int, deleted_at timestamptz);
CREATE TABLE lines (order_id int REFERENCES orders);`)
	sp := spec("contacts")
	sp.Tables[0].Cascade = []policy.CascadeSpec{{Table: "orders", Column: "contact_id"}}
	s := read(t, conn, sp)
	if got := relNames(s); got != "public.contacts public.orders" {
		t.Errorf("relations %s", got)
	}
	if len(s.ForeignKeys) != 1 || s.ForeignKeys[0].Name != "lines_order_id_fkey" {
		t.Errorf("foreign keys %+v", s.ForeignKeys)
	}
}

// The application controls its session's search_path: operators,
// functions and types of its own schema must change nothing.
func TestHostileSearchPath(t *testing.T) {
	_, _, conn := setup(t, treeSQL+fkSQL+`
CREATE SCHEMA evil;
CREATE FUNCTION evil.oideq(oid, oid) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.oideq);
CREATE FUNCTION evil.nameeq(name, name) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.nameeq);
CREATE FUNCTION evil.chareq("char", "char") RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil.= (LEFTARG = "char", RIGHTARG = "char", FUNCTION = evil.chareq);
CREATE FUNCTION evil.int2gt(int2, int4) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil.> (LEFTARG = int2, RIGHTARG = int4, FUNCTION = evil.int2gt);
CREATE FUNCTION evil.json_build_object(VARIADIC "any") RETURNS json LANGUAGE internal AS 'json_build_object_noargs';
CREATE FUNCTION evil.json_agg(anyelement) RETURNS json LANGUAGE sql AS $$SELECT '[]'::json$$;
CREATE FUNCTION evil.format_type(oid, integer) RETURNS text LANGUAGE sql AS $$SELECT 'evil'$$;
CREATE FUNCTION evil.unnest(int2[]) RETURNS SETOF int2 LANGUAGE sql AS $$SELECT 1::int2 WHERE false$$;
CREATE TABLE evil.pg_class (oid oid, relname name, relkind "char", relnamespace oid);
CREATE TYPE evil.text AS (x int);
CREATE TABLE evil.rels (oid oid);`)
	sp := spec("events", "base", "items", "parents", "parted", "pchild")
	sp.PrivilegedRoles = []string{"it's", `back\slash`, "ünï"}
	want := read(t, conn, sp)
	for _, set := range []string{
		"SET search_path = evil, pg_catalog",
		"SET search_path = evil, pg_catalog, public; SET standard_conforming_strings = off",
		"SET search_path = evil; SET standard_conforming_strings = on",
	} {
		if _, err := conn.Exec(context.Background(), set); err != nil {
			t.Fatal(err)
		}
		got := read(t, conn, sp)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("after %s the catalog reads differently:\n%s", set, diffSchemas(got, want))
		}
	}
	if len(want.Relations) < 10 || len(want.ForeignKeys) < 10 {
		t.Errorf("too little was read: %s", relNames(want))
	}
}

func TestHelpersByOwner(t *testing.T) {
	pg, db, conn := setup(t, `
CREATE ROLE app LOGIN PASSWORD 'app';
CREATE ROLE admins NOLOGIN;
CREATE ROLE ops NOLOGIN;
GRANT admins TO ops;
CREATE ROLE owner_role NOLOGIN;`)
	exec := func(sql string) {
		t.Helper()
		pgtest.Exec(t, pg, db, sql)
	}
	helpers := func(sp policy.Spec) bool {
		t.Helper()
		return read(t, conn, sp).Helpers
	}
	if helpers(policy.Spec{}) {
		t.Fatal("helpers reported before any are installed")
	}
	for _, stmt := range catalog.Plan(policy.Spec{}, &policy.Schema{}) {
		exec(stmt)
	}
	if !helpers(policy.Spec{}) {
		t.Fatal("helpers installed by the superuser are not reported")
	}
	// Owned by a plain role: not trusted, unless configured as privileged
	// by name or by membership.
	exec(`ALTER FUNCTION tombstone.fail(text, text, text, text) OWNER TO ops`)
	if helpers(policy.Spec{}) {
		t.Error("a function owned by a plain role is trusted")
	}
	if !helpers(policy.Spec{PrivilegedRoles: []string{"ops"}}) {
		t.Error("a function owned by a privileged role is not trusted")
	}
	if !helpers(policy.Spec{PrivilegedMemberOf: []string{"admins"}}) {
		t.Error("a function owned by a member of privileged_member_of is not trusted")
	}
	exec(`ALTER FUNCTION tombstone.fail(text, text, text, text) OWNER TO postgres; ALTER SCHEMA tombstone OWNER TO app`)
	if helpers(policy.Spec{PrivilegedRoles: []string{"ops"}}) {
		t.Error("a schema the application owns is trusted")
	}
	exec(`ALTER SCHEMA tombstone OWNER TO postgres; DROP FUNCTION tombstone.fail(text, text, text, text);
CREATE FUNCTION tombstone.fail(text, text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'`)
	if helpers(policy.Spec{}) {
		t.Error("a fail function of another signature counts")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{``, "decode"},
		{`{"relations":[],"foreign_keys":[]}`, `no "helpers"`},
		{`{"relations":[],"foreign_keys":[],"helpers":false,"x":1}`, "unknown field"},
		{`{"relations":[],"foreign_keys":[],"helpers":false} {}`, "more than one"},
		{`{"relations":[{"oid":0,"schema":"s","name":"n"}],"foreign_keys":[],"helpers":false}`, "lacks its oid"},
		{`{"relations":[{"oid":5,"schema":"s","name":"n","parent":6}],"foreign_keys":[],"helpers":false}`, "parent oid 6"},
		{`{"relations":[],"foreign_keys":[{"name":"f","child_schema":"s","child_table":"c","child_columns":["a"],"parent_schema":"s","parent_table":"p","parent_columns":["a"],"on_delete":"x"}],"helpers":false}`, `unknown ON DELETE action "x"`},
		{`{"relations":[],"foreign_keys":[{"name":"f","child_schema":"s","child_table":"c","child_columns":["a","b"],"parent_schema":"s","parent_table":"p","parent_columns":["a"],"on_delete":"a"}],"helpers":false}`, "2 referencing and 1 referenced"},
	} {
		_, err := catalog.Decode(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%s): %v, want an error containing %q", c.in, err, c.want)
		}
	}
}

func TestLiteral(t *testing.T) {
	_, _, conn := setup(t, "")
	ctx := context.Background()
	for _, scs := range []string{"on", "off"} {
		if _, err := conn.Exec(ctx, "SET standard_conforming_strings = "+scs); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"", "plain", "it's", `back\slash`, `\'`, "ünïcødé", "tab\there", "x'; DROP TABLE y; --"} {
			var got string
			if err := conn.QueryRow(ctx, "SELECT "+catalog.Literal(s), pgxSimple).Scan(&got); err != nil || got != s {
				t.Errorf("standard_conforming_strings %s: %s read back as %q, %v", scs, catalog.Literal(s), got, err)
			}
		}
	}
}

const pgxSimple = pgx.QueryExecModeExec

func rn(schema, name string) policy.RelName { return policy.RelName{Schema: schema, Name: name} }

// diffSchemas names the relations and foreign keys that differ.
func diffSchemas(got, want *policy.Schema) string {
	var b strings.Builder
	if got.Helpers != want.Helpers {
		fmt.Fprintf(&b, "helpers %v, want %v\n", got.Helpers, want.Helpers)
	}
	if len(got.Relations) != len(want.Relations) || len(got.ForeignKeys) != len(want.ForeignKeys) {
		fmt.Fprintf(&b, "%d relations and %d foreign keys, want %d and %d\n", len(got.Relations), len(got.ForeignKeys), len(want.Relations), len(want.ForeignKeys))
		return b.String()
	}
	for i := range got.Relations {
		if !reflect.DeepEqual(got.Relations[i], want.Relations[i]) {
			fmt.Fprintf(&b, "got  %+v\nwant %+v\n", got.Relations[i], want.Relations[i])
		}
	}
	for i := range got.ForeignKeys {
		if !reflect.DeepEqual(got.ForeignKeys[i], want.ForeignKeys[i]) {
			fmt.Fprintf(&b, "got  %+v\nwant %+v\n", got.ForeignKeys[i], want.ForeignKeys[i])
		}
	}
	return b.String()
}
