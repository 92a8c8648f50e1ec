// Package purge is the second phase of a soft delete: it removes rows for
// good. Run removes rows soft-deleted longer ago than their table's
// retention, in short batches that each commit on their own, children
// before parents; Erase removes chosen rows (live or deleted) with the
// rows that cascade from them, in one transaction. Both write the audit
// log, when one is configured, in the transaction that removes the rows.
//
// Neither lets PostgreSQL remove a row Tombstone did not choose and audit:
// a retention purge removes only rows that nothing references any more
// (a parent whose children stay is held and reported), and an erasure
// follows every foreign key onto the rows it removes, as the database
// would, before it removes anything.
//
// It is a privileged job on a direct connection. It imports the standard
// library, pgx, policy and catalog (for quoting and the audit log's
// columns), never the configuration format: cmd/tombstone passes options
// in.
package purge
