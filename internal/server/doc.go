// Package server runs Tombstone as a service: it builds the policy,
// rewriter and proxy from a validated configuration, opens the proxy and
// admin (metrics) listeners, reloads the configuration on request, and
// shuts everything down gracefully.
//
// It is the wiring layer between cmd/tombstone (flags and signals) and the
// packages that do the work. It imports the standard library,
// client_golang, internal/config, internal/buildinfo, policy, rewrite,
// metrics and proxy; only cmd/tombstone imports it.
package server
