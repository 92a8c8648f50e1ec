package purge

import (
	"context"
	"fmt"
	"strings"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/policy"
)

// audited makes source, a statement that returns one row (key, deletion)
// per row it removes, write the audit log's row for each in the same
// statement, so a removal and its audit commit or roll back together.
// Its parameters first to first+3 are auditValues.
func audited(source string, audit policy.RelName, first int) string {
	cols := make([]string, len(catalog.AuditColumns))
	for i, c := range catalog.AuditColumns {
		cols[i] = quote(c)
	}
	// Columns in catalog.AuditColumns order; fingerprint is NULL: a purge
	// runs no client statement whose shape could be recorded.
	return fmt.Sprintf(`WITH gone AS (%s)
INSERT INTO %s (%s)
SELECT 'purge', pg_catalog.format('%%I.%%I', $%d::pg_catalog.text, $%d::pg_catalog.text), gone.key, $%d::pg_catalog.text, $%d::pg_catalog.text, NULL, gone.deletion FROM gone`,
		source, qualified(audit), strings.Join(cols, ", "), first, first+1, first+2, first+3)
}

// auditValues are the parameters audited's statement takes.
func auditValues(r *relation, actor, reason string) []any {
	var why any
	if reason != "" {
		why = reason
	}
	return []any{r.name.Schema, r.name.Name, actor, why}
}

// keyJSON is row alias's primary key as a jsonb object, as the rewriter
// writes it for a soft delete, so a row's purge and its deletion share
// their key in the audit log; NULL for a table without a primary key.
func keyJSON(r *relation, alias string) string {
	if len(r.key) == 0 {
		return "NULL::pg_catalog.jsonb"
	}
	args := make([]string, 0, 2*len(r.key))
	for _, c := range r.key {
		args = append(args, catalog.Literal(c), alias+"."+quote(c))
	}
	return "pg_catalog.jsonb_build_object(" + strings.Join(args, ", ") + ")"
}

// checkAudit fails, before anything is removed, when the audit log is
// configured but missing: every batch would fail on it.
func checkAudit(ctx context.Context, q querier, audit policy.RelName) error {
	if audit == (policy.RelName{}) {
		return nil
	}
	var exists bool
	if err := q.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", qualified(audit)).Scan(&exists); err != nil {
		return fmt.Errorf("look up the audit log %s: %w", audit, err)
	}
	if !exists {
		return fmt.Errorf("the audit log %s (audit.table) does not exist in this database; create it with tombstone migrate --apply, or remove audit.table to purge without one", audit)
	}
	return nil
}
