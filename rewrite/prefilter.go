package rewrite

import (
	"slices"
	"strings"
)

// prefilter decides, without parsing, that a text cannot mention any
// configured table nor a statement the proxy must track. It errs on the
// side of parsing: a false "may match" costs a parse, a false "cannot"
// would let a statement through unfiltered.
//
// Letters are compared folded by setting bit 0x20 of every byte, which maps
// A-Z onto a-z so every letter case is found; it also merges a few
// punctuation pairs ('@' and '`', '_' and DEL), which can only add false
// positives.
//
// The search is Wu-Manber with two-byte blocks: it looks at the last two
// bytes of a window as long as the shortest needle and skips ahead as far
// as no needle can end earlier, so a 200-byte text costs a few dozen table
// lookups, no copy and no allocation.
type prefilter struct {
	// byFirst holds the needles, folded, by their first byte, so that a
	// candidate position is compared with the few that can start there.
	byFirst [256][]string
	minLen  int
	// shift[b] is how far the window may move when its last two bytes
	// form block b; 0 means some needle may end here: verify.
	shift [1 << 16]uint8
}

// trackedKeywords are the statements the proxy follows by name (EXECUTE,
// DEALLOCATE, DISCARD ALL).
var trackedKeywords = []string{"execute", "deallocate", "discard"}

// refusedKeywords name what the rewriter judges though no configured
// table need be named: built-ins that run SQL the rewriter cannot see
// (sqlRunningFunc), TRUNCATE ... CASCADE, which empties referencing
// tables it never names, the statistics views that show values of
// deleted rows (statsView), and the settings that change how the server
// scans SQL (settings.go: standard_conforming_strings, client_encoding,
// SET NAMES, set_config, UPDATE pg_settings), DROP OWNED, and LANGUAGE: a routine in a
// language other than plpgsql and sql builds its SQL at run time, so its
// body need name no table (plpgsql.go).
var refusedKeywords = []string{"_to_xml", "ts_stat", "ts_rewrite", "dblink", "cascade",
	"pg_stats", "conforming", "encoding", "names", "set_config", "pg_settings", "owned", "language"}

func newPrefilter(tableNames []string) *prefilter {
	f := &prefilter{minLen: 1 << 30}
	var needles []string
	for _, s := range slices.Concat(tableNames, trackedKeywords, refusedKeywords) {
		nd := []byte(s)
		for i := range nd {
			nd[i] |= 0x20
		}
		needles = append(needles, string(nd))
		f.byFirst[nd[0]] = append(f.byFirst[nd[0]], string(nd))
		f.minLen = min(f.minLen, len(nd))
	}
	if f.minLen < 2 {
		return f // a one-letter table name: mayMatch falls back to a byte scan
	}
	def := uint8(min(f.minLen-1, 255))
	for i := range f.shift {
		f.shift[i] = def
	}
	for _, nd := range needles {
		for j := 1; j < f.minLen; j++ { // block nd[j-1:j+1] ends at j of the window
			b := block(nd[j-1], nd[j])
			f.shift[b] = min(f.shift[b], uint8(min(f.minLen-1-j, 255)))
		}
	}
	return f
}

func block(a, b byte) uint16 { return uint16(a|0x20)<<8 | uint16(b|0x20) }

// mayMatch reports whether sql may mention a needle, or may spell one in
// a way its raw bytes do not show. The server reads decoded text: a
// backslash escape (E'\x74', or any '...' when standard_conforming_strings
// is off), a U& escape, or a string continued across lines ('con'
// newline 'tacts' is 'contacts') can spell a table name inside a DO or
// function body or a string argument. Texts holding any of those are
// parsed, and the parse tree holds the decoded strings. These are checks
// of raw bytes, not a scan, on purpose: a routine body is code inside a
// string ($$ ... U&"\0063ontacts" ... $$), which the server scans again,
// so an escape counts wherever it stands.
//
// The needle search runs first: a text that names a needle (every cache
// hit does) is answered without the decode checks.
func (f *prefilter) mayMatch(sql string) bool {
	return f.mayMention(sql) || strings.IndexByte(sql, '\\') >= 0 || hasUnicodeEscape(sql) || hasContinuation(sql)
}

// mayMention reports whether a needle may occur in sql's raw bytes.
func (f *prefilter) mayMention(sql string) bool {
	if f.minLen < 2 {
		return f.scan(sql)
	}
	// Each step waits on the table load of the step before it, so two
	// halves of the text are searched in the same loop: their steps do
	// not depend on each other and the CPU overlaps them.
	m := f.minLen
	lim := min(len(sql)/2+m-1, len(sql)) // windows ending before lim belong to the first half
	a, b := m-1, lim
	for a < lim && b < len(sql) {
		sa := f.shift[block(sql[a-1], sql[a])]
		sb := f.shift[block(sql[b-1], sql[b])]
		if sa == 0 {
			if f.verify(sql, a-m+1) {
				return true
			}
			sa = 1
		}
		if sb == 0 {
			if f.verify(sql, b-m+1) {
				return true
			}
			sb = 1
		}
		a += int(sa)
		b += int(sb)
	}
	return f.search(sql, a, lim) || f.search(sql, b, len(sql))
}

// hasUnicodeEscape reports a U& (or u&) in sql: the start of a U&'...'
// string or U&"..." identifier, whose escapes spell any character.
func hasUnicodeEscape(sql string) bool {
	for i := strings.IndexByte(sql, '&'); i >= 0; {
		if i > 0 && sql[i-1]|0x20 == 'u' {
			return true
		}
		next := strings.IndexByte(sql[i+1:], '&')
		if next < 0 {
			return false
		}
		i += 1 + next
	}
	return false
}

// hasContinuation reports a quote followed by whitespace (and -- comments)
// holding a newline, then another quote: the server joins two such string
// literals into one (scan.l's quotecontinue). It may also be the end of
// one literal and the start of an unrelated one, or sit inside a comment;
// a false positive only costs a parse.
func hasContinuation(sql string) bool {
	for i := strings.IndexByte(sql, '\''); i >= 0; {
		j, newline := i+1, false
	scan:
		for j < len(sql) {
			switch sql[j] {
			case '\n', '\r':
				newline = true
				j++
			case ' ', '\t', '\f', '\v':
				j++
			case '-':
				if j+1 >= len(sql) || sql[j+1] != '-' {
					break scan
				}
				for j < len(sql) && sql[j] != '\n' && sql[j] != '\r' {
					j++
				}
			default:
				break scan
			}
		}
		if newline && j < len(sql) && sql[j] == '\'' {
			return true
		}
		next := strings.IndexByte(sql[i+1:], '\'')
		if next < 0 {
			return false
		}
		i += 1 + next
	}
	return false
}

// search runs the skip loop over the windows ending in [end, limit).
func (f *prefilter) search(sql string, end, limit int) bool {
	m := f.minLen
	for end < limit {
		s := f.shift[block(sql[end-1], sql[end])]
		if s == 0 {
			if f.verify(sql, end-m+1) {
				return true
			}
			s = 1
		}
		end += int(s)
	}
	return false
}

// verify reports whether a needle starts at sql[start].
func (f *prefilter) verify(sql string, start int) bool {
	if start >= len(sql) {
		return false
	}
	for _, nd := range f.byFirst[sql[start]|0x20] {
		if start+len(nd) <= len(sql) && foldedEqual(sql[start:start+len(nd)], nd) {
			return true
		}
	}
	return false
}

// scan is the plain search for policies with a one-letter table name.
func (f *prefilter) scan(sql string) bool {
	for i := range len(sql) {
		if f.verify(sql, i) {
			return true
		}
	}
	return false
}

func foldedEqual(s, folded string) bool {
	for i := 0; i < len(s); i++ {
		if s[i]|0x20 != folded[i] {
			return false
		}
	}
	return true
}
