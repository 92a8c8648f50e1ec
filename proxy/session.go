package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// fatalWriteTimeout bounds the final ErrorResponse to a client that may
// have stopped reading.
const fatalWriteTimeout = 2 * time.Second

// Why a session ended. The first reason wins; those with a message are
// sent to the client as ErrorResponse FATAL.
var (
	errClientGone   = &pgError{}
	errTerminated   = &pgError{}
	errShutdown     = &pgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command", Detail: "Tombstone is shutting down."}
	errUpstreamLost = &pgError{Severity: "FATAL", Code: "08006", Message: "tombstone: connection to the upstream PostgreSQL server was lost", Hint: "The server may have restarted or crashed; reconnect."}
)

// session is one client connection and its upstream connection.
type session struct {
	srv *Server
	id  uint64
	log *slog.Logger

	mu       sync.Mutex // guards client, upstream (replaced during startup)
	client   net.Conn
	upstream net.Conn
	key      string // BackendKeyData body, once seen (guarded by srv.mu)
	reason   atomic.Pointer[pgError]

	user       string
	privileged bool
	dbname     string    // from the startup packet
	db         *database // the database the client logged in to, once it has
	cancelPkt  []byte    // CancelRequest for this session's backend

	cr *bufio.Reader // client
	cw *bufio.Writer
	ur *bufio.Reader // upstream
	uw *bufio.Writer

	// State of the client-to-server goroutine.
	cbuf []byte
	// prepared is the projection of the session's prepared statements
	// (see preparedSet); portals holds the statement each portal bound to
	// a followed one runs.
	prepared preparedSet
	portals  map[string]*rewrite.Statement

	// Shared by both goroutines.
	exp      expectQueue
	refusals refusalQueue
	marker   string // per-connection prefix of refusal sentinels
	// lex is how the server scans this session's SQL, as its
	// ParameterStatus messages report; nil while that is how pg_query
	// scans (the usual case: one atomic load per statement then).
	lex atomic.Pointer[rewrite.LexState]

	// State of the server-to-client goroutine.
	sbuf []byte
}

func newSession(srv *Server, c net.Conn) *session {
	id := srv.nextID.Add(1)
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	return &session{
		srv:    srv,
		id:     id,
		log:    srv.log.With("conn", id),
		client: c,
		marker: "tombstone-refusal-" + hex.EncodeToString(nonce[:]) + "-",
	}
}

// terminate ends the session for reason (the first reason given wins):
// blocked reads return at once, and the final ErrorResponse gets a
// bounded time to reach the client.
func (s *session) terminate(reason *pgError) {
	if !s.reason.CompareAndSwap(nil, reason) {
		return
	}
	if reason == errUpstreamLost {
		s.srv.met.UpstreamError()
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.client.SetReadDeadline(now)
	_ = s.client.SetWriteDeadline(now.Add(fatalWriteTimeout))
	if s.upstream != nil {
		_ = s.upstream.SetDeadline(now)
	}
}

// run serves the connection until it ends.
func (s *session) run() {
	s.srv.met.ClientOpened()
	defer s.srv.met.ClientClosed()
	defer func() {
		s.mu.Lock()
		s.client.Close()
		if s.upstream != nil {
			s.upstream.Close()
		}
		s.mu.Unlock()
	}()
	ok, err := s.startup()
	if err != nil {
		s.log.Debug("connection ended during startup", "err", err)
		s.sendFatal(s.reason.Load())
		return
	}
	if ok {
		s.relay()
	}
}

// sendFatal writes a final ErrorResponse to the client, if the reason has
// a message.
func (s *session) sendFatal(e *pgError) {
	if e == nil || e.Code == "" || s.cw == nil {
		return
	}
	_ = s.client.SetWriteDeadline(time.Now().Add(fatalWriteTimeout))
	_, _ = s.cw.Write(e.encode())
	_ = s.cw.Flush()
}

// relay runs the two forwarding directions until one ends, then stops the
// other and waits for it.
func (s *session) relay() {
	c2sDone := make(chan struct{})
	go func() {
		defer close(c2sDone)
		s.terminate(s.clientToServer())
	}()
	mid, err := s.serverToClient()
	if s.reason.Load() == nil {
		var we *writeError
		if errors.As(err, &we) {
			s.terminate(errClientGone)
		} else {
			s.log.Warn("upstream connection lost", "user", s.user, "err", err)
			s.terminate(errUpstreamLost)
		}
	}
	reason := s.reason.Load()
	switch {
	case !mid:
		s.sendFatal(reason)
	case reason.Code != "":
		s.log.Warn("session ended in the middle of a server message; the client cannot be told why", "reason", reason.Message)
	}
	s.mu.Lock()
	s.client.Close()
	s.upstream.Close()
	s.mu.Unlock()
	<-c2sDone
	s.log.Debug("session ended", "user", s.user, "reason", reasonText(reason))
}

// reasonText names why a session ended, for the log.
func reasonText(e *pgError) string {
	switch e {
	case errClientGone:
		return "client disconnected"
	case errTerminated:
		return "client sent Terminate"
	}
	return e.Code + " " + e.Message
}

// clientToServer forwards client messages upstream and returns why it
// stopped (never nil).
func (s *session) clientToServer() *pgError {
	for {
		typ, err := s.forwardClientMessage()
		if err == nil {
			if typ == 'X' {
				// The reason is already recorded (terminate is then a
				// no-op): give the server a bounded time to close.
				s.mu.Lock()
				if s.upstream != nil {
					_ = s.upstream.SetReadDeadline(time.Now().Add(fatalWriteTimeout))
				}
				s.mu.Unlock()
				return errTerminated
			}
			continue
		}
		var tooBig *pgError
		var we *writeError
		switch {
		case errors.As(err, &tooBig):
			return tooBig
		case errors.As(err, &we):
			return errUpstreamLost
		default:
			return s.clientReadFailed(err)
		}
	}
}

// forwardClientMessage forwards one client message and flushes upstream
// when the client has sent nothing more, so a pipeline goes out in one
// write. It returns the message type; a *pgError for a message over
// max_message_size, a *writeError when the upstream fails.
func (s *session) forwardClientMessage() (byte, error) {
	r, w := s.cr, s.uw
	typ, n, err := readHeader(r)
	if err != nil {
		return 0, err
	}
	if maxSize := s.srv.opts.MaxMessageSize; n > maxSize {
		s.log.Warn("client message exceeds max_message_size", "type", string(typ), "bytes", n, "max", maxSize)
		// Read the rest of the message (briefly) before answering: a
		// client still writing it would otherwise meet a reset connection
		// instead of the error that says why.
		_ = s.client.SetReadDeadline(time.Now().Add(fatalWriteTimeout))
		_, _ = io.CopyN(io.Discard, r, int64(n))
		return typ, &pgError{Severity: "FATAL", Code: "08P01",
			Message: fmt.Sprintf("tombstone: message of %d bytes exceeds max_message_size (%d bytes)", n, maxSize),
			Hint:    "Send smaller messages, or raise max_message_size in the Tombstone configuration."}
	}
	if typ == 'X' {
		// The server closes its end once it reads Terminate: record the
		// goodbye first, so that EOF reads as the end it is and not as a
		// lost upstream (FATAL 08006 to a client still reading, and an
		// upstream error counted). The pending answers still reach the
		// client: no deadline is set here.
		s.reason.CompareAndSwap(nil, errTerminated)
	}
	if s.privileged {
		if typ == 'Q' || typ == 'P' {
			s.srv.met.Statement(metrics.ActionBypassed)
		}
		err = copyMessage(w, r, n)
	} else {
		err = s.clientMessage(typ, n)
	}
	if err != nil {
		return typ, err
	}
	if typ == 'X' || r.Buffered() == 0 {
		if err := w.Flush(); err != nil {
			return typ, &writeError{err}
		}
	}
	if hook := s.srv.afterForward.Load(); hook != nil {
		(*hook)(typ)
	}
	return typ, nil
}

// clientReadFailed handles a client that went away without Terminate:
// cancel whatever its backend is running (a backend notices a closed
// socket only when it next writes), then close.
func (s *session) clientReadFailed(err error) *pgError {
	if s.reason.Load() != nil {
		return errClientGone // we stopped the read ourselves
	}
	s.log.Debug("client connection ended", "err", err)
	if s.exp.len() > 0 || s.privileged {
		if err := s.srv.forwardCancel(s.cancelPkt); err != nil {
			s.log.Debug("cancel for a departed client failed", "err", err)
		}
	}
	return errClientGone
}

// serverToClient forwards server messages to the client until an error.
// mid reports that it stopped inside a message, when no ErrorResponse can
// be appended.
func (s *session) serverToClient() (mid bool, err error) {
	for {
		if mid, err := s.forwardServerMessage(); err != nil {
			return mid, err
		}
	}
}

// forwardServerMessage forwards one server message and flushes to the
// client when the server has sent nothing more.
func (s *session) forwardServerMessage() (mid bool, err error) {
	r, w := s.ur, s.cw
	typ, n, err := readHeader(r)
	if err != nil {
		return r.Buffered() > 0, err
	}
	switch {
	case s.privileged && typ == 'C' && n <= maxSchemaTag:
		err = s.privilegedTag(n)
	case s.privileged:
		err = copyMessage(w, r, n)
	default:
		err = s.serverMessage(typ, n)
	}
	if err != nil {
		return true, err
	}
	if r.Buffered() == 0 {
		if err := w.Flush(); err != nil {
			return false, &writeError{err}
		}
	}
	return false, nil
}

// maxSchemaTag bounds the CommandComplete bodies privilegedTag reads; the
// tags it looks for are short.
const maxSchemaTag = 32

// privilegedTag forwards a privileged session's CommandComplete and marks
// the database's catalog dirty when the tag says the schema of tables may
// have changed. Privileged sessions are where migrations run, and their
// SQL is not parsed: a partition created there must still be a
// soft-delete table for the next session.
func (s *session) privilegedTag(n int) error {
	body, err := readMessage(s.ur, n, s.sbuf[:0])
	if err != nil {
		return err
	}
	s.sbuf = body[:0]
	for _, tag := range [...]string{"CREATE TABLE", "ALTER TABLE", "DROP TABLE", "CREATE SCHEMA", "DROP SCHEMA", "ALTER SCHEMA", "CREATE FOREIGN TABLE"} {
		if bytes.HasPrefix(body, []byte(tag)) {
			s.db.dirty.Store(true)
			break
		}
	}
	return writeMessage(s.cw, 'C', body)
}
