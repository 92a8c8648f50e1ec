// Command tombstone-demo is `make demo`: it starts a throwaway PostgreSQL
// from the local server binaries (internal/pgcluster), loads the demo
// schema, starts the tombstone binary in front of it with the compose
// demo's configuration (both from package deploy, so the demo and
// deploy/compose cannot drift apart), and prints connection URLs and three
// psql commands that show a DELETE becoming a soft delete. Ctrl-C or
// SIGTERM stops Tombstone, then PostgreSQL, and removes their files.
//
// It is a tool, not part of the proxy: it imports deploy, internal/pgcluster
// and pgx, and runs Tombstone only as a child process, as users do.
package main
