//go:build !linux

package proxy

import "net"

// withRawIO is a no-op where raw socket system calls are not wired up
// (see rawio_linux.go for why Linux uses them).
func withRawIO(c net.Conn) net.Conn { return c }
