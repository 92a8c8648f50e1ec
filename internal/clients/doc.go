// Package clients is the client matrix: real drivers and ORMs that
// applications use (node-postgres with pg-cursor, Sequelize, Knex,
// psycopg2, the Django ORM, SQLAlchemy, ActiveRecord and psql) run a
// script each through a real Tombstone against a real PostgreSQL, and the
// same script directly against a twin database where deletes are real.
// Each script compares what the two sides answered; the Go driver then
// compares what is on disk: live rows in the soft-delete database must be
// exactly the rows of the hard-delete one, and the rest must still be there
// with deleted_at set.
//
// The tests need the clients installed (scripts/ensure-clients.sh, run by
// make test-clients) and carry the build tag "clients", so that go test
// ./... on a machine without them does not fail; a missing client under
// the tag is a failure, never a skip. The scripts live in testdata/, where
// the go command does not look; Node's packages are pinned by
// testdata/package-lock.json.
//
// It is an outermost layer like internal/e2e: tests only, importing the
// proxy through internal/proxytest and the server harness internal/pgtest.
// Nothing imports it.
package clients
