// Package server runs Tombstone as a service: it builds the policy,
// rewriter and proxy from a validated configuration, opens the proxy,
// admin (metrics) and, when configured, trash console listeners, reloads the configuration on request, and
// shuts everything down gracefully.
//
// It is the wiring layer between cmd/tombstone (flags and signals) and the
// packages that do the work, and the one place (spec.go) that turns the
// configuration file into a policy.Spec and proxy.Options: policy and
// proxy never import internal/config. It imports the standard library,
// client_golang, pgx, internal/config, internal/buildinfo, policy,
// catalog, rewrite, metrics, proxy and console; only cmd/tombstone (and
// internal/proxytest, for tests) imports it.
package server
