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
// (limits.go, measured on the same tokens), pg_query's parser (run on a
// parser stack of its own, bigstack.go, so that no input can overflow the
// calling thread's stack),
// the rules (engine.go for statements, from.go for FROM trees and outer
// joins, plpgsql.go for the SQL inside DO blocks and function bodies,
// settings.go for settings that change how the server scans SQL), a
// final check that every reference to a configured table was handled by
// some rule and that no SQL-running built-in is reached (anything else is
// refused, never passed through), and, when something changed, the
// splicer (splice.go: the rules' edits made in the client's own text, at
// offsets the tree and the scanner give) or, for what it cannot place
// with certainty, pg_query's deparser (on a parser stack too).
//
// Every refusal is built in refusal.go. CheckLexing (lexing.go) is the
// proxy's check of a text against the session's reported settings.
//
// It imports the standard library, pg_query_go, protobuf (to decode and
// walk pg_query's trees, which have no walker) and policy; bigstack.c
// calls pg_query's C entry points through cgo.
package rewrite
