// Package config reads and validates Tombstone's YAML configuration file.
//
// It is the only place that knows the file format: key names, defaults,
// ${VAR} expansion from the environment and error messages that name the
// key and line. Everything downstream (policy, proxy, metrics, cmd) receives
// a validated *File and never re-checks it. It imports only the standard
// library and gopkg.in/yaml.v3.
package config
