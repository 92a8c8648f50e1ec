// Package config reads and validates Tombstone's YAML configuration file.
//
// It is the only place that knows the file format: key names, defaults,
// ${VAR} expansion from the environment, identifier folding (table and
// column names are read as PostgreSQL reads them) and error messages that
// name the key and line. Only cmd/tombstone and internal/server import it;
// internal/server turns a validated *File into a policy.Spec and
// proxy.Options, so policy and proxy never see the file format. It imports
// only the standard library and gopkg.in/yaml.v3.
package config
