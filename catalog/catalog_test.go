package catalog_test

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// setup makes a fresh database holding sql and returns a superuser
// connection to it.
func setup(t *testing.T, sql string) (*pgtest.Server, string, *pgx.Conn) {
	t.Helper()
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	if sql != "" {
		pgtest.Exec(t, pg, db, sql)
	}
	return pg, db, connect(t, pg.DSN(db))
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func read(t *testing.T, conn *pgx.Conn, spec policy.Spec) *policy.Schema {
	t.Helper()
	s, err := catalog.Read(context.Background(), conn, spec)
	if err != nil {
		t.Fatalf("Read: %v\nquery:\n%s", err, catalog.Query(spec))
	}
	return s
}

func spec(names ...string) policy.Spec {
	var s policy.Spec
	for _, n := range names {
		s.Tables = append(s.Tables, policy.TableSpec{Name: n, DeletedAt: "deleted_at"})
	}
	return s
}

// rel finds a relation by schema.name.
func rel(t *testing.T, s *policy.Schema, qname string) policy.Relation {
	t.Helper()
	for _, r := range s.Relations {
		if r.Schema+"."+r.Name == qname {
			return r
		}
	}
	t.Fatalf("no relation %s in %s", qname, relNames(s))
	return policy.Relation{}
}

func relNames(s *policy.Schema) string {
	var names []string
	for _, r := range s.Relations {
		names = append(names, r.Schema+"."+r.Name)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func oidOf(t *testing.T, conn *pgx.Conn, qname string) uint32 {
	t.Helper()
	var oid uint32
	if err := conn.QueryRow(context.Background(), "SELECT $1::regclass::oid", qname).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	return oid
}

func TestEmpty(t *testing.T) {
	_, _, conn := setup(t, "")
	for _, sp := range []policy.Spec{{}, spec("missing"), {Tables: []policy.TableSpec{{Name: "missing", Cascade: []policy.CascadeSpec{{Table: "absent", Column: "x"}}}}}} {
		s := read(t, conn, sp)
		if len(s.Relations) != 0 || len(s.ForeignKeys) != 0 || s.Helpers {
			t.Errorf("spec %+v: got %+v, want an empty schema", sp, s)
		}
	}
}

func TestTwoSchemasColumnsAndKeys(t *testing.T) {
	_, _, conn := setup(t, `
CREATE SCHEMA crm;
CREATE TABLE public.contacts (id int PRIMARY KEY, name text, deleted_at timestamptz);
CREATE TABLE crm.contacts (region int, id bigint, dropped int, note varchar(20), deleted_at timestamp, PRIMARY KEY (id, region));
ALTER TABLE crm.contacts DROP COLUMN dropped;
CREATE TABLE other (id int);
CREATE TABLE "Contacts" (id int);
CREATE VIEW crm.contacts_view AS SELECT 1 AS x;
CREATE TABLE nokey (deleted_at timestamptz);`)
	s := read(t, conn, spec("contacts", "nokey"))
	if got := relNames(s); got != "crm.contacts public.contacts public.nokey" {
		t.Fatalf("relations %s", got)
	}
	pub := rel(t, s, "public.contacts")
	want := policy.Relation{OID: oidOf(t, conn, "public.contacts"), Schema: "public", Name: "contacts",
		Columns:    []policy.Column{{Name: "id", Type: "integer"}, {Name: "name", Type: "text"}, {Name: "deleted_at", Type: "timestamp with time zone"}},
		PrimaryKey: []string{"id"}}
	if !reflect.DeepEqual(pub, want) {
		t.Errorf("public.contacts:\n got %+v\nwant %+v", pub, want)
	}
	crm := rel(t, s, "crm.contacts")
	want = policy.Relation{OID: oidOf(t, conn, "crm.contacts"), Schema: "crm", Name: "contacts",
		Columns:    []policy.Column{{Name: "region", Type: "integer"}, {Name: "id", Type: "bigint"}, {Name: "note", Type: "character varying(20)"}, {Name: "deleted_at", Type: "timestamp without time zone"}},
		PrimaryKey: []string{"id", "region"}}
	if !reflect.DeepEqual(crm, want) {
		t.Errorf("crm.contacts:\n got %+v\nwant %+v", crm, want)
	}
	if nk := rel(t, s, "public.nokey"); len(nk.PrimaryKey) != 0 || len(nk.Columns) != 1 {
		t.Errorf("nokey: %+v", nk)
	}
}
