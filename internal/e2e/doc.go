// Package e2e holds Tombstone's end-to-end tests: real clients (psql, pgx in
// the simple and extended protocol, lib/pq, raw pgconn pipelines) talk to a
// real PostgreSQL through a real proxy, and a randomized differential test
// runs one workload through Tombstone against soft-delete tables and
// directly against an identical schema where deletes are real, demanding the
// same answers from both.
//
// It is the outermost layer: tests only, importing the proxy through
// internal/proxytest, the server harness internal/pgtest, and client
// libraries. Nothing imports it.
package e2e
