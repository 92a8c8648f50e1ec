// Package proxytest runs a real Tombstone proxy in front of a test's
// PostgreSQL server (from internal/pgtest): configuration parsed from
// YAML, policy, rewriter and metrics on a fresh registry, a listener on
// loopback (or a Unix socket), and shutdown at test cleanup. Every
// end-to-end test (proxy, rewrite, operations, benchmarks) uses it.
//
// It is test support: it imports proxy and the packages proxy needs,
// internal/config and internal/server (to build the policy and options
// from YAML exactly as serve does), pgtest, and the testing package, and
// is imported only by tests.
package proxytest
