package purge

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/policy"
)

// relation is one table rows are removed from, as the database describes
// it when the purge starts.
type relation struct {
	oid     uint32
	name    policy.RelName
	kind    string   // relkind: "r" table, "p" partitioned table
	key     []string // primary key columns, in key order; empty for none
	columns map[string]bool
	// ancestors are the OIDs of the partitioned tables this one is a
	// partition of, and its own OID: foreign keys onto any of them cover
	// its rows.
	ancestors []uint32
	// refs are the references onto this relation's rows: every
	// foreign-key constraint, and the configuration's declared cascades.
	refs []reference
	// soft is the soft-delete table, nil for a plain one.
	soft *policy.Table
}

// reference is one way rows of child point at rows of a parent relation:
// a foreign-key constraint, or a declared cascade (which has no
// constraint, so the database never acts on it).
type reference struct {
	constraint string // "" for a declared cascade
	child      policy.RelName
	childOID   uint32
	childKind  string
	childCols  []string
	parentCols []string
	// ops are the equality operators the constraint compares with
	// (pg_constraint.conpfeqop), written OPERATOR(schema.op): the same
	// comparison the database makes, whatever the types.
	ops      []string
	onDelete policy.Action
}

func (r reference) String() string {
	if r.constraint == "" {
		return fmt.Sprintf("%s (declared cascade on %s)", r.child, strings.Join(r.childCols, ", "))
	}
	return fmt.Sprintf("%s (%s, ON DELETE %s)", r.child, r.constraint, r.onDelete)
}

// cascades reports whether removing a parent row removes the rows that
// reference it.
func (r reference) cascades() bool { return r.onDelete == policy.Cascade }

// referencing is an SQL condition true when the row of child alias c
// references the row of parent alias p. A row referencing itself is left
// out: removing it removes the reference too.
func (r reference) referencing(c, p string) string {
	conds := make([]string, len(r.childCols))
	for i := range r.childCols {
		conds[i] = fmt.Sprintf("%s.%s %s %s.%s", p, quote(r.parentCols[i]), r.ops[i], c, quote(r.childCols[i]))
	}
	conds = append(conds, fmt.Sprintf("NOT (%s.tableoid OPERATOR(pg_catalog.=) %s.tableoid AND %s.ctid OPERATOR(pg_catalog.=) %s.ctid)", c, p, c, p))
	return strings.Join(conds, " AND ")
}

// from is the child relation as a FROM item with alias c. A constraint on
// a plain table covers that table's own rows only (ONLY), one on a
// partitioned table covers every partition; a declared cascade is read
// as a DELETE naming the child would read it.
func (r reference) from(c string) string {
	only := ""
	if r.constraint != "" && r.childKind == "r" {
		only = "ONLY "
	}
	return only + qualified(r.child) + " AS " + c
}

func quote(s string) string { return catalog.QuoteIdent(s) }

func qualified(n policy.RelName) string { return quote(n.Schema) + "." + quote(n.Name) }

// relations reads relations by OID, once each, for one run.
type relations struct {
	conn   querier
	policy *policy.Policy
	byOID  map[uint32]*relation
}

// querier is what the reads need: a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func newRelations(q querier, p *policy.Policy) *relations {
	return &relations{conn: q, policy: p, byOID: map[uint32]*relation{}}
}

const relationQuery = `SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text, c.relkind::pg_catalog.text,
  ARRAY(SELECT a.attname::pg_catalog.text
    FROM pg_catalog.pg_constraint k
    CROSS JOIN LATERAL pg_catalog.unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid AND a.attnum OPERATOR(pg_catalog.=) u.attnum
    WHERE k.conrelid OPERATOR(pg_catalog.=) c.oid AND k.contype OPERATOR(pg_catalog.=) 'p'
    ORDER BY u.ord),
  ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a
    WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped),
  ARRAY[c.oid] OPERATOR(pg_catalog.||) ARRAY(SELECT pa.relid::pg_catalog.oid FROM pg_catalog.pg_partition_ancestors(c.oid) AS pa
    WHERE pa.relid::pg_catalog.oid OPERATOR(pg_catalog.<>) c.oid)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE c.oid OPERATOR(pg_catalog.=) $1`

// referenceQuery lists the foreign-key constraints onto any of the
// relations $1, partition clones left out (the constraint on the
// partitioned table stands for them).
const referenceQuery = `SELECT k.conname::pg_catalog.text, k.conrelid, cc.relkind::pg_catalog.text,
  cn.nspname::pg_catalog.text, cc.relname::pg_catalog.text, k.confdeltype::pg_catalog.text,
  ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid AND a.attnum OPERATOR(pg_catalog.=) u.attnum
    ORDER BY u.ord),
  ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY AS u(attnum, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.confrelid AND a.attnum OPERATOR(pg_catalog.=) u.attnum
    ORDER BY u.ord),
  ARRAY(SELECT pg_catalog.format('OPERATOR(%I.%s)', opn.nspname, o.oprname)
    FROM pg_catalog.unnest(k.conpfeqop) WITH ORDINALITY AS u(op, ord)
    JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) u.op
    JOIN pg_catalog.pg_namespace opn ON opn.oid OPERATOR(pg_catalog.=) o.oprnamespace
    ORDER BY u.ord)
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class cc ON cc.oid OPERATOR(pg_catalog.=) k.conrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) cc.relnamespace
WHERE k.contype OPERATOR(pg_catalog.=) 'f' AND k.conparentid OPERATOR(pg_catalog.=) 0
  AND k.confrelid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])
ORDER BY k.oid`

// byNameQuery finds the tables called $2 in schema $1 ("" for any).
const byNameQuery = `SELECT c.oid FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.=) $2 AND ($1 OPERATOR(pg_catalog.=) '' OR n.nspname OPERATOR(pg_catalog.=) $1)
  AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::pg_catalog."char"[])
  AND c.relpersistence OPERATOR(pg_catalog.<>) 't'
ORDER BY n.nspname`

// get reads the relation with this OID and the references onto it.
//
// It reads the foreign keys itself rather than take them from the
// policy: the policy holds only keys that touch a soft-delete table,
// and an erasure's cascade goes on through plain tables whose keys the
// database would follow too.
func (rs *relations) get(ctx context.Context, oid uint32) (*relation, error) {
	if r, ok := rs.byOID[oid]; ok {
		return r, nil
	}
	r := &relation{oid: oid, columns: map[string]bool{}}
	var cols []string
	err := rs.conn.QueryRow(ctx, relationQuery, oid).Scan(&r.name.Schema, &r.name.Name, &r.kind, &r.key, &cols, &r.ancestors)
	if err != nil {
		return nil, fmt.Errorf("read table %d from the catalog: %w", oid, err)
	}
	for _, c := range cols {
		r.columns[c] = true
	}
	for _, t := range rs.policy.Tables() {
		if t.OID == oid {
			r.soft = t
		}
	}
	if len(r.key) == 0 && r.soft != nil {
		// An inheritance child has no key of its own; the rewriter
		// audits its rows with the root's, and so does purge.
		r.key = r.soft.Root.PrimaryKey
	}
	rows, err := rs.conn.Query(ctx, referenceQuery, r.ancestors)
	if err != nil {
		return nil, fmt.Errorf("read the foreign keys onto %s: %w", r.name, err)
	}
	for rows.Next() {
		var ref reference
		var action string
		if err := rows.Scan(&ref.constraint, &ref.childOID, &ref.childKind, &ref.child.Schema, &ref.child.Name, &action, &ref.childCols, &ref.parentCols, &ref.ops); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the foreign keys onto %s: %w", r.name, err)
		}
		ref.onDelete = policy.Action(action[0])
		r.refs = append(r.refs, ref)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the foreign keys onto %s: %w", r.name, err)
	}
	if err := rs.declared(ctx, r); err != nil {
		return nil, err
	}
	rs.byOID[oid] = r
	return r, nil
}

// declared adds the declared cascades onto r or a partitioned table it is
// a partition of (the policy keeps them on the configured table).
func (rs *relations) declared(ctx context.Context, r *relation) error {
	for _, a := range r.ancestors {
		name := r.name
		if a != r.oid {
			var err error
			if name, err = rs.nameOf(ctx, a); err != nil {
				return err
			}
		}
		for _, fk := range rs.policy.Dependents(name.Schema, name.Name) {
			if !fk.Declared || (fk.Parent.Schema != "" && fk.Parent.Schema != name.Schema) {
				continue
			}
			child, err := rs.find(ctx, fk.Child)
			if err != nil {
				return fmt.Errorf("declared cascade from %s to %s: %w", fk.Parent, fk.Child, err)
			}
			ops := make([]string, len(fk.ChildCols))
			for i := range ops {
				ops[i] = "OPERATOR(pg_catalog.=)"
			}
			r.refs = append(r.refs, reference{
				child: fk.Child, childOID: child,
				childCols: fk.ChildCols, parentCols: fk.ParentCols, ops: ops,
				onDelete: policy.Cascade,
			})
		}
	}
	return nil
}

func (rs *relations) nameOf(ctx context.Context, oid uint32) (policy.RelName, error) {
	var n policy.RelName
	err := rs.conn.QueryRow(ctx, `SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE c.oid OPERATOR(pg_catalog.=) $1`, oid).Scan(&n.Schema, &n.Name)
	if err != nil {
		return n, fmt.Errorf("read table %d from the catalog: %w", oid, err)
	}
	return n, nil
}

// find resolves a table name to its OID: exactly one table may have it.
func (rs *relations) find(ctx context.Context, n policy.RelName) (uint32, error) {
	rows, err := rs.conn.Query(ctx, byNameQuery, n.Schema, n.Name)
	if err != nil {
		return 0, fmt.Errorf("look up table %s: %w", n, err)
	}
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return 0, fmt.Errorf("look up table %s: %w", n, err)
	}
	switch len(oids) {
	case 0:
		return 0, fmt.Errorf("there is no table %s in this database", n)
	case 1:
		return oids[0], nil
	}
	return 0, fmt.Errorf("%d tables are called %s in this database; name one with its schema (schema.table)", len(oids), n)
}

// childrenFirst orders rels so that a relation comes before those its
// rows reference. Relations that reference each other (a cycle) keep
// their given order; a purge holds what the cycle leaves, and an erasure
// lets the database's own cascade finish it.
func childrenFirst(rels []*relation) []*relation {
	// before[p] lists the relations whose rows reference p's rows.
	before := map[*relation][]*relation{}
	for _, p := range rels {
		for _, ref := range p.refs {
			for _, c := range rels {
				if c != p && slices.Contains(c.ancestors, ref.childOID) {
					before[p] = append(before[p], c)
				}
			}
		}
	}
	var out []*relation
	state := map[*relation]int{}
	var visit func(r *relation)
	visit = func(r *relation) {
		if state[r] != 0 {
			return
		}
		state[r] = 1
		for _, c := range before[r] {
			visit(c)
		}
		state[r] = 2
		out = append(out, r)
	}
	for _, r := range rels {
		visit(r)
	}
	return out
}
