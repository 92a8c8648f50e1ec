package rewrite

import (
	"fmt"
	"strings"

	"github.com/tombstone-proxy/tombstone/policy"
)

// Every refusal Tombstone makes is built in this file, so that reasons,
// SQLSTATEs, messages and hints stay together and consistent. A refusal
// becomes an ErrorResponse only at the wire boundary (proxy/).

// Refusal reasons, the values of tombstone_refusals_total{reason}.
const (
	ReasonTruncate    = "truncate"    // TRUNCATE of a soft-delete table
	ReasonUnparseable = "unparseable" // may name a soft-delete table but does not parse
	ReasonTooLong     = "too_long"    // longer than MaxStatementBytes
	ReasonTooDeep     = "too_deep"    // nested deeper than the bounds in limits.go
	ReasonUnsupported = "unsupported" // a construct the rewriter cannot make safe
	ReasonPrivileged  = "privileged"  // DDL or a setting reserved to privileged roles
	ReasonLexing      = "lexing"      // the session scans SQL in a way Tombstone cannot follow
	ReasonProtocol    = "protocol"    // a protocol message Tombstone cannot check (FunctionCall)
)

// Refusal is a statement Tombstone will not send: it becomes an
// ErrorResponse at the wire boundary.
type Refusal struct {
	Reason  string // one of the Reason constants
	Code    string // SQLSTATE, e.g. 42501 or 42601
	Message string
	Detail  string
	Hint    string
	Table   string // configured table involved, if known
	// Before is set when a later statement of a multi-statement text is
	// refused: the rewrite of the statements ahead of it, which
	// PostgreSQL would run before reaching the failing one. The proxy
	// sends them followed by the refusal, so a BEGIN among them opens the
	// transaction that the refusal then aborts, as any error would.
	Before *Result
}

func (r *Refusal) Error() string { return r.Message }

// hintPrivileged is the way out of most refusals: privileged logins pass
// untouched.
const hintPrivileged = "Run it as a privileged role (privileged_roles in the Tombstone configuration)."

// refuseTooLong: the text is longer than the parser is allowed to see.
func refuseTooLong(n int) *Refusal {
	return &Refusal{
		Reason:  ReasonTooLong,
		Code:    "54000",
		Message: fmt.Sprintf("tombstone: statement of %d bytes is longer than the %d bytes Tombstone parses, so it was refused", n, MaxStatementBytes),
		Hint:    "Split the statement, or pass large values as parameters.",
	}
}

// refuseTooDeep: a bound of limits.go is exceeded; what says which.
func refuseTooDeep(what string) *Refusal {
	return &Refusal{
		Reason:  ReasonTooDeep,
		Code:    "54001",
		Message: "tombstone: statement " + what + ", deeper than Tombstone parses safely, so it was refused",
		Hint:    "Flatten the nested expressions, subqueries, set operations or joins, or split the statement.",
	}
}

// refuseUnparseable: pg_query rejects the text (why says how), so
// Tombstone cannot know what it touches.
func refuseUnparseable(why string) *Refusal {
	return &Refusal{
		Reason:  ReasonUnparseable,
		Code:    "42601",
		Message: "tombstone: could not parse the statement, so it was refused: " + why,
		Detail:  "The statement may name a soft-delete table; Tombstone never sends such a statement unfiltered.",
	}
}

// refuseDeparse: the rewritten tree could not be printed.
func refuseDeparse(err error) *Refusal {
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "0A000",
		Message: "tombstone: could not print the rewritten statement, so it was refused: " + err.Error(),
	}
}

// refuseInternal: a bug in the rewriter; refusing is the safe answer.
func refuseInternal(err error) *Refusal {
	return &Refusal{Reason: ReasonUnsupported, Code: "XX000", Message: "tombstone: internal rewrite error, statement refused: " + err.Error()}
}

// unsupported refuses a construct that reads a soft-delete table in a way
// no rule can filter exactly; t is nil when the table is only known to be
// among those the statement reads.
func unsupported(construct string, t *policy.Table) *Refusal {
	name, on := "", "a soft-delete table"
	if t != nil {
		name = t.QualifiedName()
		on = "soft-delete table " + name
	}
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "0A000",
		Message: fmt.Sprintf("tombstone: %s on %s cannot be rewritten safely, so it was refused", construct, on),
		Hint:    "Rewrite the statement without this construct, or run it as a privileged role.",
		Table:   name,
	}
}

// unseen refuses SQL that runs on the server out of Tombstone's sight
// (procedural code, built-ins that run query text), whichever tables it
// turns out to touch.
func unseen(what, detail, hint string) *Refusal {
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "0A000",
		Message: "tombstone: " + what + ", so it was refused",
		Detail:  detail,
		Hint:    hint,
	}
}

// refuseSQLRunning refuses a built-in that runs SQL Tombstone cannot see.
func refuseSQLRunning(name string) *Refusal {
	return unseen(name+"() runs SQL that Tombstone cannot see",
		"The SQL it runs is text or a table name resolved inside the server; no soft-delete filter can be added to it.",
		"Run the query itself through Tombstone, or call the function as a privileged role.")
}

// refuseCurrentOf refuses UPDATE or DELETE ... WHERE CURRENT OF on a
// soft-delete table: CURRENT OF cannot be combined with the live-rows
// filter, and the cursor's row may have been soft-deleted since it was
// fetched (by this statement's cursor or by another session), so the
// statement would change, or even undelete, a row that is gone.
func refuseCurrentOf(verb string, t *policy.Table) *Refusal {
	r := unsupported(verb+" ... WHERE CURRENT OF", t)
	r.Detail = "The cursor's row may have been deleted since it was fetched, and WHERE CURRENT OF takes no other condition."
	r.Hint = verb + " the row by its key instead (WHERE id = ...), or run it as a privileged role."
	return r
}

// refusePrivileged refuses DDL or a setting reserved to privileged roles
// (42501, insufficient_privilege: nothing is wrong with the statement).
// table is the configured table involved, or "".
func refusePrivileged(message, detail, table string) *Refusal {
	return &Refusal{
		Reason:  ReasonPrivileged,
		Code:    "42501",
		Message: "tombstone: " + message,
		Detail:  detail,
		Hint:    hintPrivileged,
		Table:   table,
	}
}

// refuseSchemaChange refuses DDL that would undo soft deletes on a
// configured table; migrations are meant to run as a privileged role.
func refuseSchemaChange(what, table string) *Refusal {
	r := refusePrivileged(what+" soft-delete table "+table+" refused: it would undo soft deletes on it",
		"Deleted rows would become visible or be removed for good, and later deletes would no longer be soft.", table)
	r.Hint = "Run schema migrations as a privileged role (privileged_roles in the Tombstone configuration)."
	return r
}

// refuseTruncate refuses TRUNCATE of a soft-delete table, or with CASCADE
// (table "").
func refuseTruncate(table string) *Refusal {
	if table == "" {
		return &Refusal{
			Reason:  ReasonTruncate,
			Code:    "42501",
			Message: "tombstone: TRUNCATE ... CASCADE refused: it also empties every table that references the named ones, which may be soft-delete tables",
			Detail:  "Those rows would be removed for good, bypassing soft deletes.",
			Hint:    "TRUNCATE the tables by name without CASCADE, or run it as a privileged role.",
		}
	}
	return &Refusal{
		Reason:  ReasonTruncate,
		Code:    "42501",
		Message: "tombstone: TRUNCATE of soft-delete table " + table + " refused",
		Detail:  "TRUNCATE would remove every row for good, bypassing soft deletes.",
		Hint:    "Delete the rows with DELETE (they are soft-deleted), or run TRUNCATE as a privileged role.",
		Table:   table,
	}
}

// RefuseLexing refuses a text the server would scan differently from
// Tombstone under the session's settings (why names the setting).
func RefuseLexing(why string) *Refusal {
	return &Refusal{
		Reason:  ReasonLexing,
		Code:    "0A000",
		Message: "tombstone: " + why + ", so the statement was refused",
		Detail:  "Tombstone must read each statement exactly as the server does; under this setting it cannot.",
		Hint:    "Use standard_conforming_strings = on and a UTF8 (or other ASCII-safe) client_encoding, or run it as a privileged role.",
	}
}

// RefuseFunctionCall refuses a FunctionCall protocol message for a
// function Tombstone cannot vouch for (oid is its pg_proc OID).
func RefuseFunctionCall(oid uint32) *Refusal {
	return &Refusal{
		Reason:  ReasonProtocol,
		Code:    "42501",
		Message: fmt.Sprintf("tombstone: FunctionCall of function OID %d refused: only the large-object functions may be called through the fast-path protocol", oid),
		Detail:  "A function called this way runs without any statement Tombstone could check.",
		Hint:    "Call the function in a SELECT, or run it as a privileged role.",
	}
}

// fkFailure is an error a rewritten DELETE raises at run time, through
// tombstone.fail, when a foreign key's rows say it must not go ahead. The
// detail is detailPrefix, the key values, detailSuffix.
type fkFailure struct {
	code, message, detailPrefix, detailSuffix, hint string
}

// restrictViolation is PostgreSQL's own error for a NO ACTION or RESTRICT
// foreign key with referencing rows, word for word, so that clients that
// match on it keep working.
func restrictViolation(fk *policy.ForeignKey) fkFailure {
	return fkFailure{
		code:         "23503",
		message:      fmt.Sprintf("update or delete on table %q violates foreign key constraint %q on table %q", fk.Parent.Name, fkName(fk), fk.Child.Name),
		detailPrefix: "Key (" + strings.Join(fk.ParentCols, ", ") + ")=(",
		detailSuffix: fmt.Sprintf(") is still referenced from table %q.", fk.Child.Name),
	}
}

// lossyAction: the foreign key would cascade into a plain table, or set
// columns of referencing rows, which a soft delete cannot do without
// losing what a restore needs.
func lossyAction(fk *policy.ForeignKey) fkFailure {
	what := "would remove rows of " + fmt.Sprintf("%q", fk.Child.Name) + ", which is not a soft-delete table"
	hint := fmt.Sprintf("Add %s to tables in the Tombstone configuration so its rows are soft-deleted with their parent, or delete the referencing rows first.", fk.Child.Name)
	if fk.OnDelete != policy.Cascade {
		what = fmt.Sprintf("would %s %s in referencing rows of %q, which a restore could not undo", fk.OnDelete, strings.Join(fk.ChildCols, ", "), fk.Child.Name)
		hint = "Delete or re-point the referencing rows first, or run the DELETE as a privileged role."
	}
	return fkFailure{
		code:         "0A000",
		message:      fmt.Sprintf("tombstone: DELETE on %q %s (foreign key %q, ON DELETE %s), so nothing was deleted", fk.Parent.Name, what, fkName(fk), fk.OnDelete),
		detailPrefix: "Key (" + strings.Join(fk.ParentCols, ", ") + ")=(",
		detailSuffix: fmt.Sprintf(") is referenced from table %q.", fk.Child.Name),
		hint:         hint,
	}
}

// plainParentCascade: deleting rows of a plain table would make the
// server's ON DELETE CASCADE remove rows of a soft-delete table for good.
func plainParentCascade(fk *policy.ForeignKey) fkFailure {
	return fkFailure{
		code:         "0A000",
		message:      fmt.Sprintf("tombstone: DELETE on %q would remove rows of soft-delete table %q for good (foreign key %q, ON DELETE CASCADE), so nothing was deleted", fk.Parent.Name, fk.Child.Name, fkName(fk)),
		detailPrefix: "Key (" + strings.Join(fk.ParentCols, ", ") + ")=(",
		detailSuffix: fmt.Sprintf(") is referenced from table %q (deleted rows count too: they are kept, not gone).", fk.Child.Name),
		hint:         fmt.Sprintf("Make %s a soft-delete table too, or purge the referencing rows as a privileged role first.", fk.Parent.Name),
	}
}

func fkName(fk *policy.ForeignKey) string {
	if fk.Name == "" {
		return "cascade " + fk.Child.Name + "." + strings.Join(fk.ChildCols, ",") + " (configured)"
	}
	return fk.Name
}

// refuseNoHelpers: a DELETE must check a foreign key at run time, and the
// function that raises the error is not installed in this database.
func refuseNoHelpers(table string) *Refusal {
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "55000",
		Message: fmt.Sprintf("tombstone: DELETE on %s must check its foreign keys, and Tombstone's helper functions are not installed in this database, so it was refused", table),
		Detail:  "A soft delete leaves the row in place, so PostgreSQL's own foreign-key actions do not run; Tombstone checks them with tombstone.fail().",
		Hint:    "Run tombstone migrate --config FILE --dsn DSN --apply as a privileged role, then reconnect.",
		Table:   table,
	}
}

// refuseCascadeCycle: ON DELETE CASCADE leads back to a table already on
// the path; the rewrite would have to chase it without end.
func refuseCascadeCycle(path []string) *Refusal {
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "0A000",
		Message: "tombstone: DELETE would cascade in a cycle (" + strings.Join(path, " -> ") + "), which Tombstone does not carry out yet, so it was refused",
		Hint:    "Soft-delete the rows of each table in the cycle yourself, or run the DELETE as a privileged role.",
		Table:   path[0],
	}
}

// refuseCopyPartitioned is the server's own answer to COPY of a
// partitioned table TO: the rewrite into COPY (SELECT ...) would
// otherwise succeed where PostgreSQL fails.
func refuseCopyPartitioned(t *policy.Table) *Refusal {
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "42809",
		Message: fmt.Sprintf("cannot copy from partitioned table %q", t.Name),
		Hint:    "Try the COPY (SELECT ...) TO variant.",
		Table:   t.QualifiedName(),
	}
}

// refuseBadTag: a sqlcommenter actor or reason tag decodes to bytes that
// are not UTF-8 text, which the deleted_by or deleted_reason column could
// not hold as written.
func refuseBadTag(key string) *Refusal {
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "22021",
		Message: fmt.Sprintf("tombstone: the %s tag of the statement's sqlcommenter comment is not valid UTF-8 once URL-decoded, so the statement was refused", key),
		Hint:    "URL-encode the value's UTF-8 bytes (%C3%A9 for é), as sqlcommenter libraries do.",
	}
}

// refuseActorType: deleted_by has a type the actor cannot be converted
// to exactly.
func refuseActorType(t *policy.Table, typ string) *Refusal {
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "0A000",
		Message: fmt.Sprintf("tombstone: DELETE on %s must fill deleted_by column %q, whose type %s is not text, integer, bigint or uuid, so it was refused", t.QualifiedName(), t.DeletedBy, typ),
		Hint:    "Make the deleted_by column text, integer, bigint or uuid, or remove deleted_by for this table from the Tombstone configuration.",
		Table:   t.QualifiedName(),
	}
}

// restoreOrphan: a restore would make a row live whose parent stays
// deleted, the situation the foreign key exists to prevent. PostgreSQL's
// code for it, 23503.
func restoreOrphan(fk *policy.ForeignKey) fkFailure {
	return fkFailure{
		code:         "23503",
		message:      fmt.Sprintf("tombstone: restoring rows of %q would make them reference a deleted row of %q (foreign key %q), so nothing was restored", fk.Child.Name, fk.Parent.Name, fkName(fk)),
		detailPrefix: "Key (" + strings.Join(fk.ChildCols, ", ") + ")=(",
		detailSuffix: fmt.Sprintf(") refers to a deleted row of table %q.", fk.Parent.Name),
		hint:         fmt.Sprintf("Restore the %s row in the same statement (restoring it brings back what its deletion took with it), or re-point the reference first.", fk.Parent.Name),
	}
}

// refuseRestoreNoHelpers: a restore must check foreign keys at run time,
// and tombstone.fail is not installed.
func refuseRestoreNoHelpers(table string) *Refusal {
	r := refuseNoHelpers(table)
	r.Message = fmt.Sprintf("tombstone: restoring rows of %s must check its foreign keys, and Tombstone's helper functions are not installed in this database, so it was refused", table)
	r.Detail = "A restored row must not reference a parent that stays deleted; Tombstone checks that with tombstone.fail()."
	return r
}

// refuseAuditWrite: the audit log is written by Tombstone's rewrites only.
func refuseAuditWrite(verb string) *Refusal {
	return &Refusal{
		Reason:  ReasonPrivileged,
		Code:    "42501",
		Message: "tombstone: " + verb + " the audit log refused: only Tombstone's own rewrites write it, and the application may not read it",
		Detail:  "A row written by hand could claim a deletion that never happened.",
		Hint:    "Run it as a privileged role.",
	}
}

// refuseRestoreCascade: a restore through the proxy would cascade into a
// table without allow_restore.
func refuseRestoreCascade(t *policy.Table, fk *policy.ForeignKey) *Refusal {
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "42501",
		Message: fmt.Sprintf("tombstone: restoring rows of %s would also restore rows of %s (foreign key %q, ON DELETE CASCADE), which does not allow restores, so it was refused", t.QualifiedName(), fk.Child.String(), fkName(fk)),
		Hint:    fmt.Sprintf("Set allow_restore: true for %s too, or restore with tombstone restore as a privileged role.", fk.Child.String()),
		Table:   t.QualifiedName(),
	}
}

// refuseCoarseRestore: a cascading restore matches children by their
// deleted_at stamp, which this table rounds to the second (or coarser):
// it would bring back children deleted on their own in the same second.
func refuseCoarseRestore(t *policy.Table) *Refusal {
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "0A000",
		Message: fmt.Sprintf("tombstone: a restore with its cascade cannot tell deletions of %s apart: its deleted_at column is %s, so deletions in the same second share a stamp; nothing was restored", t.QualifiedName(), t.DeletedAtType),
		Hint:    fmt.Sprintf("Make the column microsecond-precise (ALTER TABLE %s ALTER COLUMN %s TYPE timestamp with time zone), or restore without --cascade.", t.QualifiedName(), quoteIdent(t.DeletedAt)),
		Table:   t.QualifiedName(),
	}
}

// refuseHandDelete: an UPDATE that sets deleted_at itself is a soft
// delete Tombstone cannot stand behind.
func refuseHandDelete(t *policy.Table, why string, restorable bool) *Refusal {
	hint := "Use DELETE: through Tombstone it is the soft delete, with cascades, checks and the audit log. (An ORM's own soft-delete feature is not needed.)"
	if restorable {
		// A bound NULL (SET deleted_at = $1) looks the same as a bound
		// timestamp until Bind.
		hint += fmt.Sprintf(" To restore, write the NULL in the statement: UPDATE %s SET %s = NULL WHERE ...", t.QualifiedName(), quoteIdent(t.DeletedAt))
	}
	return &Refusal{
		Reason:  ReasonUnsupported,
		Code:    "0A000",
		Message: fmt.Sprintf("tombstone: setting %s.%s to a value soft-deletes rows in a way Tombstone cannot stand behind (%s), so it was refused", t.QualifiedName(), t.DeletedAt, why),
		Hint:    hint,
		Table:   t.QualifiedName(),
	}
}
