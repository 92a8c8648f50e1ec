package proxy

import (
	"bytes"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/tombstone-proxy/tombstone/catalog"
)

// permissionDenied is the start of the server's message for a missing
// table privilege (PostgreSQL 11 and later, untranslated lc_messages).
const permissionDenied = "permission denied for table "

// grantHint adds a HINT naming the missing grant to an ErrorResponse
// (body) that answers a rewritten DELETE with 42501 on a soft-delete
// table. Directly, DELETE needs the DELETE privilege; through Tombstone
// it is an UPDATE of the soft-delete columns, and "permission denied for
// table contacts" on a DELETE that works without Tombstone sends people
// looking in the wrong place. Any other error, one that has a hint of its
// own, or a table that is not soft-delete is returned unchanged.
func (s *session) grantHint(body []byte) []byte {
	code, msg, hasHint := errorFields(body)
	if code != "42501" || hasHint || !strings.HasPrefix(msg, permissionDenied) || s.db == nil {
		return body
	}
	name := strings.TrimPrefix(msg, permissionDenied)
	t, ok := s.db.rw.Load().Policy().Lookup("", name)
	if !ok {
		return body
	}
	cols := make([]string, 0, 3)
	for _, c := range []string{t.DeletedAt, t.DeletedBy, t.DeletedReason} {
		if c != "" {
			cols = append(cols, hintIdent(c))
		}
	}
	table := hintIdent(name)
	if t.Schema != "" {
		table = hintIdent(t.Schema) + "." + table
	}
	hint := "Through Tombstone a DELETE on " + name + " is an UPDATE of its soft-delete columns; grant it with: GRANT UPDATE (" +
		strings.Join(cols, ", ") + ") ON " + table + " TO " + hintIdent(s.user) + ";"
	// Fields, then the terminating NUL: the hint goes before it.
	out := make([]byte, 0, len(body)+len(hint)+2)
	out = append(out, body[:len(body)-1]...)
	out = append(out, 'H')
	out = append(out, hint...)
	return append(out, 0, 0)
}

// errorFields reads the SQLSTATE and message of an ErrorResponse body and
// whether it has a hint.
func errorFields(body []byte) (code, msg string, hint bool) {
	for len(body) > 1 && body[0] != 0 {
		f := body[0]
		i := bytes.IndexByte(body[1:], 0)
		if i < 0 {
			break
		}
		v := body[1 : 1+i]
		switch f {
		case 'C':
			code = string(v)
		case 'M':
			msg = string(v)
		case 'H':
			hint = true
		}
		body = body[2+i:]
	}
	return code, msg, hint
}

// hintIdent spells a name for a statement a person will copy: bare when
// the server reads it back unchanged (lower case, not a reserved word),
// double-quoted otherwise.
func hintIdent(name string) string {
	simple := name != ""
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '$')) {
			simple = false
			break
		}
	}
	if simple {
		r, err := pg_query.Scan(name)
		if err == nil && len(r.Tokens) == 1 && (r.Tokens[0].KeywordKind == pg_query.KeywordKind_NO_KEYWORD ||
			r.Tokens[0].KeywordKind == pg_query.KeywordKind_UNRESERVED_KEYWORD) {
			return name
		}
	}
	return catalog.QuoteIdent(name)
}
