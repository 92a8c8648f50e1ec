// Package rewrite turns SQL that touches soft-delete tables into SQL that
// behaves as if deleted rows were gone.
//
// It is pure: SQL text and a *policy.Policy in, SQL text plus facts out
// (tables touched, rules applied, which statements must report a DELETE
// command tag). No I/O, no logging, no globals. The only state is the
// Rewriter's cache, which memoises the pure function.
//
// A text goes through: the prefilter (no configured table name and no
// tracked keyword: skip everything), the exact-text cache, the template
// cache (template.go: literals replaced by placeholders, so that texts
// differing only in values share one rewrite; scan.go, PostgreSQL's
// scanner rules, finds the literals), length and nesting bounds
// (the C parser must never see input that can crash it), pg_query's parser,
// the rules (engine.go for statements, from.go for FROM trees and outer
// joins), a final check that every reference to a configured table was
// handled by some rule (anything else is refused, never passed through),
// and pg_query's deparser when something changed.
//
// It imports the standard library, pg_query_go, protobuf reflection (to
// walk pg_query's trees, which have no walker) and policy.
package rewrite
