package rewrite

import (
	"strings"
	"unicode/utf8"
)

// lexer walks SQL text token by token as far as PostgreSQL's scanner would
// split it, to find literals and parameters without parsing. It knows
// comments, quoted identifiers, identifiers that contain digits or $, and
// numbers; whatever it is not sure about it reports as tokUnsure, and the
// caller then gives up on templating (it never guesses).
type lexer struct {
	s string
	i int
}

type tokenKind uint8

const (
	tokEnd    tokenKind = iota
	tokString           // a plain '...' literal without backslashes
	tokNumber           // an unsigned decimal integer, decimal or real
	tokParam            // $n
	// tokUnsure: a construct whose extent or meaning depends on things the
	// lexer does not follow: E'', B'', X'', N'' and U& strings (escapes,
	// and a prefix glued to the literal), backslashes in '' (their meaning
	// depends on standard_conforming_strings), dollar quotes, string
	// continuation across lines, PG16 number syntax (0x1F, 1_000) and
	// trailing junk (1abc), unterminated quotes or comments, NUL bytes.
	tokUnsure
)

// next returns the next literal or parameter and its byte range, skipping
// everything else.
func (l *lexer) next() (kind tokenKind, start, end int) {
	s := l.s
	for l.i < len(s) {
		i := l.i
		c := s[i]
		switch {
		case c == 0:
			return tokUnsure, i, i
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			nl := strings.IndexByte(s[i:], '\n')
			if nl < 0 {
				l.i = len(s)
			} else {
				l.i = i + nl + 1
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end, ok := skipBlockComment(s, i)
			if !ok {
				return tokUnsure, i, i
			}
			l.i = end + 1
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return tokUnsure, i, i
			}
			l.i = i + end + 2 // a doubled "" is two adjacent quoted parts: same extent
		case c == '\'':
			return l.str(i)
		case c == '$':
			// Not preceded by an identifier byte (identifiers swallow their
			// own $): a parameter or a dollar quote.
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j == i+1 || j < len(s) && (identByte(s[j]) || s[j] == '.') {
				return tokUnsure, i, i // dollar quote, $1abc, or $1.5 which a spliced 1 would join
			}
			l.i = j
			return tokParam, i, j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			return l.number(i)
		case identByte(c): // a letter, _ or a high byte: an identifier or keyword
			j := i + 1
			for j < len(s) && identByte(s[j]) {
				j++
			}
			if j < len(s) && (s[j] == '\'' || s[j] == '&' && j == i+1 && c|0x20 == 'u') {
				return tokUnsure, i, j // E'..', X'..', date'..', U&'..'
			}
			l.i = j
		default:
			l.i = i + 1
		}
	}
	return tokEnd, len(s), len(s)
}

// str scans the '...' literal opening at i.
func (l *lexer) str(i int) (tokenKind, int, int) {
	s := l.s
	end, ok := skipString(s, i, false)
	if !ok || strings.IndexByte(s[i:end], '\\') >= 0 || !utf8.ValidString(s[i:end]) {
		// Invalid UTF-8 makes pg_query's parse fail (its protobuf strings
		// must be UTF-8), so the text's answer depends on this literal.
		return tokUnsure, i, i
	}
	end++
	// 'a' followed by whitespace with a newline and another quote is one
	// literal; glued to an identifier ('a'b) it would merge with the
	// placeholder. Refuse anything but a clean end.
	j := end
	for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r' || s[j] == '\f' || s[j] == '\v') {
		j++
	}
	if j < len(s) && (s[j] == '\'' || j == end && identByte(s[j])) {
		return tokUnsure, i, i
	}
	l.i = end
	return tokString, i, end
}

// number scans the numeric literal starting at i: digits, an optional
// fraction, an optional exponent. A sign is an operator, not part of it.
func (l *lexer) number(i int) (tokenKind, int, int) {
	s := l.s
	digits := func(j int) int {
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j
	}
	if i > 0 && (identByte(s[i-1]) || s[i-1] == '"') {
		return tokUnsure, i, i // t.5 or "t".5: the placeholder would glue on
	}
	j := digits(i)
	if j < len(s) && s[j] == '.' {
		if j+1 < len(s) && s[j+1] == '.' {
			return tokUnsure, i, i // 1..2
		}
		j = digits(j + 1)
	}
	if j < len(s) && s[j]|0x20 == 'e' {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k >= len(s) || s[k] < '0' || s[k] > '9' {
			return tokUnsure, i, i // 1e, 1ex: trailing junk
		}
		j = digits(k)
	}
	if j < len(s) && (identByte(s[j]) || s[j] == '.') {
		return tokUnsure, i, i // 0x1F, 1_000, 1abc, 1.2.3
	}
	l.i = j
	return tokNumber, i, j
}
