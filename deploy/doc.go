// Package deploy holds the deployment examples (Dockerfile at the
// repository root, deploy/compose, deploy/kubernetes) and gives Go code the
// parts that must stay identical between them and `make demo`: the demo
// schema and the demo Tombstone configuration, embedded from deploy/compose.
//
// It is a leaf package for tools (cmd/tombstone-demo) and tests: it imports
// only the standard library and yaml.v3, and nothing imports it from the
// proxy's runtime path. Its tests check that the examples agree with each
// other and with the code's defaults, and run them against a real PostgreSQL.
package deploy
