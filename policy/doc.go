// Package policy answers "for this login role and this table, what
// applies?" from a validated configuration.
//
// A *Policy is immutable once built: a configuration reload builds a new one
// and the proxy swaps it in atomically, so a statement is always rewritten
// under exactly one policy. It imports only the standard library and
// internal/config.
package policy
