// Package pgcluster starts and stops throwaway PostgreSQL clusters from the
// local server binaries (initdb and postgres on a free port in a temporary
// directory, fsync off). When run as root the cluster runs as the OS user
// "postgres", because the server refuses to run as root.
//
// The test harness (internal/pgtest), `make demo` and `make bench` use it.
// It imports only the standard library and pgx.
package pgcluster
