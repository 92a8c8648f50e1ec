package proxy

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// clientMessage forwards one client message of a non-privileged session,
// decoding those that carry statements or affect how answers are matched.
func (s *session) clientMessage(typ byte, n int) error {
	switch typ {
	case 'Q', 'P', 'B', 'E', 'C':
	case 'F':
		return s.functionCall(n)
	case 'S':
		s.exp.push(expectation{kind: expSync, refusals: s.refusals.last()})
		return copyMessage(s.uw, s.cr, n)
	case 'c', 'f':
		s.exp.copyEnded()
		return copyMessage(s.uw, s.cr, n)
	default:
		return copyMessage(s.uw, s.cr, n)
	}
	body, err := readMessage(s.cr, n, s.cbuf)
	if cap(body) <= keepBuf {
		s.cbuf = body
	}
	if err != nil {
		return err
	}
	switch typ {
	case 'Q':
		return s.query(body)
	case 'P':
		return s.parse(body)
	case 'B':
		// portal name, statement name, then parameters we do not need
		if portal, rest, ok := cstring(body); ok {
			if stmt, _, ok := cstring(rest); ok {
				s.exp.project(&s.prepared)
				if st := s.prepared[string(stmt)]; st != nil {
					if s.portals == nil {
						s.portals = map[string]*rewrite.Statement{}
					}
					s.portals[string(portal)] = st
				} else if len(s.portals) > 0 {
					delete(s.portals, string(portal))
				}
			}
		}
	case 'E':
		portal, _, _ := cstring(body)
		s.exp.project(&s.prepared)
		st := s.portals[string(portal)]
		e := expectation{kind: expExecute, del: s.prepared.deletes(st)}
		if st != nil && hasEffect(st) {
			e.run = st
			s.prepared.apply(st)
		}
		s.exp.push(e)
	case 'C':
		e := expectation{kind: expClose}
		if len(body) > 1 {
			if name, _, ok := cstring(body[1:]); ok {
				switch body[0] {
				case 'S':
					s.exp.project(&s.prepared)
					if _, ok := s.prepared[string(name)]; ok {
						e.record, e.name = true, string(name)
						s.prepared.set(e.name, nil)
					}
				case 'P':
					if len(s.portals) > 0 {
						delete(s.portals, string(name))
					}
				}
			}
		}
		s.exp.push(e)
	}
	return writeMessage(s.uw, typ, body)
}

// query handles a simple-protocol Query: the text may hold several
// statements, each answered by one CommandComplete.
func (s *session) query(body []byte) error {
	text, _, ok := cstring(body)
	if !ok {
		return s.writeQueryAndExpect(body, expectation{kind: expQuery})
	}
	res, refusal, mode := s.rewrite(text)
	e := expectation{kind: expQuery}
	switch {
	case refusal != nil:
		sentinel := s.refuse(refusal, text, mode)
		if sentinel == nil {
			break
		}
		var before []byte
		if b := refusal.Before; b != nil {
			s.statements(&e, b.Statements)
			before = []byte(b.SQL + ";\n")
		}
		e.refusals = s.refusals.last()
		s.exp.push(e)
		return writeMessage(s.uw, 'Q', before, sentinel, []byte{0})
	case res != nil && mode == policy.ModeEnforce:
		s.statements(&e, res.Statements)
		if res.Changed {
			e.refusals = s.refusals.last()
			s.exp.push(e)
			return writeMessage(s.uw, 'Q', []byte(res.SQL), []byte{0})
		}
	}
	return s.writeQueryAndExpect(body, e)
}

func (s *session) writeQueryAndExpect(body []byte, e expectation) error {
	e.refusals = s.refusals.last()
	s.exp.push(e)
	return writeMessage(s.uw, 'Q', body)
}

// statements flags the statements of a Query whose tag must read DELETE
// and projects their effects on the prepared statements, in order: within
// one Query a statement runs after those before it have succeeded (after
// an error the rest does not run, so it has no tag to get wrong), so an
// EXECUTE sees the PREPARE ahead of it in the same text.
func (s *session) statements(e *expectation, stmts []rewrite.Statement) {
	s.exp.project(&s.prepared)
	for i := range stmts {
		st := &stmts[i]
		if s.prepared.deletes(st) {
			e.setDelete(i)
		}
		if hasEffect(st) {
			s.prepared.apply(st)
			e.stmts = stmts // shared with the rewriter's cache, never modified
		}
	}
}

// parse handles an extended-protocol Parse: statement name, query text,
// then parameter types, which are kept exactly.
func (s *session) parse(body []byte) error {
	name, rest, ok := cstring(body)
	if !ok {
		s.exp.push(expectation{kind: expParse})
		return writeMessage(s.uw, 'P', body)
	}
	text, params, ok := cstring(rest)
	if !ok {
		s.exp.push(expectation{kind: expParse})
		return writeMessage(s.uw, 'P', body)
	}
	res, refusal, mode := s.rewrite(text)
	var st *rewrite.Statement
	var out []byte
	switch {
	case refusal != nil:
		out = s.refuse(refusal, text, mode)
	case res != nil && mode == policy.ModeEnforce:
		if len(res.Statements) == 1 && followed(&res.Statements[0]) {
			st = &res.Statements[0]
		}
		if res.Changed {
			out = []byte(res.SQL)
		}
	}
	// A Parse under a name that is taken fails and changes nothing; the
	// unnamed statement is replaced. So the record changes only when the
	// server confirms, and only if the new statement is followed or the
	// name held one that was.
	e := expectation{kind: expParse}
	s.exp.project(&s.prepared)
	if _, held := s.prepared[string(name)]; st != nil || held {
		e.record, e.name, e.prepared = true, string(name), st
		s.prepared.set(e.name, st)
	}
	s.exp.push(e)
	if out == nil {
		return writeMessage(s.uw, 'P', body)
	}
	return writeMessage(s.uw, 'P', name, []byte{0}, out, []byte{0}, params)
}

// rewrite runs the current rewriter on one statement text and counts the
// outcome. refusal is non-nil when the statement must not run as sent.
func (s *session) rewrite(text []byte) (res *rewrite.Result, refusal *rewrite.Refusal, mode policy.Mode) {
	rw := s.db.rw.Load()
	mode = rw.Policy().Mode()
	met := s.srv.met
	// text aliases the session's reused read buffer: no copy per
	// statement. Rewrite documents that it keeps only its own copies.
	sql := unsafe.String(unsafe.SliceData(text), len(text))
	// The rewriter reads the text as pg_query scans it; under the
	// session's settings the server may not.
	if lx := s.lex.Load(); lx != nil {
		refusal = rewrite.CheckLexing(sql, *lx)
	}
	if refusal == nil {
		start := time.Now()
		var hit bool
		res, hit, refusal = rw.Rewrite(sql)
		switch {
		case hit:
			met.CacheHit()
		case res != nil || refusal != nil:
			met.CacheMiss(time.Since(start))
		}
	}
	if res != nil {
		for _, a := range res.Applied {
			// Partitions count under their configured table: the label
			// stays bounded by the configuration.
			met.Rewrite(a.Table.Configured, a.Kind)
		}
		for i := range res.Statements {
			if res.Statements[i].SchemaChange {
				s.db.dirty.Store(true)
			}
		}
	}
	switch {
	case refusal != nil && mode == policy.ModeEnforce:
		met.Statement(metrics.ActionRefused)
	case res != nil && res.Changed && mode == policy.ModeEnforce:
		met.Statement(metrics.ActionRewritten)
	default:
		met.Statement(metrics.ActionPassthrough)
		// Fingerprinting scans again: only when someone reads the log.
		if res != nil && res.Changed && s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("shadow mode: statement would have been rewritten", "user", s.user, "fingerprint", fingerprint(text, ""))
		}
	}
	return res, refusal, mode
}

// refuse logs and counts a refusal of a statement text and, in enforce
// mode, returns the sentinel statement sent in its place. In shadow mode
// it returns nil and the original is sent.
func (s *session) refuse(r *rewrite.Refusal, text []byte, mode policy.Mode) []byte {
	return s.refuseMessage(r, mode, "fingerprint", fingerprint(text, r.Reason))
}

// refuseMessage is refuse for any message; key and value identify what
// was refused in the log.
func (s *session) refuseMessage(r *rewrite.Refusal, mode policy.Mode, key string, value any) []byte {
	s.srv.met.Refusal(r.Reason)
	msg := "statement refused"
	if mode != policy.ModeEnforce {
		msg = "shadow mode: statement would have been refused"
	}
	s.log.Warn(msg, "user", s.user, "table", r.Table, "reason", r.Reason, "code", r.Code, key, value)
	if mode != policy.ModeEnforce {
		return nil
	}
	seq := s.refusals.add(r)
	// A quoted identifier that names no column fails at parse analysis,
	// inside the server, in order: a transaction aborts and a pipeline
	// skips to Sync exactly as for any error. The marker comes back in
	// the ErrorResponse and is replaced by the refusal.
	return []byte(`SELECT "` + s.marker + strconv.FormatUint(seq, 10) + `"`)
}

// fingerprint identifies a statement in logs without its literal values
// (rewrite.Fingerprint: a scan, never a parse, so any text is safe).
// Texts refused for the session's lexing settings are not fingerprinted:
// the scan would not split them as the server does.
func fingerprint(text []byte, reason string) string {
	if reason == rewrite.ReasonLexing {
		return "(not computed: " + reason + ")"
	}
	return rewrite.Fingerprint(string(text))
}

// serverMessage forwards one server message of a non-privileged session,
// matching answers to what the client sent.
func (s *session) serverMessage(typ byte, n int) error {
	if n > maxDecodedServer {
		if typ == 'C' || typ == 'E' {
			s.log.Warn("server message too large to inspect, forwarded as is", "type", string(typ), "bytes", n)
		}
		return copyMessage(s.cw, s.ur, n)
	}
	switch typ {
	case 'C':
		body, err := s.readServer(n)
		if err != nil {
			return err
		}
		if s.exp.commandComplete() && bytes.HasPrefix(body, []byte("UPDATE ")) {
			copy(body, "DELETE") // same length: the header stays valid
		}
		return writeMessage(s.cw, typ, body)
	case '1':
		s.exp.parseOrCloseComplete(expParse)
	case '3':
		s.exp.parseOrCloseComplete(expClose)
	case 'S':
		// ParameterStatus is rare (login, and a change of a reported
		// setting): decoding it costs nothing on the hot path.
		body, err := s.readServer(n)
		if err != nil {
			return err
		}
		s.parameterStatus(body)
		return writeMessage(s.cw, typ, body)
	case 'I', 's':
		s.exp.emptyOrSuspended()
	case 'Z':
		if seq := s.exp.readyForQuery(); seq > 0 {
			s.refusals.settle(seq)
		}
	case 'E':
		// Before errorResponse drops it: the statement that failed.
		del := s.exp.failedDelete()
		s.exp.errorResponse()
		if s.refusals.pending() || del {
			body, err := s.readServer(n)
			if err != nil {
				return err
			}
			if r := s.matchRefusal(body); r != nil {
				_, err := s.cw.Write((&pgError{Severity: "ERROR", Code: r.Code, Message: r.Message, Detail: r.Detail, Hint: r.Hint}).encode())
				if err != nil {
					return &writeError{err}
				}
				return nil
			}
			if del {
				body = s.grantHint(body)
			}
			return writeMessage(s.cw, typ, body)
		}
	}
	return copyMessage(s.cw, s.ur, n)
}

// parameterStatus follows the settings that change how the server scans
// SQL (rewrite.LexState) from a ParameterStatus body: name, value. Only
// the server-to-client goroutine (or startup, before it runs) calls it.
func (s *session) parameterStatus(body []byte) {
	name, rest, ok := cstring(body)
	if !ok {
		return
	}
	value, _, ok := cstring(rest)
	if !ok {
		return
	}
	switch string(name) {
	case "standard_conforming_strings", "client_encoding":
	default:
		return
	}
	var lx rewrite.LexState
	if p := s.lex.Load(); p != nil {
		lx = *p
	}
	if lx = lx.Set(string(name), string(value)); lx == (rewrite.LexState{}) {
		s.lex.Store(nil)
	} else {
		s.lex.Store(&lx)
	}
}

func (s *session) readServer(n int) ([]byte, error) {
	body, err := readMessage(s.ur, n, s.sbuf)
	if cap(body) <= keepBuf {
		s.sbuf = body
	}
	return body, err
}

// matchRefusal finds this session's sentinel marker in an ErrorResponse
// and returns the refusal it stands for.
func (s *session) matchRefusal(body []byte) *rewrite.Refusal {
	i := bytes.Index(body, []byte(s.marker))
	if i < 0 {
		return nil
	}
	digits := body[i+len(s.marker):]
	j := 0
	for j < len(digits) && digits[j] >= '0' && digits[j] <= '9' {
		j++
	}
	seq, err := strconv.ParseUint(string(digits[:j]), 10, 64)
	if err != nil {
		return nil
	}
	return s.refusals.take(seq)
}

// refusalQueue holds refusals sent upstream as sentinels and not yet
// answered, in sequence order.
type refusalQueue struct {
	mu      sync.Mutex
	seq     uint64
	items   []pendingRefusal
	waiting atomic.Int32
}

type pendingRefusal struct {
	seq uint64
	r   *rewrite.Refusal
}

func (q *refusalQueue) add(r *rewrite.Refusal) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	q.items = append(q.items, pendingRefusal{q.seq, r})
	q.waiting.Store(int32(len(q.items)))
	return q.seq
}

// last is the sequence number of the latest refusal queued.
func (q *refusalQueue) last() uint64 {
	if q.waiting.Load() == 0 {
		return 0 // settle(0) is a no-op; skip the lock on the hot path
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seq
}

func (q *refusalQueue) pending() bool { return q.waiting.Load() > 0 }

// take removes and returns refusal seq, dropping older ones the server
// skipped.
func (q *refusalQueue) take(seq uint64) *rewrite.Refusal {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range q.items {
		if p.seq == seq {
			q.items = append(q.items[:0], q.items[i+1:]...)
			q.waiting.Store(int32(len(q.items)))
			return p.r
		}
	}
	return nil
}

// settle drops refusals up to seq: their ReadyForQuery has arrived, so
// the server skipped them.
func (q *refusalQueue) settle(seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := 0
	for i < len(q.items) && q.items[i].seq <= seq {
		i++
	}
	q.items = append(q.items[:0], q.items[i:]...)
	q.waiting.Store(int32(len(q.items)))
}
