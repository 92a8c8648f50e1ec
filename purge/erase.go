package purge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tombstone-proxy/tombstone/policy"
)

// Erasure chooses rows to remove at once, live or deleted: a
// right-to-erasure request.
type Erasure struct {
	// Table holds the rows; a schema of "" names the one table of that
	// name in the database.
	Table policy.RelName
	// Where is an SQL condition on Table's rows, written by the operator
	// (who holds a privileged connection, so it is trusted as SQL).
	Where string
	// Cascade also removes the rows that cascade from them: rows that
	// reference them through ON DELETE CASCADE keys and declared
	// cascades, recursively. Without it, any row referencing them makes
	// the erasure refuse.
	Cascade bool
	// DeletedOnly refuses the erasure when any row it would remove, the
	// chosen ones or those cascading from them, is a live row of a
	// soft-delete table. A declared cascade has no constraint, so a live
	// row may reference a deleted one; the console's purge empties the
	// trash and must not take such a row with it.
	DeletedOnly bool
	// DryRun does everything and then rolls back.
	DryRun        bool
	Actor, Reason string
}

// ErasureReport is what an erasure removed.
type ErasureReport struct {
	DryRun bool
	// Removed counts rows per table, in the order they were removed
	// (children first).
	Removed []Count
	// Unlinked counts rows that stay but whose reference a SET NULL or
	// SET DEFAULT key changed, as the database does on any delete.
	Unlinked []Count
}

// Count is a number of rows of one table.
type Count struct {
	Table policy.RelName
	Rows  int64
	Via   string // the reference, for Unlinked
}

// Rows is the number of rows removed from every table.
func (r *ErasureReport) Rows() int64 {
	var n int64
	for _, c := range r.Removed {
		n += c.Rows
	}
	return n
}

// ErrRefused is wrapped by the error of an erasure that rows referencing
// the chosen ones prevent; nothing was removed.
var ErrRefused = errors.New("erasure refused, nothing was removed")

// rowSet holds rows by the relation they are stored in (tableoid) and
// ctid, which is unique within a relation.
type rowSet map[uint32]map[pgtype.TID]bool

// add records rows and returns those it did not hold yet.
func (s rowSet) add(rows []row) map[uint32][]pgtype.TID {
	fresh := map[uint32][]pgtype.TID{}
	for _, r := range rows {
		if s[r.rel] == nil {
			s[r.rel] = map[pgtype.TID]bool{}
		}
		if !s[r.rel][r.tid] {
			s[r.rel][r.tid] = true
			fresh[r.rel] = append(fresh[r.rel], r.tid)
		}
	}
	return fresh
}

func (s rowSet) tids(rel uint32) []pgtype.TID { return slices.Collect(maps.Keys(s[rel])) }

type row struct {
	rel uint32
	tid pgtype.TID
}

// referencing is the rows found referencing the erased ones through one
// reference that does not cascade (or, without Cascade, any reference).
type referencing struct {
	ref  reference
	rows rowSet
}

// Erase removes the rows of e.Table that e.Where chooses, and with
// e.Cascade the rows that cascade from them, in one READ COMMITTED
// transaction, writing one audit row per removed row.
//
// It locks the chosen rows, then follows every reference onto them
// (foreign keys, read from the database, and declared cascades) level by
// level, locking each row it finds before looking for rows referencing
// it: a row that would start referencing a locked row must lock it
// itself, so the set is complete when it is removed. Rows that reference
// the set through a key that does not cascade (NO ACTION, RESTRICT), or
// through any reference without Cascade, make it refuse with ErrRefused
// before anything is removed. The audit rows are written from the set
// before any row is removed, children are removed before parents, and
// the erasure checks that every row of the set is gone before it
// commits.
func Erase(ctx context.Context, conn *pgx.Conn, p *policy.Policy, e Erasure) (*ErasureReport, error) {
	if strings.TrimSpace(e.Where) == "" {
		return nil, errors.New("an erasure needs a condition choosing its rows (--where)")
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	if err := checkAudit(ctx, tx, p.Audit()); err != nil {
		return nil, err
	}
	rs := newRelations(tx, p)
	oid, err := rs.find(ctx, e.Table)
	if err != nil {
		return nil, err
	}
	top, err := rs.get(ctx, oid)
	if err != nil {
		return nil, err
	}
	// No alias: the condition may name the table, as in a DELETE.
	chosen, err := collectRows(ctx, tx, fmt.Sprintf("SELECT tableoid, ctid FROM %s WHERE (%s) FOR UPDATE", qualified(top.name), e.Where))
	if err != nil {
		return nil, fmt.Errorf("choose the rows of %s: %w", top.name, err)
	}
	set := rowSet{}
	var others []*referencing
	byRef := map[string]*referencing{}
	for level := set.add(chosen); len(level) > 0; {
		next := map[uint32][]pgtype.TID{}
		for _, oid := range slices.Sorted(maps.Keys(level)) {
			rel, err := rs.get(ctx, oid)
			if err != nil {
				return nil, err
			}
			for _, ref := range rel.refs {
				found, err := collectRows(ctx, tx, fmt.Sprintf(
					"SELECT c.tableoid, c.ctid FROM %s WHERE EXISTS (SELECT FROM ONLY %s AS t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.tid[]) AND %s) FOR UPDATE OF c",
					ref.from("c"), qualified(rel.name), ref.referencing("c", "t")), level[oid])
				if err != nil {
					return nil, fmt.Errorf("find the rows referencing %s through %s: %w", rel.name, ref, err)
				}
				if e.Cascade && ref.cascades() {
					for o, tids := range set.add(found) {
						next[o] = append(next[o], tids...)
					}
					continue
				}
				key := ref.String()
				if byRef[key] == nil {
					byRef[key] = &referencing{ref: ref, rows: rowSet{}}
					others = append(others, byRef[key])
				}
				byRef[key].rows.add(found)
			}
		}
		level = next
	}
	if e.DeletedOnly {
		if err := refuseLive(ctx, tx, rs, set); err != nil {
			return nil, err
		}
	}
	report := &ErasureReport{DryRun: e.DryRun}
	if err := classify(e, set, others, report); err != nil {
		return nil, err
	}
	rels := make([]*relation, 0, len(set))
	for oid := range set {
		rel, err := rs.get(ctx, oid)
		if err != nil {
			return nil, err
		}
		rels = append(rels, rel)
	}
	// By OID first, so that relations with no order between them come
	// out the same on every run.
	slices.SortFunc(rels, func(a, b *relation) int { return cmp.Compare(a.oid, b.oid) })
	rels = childrenFirst(rels)
	if err := remove(ctx, tx, p.Audit(), e, rels, set, report); err != nil {
		return nil, err
	}
	if e.DryRun {
		return report, nil
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit the erasure (nothing was removed): %w", err)
	}
	return report, nil
}

// classify refuses when rows outside the set reference it in a way that
// stops the erasure, and counts those a SET NULL or SET DEFAULT key
// unlinks.
func classify(e Erasure, set rowSet, others []*referencing, report *ErasureReport) error {
	var refusals []string
	cascadeWould := false
	for _, o := range others {
		n := int64(0)
		for rel, tids := range o.rows {
			for tid := range tids {
				if !set[rel][tid] {
					n++
				}
			}
		}
		if n == 0 {
			continue
		}
		switch {
		case e.Cascade && (o.ref.onDelete == policy.SetNull || o.ref.onDelete == policy.SetDefault):
			report.Unlinked = append(report.Unlinked, Count{Table: o.ref.child, Rows: n, Via: o.ref.String()})
		default:
			cascadeWould = cascadeWould || o.ref.cascades() || o.ref.onDelete == policy.SetNull || o.ref.onDelete == policy.SetDefault
			refusals = append(refusals, fmt.Sprintf("%s holds %s referencing them through %s", o.ref.child, count(n, "row"), o.ref))
		}
	}
	if len(refusals) == 0 {
		return nil
	}
	hint := "remove those rows, or change their references, first"
	if cascadeWould && !e.Cascade {
		hint = "rerun with --cascade to erase the rows that cascade from them too (keys that do not cascade, NO ACTION or RESTRICT, still refuse: remove or re-point those rows first)"
	}
	return fmt.Errorf("%w: %s; %s", ErrRefused, strings.Join(refusals, "; "), hint)
}

// refuseLive refuses, with ErrRefused, a set holding live rows of
// soft-delete tables (Erasure.DeletedOnly).
func refuseLive(ctx context.Context, tx pgx.Tx, rs *relations, set rowSet) error {
	var live []string
	for _, oid := range slices.Sorted(maps.Keys(set)) {
		rel, err := rs.get(ctx, oid)
		if err != nil {
			return err
		}
		if rel.soft == nil || !rel.columns[rel.soft.DeletedAt] {
			continue
		}
		var n int64
		err = tx.QueryRow(ctx, fmt.Sprintf("SELECT pg_catalog.count(*) FROM ONLY %s AS t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.tid[]) AND t.%s IS NULL",
			qualified(rel.name), quote(rel.soft.DeletedAt)), set.tids(oid)).Scan(&n)
		if err != nil {
			return fmt.Errorf("check for live rows in %s: %w", rel.name, err)
		}
		if n > 0 {
			live = append(live, fmt.Sprintf("%s holds %s that would go with them", rel.name, count(n, "live row")))
		}
	}
	if len(live) == 0 {
		return nil
	}
	return fmt.Errorf("%w: only deleted rows may be erased here, and %s; delete those rows first, or erase with tombstone purge --where",
		ErrRefused, strings.Join(live, "; "))
}

// remove writes the audit rows of the set, removes it children first and
// checks that nothing of it is left.
func remove(ctx context.Context, tx pgx.Tx, audit policy.RelName, e Erasure, rels []*relation, set rowSet, report *ErasureReport) error {
	if audit != (policy.RelName{}) {
		for _, rel := range rels {
			deletion := "NULL::pg_catalog.timestamptz"
			if rel.soft != nil && rel.columns[rel.soft.DeletedAt] {
				deletion = "t." + quote(rel.soft.DeletedAt) + "::pg_catalog.timestamptz"
			}
			source := fmt.Sprintf("SELECT %s AS key, %s AS deletion FROM ONLY %s AS t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.tid[])",
				keyJSON(rel, "t"), deletion, qualified(rel.name))
			args := append([]any{set.tids(rel.oid)}, auditValues(rel, e.Actor, e.Reason)...)
			if _, err := tx.Exec(ctx, audited(source, audit, 2), args...); err != nil {
				return fmt.Errorf("write the audit rows of %s (nothing was removed): %w", rel.name, err)
			}
		}
	}
	for _, rel := range rels {
		tids := set.tids(rel.oid)
		if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM ONLY %s AS t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.tid[])", qualified(rel.name)), tids); err != nil {
			return fmt.Errorf("erase the rows of %s (nothing was removed): %w", rel.name, err)
		}
		report.Removed = append(report.Removed, Count{Table: rel.name, Rows: int64(len(tids))})
	}
	for _, rel := range rels {
		var left int64
		err := tx.QueryRow(ctx, fmt.Sprintf("SELECT pg_catalog.count(*) FROM ONLY %s AS t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.tid[])", qualified(rel.name)), set.tids(rel.oid)).Scan(&left)
		if err != nil {
			return fmt.Errorf("check the erasure of %s (nothing was removed): %w", rel.name, err)
		}
		if left != 0 {
			return fmt.Errorf("erasure of %s left %d of its rows in place (a trigger or rule may have kept them); nothing was removed", rel.name, left)
		}
	}
	return nil
}

func collectRows(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]row, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.rel, &x.tid)
		return x, err
	})
}
