// Package pgtest gives tests a real PostgreSQL server.
//
// When TOMBSTONE_TEST_DSN is set, tests use that server. Otherwise the first
// call to Shared starts a throwaway cluster (see internal/pgcluster) and Main
// stops it when the test binary exits. Tests that need a server of their own
// (TLS on, a server to kill) call Start.
//
// There are no mocks of PostgreSQL anywhere in Tombstone's tests: every wire
// and rewrite test talks to a server this package provides. It is imported
// by tests only.
package pgtest
