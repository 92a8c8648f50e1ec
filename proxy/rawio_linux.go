package proxy

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// rawIO is a socket whose reads and writes are raw system calls issued
// through the netpoller (syscall.RawConn), instead of net.Conn's
// syscall.Read and syscall.Write.
//
// Why: a Go syscall goes through entersyscall, which wakes the runtime's
// sysmon thread whenever it sleeps. At one client every round trip leaves
// all Ps idle, so sysmon sleeps, and the next socket write wakes it: two
// to three extra context switches per transaction (nanosleep, futex),
// which on this machine's virtualised CPUs cost more than the copy
// itself. A socket is non-blocking, so its reads and writes never block
// and need no P hand-off; would-block (EAGAIN) still parks the goroutine
// in the netpoller, and deadlines and Close work as for net.Conn
// because RawConn.Read and Write check them.
//
// As net.Conn promises, methods may be called from several goroutines at
// once: a mutex per direction guards the state its callback reads (the
// relay has one reader and one writer per direction, so neither is
// contended in the steady state).
type rawIO struct {
	net.Conn
	rc syscall.RawConn

	rmu    sync.Mutex
	rp     []byte // the read in progress
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool // c.read, bound once: no allocation per call

	wmu     sync.Mutex
	wp      []byte // what is left of the write in progress
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
}

// withRawIO wraps a TCP or Unix-socket connection; any other connection
// is returned as is.
func withRawIO(c net.Conn) net.Conn {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return c
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return c
	}
	r := &rawIO{Conn: c, rc: rc}
	r.readFn, r.writeFn = r.read, r.write
	return r
}

func (c *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rp, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rp = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is the RawConn callback: false asks the netpoller to wait until
// the socket is readable.
func (c *rawIO) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.rp))), uintptr(len(c.rp)))
		switch e {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rerr = e
		return true
	}
}

func (c *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wp, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	n, errno := c.wn, c.werr
	c.wp = nil
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// write is the RawConn callback: it writes until everything is out or
// the socket's buffer is full (false: wait until it is writable).
func (c *rawIO) write(fd uintptr) bool {
	for len(c.wp) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.wp))), uintptr(len(c.wp)))
		switch e {
		case 0:
			c.wn += int(n)
			c.wp = c.wp[n:]
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.werr = e
		return true
	}
	return true
}

// opError wraps err as net.Conn's methods do, so callers can still ask
// errors.Is(err, net.ErrClosed) or err.(net.Error).Timeout().
func (c *rawIO) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
