package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection, the server end
// wrapped in rawIO.
func tcpPair(t *testing.T) (raw, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	raw = withRawIO(c)
	if _, ok := raw.(*rawIO); !ok {
		t.Fatalf("withRawIO(%T) did not wrap the TCP connection", c)
	}
	t.Cleanup(func() { raw.Close(); peer.Close() })
	return raw, peer
}

// rawIO must keep net.Conn's contract: data both ways, EOF when the peer
// closes, a timeout error at the deadline, net.ErrClosed after Close.
func TestRawIOBehavesAsNetConn(t *testing.T) {
	raw, peer := tcpPair(t)

	// A write larger than the socket buffers completes only through
	// would-block waits in the netpoller.
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i)
	}
	done := make(chan error, 1)
	go func() {
		_, err := raw.Write(big)
		done <- err
	}()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	for i := range got {
		if got[i] != big[i] {
			t.Fatalf("byte %d: got %d, want %d", i, got[i], big[i])
		}
	}

	// A read waits for data.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = peer.Write([]byte("hello"))
	}()
	buf := make([]byte, 16)
	n, err := raw.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read = %q, %v; want hello", buf[:n], err)
	}

	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = raw.Read(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a deadline error", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v is not a net.Error timeout", err)
	}
	_ = raw.SetReadDeadline(time.Time{})

	peer.Close()
	if _, err := raw.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}

	raw.Close()
	if _, err := raw.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
	if _, err := raw.Write(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
}

// A read blocked in the netpoller returns when another goroutine closes
// the connection, as the relay relies on to stop a session.
func TestRawIOCloseUnblocksRead(t *testing.T) {
	raw, _ := tcpPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := raw.Read(make([]byte, 16))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	raw.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read interrupted by Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a pending read")
	}
}

// The callbacks are bound once: a read or write allocates nothing.
func TestRawIODoesNotAllocate(t *testing.T) {
	raw, peer := tcpPair(t)
	msg, buf := []byte("ping"), make([]byte, 16)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := raw.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(raw, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round trip, want 0", allocs)
	}
}

// Writers on several goroutines at once (net.Conn allows it) each get
// their bytes out whole.
func TestRawIOConcurrentWriters(t *testing.T) {
	raw, peer := tcpPair(t)
	const writers, size = 4, 256 << 10
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			_, err := raw.Write(bytes.Repeat([]byte{byte('a' + w)}, size))
			errc <- err
		}()
	}
	got := make([]byte, writers*size)
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second)) // writers that lose bytes leave it short
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	for w := 0; w < writers; w++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// Each Write holds the direction for its whole length: the stream is
	// writers runs of one letter each.
	for i := 0; i < len(got); i += size {
		if run := bytes.Count(got[i:i+size], got[i:i+1]); run != size {
			t.Fatalf("bytes %d..%d mix writers: %d of %d are %q", i, i+size, run, size, got[i])
		}
	}
}
