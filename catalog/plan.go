package catalog

import (
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf8"

	"github.com/tombstone-proxy/tombstone/policy"
)

// failFunction raises the error it is given. The rewriter calls it inside
// rewritten DELETEs (in a CASE or WHERE that reaches it only when a
// foreign key would be violated), so that the error is PostgreSQL's own
// SQLSTATE and wording. Empty detail or hint means none.
const failFunction = `CREATE OR REPLACE FUNCTION tombstone.fail(sqlstate text, message text, detail text, hint text)
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $tombstone$
BEGIN
  IF detail IS NULL OR detail OPERATOR(pg_catalog.=) '' THEN
    IF hint IS NULL OR hint OPERATOR(pg_catalog.=) '' THEN
      RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message;
    END IF;
    RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, HINT = hint;
  END IF;
  IF hint IS NULL OR hint OPERATOR(pg_catalog.=) '' THEN
    RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, DETAIL = detail;
  END IF;
  RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message, DETAIL = detail, HINT = hint;
END
$tombstone$`

// checkBody is the body of the constraint trigger functions that refuse
// a row referencing a soft-deleted parent, as a foreign key refuses one
// that references a missing parent: SQLSTATE 23503, PostgreSQL's wording.
//
// Its arguments (set by Plan; EXECUTE is revoked from PUBLIC, so only the
// function's owner may create triggers with it) are: the constraint's
// name, the parent's schema, name and deleted_at column, "only" when the
// parent is not partitioned (an inheritance parent's foreign key sees its
// own rows only), the child's deleted_at column ("" when the child is not
// soft-delete), then child and parent column names in pairs.
//
// Each parent table has a function of its own (CheckFunction names it),
// owned by the parent table's owner and run as that owner, as
// PostgreSQL's own check runs: the application needs no privilege on the
// parent, and nothing the parent's owner controls (its operators, index
// expressions, partition keys) ever runs with more rights than that
// owner's. It compares keys with the constraint's own equality
// operators, and locks the parent row FOR SHARE rather than FOR KEY
// SHARE: a soft delete is an UPDATE of a non-key column, which FOR KEY
// SHARE would not wait for, so a concurrent soft delete could commit
// unseen.
const checkBody = `RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $tombstone$
DECLARE
  child_deleted_at text := TG_ARGV[5];
  key_query text := '';
  null_test text := '';
  has_null boolean;
  vals text[];
  old_vals text[];
  ops text[];
  cond text := '';
  key_names text := '';
  dead boolean;
  n integer := (TG_NARGS OPERATOR(pg_catalog.-) 6) OPERATOR(pg_catalog./) 2;
BEGIN
  -- One statement reads the row's key as its output function spells it
  -- (as PostgreSQL's DETAIL does; no cast runs), whether a key column is
  -- NULL, and whether the row is soft-deleted: each row costs two dynamic
  -- statements at most.
  FOR j IN 0 .. n OPERATOR(pg_catalog.-) 1 LOOP
    IF j OPERATOR(pg_catalog.>) 0 THEN
      key_query := key_query OPERATOR(pg_catalog.||) ', ';
      null_test := null_test OPERATOR(pg_catalog.||) ' OR ';
    END IF;
    key_query := key_query OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.format(''%%s'', ($1).%I)', TG_ARGV[6 OPERATOR(pg_catalog.+) (2 OPERATOR(pg_catalog.*) j)]);
    null_test := null_test OPERATOR(pg_catalog.||) pg_catalog.format('($1).%I IS NULL', TG_ARGV[6 OPERATOR(pg_catalog.+) (2 OPERATOR(pg_catalog.*) j)]);
  END LOOP;
  key_query := 'SELECT ARRAY[' OPERATOR(pg_catalog.||) key_query OPERATOR(pg_catalog.||) ']::pg_catalog.text[], '
    OPERATOR(pg_catalog.||) null_test OPERATOR(pg_catalog.||) ', '
    OPERATOR(pg_catalog.||) CASE WHEN child_deleted_at OPERATOR(pg_catalog.=) '' THEN 'false'
      ELSE pg_catalog.format('($1).%I IS NOT NULL', child_deleted_at) END;
  EXECUTE key_query INTO vals, has_null, dead USING NEW;
  IF dead THEN
    RETURN NULL; -- a soft-deleted row references nothing
  END IF;
  IF has_null THEN
    RETURN NULL; -- MATCH SIMPLE: a NULL column references nothing
  END IF;
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
    -- As PostgreSQL skips the check of an unchanged key: a row that was
    -- live and keeps its key was checked when it got it. Keys compare as
    -- text, so a doubt means one check too many, never one too few.
    EXECUTE key_query INTO old_vals, has_null, dead USING OLD;
    IF NOT dead AND old_vals OPERATOR(pg_catalog.=) vals THEN
      RETURN NULL;
    END IF;
  END IF;
  -- The constraint's own equality operators (PK = FK), as PostgreSQL's
  -- check uses; pg_catalog's = if the constraint is not found by name.
  SELECT pg_catalog.array_agg(pg_catalog.format('OPERATOR(%I.%s)', o_n.nspname, o.oprname) ORDER BY e.ord)
    INTO ops
    FROM pg_catalog.pg_constraint k
    CROSS JOIN LATERAL pg_catalog.unnest(k.conpfeqop) WITH ORDINALITY AS e(op, ord)
    JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) e.op
    JOIN pg_catalog.pg_namespace o_n ON o_n.oid OPERATOR(pg_catalog.=) o.oprnamespace
    WHERE k.conrelid OPERATOR(pg_catalog.=) TG_RELID AND k.conname OPERATOR(pg_catalog.=) TG_ARGV[0]
      AND k.contype OPERATOR(pg_catalog.=) 'f';
  IF ops IS NULL OR pg_catalog.cardinality(ops) OPERATOR(pg_catalog.<>) n THEN
    ops := pg_catalog.array_fill('OPERATOR(pg_catalog.=)'::pg_catalog.text, ARRAY[n]);
  END IF;
  FOR j IN 0 .. n OPERATOR(pg_catalog.-) 1 LOOP
    IF j OPERATOR(pg_catalog.>) 0 THEN
      cond := cond OPERATOR(pg_catalog.||) ' AND ';
      key_names := key_names OPERATOR(pg_catalog.||) ', ';
    END IF;
    cond := cond OPERATOR(pg_catalog.||) pg_catalog.format('p.%I %s ($1).%I',
      TG_ARGV[7 OPERATOR(pg_catalog.+) (2 OPERATOR(pg_catalog.*) j)], ops[j OPERATOR(pg_catalog.+) 1], TG_ARGV[6 OPERATOR(pg_catalog.+) (2 OPERATOR(pg_catalog.*) j)]);
    key_names := key_names OPERATOR(pg_catalog.||) TG_ARGV[6 OPERATOR(pg_catalog.+) (2 OPERATOR(pg_catalog.*) j)];
  END LOOP;
  EXECUTE pg_catalog.format('SELECT p.%I IS NOT NULL FROM %s %I.%I p WHERE %s FOR SHARE OF p',
      TG_ARGV[3], CASE WHEN TG_ARGV[4] OPERATOR(pg_catalog.=) 'only' THEN 'ONLY' ELSE '' END,
      TG_ARGV[1], TG_ARGV[2], cond)
    INTO dead USING NEW;
  IF dead THEN
    RAISE EXCEPTION USING ERRCODE = '23503',
      MESSAGE = pg_catalog.format('insert or update on table "%s" violates foreign key constraint "%s"', TG_TABLE_NAME, TG_ARGV[0]),
      DETAIL = pg_catalog.format('Key (%s)=(%s) is not present in table "%s".', key_names, pg_catalog.array_to_string(vals, ', '), TG_ARGV[2]),
      SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME, CONSTRAINT = TG_ARGV[0];
  END IF;
  RETURN NULL;
END
$tombstone$`

// dropChecks drops every trigger that calls a check function (not their
// clones on partitions, which go with them), then the functions, so that
// what Plan creates next is exactly what today's foreign keys need: a
// trigger whose constraint was dropped, or whose parent is no longer
// soft-delete, goes too. A trigger of the application's that merely shares
// a name is left alone (and makes the CREATE fail, loudly).
const dropChecks = `DO $tombstone$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT t.tgname, c.relname, n.nspname
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) t.tgfoid
    JOIN pg_catalog.pg_namespace fn ON fn.oid OPERATOR(pg_catalog.=) f.pronamespace
    WHERE fn.nspname OPERATOR(pg_catalog.=) 'tombstone' AND pg_catalog.starts_with(f.proname::pg_catalog.text, '` + checkPrefix + `')
      AND t.tgparentid OPERATOR(pg_catalog.=) 0
  LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER %I ON %I.%I', r.tgname, r.nspname, r.relname);
  END LOOP;
  FOR r IN
    SELECT f.proname FROM pg_catalog.pg_proc f
    JOIN pg_catalog.pg_namespace fn ON fn.oid OPERATOR(pg_catalog.=) f.pronamespace
    WHERE fn.nspname OPERATOR(pg_catalog.=) 'tombstone' AND pg_catalog.starts_with(f.proname::pg_catalog.text, '` + checkPrefix + `')
      AND f.pronargs OPERATOR(pg_catalog.=) 0
  LOOP
    EXECUTE pg_catalog.format('DROP FUNCTION tombstone.%I()', r.proname);
  END LOOP;
END
$tombstone$`

// checkPrefix begins the name of every check function.
const checkPrefix = "check_live_"

// CheckFunction is the name (in schema tombstone, unquoted) of the
// trigger function Plan creates for foreign keys onto parent:
// check_live_<name>_<hash of schema and name>, within 63 bytes.
func CheckFunction(parent policy.RelName) string {
	return boundedName(checkPrefix+parent.Name, parent.Schema+"\x00"+parent.Name, true)
}

// Plan lists the idempotent statements that install what Tombstone needs
// in the database s describes: schema tombstone with its helper
// functions, and for every foreign-key constraint whose parent is a
// soft-delete table a constraint trigger on the child that refuses rows
// referencing a soft-deleted parent. Run them in one transaction: the
// triggers are dropped and created again.
//
// The statements need a role that may create triggers on the child
// tables and give each check function to its parent table's owner (a
// member of that owner: a superuser, or the owner itself). tombstone.fail
// belongs to the role that ran them, which catalog reads trust only when
// it is a superuser or a role the configuration names as privileged.
//
// A foreign key onto a soft-delete table that lacks its deleted_at column
// gets no trigger (the policy reports the table as a problem); a child
// lacking its own is checked as a plain child.
func Plan(spec policy.Spec, s *policy.Schema) []string {
	plan := []string{
		"CREATE SCHEMA IF NOT EXISTS tombstone",
		"REVOKE CREATE ON SCHEMA tombstone FROM PUBLIC",
		"GRANT USAGE ON SCHEMA tombstone TO PUBLIC",
		failFunction,
		"GRANT EXECUTE ON FUNCTION tombstone.fail(text, text, text, text) TO PUBLIC",
		dropChecks,
	}
	functions := map[policy.RelName]bool{}
	for _, c := range checkTriggers(spec, s) {
		fk := c.fk
		fn := "tombstone." + QuoteIdent(CheckFunction(fk.Parent))
		if !functions[fk.Parent] {
			functions[fk.Parent] = true
			// Whoever may execute it may create triggers with arguments
			// of their choosing, and it runs as the parent's owner.
			plan = append(plan,
				"CREATE OR REPLACE FUNCTION "+fn+"()\n"+checkBody,
				"REVOKE EXECUTE ON FUNCTION "+fn+"() FROM PUBLIC",
				"DO $tombstone$ BEGIN EXECUTE pg_catalog.format('ALTER FUNCTION tombstone.%I() OWNER TO %I', "+hexText(CheckFunction(fk.Parent))+
					", (SELECT r.rolname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner WHERE c.oid OPERATOR(pg_catalog.=) "+
					hexText(QuoteIdent(fk.Parent.Schema)+"."+QuoteIdent(fk.Parent.Name))+"::pg_catalog.regclass)); END $tombstone$")
		}
		quoted := make([]string, len(c.cols))
		for i, col := range c.cols {
			quoted[i] = QuoteIdent(col)
		}
		lits := make([]string, len(c.args))
		for i, a := range c.args {
			lits[i] = triggerArg(a)
		}
		deferrable := ""
		if fk.Deferrable {
			deferrable = " DEFERRABLE INITIALLY IMMEDIATE"
		}
		plan = append(plan,
			fmt.Sprintf("CREATE CONSTRAINT TRIGGER %s AFTER INSERT OR UPDATE OF %s ON %s%s FOR EACH ROW EXECUTE FUNCTION %s(%s)",
				QuoteIdent(c.Name), strings.Join(quoted, ", "), QuoteIdent(c.Table.Schema)+"."+QuoteIdent(c.Table.Name), deferrable, fn, strings.Join(lits, ", ")))
	}
	return plan
}

// CheckTrigger is one constraint trigger Plan creates: its name and the
// child table it is on.
type CheckTrigger struct {
	Table policy.RelName
	Name  string
}

// CheckTriggers lists the constraint triggers Plan creates for s, so that
// a check (tombstone doctor) can tell whether they are all in place.
func CheckTriggers(spec policy.Spec, s *policy.Schema) []CheckTrigger {
	var out []CheckTrigger
	for _, c := range checkTriggers(spec, s) {
		out = append(out, c.CheckTrigger)
	}
	return out
}

// checkTrigger is a CheckTrigger with what its CREATE needs: the foreign
// key, the columns whose change fires it, and its arguments (see
// checkBody).
type checkTrigger struct {
	CheckTrigger
	fk   policy.ForeignKey
	cols []string
	args []string
}

// checkTriggers lists the triggers for every foreign-key constraint whose
// parent is a soft-delete table with its deleted_at column.
func checkTriggers(spec policy.Spec, s *policy.Schema) []checkTrigger {
	p, err := policy.New(spec)
	if err != nil || s == nil {
		return nil
	}
	p2, err := p.WithSchema(s)
	if err != nil {
		return nil
	}
	partitioned := map[policy.RelName]bool{}
	columns := map[policy.RelName]map[string]bool{}
	for _, r := range s.Relations {
		rn := policy.RelName{Schema: r.Schema, Name: r.Name}
		partitioned[rn] = r.Partitioned
		columns[rn] = map[string]bool{}
		for _, c := range r.Columns {
			columns[rn][c.Name] = true
		}
	}
	var out []checkTrigger
	for _, fk := range s.ForeignKeys {
		parent, ok := p2.Lookup(fk.Parent.Schema, fk.Parent.Name)
		if !ok || fk.Name == "" || !columns[fk.Parent][parent.DeletedAt] {
			continue
		}
		args := []string{fk.Name, fk.Parent.Schema, fk.Parent.Name, parent.DeletedAt, "only", ""}
		if partitioned[fk.Parent] || parent.Partitioned {
			args[4] = ""
		}
		cols := append([]string(nil), fk.ChildCols...)
		if child, ok := p2.Lookup(fk.Child.Schema, fk.Child.Name); ok && columns[fk.Child][child.DeletedAt] {
			args[5] = child.DeletedAt
			cols = append(cols, child.DeletedAt)
		}
		for i := range fk.ChildCols {
			args = append(args, fk.ChildCols[i], fk.ParentCols[i])
		}
		out = append(out, checkTrigger{
			CheckTrigger: CheckTrigger{Table: fk.Child, Name: TriggerName(fk.Name)},
			fk:           fk, cols: cols, args: args,
		})
	}
	return out
}

// TriggerName is the name of the trigger Plan creates for the foreign
// key named conname: tombstone_live_<conname>, or, when that is longer
// than PostgreSQL's 63 bytes, a prefix of it (cut at a character
// boundary) and a hash of the whole name, so that two long names stay
// apart.
func TriggerName(conname string) string {
	return boundedName("tombstone_live_"+conname, conname, false)
}

// BoundedName is name when it fits PostgreSQL's 63 bytes, otherwise a
// prefix of it (cut at a character boundary) and a hash of key: the names
// of the objects tombstone migrate creates.
func BoundedName(name, key string) string { return boundedName(name, key, false) }

// boundedName is name when it fits PostgreSQL's 63 bytes and hash is
// false; otherwise a prefix of name (cut at a character boundary) and a
// hash of key.
func boundedName(name, key string, hash bool) string {
	if len(name) <= 63 && !hash {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	suffix := fmt.Sprintf("_%08x", h.Sum32())
	cut := min(len(name), 63-len(suffix))
	for cut > 0 && cut < len(name) && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + suffix
}

// StringConstant quotes s as a string constant, for the places that take
// one and not an expression (COMMENT ... IS, trigger arguments), where
// Literal's hexadecimal form cannot be used. See triggerArg for the
// session it assumes.
func StringConstant(s string) string { return triggerArg(s) }

// triggerArg quotes a trigger argument: CREATE TRIGGER takes string
// literals there, not expressions, so Literal's hexadecimal form cannot
// be used. Plan's statements run on a connection of Tombstone's own
// (UTF8, standard_conforming_strings as the server reports), and E”
// literals are read the same whatever standard_conforming_strings says.
func triggerArg(s string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
