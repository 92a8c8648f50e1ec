// Package schematool inspects the soft-delete schema of one PostgreSQL
// database, judges it, and plans the DDL that fixes what it can: the
// engine behind `tombstone doctor` and `tombstone migrate`.
//
// Inspect reads what a check needs (indexes, constraints, triggers,
// rules, row-level security policies, grants, deleted-row counts) with
// search_path-proof queries on a direct connection; Check turns those
// facts into a Report of findings; NewPlan turns them into Steps, each
// either one short transaction or statements that must run one by one
// (CREATE INDEX CONCURRENTLY cannot run inside a transaction block), and
// lists what it cannot do safely, with why.
//
// It sits above package catalog (whose Plan and AuditTable it schedules)
// and policy (whose resolved tables and foreign keys it reads). It uses
// pg_query to read the expressions PostgreSQL prints (index predicates,
// policy expressions) and to write the partial forms of indexes and
// constraints. It imports nothing of the proxy, the rewriter or the
// configuration format.
package schematool
