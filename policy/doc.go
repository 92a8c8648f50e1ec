// Package policy answers "for this login role and this table, what
// applies?": which tables are soft-delete, which roles pass untouched, and
// which foreign keys a DELETE must carry out or check.
//
// A Spec (what the configuration asks for) gives a name-only *Policy;
// WithSchema resolves it against one database's catalog (package catalog
// reads it) into that database's *Policy. A *Policy is immutable once
// built: a reload or catalog refresh builds a new one and the proxy swaps
// it in atomically, so a statement is always rewritten under exactly one
// policy. It imports only the standard library.
package policy
