package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tombstone-proxy/tombstone/catalog"
)

// Authentication request codes (AuthenticationXXX messages, type 'R').
const (
	authOK                = 0
	authCleartextPassword = 3
	authMD5Password       = 5
	authGSS               = 7
	authGSSContinue       = 8
	authSSPI              = 9
	authSASL              = 10
	authSASLContinue      = 11
)

// errCancelRequest ends a connection that only carried a CancelRequest.
var errCancelRequest = errors.New("cancel request handled")

// startup runs the connection from its first byte to the ReadyForQuery
// that ends authentication. ok is false when the connection ended normally
// before that (a cancel request, a client that gave up at the password
// prompt, a server that refused the login).
func (s *session) startup() (ok bool, err error) {
	s.cr = bufio.NewReaderSize(s.client, clientReadBuf)
	s.cw = bufio.NewWriterSize(s.client, clientWriteBuf)
	pkt, err := s.readStartup()
	if err != nil {
		if errors.Is(err, errCancelRequest) {
			return false, nil
		}
		return false, err
	}
	if s.user, s.dbname, err = startupUser(pkt[8:]); err != nil {
		return false, s.protocolError(err.Error())
	}
	if s.dbname == "" {
		s.dbname = s.user // as PostgreSQL defaults it
	}

	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	up, err := s.srv.dialUpstream(ctx)
	cancel()
	if err != nil {
		s.srv.met.UpstreamError()
		s.log.Warn("cannot reach upstream", "err", err)
		s.reason.CompareAndSwap(nil, &pgError{Severity: "FATAL", Code: "08006", Message: "tombstone: " + err.Error(),
			Hint: "Check that PostgreSQL is running and that Tombstone's upstream setting points at it."})
		return false, err
	}
	s.mu.Lock()
	s.upstream = up
	stopped := s.reason.Load() != nil
	s.mu.Unlock()
	if stopped {
		return false, errors.New("stopped while connecting upstream")
	}
	s.ur = bufio.NewReaderSize(up, upstreamReadBuf)
	s.uw = bufio.NewWriterSize(up, upstreamWrite)
	if _, err := s.uw.Write(pkt); err != nil {
		return false, s.upstreamFailed(err)
	}
	if err := s.uw.Flush(); err != nil {
		return false, s.upstreamFailed(err)
	}
	return s.authenticate()
}

// upstreamFailed records a broken upstream during startup.
func (s *session) upstreamFailed(err error) error {
	s.log.Warn("upstream connection failed during startup", "err", err)
	if s.reason.CompareAndSwap(nil, errUpstreamLost) {
		s.srv.met.UpstreamError()
	}
	return err
}

// readStartup reads startup packets, answering SSLRequest and
// GSSEncRequest and forwarding a CancelRequest, until a StartupMessage
// arrives, which it returns whole.
func (s *session) readStartup() ([]byte, error) {
	tlsDone := false
	for {
		pkt, err := readStartupPacket(s.cr)
		if err != nil {
			return nil, err
		}
		switch code := binary.BigEndian.Uint32(pkt[4:8]); code {
		case codeSSLRequest:
			if s.cr.Buffered() > 0 {
				// Bytes sent before our answer would be read as if they had
				// been encrypted (CVE-2021-23222): refuse.
				return nil, s.protocolError("unencrypted data after SSLRequest")
			}
			if tlsDone || s.srv.opts.ClientTLS == nil {
				if _, err := s.client.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := s.client.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			tc := tls.Server(s.client, s.srv.opts.ClientTLS)
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("client TLS handshake: %w", err)
			}
			s.mu.Lock()
			s.client = tc
			s.mu.Unlock()
			s.cr.Reset(tc)
			s.cw.Reset(tc)
			tlsDone = true
		case codeGSSEncRequest:
			if _, err := s.client.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case codeCancelRequest:
			s.cancel(pkt)
			return nil, errCancelRequest
		default:
			if major := code >> 16; major != 3 {
				return nil, s.protocolError(fmt.Sprintf("unsupported frontend protocol %d.%d: Tombstone speaks 3.x", major, code&0xffff))
			}
			return pkt, nil
		}
	}
}

// cancel forwards a CancelRequest whose key belongs to a live session. An
// unknown key is dropped, as PostgreSQL does, so the proxy cannot be used
// to probe keys.
func (s *session) cancel(pkt []byte) {
	if len(pkt) < 16 || !s.srv.lookupKey(pkt[8:]) {
		s.log.Debug("cancel request for an unknown backend ignored")
		return
	}
	if err := s.srv.forwardCancel(pkt); err != nil {
		s.log.Warn("forwarding cancel request failed", "err", err)
	}
}

func (s *session) protocolError(msg string) error {
	e := &pgError{Severity: "FATAL", Code: "08P01", Message: "tombstone: " + msg}
	s.reason.CompareAndSwap(nil, e)
	return e
}

// readStartupPacket reads one length-prefixed startup-phase packet.
func readStartupPacket(r *bufio.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(l[:]))
	if n < 8 || n > maxStartupPacket {
		return nil, fmt.Errorf("invalid startup packet length %d", n)
	}
	pkt := make([]byte, n)
	copy(pkt, l[:])
	if _, err := io.ReadFull(r, pkt[4:]); err != nil {
		return nil, noEOF(err)
	}
	return pkt, nil
}

// startupUser finds the user and database parameters in a StartupMessage
// body (name/value pairs of NUL-terminated strings, then a NUL) and
// refuses a packet that names any parameter twice.
func startupUser(b []byte) (user, database string, err error) {
	seen := make(map[string]bool, 8)
	for len(b) > 0 && b[0] != 0 {
		k, rest, ok := cstring(b)
		if !ok {
			break
		}
		v, rest, ok := cstring(rest)
		if !ok {
			break
		}
		// PostgreSQL logs in the last of two "user" parameters: a proxy
		// that read the first could take an ordinary login for a
		// privileged one. No client sends a parameter twice.
		if seen[string(k)] {
			return "", "", fmt.Errorf("startup packet names parameter %q twice", k)
		}
		seen[string(k)] = true
		switch string(k) {
		case "user":
			user = string(v)
		case "database":
			database = string(v)
		}
		b = rest
	}
	return user, database, nil
}

// authenticate relays the authentication exchange, unchanged except that
// SCRAM-SHA-256-PLUS is withdrawn from the offered mechanisms (channel
// binding cannot span two TLS sessions), up to the server's first
// ReadyForQuery.
func (s *session) authenticate() (bool, error) {
	for {
		typ, n, err := readHeader(s.ur)
		if err != nil {
			return false, s.upstreamFailed(err)
		}
		if n > maxDecodedServer {
			return false, s.upstreamFailed(fmt.Errorf("server message %q of %d bytes during startup: not a PostgreSQL server, or a broken one", typ, n))
		}
		body, err := readMessage(s.ur, n, nil)
		if err != nil {
			return false, s.upstreamFailed(err)
		}
		switch typ {
		case 'R':
			if len(body) < 4 {
				return false, s.upstreamFailed(errors.New("short authentication message"))
			}
			code := binary.BigEndian.Uint32(body)
			if code == authSASL {
				body = stripSCRAMPlus(body)
			}
			if err := s.toClient(typ, body); err != nil {
				return false, err
			}
			switch code {
			case authCleartextPassword, authMD5Password, authGSS, authGSSContinue, authSSPI, authSASL, authSASLContinue:
				if err := s.relayAuthResponse(code == authSASL); err != nil {
					return false, err
				}
			}
		case 'K':
			if len(body) >= 8 {
				s.cancelPkt = make([]byte, 8+len(body))
				binary.BigEndian.PutUint32(s.cancelPkt, uint32(len(s.cancelPkt)))
				binary.BigEndian.PutUint32(s.cancelPkt[4:], codeCancelRequest)
				copy(s.cancelPkt[8:], body)
				s.srv.registerKey(s, string(body))
			}
			if err := s.toClient(typ, body); err != nil {
				return false, err
			}
		case 'E':
			// The server refused the login; it closes the connection.
			_ = s.toClient(typ, body)
			_ = s.cw.Flush()
			return false, nil
		case 'Z':
			// Only now, with the login accepted: a client must not grow
			// the proxy's table of databases by naming ones that do not
			// exist.
			s.db = s.srv.database(s.dbname)
			s.privileged = s.resolvePrivileged()
			s.log.Debug("session started", "user", s.user, "privileged", s.privileged)
			if !s.privileged {
				s.loadCatalog()
			}
			if err := s.toClient(typ, body); err != nil {
				return false, err
			}
			if err := s.cw.Flush(); err != nil {
				return false, err
			}
			return true, nil
		case 'S':
			// The server reports the role it authenticated; that, not the
			// client's startup packet, decides who is privileged.
			if name, rest, ok := cstring(body); ok && string(name) == "session_authorization" {
				if v, _, ok := cstring(rest); ok {
					s.user = string(v)
				}
			}
			// Startup options and role or database defaults may set how
			// the server scans SQL; it reports the values here.
			s.parameterStatus(body)
			if err := s.toClient(typ, body); err != nil {
				return false, err
			}
		default: // NoticeResponse, NegotiateProtocolVersion
			if err := s.toClient(typ, body); err != nil {
				return false, err
			}
		}
	}
}

func (s *session) toClient(typ byte, body []byte) error {
	if err := writeMessage(s.cw, typ, body); err != nil {
		s.reason.CompareAndSwap(nil, errClientGone)
		return err
	}
	return nil
}

// relayAuthResponse forwards the client's answer to an authentication
// request (PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse).
func (s *session) relayAuthResponse(saslInitial bool) error {
	if err := s.cw.Flush(); err != nil {
		s.reason.CompareAndSwap(nil, errClientGone)
		return err
	}
	typ, n, err := readHeader(s.cr)
	if err != nil {
		// psql hangs up here to prompt for a password, then reconnects.
		s.reason.CompareAndSwap(nil, errClientGone)
		return err
	}
	if typ == 'X' {
		// A client that gives up at the password prompt may say goodbye.
		s.reason.CompareAndSwap(nil, errTerminated)
		return errors.New("client sent Terminate during authentication")
	}
	if typ != 'p' {
		return s.protocolError(fmt.Sprintf("expected an authentication response, got message type %q", typ))
	}
	if n > s.srv.opts.MaxMessageSize {
		return s.protocolError(fmt.Sprintf("authentication response of %d bytes is too large", n))
	}
	body, err := readMessage(s.cr, n, nil)
	if err != nil {
		s.reason.CompareAndSwap(nil, errClientGone)
		return err
	}
	if saslInitial && s.channelBindingImpossible(body) {
		s.log.Warn("SCRAM login cannot pass: client wants channel binding over TLS and the upstream uses TLS", "user", s.user)
		e := &pgError{Severity: "FATAL", Code: "28000",
			Message: "tombstone: SCRAM channel binding cannot pass through a proxy that uses TLS on both sides",
			Detail:  "Channel binding ties the login to one TLS session; Tombstone terminates the client's TLS and opens its own to PostgreSQL.",
			Hint:    "Connect with channel_binding=disable, or run Tombstone with a plain or Unix-socket upstream (upstream_tls.mode: disable)."}
		s.reason.CompareAndSwap(nil, e)
		return e
	}
	if err := writeMessage(s.uw, 'p', body); err != nil {
		return s.upstreamFailed(err)
	}
	if err := s.uw.Flush(); err != nil {
		return s.upstreamFailed(err)
	}
	return nil
}

// channelBindingImpossible reports whether a SASLInitialResponse will be
// rejected by the server as a downgrade attack: the client is on TLS and
// could bind ("y" flag: it supports binding but was not offered
// SCRAM-SHA-256-PLUS, which we withdrew), and the server is on TLS too,
// so it does offer binding. PostgreSQL answers that with an opaque
// "channel binding negotiation error"; ours says what to do.
func (s *session) channelBindingImpossible(body []byte) bool {
	if _, upstreamTLS := s.upstream.(*tls.Conn); !upstreamTLS {
		return false
	}
	_, rest, ok := cstring(body) // mechanism name
	if !ok || len(rest) < 5 {
		return false
	}
	return rest[4] == 'y' // int32 length, then the gs2 header
}

// stripSCRAMPlus removes SCRAM-SHA-256-PLUS from an AuthenticationSASL
// body (code, then NUL-terminated mechanism names, then a final NUL).
func stripSCRAMPlus(body []byte) []byte {
	out := append([]byte(nil), body[:4]...)
	rest := body[4:]
	for len(rest) > 0 && rest[0] != 0 {
		mech, next, ok := cstring(rest)
		if !ok {
			return body
		}
		if string(mech) != "SCRAM-SHA-256-PLUS" {
			out = append(append(out, mech...), 0)
		}
		rest = next
	}
	return append(out, 0)
}

// resolvePrivileged decides once per connection whether the login role
// bypasses rewriting: by name, or by membership (direct or inherited) in
// a privileged_member_of role, asked of the server before the client sees
// the ReadyForQuery, so the client sees no extra traffic.
func (s *session) resolvePrivileged() bool {
	p := s.srv.rw.Load().Policy()
	if p.PrivilegedByName(s.user) {
		return true
	}
	roles := p.PrivilegedMemberOf()
	if len(roles) == 0 {
		return false
	}
	lits := make([]string, len(roles))
	for i, r := range roles {
		lits[i] = catalog.Literal(r)
	}
	// Every function and operator is schema-qualified: the login role
	// chooses its search_path (startup options, ALTER ROLE ... SET) and
	// could otherwise put its own count() or = ahead of pg_catalog's.
	q := "SELECT pg_catalog.count(*) FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY[" +
		strings.Join(lits, ",") + "]::pg_catalog.text[]) AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')"
	member, err := s.ask(q)
	if err != nil {
		s.log.Warn("could not resolve privileged_member_of; treating the session as not privileged", "user", s.user, "err", err)
		return false
	}
	return member != "0"
}

// ask runs a one-value query on the upstream for the proxy itself,
// consuming the whole answer up to ReadyForQuery.
func (s *session) ask(q string) (string, error) {
	if err := writeMessage(s.uw, 'Q', []byte(q), []byte{0}); err != nil {
		return "", err
	}
	if err := s.uw.Flush(); err != nil {
		return "", err
	}
	var value string
	var qerr error
	for {
		typ, n, err := readHeader(s.ur)
		if err != nil {
			return "", err
		}
		if n > maxDecodedServer {
			return "", fmt.Errorf("server message %q of %d bytes in answer to the proxy's own query", typ, n)
		}
		body, err := readMessage(s.ur, n, nil)
		if err != nil {
			return "", err
		}
		switch typ {
		case 'D':
			// int16 column count, int32 length, value
			if len(body) >= 6 {
				if l := int(int32(binary.BigEndian.Uint32(body[2:6]))); l >= 0 && 6+l <= len(body) {
					value = string(body[6 : 6+l])
				}
			}
		case 'E':
			qerr = errors.New(errorMessage(body))
		case 'S':
			s.parameterStatus(body)
			if err := s.toClient(typ, body); err != nil {
				return "", err
			}
		case 'Z':
			return value, qerr
		}
	}
}

// errorMessage extracts the M field of an ErrorResponse body.
func errorMessage(body []byte) string {
	for len(body) > 0 && body[0] != 0 {
		f := body[0]
		v, rest, ok := cstring(body[1:])
		if !ok {
			break
		}
		if f == 'M' {
			return string(v)
		}
		body = rest
	}
	return "unknown error"
}
