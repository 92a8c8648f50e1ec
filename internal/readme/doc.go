// Package readme holds the test that keeps README.md's commands honest: it
// runs each command of the README's console blocks that needs no server,
// as written, with a freshly built bin/tombstone, and compares what it
// prints with what the README shows.
//
// Tests only; it imports internal/buildtest to build the binary. Nothing
// imports it.
package readme
