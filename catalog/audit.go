package catalog

import (
	"strings"

	"github.com/tombstone-proxy/tombstone/policy"
)

// AuditColumns are the audit log's columns that a writer supplies, in the
// order the rewriter's INSERT lists them. The others (id, at, login_role,
// xid) are filled by the server from defaults: the application may insert
// only these columns, so it cannot backdate a row, claim another login or
// another transaction.
//
//	action       delete, restore or purge
//	table_name   the affected row's table, schema-qualified and quoted as
//	             format('%I.%I') quotes it
//	key          its primary key as a JSON object; NULL without one
//	actor        who: a sqlcommenter actor tag, tombstone.actor, the login role
//	reason       why: a sqlcommenter reason tag, tombstone.reason, or NULL
//	fingerprint  the statement's fingerprint (rewrite.Fingerprint): its
//	             shape, never its literal values
//	deletion     the deleted_at stamp the row was deleted with, shared by
//	             every row of one deletion: what a restore or purge of the
//	             row undoes or finishes
var AuditColumns = []string{"action", "table_name", "key", "actor", "reason", "fingerprint", "deletion"}

// AuditTable is the DDL that creates the audit log t, idempotently. The
// application (PUBLIC) may insert the AuditColumns and nothing else: no
// SELECT, UPDATE, DELETE or TRUNCATE, so the rows it writes cannot be
// changed or removed by it. Privileged roles (the table's owner) read it.
func AuditTable(t policy.RelName) []string {
	name := QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name)
	cols := make([]string, len(AuditColumns))
	for i, c := range AuditColumns {
		cols[i] = QuoteIdent(c)
	}
	return []string{
		"CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(t.Schema),
		"GRANT USAGE ON SCHEMA " + QuoteIdent(t.Schema) + " TO PUBLIC",
		`CREATE TABLE IF NOT EXISTS ` + name + ` (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  action text NOT NULL CHECK (action IN ('delete', 'restore', 'purge')),
  table_name text NOT NULL,
  key jsonb,
  actor text,
  reason text,
  login_role text NOT NULL DEFAULT SESSION_USER,
  xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
  fingerprint text,
  deletion timestamptz
)`,
		"CREATE INDEX IF NOT EXISTS " + QuoteIdent(boundedName(t.Name+"_table_key", t.Name, false)) + " ON " + name + " (table_name, key)",
		"CREATE INDEX IF NOT EXISTS " + QuoteIdent(boundedName(t.Name+"_deletion", t.Name, false)) + " ON " + name + " (deletion)",
		"REVOKE ALL ON " + name + " FROM PUBLIC",
		"GRANT INSERT (" + strings.Join(cols, ", ") + ") ON " + name + " TO PUBLIC",
	}
}
