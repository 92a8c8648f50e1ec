// Package buildinfo holds the version stamped into the binary at link time
// (-ldflags -X), shown by `tombstone version` and tombstone_build_info.
package buildinfo

// Set by the Makefile and the Dockerfile through -ldflags.
var (
	Version  = "dev"
	Revision = "unknown"
)
