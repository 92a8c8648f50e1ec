// Package buildtest builds the tombstone command for tests that run it as a
// separate process (the deployment examples and `make demo`), the way users
// run it. It is test support: only _test.go files import it. It imports only
// the standard library and testing.
package buildtest
