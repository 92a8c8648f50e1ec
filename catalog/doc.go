// Package catalog reads what one PostgreSQL database says about the
// configured soft-delete tables (their OIDs, columns, primary keys,
// partition and inheritance descendants, and the foreign keys into and out
// of them) and plans the database objects Tombstone needs there (schema
// tombstone, its helper functions, and the constraint triggers that keep
// rows from referencing soft-deleted parents).
//
// Query and Decode are the two halves of a catalog read: Query builds one
// SQL statement, safe to run in a session whose search_path, client
// encoding and standard_conforming_strings the application chooses, and
// Decode turns its one text value into a policy.Schema. The proxy runs the
// query on its own upstream connection; Read does both with pgx for
// command-line tools. Plan lists the idempotent DDL that `tombstone
// migrate` runs.
//
// It is the layer between the database and package policy: it imports the
// standard library, pgx and policy, and nothing of the proxy or the
// configuration format.
package catalog
