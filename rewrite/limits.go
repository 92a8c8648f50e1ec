package rewrite

import "strings"

// The C parser recurses on nested input and can overflow the thread's stack
// inside the cgo call, where recover() cannot help. These bounds are
// checked on the text before it reaches the parser.
const (
	MaxStatementBytes = 1 << 20 // longer texts are refused (ReasonTooLong)
	MaxNestingDepth   = 256     // deeper bracket nesting is refused (ReasonTooDeep)
)

// nestingDepth returns the deepest nesting of ( and [ in sql outside string
// literals, quoted identifiers and comments. Whether a backslash escapes a
// quote in '...' depends on the session's standard_conforming_strings, which
// the rewriter cannot see, so the text is measured both ways and the deeper
// answer wins. Where the lexing is unsure (an unterminated quote) it counts
// brackets rather than skip them: over-counting refuses a statement,
// under-counting could crash the process.
func nestingDepth(sql string) int {
	return max(bracketDepth(sql, false), bracketDepth(sql, true))
}

func bracketDepth(sql string, backslashQuotes bool) int {
	depth, maxDepth := 0, 0
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch c {
		case '(', '[':
			depth++
			if depth > maxDepth {
				maxDepth = depth
			}
		case ')', ']':
			if depth > 0 {
				depth--
			}
		case '-':
			if i+1 < len(sql) && sql[i+1] == '-' {
				end := strings.IndexByte(sql[i:], '\n')
				if end < 0 {
					return maxDepth
				}
				i += end
			}
		case '/':
			if i+1 < len(sql) && sql[i+1] == '*' {
				i, _ = skipBlockComment(sql, i)
			}
		case '\'':
			backslash := backslashQuotes || i > 0 && (sql[i-1] == 'e' || sql[i-1] == 'E') && (i < 2 || !identByte(sql[i-2]))
			end, ok := skipString(sql, i, backslash)
			if !ok {
				// Unterminated: the parser will reject it; count what follows.
				continue
			}
			i = end
		case '"':
			end := strings.IndexByte(sql[i+1:], '"')
			if end < 0 {
				continue
			}
			i += end + 1 // a doubled "" inside is two adjacent quoted parts: same result
		case '$':
			if i > 0 && identByte(sql[i-1]) {
				continue // $1 parameters and identifiers containing $
			}
			tagEnd := i + 1
			for tagEnd < len(sql) && sql[tagEnd] != '$' && identByte(sql[tagEnd]) && !(tagEnd == i+1 && sql[tagEnd] >= '0' && sql[tagEnd] <= '9') {
				tagEnd++
			}
			if tagEnd >= len(sql) || sql[tagEnd] != '$' {
				continue
			}
			tag := sql[i : tagEnd+1]
			end := strings.Index(sql[tagEnd+1:], tag)
			if end < 0 {
				continue
			}
			i = tagEnd + 1 + end + len(tag) - 1
		}
	}
	return maxDepth
}

// skipBlockComment returns the index of the last byte of the (nestable)
// comment starting at i, or len(sql)-1 and false when it is not closed.
func skipBlockComment(sql string, i int) (int, bool) {
	level := 0
	for ; i+1 < len(sql); i++ {
		switch {
		case sql[i] == '/' && sql[i+1] == '*':
			level++
			i++
		case sql[i] == '*' && sql[i+1] == '/':
			level--
			i++
			if level == 0 {
				return i, true
			}
		}
	}
	return len(sql) - 1, false
}

// skipString returns the index of the quote closing the literal that opens
// at i; backslash says backslash escapes apply (E'...').
func skipString(sql string, i int, backslash bool) (int, bool) {
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			if backslash {
				j++
			}
		case '\'':
			if j+1 < len(sql) && sql[j+1] == '\'' {
				j++
				continue
			}
			return j, true
		}
	}
	return 0, false
}

func identByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
