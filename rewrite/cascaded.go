package rewrite

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tombstone-proxy/tombstone/policy"
)

// CascadedSQL is an SQL expression of type bigint: the number of rows the
// deletion of one deleted row of t took with it, the rows a restore with
// cascade brings back beside it (restorePlan.expand follows the same
// keys). alias names that row in the query the expression goes into; it
// must be an identifier SQL reads as written (no quoting is added).
//
// The rows counted reference it through an ON DELETE CASCADE key or a
// declared cascade onto a soft-delete child and carry its deleted_at
// stamp, at any depth; a key of a table onto itself counts the whole
// subtree with that stamp. A key that would lead back to a table already
// on the path is not followed: a restore refuses such a cycle.
func (r *Rewriter) CascadedSQL(t *policy.Table, alias string) string {
	c := &cascadeCounter{policy: r.policy}
	rel := policy.RelName{Schema: t.Schema, Name: t.Name}
	return "CAST(" + c.count(rel, t, alias, alias, nil, []string{rel.String()}) + " AS pg_catalog.int8)"
}

type cascadeCounter struct {
	policy *policy.Policy
	seq    int // numbers the aliases apart
}

// count sums, over the cascading keys onto rel, the children of the row
// written alias with its stamp, each with what it took in turn. root is
// the alias of the row the count is for; except is the self-referencing
// key whose subtree alias already belongs to.
func (c *cascadeCounter) count(rel policy.RelName, t *policy.Table, alias, root string, except *policy.ForeignKey, path []string) string {
	var terms []string
	for _, fk := range c.policy.Dependents(rel.Schema, rel.Name) {
		if fk.ChildTable == nil || fk.OnDelete != policy.Cascade || fk == except {
			continue
		}
		self := fk.Child == fk.Parent
		name := fk.Child.String()
		if !self && slices.Contains(path, name) {
			continue
		}
		c.seq++
		child := fmt.Sprintf("tombstone_c%d", c.seq)
		table, only := childRel(fk)
		stamp := fmt.Sprintf("%s.%s OPERATOR(pg_catalog.=) %s.%s", child, quoteIdent(fk.ChildTable.DeletedAt), alias, quoteIdent(t.DeletedAt))
		parentKey := func(col string) string { return quoteIdent(col) }
		if !self {
			inner := c.count(fk.Child, fk.ChildTable, child, root, except, append(slices.Clone(path), name))
			terms = append(terms, fmt.Sprintf("(SELECT pg_catalog.count(*) + COALESCE(pg_catalog.sum(%s), 0) FROM %s%s AS %s WHERE %s AND %s)",
				inner, only, table, child, stamp, joinKeys(fk, child, alias, parentKey)))
			continue
		}
		// The subtree under alias's row with its stamp, by tableoid and
		// ctid; UNION ends the recursion where the data holds a loop,
		// and the row itself is not its own child.
		step := fmt.Sprintf("tombstone_q%d", c.seq)
		cols := make([]string, len(fk.ParentCols))
		names := make([]string, len(fk.ParentCols))
		for i, pc := range fk.ParentCols {
			cols[i] = child + "." + quoteIdent(pc)
			names[i] = fmt.Sprintf("k%d", i)
		}
		stepKey := func(col string) string { return names[slices.Index(fk.ParentCols, col)] }
		closure := fmt.Sprintf("WITH RECURSIVE %[1]s(o, c, %[2]s) AS (SELECT %[3]s.tableoid, %[3]s.ctid, %[4]s FROM %[5]s%[6]s AS %[3]s WHERE %[7]s AND %[8]s"+
			" UNION SELECT %[3]s.tableoid, %[3]s.ctid, %[4]s FROM %[5]s%[6]s AS %[3]s, %[1]s WHERE %[7]s AND %[9]s) SELECT o, c FROM %[1]s",
			step, strings.Join(names, ", "), child, strings.Join(cols, ", "), only, table, stamp,
			joinKeys(fk, child, alias, parentKey), joinKeys(fk, child, step, stepKey))
		inner := c.count(fk.Child, fk.ChildTable, child, root, fk, path)
		terms = append(terms, fmt.Sprintf("(SELECT pg_catalog.count(*) + COALESCE(pg_catalog.sum(%[1]s), 0) FROM %[2]s%[3]s AS %[4]s, (%[5]s) AS %[6]s_s"+
			" WHERE %[4]s.tableoid OPERATOR(pg_catalog.=) %[6]s_s.o AND %[4]s.ctid OPERATOR(pg_catalog.=) %[6]s_s.c AND (%[4]s.tableoid, %[4]s.ctid) OPERATOR(pg_catalog.<>) (%[7]s.tableoid, %[7]s.ctid))",
			inner, only, table, child, closure, step, root))
	}
	if len(terms) == 0 {
		return "0"
	}
	return "(" + strings.Join(terms, " + ") + ")"
}
