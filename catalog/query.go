package catalog

import (
	"strings"

	"github.com/tombstone-proxy/tombstone/policy"
)

// Query is the one statement that reads a database's catalog for spec: it
// returns one row of one text column, a JSON document that Decode reads.
//
// It covers every table or partitioned table named like a configured
// table (in any schema: the caller's policy filters by schema) with all
// its inheritance and partition descendants, the tables named in declared
// cascades, every foreign-key constraint into or out of those relations
// (partition clones left out), and whether Tombstone's helper function is
// installed and owned by a role the application cannot be.
//
// The statement is meant to run in the application's own session, whose
// search_path and lexing settings the application controls: every
// function, type, table and operator is schema-qualified, and every
// literal is written by Literal.
func Query(spec policy.Spec) string {
	var configured, cascaded []string
	for _, t := range spec.Tables {
		configured = appendName(configured, t.Name)
		for _, c := range t.Cascade {
			cascaded = appendName(cascaded, c.Table)
		}
	}
	r := strings.NewReplacer(
		"$CONFIGURED", array(configured, "pg_catalog.name"),
		"$CASCADED", array(cascaded, "pg_catalog.name"),
		"$PRIVILEGED", array(spec.PrivilegedRoles, "pg_catalog.name"),
		"$MEMBER_OF", array(spec.PrivilegedMemberOf, "pg_catalog.name"),
	)
	return r.Replace(queryTemplate)
}

// appendName adds a name a table could have: a NUL byte cannot be in one
// (and could not be sent), so such a name matches nothing and is left out.
func appendName(names []string, n string) []string {
	if n == "" || strings.IndexByte(n, 0) >= 0 {
		return names
	}
	return append(names, n)
}

// array is an SQL array of typ holding names; empty when names is.
func array(names []string, typ string) string {
	lits := make([]string, 0, len(names))
	for _, n := range names {
		if strings.IndexByte(n, 0) >= 0 {
			continue
		}
		lits = append(lits, Literal(n))
	}
	return "ARRAY[" + strings.Join(lits, ", ") + "]::" + typ + "[]"
}

// queryTemplate: soft holds the configured tables and their descendants,
// rels adds the cascade targets. Temporary tables are left out: the query
// runs in one session and its answer serves every session of the
// database, and one session's temporary tables (and their foreign keys)
// must not shape the rewrite of another's statements. A relation's parent is the first parent
// (by inhseqno) in soft, else in rels, else 0, so that a configured table
// whose own parent is not of interest is a root.
const queryTemplate = `WITH RECURSIVE soft(oid) AS (
  SELECT c.oid FROM pg_catalog.pg_class c
  WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::pg_catalog."char"[])
    AND c.relpersistence OPERATOR(pg_catalog.<>) 't'
    AND c.relname OPERATOR(pg_catalog.=) ANY ($CONFIGURED)
  UNION
  SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN soft s ON i.inhparent OPERATOR(pg_catalog.=) s.oid
    JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.inhrelid
  WHERE ic.relpersistence OPERATOR(pg_catalog.<>) 't'
),
rels(oid) AS (
  SELECT s.oid FROM soft s
  UNION
  SELECT c.oid FROM pg_catalog.pg_class c
  WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::pg_catalog."char"[])
    AND c.relpersistence OPERATOR(pg_catalog.<>) 't'
    AND c.relname OPERATOR(pg_catalog.=) ANY ($CASCADED)
),
fks AS (
  SELECT k.oid, k.conname, k.conrelid, k.conkey, k.confrelid, k.confkey, k.confdeltype, k.condeferrable
  FROM pg_catalog.pg_constraint k
  WHERE k.contype OPERATOR(pg_catalog.=) 'f' AND k.conparentid OPERATOR(pg_catalog.=) 0
    AND (EXISTS (SELECT FROM rels r WHERE r.oid OPERATOR(pg_catalog.=) k.conrelid)
      OR EXISTS (SELECT FROM rels r WHERE r.oid OPERATOR(pg_catalog.=) k.confrelid))
),
trusted(oid) AS (
  SELECT ro.oid FROM pg_catalog.pg_roles ro
  WHERE ro.rolsuper
    OR ro.rolname OPERATOR(pg_catalog.=) ANY ($PRIVILEGED)
    OR EXISTS (SELECT FROM pg_catalog.pg_roles m
      WHERE m.rolname OPERATOR(pg_catalog.=) ANY ($MEMBER_OF)
        AND pg_catalog.pg_has_role(ro.oid, m.oid, 'MEMBER'))
)
SELECT pg_catalog.json_build_object(
  'relations', COALESCE((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
      'oid', c.oid::pg_catalog.int8,
      'schema', n.nspname::pg_catalog.text,
      'name', c.relname::pg_catalog.text,
      'partitioned', c.relkind OPERATOR(pg_catalog.=) 'p',
      'parent', COALESCE((
        SELECT i.inhparent::pg_catalog.int8 FROM pg_catalog.pg_inherits i JOIN rels pr ON pr.oid OPERATOR(pg_catalog.=) i.inhparent
        WHERE i.inhrelid OPERATOR(pg_catalog.=) c.oid
        ORDER BY EXISTS (SELECT FROM soft s WHERE s.oid OPERATOR(pg_catalog.=) i.inhparent) DESC, i.inhseqno
        LIMIT 1), 0),
      'columns', COALESCE((
        SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
          'name', a.attname::pg_catalog.text,
          'type', pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped), '[]'::pg_catalog.json),
      'primary_key', COALESCE((
        SELECT pg_catalog.json_agg(a.attname::pg_catalog.text ORDER BY k.ord)
        FROM pg_catalog.pg_constraint pk
        CROSS JOIN LATERAL pg_catalog.unnest(pk.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) pk.conrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
        WHERE pk.conrelid OPERATOR(pg_catalog.=) c.oid AND pk.contype OPERATOR(pg_catalog.=) 'p'), '[]'::pg_catalog.json)
    ) ORDER BY c.oid)
    FROM rels r
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.oid
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace), '[]'::pg_catalog.json),
  'foreign_keys', COALESCE((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
      'name', f.conname::pg_catalog.text,
      'child_schema', cn.nspname::pg_catalog.text,
      'child_table', cc.relname::pg_catalog.text,
      'child_columns', (
        SELECT pg_catalog.json_agg(a.attname::pg_catalog.text ORDER BY k.ord)
        FROM pg_catalog.unnest(f.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) f.conrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum),
      'parent_schema', pn.nspname::pg_catalog.text,
      'parent_table', pc.relname::pg_catalog.text,
      'parent_columns', (
        SELECT pg_catalog.json_agg(a.attname::pg_catalog.text ORDER BY k.ord)
        FROM pg_catalog.unnest(f.confkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) f.confrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum),
      'on_delete', f.confdeltype::pg_catalog.text,
      'deferrable', f.condeferrable
    ) ORDER BY f.oid)
    FROM fks f
    JOIN pg_catalog.pg_class cc ON cc.oid OPERATOR(pg_catalog.=) f.conrelid
    JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) cc.relnamespace
    JOIN pg_catalog.pg_class pc ON pc.oid OPERATOR(pg_catalog.=) f.confrelid
    JOIN pg_catalog.pg_namespace pn ON pn.oid OPERATOR(pg_catalog.=) pc.relnamespace), '[]'::pg_catalog.json),
  'helpers', EXISTS (
    SELECT FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
    WHERE n.nspname OPERATOR(pg_catalog.=) 'tombstone' AND p.proname OPERATOR(pg_catalog.=) 'fail'
      AND p.proargtypes OPERATOR(pg_catalog.=) '25 25 25 25'::pg_catalog.oidvector
      AND EXISTS (SELECT FROM trusted t WHERE t.oid OPERATOR(pg_catalog.=) p.proowner)
      AND EXISTS (SELECT FROM trusted t WHERE t.oid OPERATOR(pg_catalog.=) n.nspowner))
)::pg_catalog.text`
