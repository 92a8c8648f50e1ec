package schematool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/policy"
)

// Facts is what Inspect read from one database: the catalog read the
// proxy does (Schema, and the Policy resolved in it) and what only the
// schema tools need.
type Facts struct {
	Spec   policy.Spec
	Schema *policy.Schema
	Policy *policy.Policy

	// Privileged lists the roles of privileged_roles and
	// privileged_member_of that exist in the database.
	Privileged []string
	// User is the role Inspect ran as, and Trusted whether it is a
	// superuser or a privileged role.
	User    string
	Trusted bool
	// Marker is the comment on schema tombstone: migrate writes the hash
	// of the helpers it installed there. Empty when there is none.
	Marker string
	// MissingTriggers are the check triggers catalog.Plan would create
	// that the database lacks.
	MissingTriggers []catalog.CheckTrigger
	// Audit is the audit table's columns, nil when it does not exist.
	Audit []string
	// AuditClosed lists what PUBLIC lacks to write the audit table: the
	// writer's columns it cannot INSERT, and "schema" without USAGE on
	// its schema.
	AuditClosed []string

	// Relations holds every soft-delete relation the catalog resolved
	// (configured tables and their descendants), by OID.
	Relations map[uint32]*Relation
	// Rows counts the deleted rows of each configured table, by OID;
	// Uncounted says why a table could not be counted.
	Rows      map[uint32]DeletedRows
	Uncounted map[uint32]string
	// Views is the active_<table> view of each configured table that
	// has one, by the table's OID.
	Views map[uint32]View
	// Grants lists the privileges the application roles lack.
	Grants []Grant
}

// Relation is what the schema tools know of one soft-delete relation
// beyond the catalog read.
type Relation struct {
	OID          uint32
	Schema, Name string
	Kind         string // pg_class.relkind: r or p
	Owner        string
	// OwnerTrusted: the owner is a superuser or a privileged role.
	OwnerTrusted  bool
	RLS, ForceRLS bool
	Indexes       []Index
	Triggers      []Trigger
	Rules         []Rule
	Policies      []RLSPolicy
	// DeleteGrantees are the roles granted DELETE on the relation
	// directly, "public" for PUBLIC, less its owner and privileged roles:
	// the application roles whose DELETE the proxy turns into an UPDATE.
	DeleteGrantees []string `json:"delete_grantees"`
}

// Index is one index of a relation, and the constraint it backs if any.
type Index struct {
	Name        string
	Unique      bool
	Valid       bool
	Partitioned bool // an index of a partitioned table (relkind I)
	// Parent is the partitioned index this partition's index is
	// attached to, empty for none.
	Parent string
	Def    string
	// Tablespace is the index's own tablespace, empty for the
	// database's default; pg_get_indexdef leaves it out.
	Tablespace string
	Predicate  string   // pg_get_expr of indpred; empty when not partial
	Columns    []string // key columns; "" for an expression
	Comment    string
	// Constraint is the constraint the index backs, empty for none, and
	// ConstraintType its contype (p, u or x).
	Constraint     string
	ConstraintType string `json:"constraint_type"`
	ConstraintDef  string `json:"constraint_def"`
	Deferrable     bool
	// ReferencedBy lists the foreign keys that use the index.
	ReferencedBy []string `json:"referenced_by"`
}

// Trigger is one user trigger (internal ones, such as foreign keys', are
// left out).
type Trigger struct {
	Name     string
	Type     int    // pg_trigger.tgtype
	Function string // schema.name
	Enabled  string // pg_trigger.tgenabled: D is disabled
	Clone    bool   // cloned from a partitioned parent's trigger
}

// Trigger type bits (pg_trigger.h).
const (
	triggerBefore  = 1 << 1
	triggerDelete  = 1 << 3
	triggerUpdate  = 1 << 4
	triggerInstead = 1 << 6
)

// Rule is one rewrite rule.
type Rule struct {
	Name    string
	Event   string // pg_rewrite.ev_type: 1 SELECT, 2 UPDATE, 3 INSERT, 4 DELETE
	Instead bool
}

// RLSPolicy is one row-level security policy.
type RLSPolicy struct {
	Name       string
	Command    string // pg_policy.polcmd: r, a, w, d or *
	Permissive bool
	Roles      []string
	Using      string
	WithCheck  string `json:"with_check"`
	Comment    string
}

// DeletedRows counts one table's soft-deleted rows.
type DeletedRows struct {
	Deleted int64
	// Oldest is how long ago the oldest deleted row was deleted.
	Oldest time.Duration
	// PastRetention counts the rows deleted longer ago than the table's
	// retention; zero when retention is never.
	PastRetention int64
}

// View is an existing relation named like a table's active_<table> view.
type View struct {
	Name    string
	IsView  bool
	Comment string
}

// Grant is a privilege an application role lacks.
type Grant struct {
	Role      string
	Table     policy.RelName
	Privilege string // UPDATE or SELECT
	Columns   []string
	// For is the table whose DELETE needs it; Why says how, for the
	// report.
	For policy.RelName
	Why string
}

// Inspect reads the facts on conn, a direct connection as a privileged
// role: schema is the catalog.Read of spec on it, and p the policy
// resolved in schema. appRoles are roles to check besides the direct
// DELETE grantees of each table; one that does not exist is an error.
func Inspect(ctx context.Context, conn *pgx.Conn, spec policy.Spec, schema *policy.Schema, p *policy.Policy, appRoles []string) (*Facts, error) {
	for _, role := range appRoles {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1::pg_catalog.text)", role).Scan(&exists); err != nil {
			return nil, fmt.Errorf("schematool: look up role %q: %w", role, err)
		}
		if !exists {
			return nil, fmt.Errorf("application role %q (--app-role) does not exist in this database; name a role as PostgreSQL stores it (lower case unless created quoted)", role)
		}
	}
	f := &Facts{Spec: spec, Schema: schema, Policy: p, Relations: map[uint32]*Relation{}, Rows: map[uint32]DeletedRows{}, Uncounted: map[uint32]string{}, Views: map[uint32]View{}}
	var oids []uint32
	for _, t := range p.Tables() {
		if t.OID != 0 {
			oids = append(oids, t.OID)
		}
	}
	var doc struct {
		Privileged []string    `json:"privileged"`
		User       string      `json:"user"`
		Trusted    bool        `json:"trusted"`
		Marker     *string     `json:"marker"`
		Audit      []string    `json:"audit"`
		Closed     []string    `json:"audit_closed"`
		Relations  []*Relation `json:"relations"`
	}
	var value string
	err := conn.QueryRow(ctx, factsQuery, oids, nonNil(spec.PrivilegedRoles), nonNil(spec.PrivilegedMemberOf), spec.Audit.Schema, spec.Audit.Name, catalog.AuditColumns).Scan(&value)
	if err != nil {
		return nil, fmt.Errorf("schematool: read the catalog: %w", err)
	}
	if err := json.Unmarshal([]byte(value), &doc); err != nil {
		return nil, fmt.Errorf("schematool: decode the catalog's answer: %w", err)
	}
	f.Privileged, f.Audit, f.AuditClosed = doc.Privileged, doc.Audit, doc.Closed
	f.User, f.Trusted = doc.User, doc.Trusted
	if doc.Marker != nil {
		f.Marker = *doc.Marker
	}
	for _, r := range doc.Relations {
		f.Relations[r.OID] = r
	}
	if err := f.readTriggers(ctx, conn); err != nil {
		return nil, err
	}
	for _, t := range p.Tables() {
		if t.OID == 0 || t.Root != t || f.Relations[t.OID] == nil {
			continue
		}
		if err := f.readRows(ctx, conn, t); err != nil {
			return nil, err
		}
		if err := f.readView(ctx, conn, t); err != nil {
			return nil, err
		}
	}
	if err := f.readGrants(ctx, conn, appRoles); err != nil {
		return nil, err
	}
	return f, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// readTriggers finds the check triggers catalog.Plan creates that are
// missing.
func (f *Facts) readTriggers(ctx context.Context, conn *pgx.Conn) error {
	want := catalog.CheckTriggers(f.Spec, f.Schema)
	var schemas, tables, names []string
	for _, c := range want {
		schemas, tables, names = append(schemas, c.Table.Schema), append(tables, c.Table.Name), append(names, c.Name)
	}
	rows, err := conn.Query(ctx, `SELECT w.n::pg_catalog.int4
FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.text[])) WITH ORDINALITY AS w(s, r, t, n)
WHERE NOT EXISTS (
  SELECT FROM pg_catalog.pg_trigger g
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  WHERE n.nspname OPERATOR(pg_catalog.=) w.s AND c.relname OPERATOR(pg_catalog.=) w.r AND g.tgname OPERATOR(pg_catalog.=) w.t)
ORDER BY w.n`, schemas, tables, names)
	if err != nil {
		return fmt.Errorf("schematool: look for Tombstone's triggers: %w", err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("schematool: look for Tombstone's triggers: %w", err)
	}
	for _, n := range missing {
		f.MissingTriggers = append(f.MissingTriggers, want[n-1])
	}
	return nil
}

// readRows counts t's deleted rows (its partitions' and children's
// included). It reads the whole table, as a count does.
func (f *Facts) readRows(ctx context.Context, conn *pgx.Conn, t *policy.Table) error {
	if !timestampType(columnType(f.Schema, t.OID, t.DeletedAt)) {
		return nil
	}
	col := catalog.QuoteIdent(t.DeletedAt)
	q := fmt.Sprintf(`SELECT pg_catalog.count(*), COALESCE(pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.min(%[1]s)::pg_catalog.timestamptz), 0)::pg_catalog.float8,
  pg_catalog.count(*) FILTER (WHERE ($1::pg_catalog.float8 OPERATOR(pg_catalog.>) 0) AND %[1]s::pg_catalog.timestamptz OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $1::pg_catalog.float8)))
FROM %[2]s WHERE %[1]s IS NOT NULL`, col, qualified(policy.RelName{Schema: t.Schema, Name: t.Name}))
	var d DeletedRows
	var oldest float64
	if err := conn.QueryRow(ctx, q, t.Retention.Seconds()).Scan(&d.Deleted, &oldest, &d.PastRetention); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			// Checking as a role that may not read the table: the rest
			// of the report still holds.
			f.Uncounted[t.OID] = pe.Message
			return nil
		}
		return fmt.Errorf("schematool: count the deleted rows of %s: %w", t.QualifiedName(), err)
	}
	d.Oldest = time.Duration(oldest * float64(time.Second))
	f.Rows[t.OID] = d
	return nil
}

// readView looks for the relation active_<table> in t's schema.
func (f *Facts) readView(ctx context.Context, conn *pgx.Conn, t *policy.Table) error {
	name := ViewName(t.Name)
	var v View
	err := conn.QueryRow(ctx, `SELECT c.relkind OPERATOR(pg_catalog.=) 'v', COALESCE(pg_catalog.obj_description(c.oid, 'pg_class'), '')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.text AND c.relname OPERATOR(pg_catalog.=) $2::pg_catalog.text`, t.Schema, name).Scan(&v.IsView, &v.Comment)
	switch {
	case err == pgx.ErrNoRows:
		return nil
	case err != nil:
		return fmt.Errorf("schematool: look for view %s.%s: %w", t.Schema, name, err)
	}
	v.Name = name
	f.Views[t.OID] = v
	return nil
}

// ViewName is the name of the active_<table> view of table name.
func ViewName(name string) string { return catalog.BoundedName("active_"+name, name) }

// need is one privilege check: role must hold priv on col of table.
type need struct {
	role            string
	table, forTable policy.RelName
	priv, col       string
	why             string
}

// readGrants checks that every application role of a soft-delete table
// can run what the proxy sends for its DELETE: the UPDATE of the
// soft-delete columns, the soft cascade into each CASCADE child (an
// UPDATE of the child's columns, reading its key), and the check of
// each RESTRICT or NO ACTION child (reading its key).
func (f *Facts) readGrants(ctx context.Context, conn *pgx.Conn, appRoles []string) error {
	var needs []need
	for _, t := range f.Policy.Tables() {
		r := f.Relations[t.OID]
		if r == nil {
			continue
		}
		roles := append([]string(nil), r.DeleteGrantees...)
		for _, a := range appRoles {
			if !contains(roles, a) {
				roles = append(roles, a)
			}
		}
		name := policy.RelName{Schema: r.Schema, Name: r.Name}
		for _, role := range roles {
			for _, c := range f.softColumns(t) {
				needs = append(needs, need{role, name, name, "UPDATE", c, "a DELETE of " + name.String() + " becomes an UPDATE of them"})
			}
			for _, fk := range f.Policy.Dependents(r.Schema, r.Name) {
				if fk.ParentTable == nil {
					continue
				}
				why := "a DELETE of " + name.String() + " checks it through " + fkName(fk)
				if fk.ChildTable != nil && fk.OnDelete == policy.Cascade {
					why = "a DELETE of " + name.String() + " soft-deletes its rows through " + fkName(fk)
					for _, c := range f.softColumns(fk.ChildTable) {
						needs = append(needs, need{role, fk.Child, name, "UPDATE", c, why})
					}
				}
				cols := append([]string(nil), fk.ChildCols...)
				if fk.ChildTable != nil {
					cols = append(cols, fk.ChildTable.DeletedAt)
				}
				for _, c := range cols {
					needs = append(needs, need{role, fk.Child, name, "SELECT", c, why})
				}
			}
		}
	}
	if len(needs) == 0 {
		return nil
	}
	var roles, schemas, tables, privs, cols, forSchemas, forTables []string
	for _, n := range needs {
		roles, schemas, tables = append(roles, n.role), append(schemas, n.table.Schema), append(tables, n.table.Name)
		privs, cols = append(privs, n.priv), append(cols, n.col)
		forSchemas, forTables = append(forSchemas, n.forTable.Schema), append(forTables, n.forTable.Name)
	}
	// A role or table that is gone is skipped, not an error; a column
	// that does not exist yet is judged by the table-level privilege it
	// will get when migrate adds it. Only a role that may DELETE from
	// the table needs anything: granting more to one that may not would
	// let it delete (softly) through the proxy what it cannot delete
	// directly.
	rows, err := conn.Query(ctx, `SELECT w.n::pg_catalog.int4
FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.text[]),
  pg_catalog.unnest($4::pg_catalog.text[]), pg_catalog.unnest($5::pg_catalog.text[]),
  pg_catalog.unnest($6::pg_catalog.text[]), pg_catalog.unnest($7::pg_catalog.text[])) WITH ORDINALITY AS w(role, s, t, priv, col, fs, ft, n)
JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) w.s
JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid AND c.relname OPERATOR(pg_catalog.=) w.t
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname OPERATOR(pg_catalog.=) w.col AND NOT a.attisdropped
WHERE (w.role OPERATOR(pg_catalog.=) 'public' OR EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) w.role))
  AND pg_catalog.has_table_privilege(w.role, (SELECT fc.oid FROM pg_catalog.pg_class fc
    JOIN pg_catalog.pg_namespace fn ON fn.oid OPERATOR(pg_catalog.=) fc.relnamespace
    WHERE fn.nspname OPERATOR(pg_catalog.=) w.fs AND fc.relname OPERATOR(pg_catalog.=) w.ft), 'DELETE')
  AND NOT CASE WHEN a.attnum IS NULL THEN pg_catalog.has_table_privilege(w.role, c.oid, w.priv)
    ELSE pg_catalog.has_column_privilege(w.role, c.oid, a.attnum, w.priv) END
ORDER BY w.n`, roles, schemas, tables, privs, cols, forSchemas, forTables)
	if err != nil {
		return fmt.Errorf("schematool: check the application roles' privileges: %w", err)
	}
	lacking, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("schematool: check the application roles' privileges: %w", err)
	}
	// One Grant per role, table, privilege and reason, its columns in order.
	index := map[string]int{}
	for _, i := range lacking {
		n := needs[i-1]
		key := n.role + "\x00" + n.table.String() + "\x00" + n.forTable.String() + "\x00" + n.priv + "\x00" + n.why
		if j, ok := index[key]; ok {
			if !contains(f.Grants[j].Columns, n.col) {
				f.Grants[j].Columns = append(f.Grants[j].Columns, n.col)
			}
			continue
		}
		index[key] = len(f.Grants)
		f.Grants = append(f.Grants, Grant{Role: n.role, Table: n.table, Privilege: n.priv, Columns: []string{n.col}, For: n.forTable, Why: n.why})
	}
	return nil
}

// softColumns are the columns a soft delete of t writes. One that does
// not exist yet (migrate adds it) is checked as the table-level privilege
// a new column would inherit.
func (f *Facts) softColumns(t *policy.Table) []string {
	var out []string
	for _, c := range []string{t.DeletedAt, t.DeletedBy, t.DeletedReason} {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// columnType is the type of column col of the relation oid, "" when
// there is none.
func columnType(s *policy.Schema, oid uint32, col string) string {
	if s == nil || oid == 0 {
		return ""
	}
	for _, r := range s.Relations {
		if r.OID != oid {
			continue
		}
		for _, c := range r.Columns {
			if c.Name == col {
				return c.Type
			}
		}
	}
	return ""
}

func qualified(r policy.RelName) string {
	return catalog.QuoteIdent(r.Schema) + "." + catalog.QuoteIdent(r.Name)
}

// factsQuery reads, for the relations whose OIDs are $1, what Check
// needs. $2 and $3 are privileged_roles and privileged_member_of, $4 and
// $5 the audit table's schema and name, $6 the columns its writers fill. Like catalog.Query it names
// every object with its schema and writes every operator as
// OPERATOR(pg_catalog.x), so the session's search_path chooses nothing.
const factsQuery = `WITH trusted(oid) AS (
  SELECT ro.oid FROM pg_catalog.pg_roles ro
  WHERE ro.rolsuper
    OR ro.rolname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])
    OR EXISTS (SELECT FROM pg_catalog.pg_roles m
      WHERE m.rolname OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.text[])
        AND pg_catalog.pg_has_role(ro.oid, m.oid, 'MEMBER'))
)
SELECT pg_catalog.json_build_object(
  'privileged', COALESCE((SELECT pg_catalog.json_agg(r.rolname::pg_catalog.text ORDER BY r.rolname) FROM pg_catalog.pg_roles r
    WHERE r.rolname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]) OR r.rolname OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.text[])), '[]'::pg_catalog.json),
  'user', CURRENT_USER::pg_catalog.text,
  'trusted', EXISTS (SELECT FROM trusted t JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) t.oid WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER),
  'marker', (SELECT pg_catalog.obj_description(n.oid, 'pg_namespace') FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'tombstone'),
  'audit', (SELECT pg_catalog.json_agg(a.attname::pg_catalog.text ORDER BY a.attnum)
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
    WHERE n.nspname OPERATOR(pg_catalog.=) $4::pg_catalog.text AND c.relname OPERATOR(pg_catalog.=) $5::pg_catalog.text),
  'audit_closed', (SELECT pg_catalog.json_agg(x.what)
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    CROSS JOIN LATERAL (
      SELECT 'schema'::pg_catalog.text WHERE NOT pg_catalog.has_schema_privilege('public', n.oid, 'USAGE')
      UNION ALL
      SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a
      WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname OPERATOR(pg_catalog.=) ANY ($6::pg_catalog.text[]) AND NOT a.attisdropped
        AND NOT pg_catalog.has_column_privilege('public', c.oid, a.attnum, 'INSERT')) AS x(what)
    WHERE n.nspname OPERATOR(pg_catalog.=) $4::pg_catalog.text AND c.relname OPERATOR(pg_catalog.=) $5::pg_catalog.text),
  'relations', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
    'oid', c.oid::pg_catalog.int8,
    'schema', n.nspname::pg_catalog.text,
    'name', c.relname::pg_catalog.text,
    'kind', c.relkind::pg_catalog.text,
    'owner', pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text,
    'ownertrusted', EXISTS (SELECT FROM trusted t WHERE t.oid OPERATOR(pg_catalog.=) c.relowner),
    'rls', c.relrowsecurity,
    'forcerls', c.relforcerowsecurity,
    'indexes', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
      'name', ic.relname::pg_catalog.text,
      'unique', i.indisunique,
      'valid', i.indisvalid AND i.indisready,
      'partitioned', ic.relkind OPERATOR(pg_catalog.=) 'I',
      'parent', COALESCE((SELECT hc.relname::pg_catalog.text FROM pg_catalog.pg_inherits h
        JOIN pg_catalog.pg_class hc ON hc.oid OPERATOR(pg_catalog.=) h.inhparent
        WHERE h.inhrelid OPERATOR(pg_catalog.=) ic.oid), ''),
      'def', pg_catalog.pg_get_indexdef(ic.oid),
      'tablespace', COALESCE((SELECT ts.spcname::pg_catalog.text FROM pg_catalog.pg_tablespace ts WHERE ts.oid OPERATOR(pg_catalog.=) ic.reltablespace), ''),
      'predicate', COALESCE(pg_catalog.pg_get_expr(i.indpred, i.indrelid), ''),
      'columns', (SELECT pg_catalog.json_agg(COALESCE(a.attname::pg_catalog.text, '') ORDER BY k.ord)
        FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
        LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
        WHERE k.ord OPERATOR(pg_catalog.<=) i.indnkeyatts),
      'comment', COALESCE(pg_catalog.obj_description(ic.oid, 'pg_class'), ''),
      'constraint', COALESCE(k.conname::pg_catalog.text, ''),
      'constraint_type', COALESCE(k.contype::pg_catalog.text, ''),
      'constraint_def', COALESCE(pg_catalog.pg_get_constraintdef(k.oid), ''),
      'deferrable', COALESCE(k.condeferrable, false),
      'referenced_by', COALESCE((SELECT pg_catalog.json_agg(fk.conname::pg_catalog.text ORDER BY fk.conname)
        FROM pg_catalog.pg_constraint fk
        WHERE fk.contype OPERATOR(pg_catalog.=) 'f' AND fk.conindid OPERATOR(pg_catalog.=) ic.oid), '[]'::pg_catalog.json)
    ) ORDER BY ic.relname)
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
      LEFT JOIN pg_catalog.pg_constraint k ON k.conindid OPERATOR(pg_catalog.=) i.indexrelid AND k.conrelid OPERATOR(pg_catalog.=) c.oid
        AND k.contype OPERATOR(pg_catalog.=) ANY (ARRAY['p', 'u', 'x']::pg_catalog."char"[])
      WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid), '[]'::pg_catalog.json),
    'triggers', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
      'name', g.tgname::pg_catalog.text,
      'type', g.tgtype::pg_catalog.int4,
      'function', fn.nspname::pg_catalog.text OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) f.proname::pg_catalog.text,
      'enabled', g.tgenabled::pg_catalog.text,
      'clone', g.tgparentid OPERATOR(pg_catalog.<>) 0
    ) ORDER BY g.tgname)
      FROM pg_catalog.pg_trigger g
      JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) g.tgfoid
      JOIN pg_catalog.pg_namespace fn ON fn.oid OPERATOR(pg_catalog.=) f.pronamespace
      WHERE g.tgrelid OPERATOR(pg_catalog.=) c.oid AND NOT g.tgisinternal), '[]'::pg_catalog.json),
    'rules', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
      'name', w.rulename::pg_catalog.text, 'event', w.ev_type::pg_catalog.text, 'instead', w.is_instead) ORDER BY w.rulename)
      FROM pg_catalog.pg_rewrite w
      WHERE w.ev_class OPERATOR(pg_catalog.=) c.oid AND w.rulename OPERATOR(pg_catalog.<>) '_RETURN'), '[]'::pg_catalog.json),
    'policies', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
      'name', p.polname::pg_catalog.text,
      'command', p.polcmd::pg_catalog.text,
      'permissive', p.polpermissive,
      'roles', (SELECT pg_catalog.json_agg(CASE WHEN r OPERATOR(pg_catalog.=) 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::pg_catalog.text END ORDER BY r)
        FROM pg_catalog.unnest(p.polroles) AS r),
      'using', COALESCE(pg_catalog.pg_get_expr(p.polqual, p.polrelid), ''),
      'with_check', COALESCE(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''),
      'comment', COALESCE(pg_catalog.obj_description(p.oid, 'pg_policy'), '')
    ) ORDER BY p.polname)
      FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid), '[]'::pg_catalog.json),
    'delete_grantees', COALESCE((SELECT pg_catalog.json_agg(DISTINCT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(a.grantee)::pg_catalog.text END)
      FROM pg_catalog.aclexplode(c.relacl) a
      WHERE a.privilege_type OPERATOR(pg_catalog.=) 'DELETE' AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
        AND NOT EXISTS (SELECT FROM trusted t WHERE t.oid OPERATOR(pg_catalog.=) a.grantee)), '[]'::pg_catalog.json)
  ) ORDER BY c.oid)
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE c.oid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])), '[]'::pg_catalog.json)
)::pg_catalog.text`
