// Package rewrite turns SQL that touches soft-delete tables into SQL that
// behaves as if deleted rows were gone.
//
// It is pure: SQL text and a *policy.Policy in, SQL text plus facts out
// (tables touched, rules applied, which statements must report a DELETE
// command tag). No I/O, no logging, no globals. The only state is the
// Rewriter's cache, which memoises the pure function. It imports the
// standard library, pg_query_go and policy.
package rewrite
