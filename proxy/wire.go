package proxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Buffer sizes. Four buffers per session bound idle memory (the
// performance target is 64 KiB per idle client). Only the upstream reader
// is larger, because results are the bulk of the traffic: copyMessage
// hands its 16 KiB chunks to the client writer, which writes a chunk
// larger than its free space straight to the socket, so a small client
// writer costs no extra copy.
const (
	clientReadBuf   = 8 << 10
	clientWriteBuf  = 8 << 10
	upstreamReadBuf = 16 << 10
	upstreamWrite   = 8 << 10
	// maxStartupPacket is PostgreSQL's own MAX_STARTUP_PACKET_LENGTH.
	maxStartupPacket = 10000
	// maxDecodedServer bounds a server message the proxy reads whole to
	// inspect (CommandComplete, ErrorResponse, startup messages). Real
	// ones are tiny; a larger one is forwarded untouched instead of being
	// buffered.
	maxDecodedServer = 1 << 20
	// keepBuf is the largest message buffer a session keeps between
	// messages; a larger one (a huge Query) is released after use.
	keepBuf = 64 << 10
)

// readHeader reads a message's type byte and body length (the length
// field minus its own 4 bytes) without consuming them.
func readHeader(r *bufio.Reader) (typ byte, n int, err error) {
	h, err := r.Peek(5)
	if err != nil {
		if err == io.EOF && len(h) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	l := int(int32(binary.BigEndian.Uint32(h[1:5])))
	if l < 4 {
		return h[0], 0, fmt.Errorf("message %q has invalid length %d", h[0], l)
	}
	return h[0], l - 4, nil
}

// copyMessage forwards the message whose header readHeader just peeked
// (5+n bytes) from r to w without allocating. Bytes go straight from r's
// buffer into w's; a body larger than both is streamed, never held whole.
func copyMessage(w *bufio.Writer, r *bufio.Reader, n int) error {
	left := 5 + n
	for left > 0 {
		k := left
		if b := r.Buffered(); b > 0 && b < k {
			k = b
		}
		if k > r.Size() {
			k = r.Size()
		}
		b, err := r.Peek(k)
		if err != nil {
			return noEOF(err)
		}
		if _, err := w.Write(b); err != nil {
			return &writeError{err}
		}
		_, _ = r.Discard(k)
		left -= k
	}
	return nil
}

// readMessage consumes the peeked message and returns its body in buf
// (grown as needed).
func readMessage(r *bufio.Reader, n int, buf []byte) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := r.Discard(5); err != nil {
		return buf, noEOF(err)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, noEOF(err)
	}
	return buf, nil
}

// writeMessage writes a message of type typ with the given body. The
// header goes byte by byte: a [5]byte handed to Write would escape to the
// heap, one allocation per message.
func writeMessage(w *bufio.Writer, typ byte, body ...[]byte) error {
	n := 4
	for _, b := range body {
		n += len(b)
	}
	_ = w.WriteByte(typ)
	_ = w.WriteByte(byte(n >> 24))
	_ = w.WriteByte(byte(n >> 16))
	_ = w.WriteByte(byte(n >> 8))
	if err := w.WriteByte(byte(n)); err != nil {
		return &writeError{err}
	}
	for _, b := range body {
		if _, err := w.Write(b); err != nil {
			return &writeError{err}
		}
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeError marks a failure to write to the destination of a relay
// direction, as opposed to reading from its source.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// cstring splits b at its first NUL: the string and what follows it.
func cstring(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, nil, false
}

// pgError is an ErrorResponse Tombstone writes itself.
type pgError struct {
	Severity string // ERROR or FATAL
	Code     string
	Message  string
	Detail   string
	Hint     string
}

func (e *pgError) Error() string { return e.Code + ": " + e.Message }

// encode returns the complete ErrorResponse message.
func (e *pgError) encode() []byte {
	b, err := (&pgproto3.ErrorResponse{
		Severity: e.Severity, SeverityUnlocalized: e.Severity,
		Code: e.Code, Message: e.Message, Detail: e.Detail, Hint: e.Hint,
	}).Encode(nil)
	if err != nil {
		// Only a message over 1 GiB fails to encode; ours are short.
		panic("proxy: encode ErrorResponse: " + err.Error())
	}
	return b
}
