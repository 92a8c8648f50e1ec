// Package metrics defines Tombstone's Prometheus collectors.
//
// Collectors are registered on a prometheus.Registerer that cmd/ creates and
// passes in; nothing registers globally, so tests build as many independent
// sets as they like. Every label value comes from the configuration or a
// fixed set defined here, never from client SQL, so cardinality is bounded.
// It imports only the standard library and client_golang.
package metrics
