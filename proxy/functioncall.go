package proxy

import (
	"encoding/binary"

	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// largeObjectFunctions are the functions a non-privileged session may call
// with the FunctionCall message, by OID: those libpq's large-object API
// calls (fe-lobj.c looks them up by name in pg_catalog; its lo_import and
// lo_export read and write the client's file with lo_creat, lowrite and
// loread, not the server-side functions of those names). They run no SQL
// and read no table; the server checks each large object's own
// privileges. Any other function called this way would run unseen by the
// rewriter (query_to_xml runs any SQL it is given), so it is refused.
//
// The OIDs of built-in functions are fixed in the catalog's source
// (pg_proc.dat) and lie below FirstNormalObjectId (16384), which no
// function a user creates can get, so the OID alone names the function.
// TestLargeObjectFunctionOIDs checks them against the server.
var largeObjectFunctions = map[uint32]string{
	715:  "lo_create",
	952:  "lo_open",
	953:  "lo_close",
	954:  "loread",
	955:  "lowrite",
	956:  "lo_lseek",
	957:  "lo_creat",
	958:  "lo_tell",
	964:  "lo_unlink",
	1004: "lo_truncate",
	3170: "lo_lseek64",
	3171: "lo_tell64",
	3172: "lo_truncate64",
}

// functionCall handles a FunctionCall (function OID, then arguments),
// whose header readHeader peeked: n is the body's length. A call of any
// function but a large-object one is refused: a Query carrying the
// refusal's sentinel goes in its place, which the server answers with
// ErrorResponse and ReadyForQuery, just as it answers a FunctionCall that
// fails. Only the OID is read; the arguments (lowrite's data) are
// streamed or skipped, never buffered.
func (s *session) functionCall(n int) error {
	var oid uint32 // a message too short to name one names none
	if n >= 4 {
		h, err := s.cr.Peek(5 + 4)
		if err != nil {
			return noEOF(err)
		}
		oid = binary.BigEndian.Uint32(h[5:])
	}
	if _, ok := largeObjectFunctions[oid]; ok {
		s.exp.push(expectation{kind: expCall, refusals: s.refusals.last()})
		return copyMessage(s.uw, s.cr, n)
	}
	sentinel := s.refuseMessage(rewrite.RefuseFunctionCall(oid), s.db.rw.Load().Policy().Mode(), "function_oid", oid)
	if sentinel == nil { // shadow mode
		s.srv.met.Statement(metrics.ActionPassthrough)
		s.exp.push(expectation{kind: expCall, refusals: s.refusals.last()})
		return copyMessage(s.uw, s.cr, n)
	}
	if _, err := s.cr.Discard(5 + n); err != nil {
		return noEOF(err)
	}
	s.srv.met.Statement(metrics.ActionRefused)
	s.exp.push(expectation{kind: expCall, refusals: s.refusals.last()})
	return writeMessage(s.uw, 'Q', sentinel, []byte{0})
}
