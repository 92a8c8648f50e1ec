// Command tombstone-bench is the benchmark suite behind `make bench`
// (issues 5 and 13). It measures what putting Tombstone in front of
// PostgreSQL costs, against a direct connection and against PgBouncer in
// session mode (the reference users know), measured in the same run:
//
//   - throughput with pgbench (8 clients, -M simple and -M prepared) for a
//     read-only query, a write mix with a soft DELETE, a unique-text
//     workload (literals change: the template cache's path) and a
//     unique-shape workload that no cache can help, the endpoints
//     alternating round by round, with each proxy's CPU per transaction;
//   - added latency per round trip with one client (median and p99, from
//     pgbench's per-transaction log), with each proxy's CPU, context
//     switches and system calls per transaction;
//   - proxy memory per idle client connection (RSS from /proc) and RSS over
//     the run;
//   - a CPU profile of the proxy under the read-only load.
//
// Every figure it prints is measured in that run; targets are printed next
// to them as PASS or MISS and never asserted in unit tests.
//
// It is a tool, not a library layer: it runs the tombstone binary as a
// separate process (as users do) and imports only internal/pgcluster for the
// throwaway server, pgx for its own connections and the standard library.
package main
