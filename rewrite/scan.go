package rewrite

import (
	"strings"
	"unicode/utf8"
)

// scanner splits SQL text into tokens as PostgreSQL 17's scanner
// (src/backend/parser/scan.l) does, so that what Tombstone reads without
// parsing (template literals, nesting bounds) is what the server reads.
// It follows the server's rules: "--" comments end at \n or \r;
// whitespace is [ \t\n\r\f\v]; block comments nest; dollar quotes,
// E'...' escapes, U&'...' and U&"...", B'...' X'...' N'...', string
// continuation, numbers with 0x 0o 0b prefixes and underscores,
// parameters, and the operator rules
// (a multi-character operator loses trailing + and - unless it holds one
// of ~ ! @ # ^ & | ` ? %).
//
// Where PostgreSQL's scanner fails (an unterminated quote or comment,
// junk after a number, an invalid escape, an overlong operator), or where
// the server and pg_query read a text differently, the scanner returns
// tokUnsure and then only tokEnd: callers take the safe path. The one
// known difference between them: the server continues a string across a
// "--" comment ('a' -- c <newline> 'b' is the one literal 'ab'), while
// pg_query's scanner (patched to report comments) sees two literals.
//
// The scanner assumes standard_conforming_strings on, as pg_query parses,
// unless scsOff is set (then '...' takes backslash escapes, as E'...',
// and U&'...' is an error). NUL ends the text as it ends pg_query's C
// string; a NUL is reported as tokUnsure.
type scanner struct {
	s      string
	pos    int
	scsOff bool
	nul    int    // offset of the first NUL, or -1
	why    string // why the scanner is unsure, once it is
	done   bool
	op     opRun
}

type tokenKind uint8

const (
	tokEnd           tokenKind = iota
	tokIdent                   // an identifier or keyword: IDENT or a keyword token
	tokQuotedIdent             // "..." (IDENT)
	tokUnicodeIdent            // U&"..." (UIDENT)
	tokString                  // '...' (SCONST), possibly continued
	tokEscapeString            // E'...' (SCONST), or '...' under scsOff
	tokUnicodeString           // U&'...' (USCONST)
	tokBitString               // B'...' (BCONST)
	tokHexString               // X'...' (XCONST)
	tokDollarString            // $tag$...$tag$ (SCONST)
	tokInteger                 // decimal, 0x, 0o or 0b integer (ICONST, or FCONST beyond int4)
	tokNumeric                 // 1.5, .5, 1., 1e5 (FCONST)
	tokParam                   // $n (PARAM)
	tokOp                      // a generic operator (Op)
	tokSelf                    // a one-character token: , ( ) [ ] . ; : + - * / % ^ < > = and any other byte
	tokTypecast                // ::
	tokDotDot                  // ..
	tokColonEquals             // :=
	tokEqualsGreater           // =>
	tokLessEquals              // <=
	tokGreaterEquals           // >=
	tokNotEquals               // <> or !=
	tokLineComment             // -- up to the newline (SQL_COMMENT)
	tokBlockComment            // /* ... */ (C_COMMENT)
	tokUnsure                  // the scanner cannot follow the server from here
)

// whyContinuedAcrossComment: the server and pg_query read the text
// differently (see scanner).
const whyContinuedAcrossComment = "a string continued across a -- comment (the server reads one literal, pg_query two)"

// token is one token: its kind and byte range in the text. cont marks a
// quoted string continued across whitespace with a newline ('a' \n 'b').
type token struct {
	kind       tokenKind
	cont       bool
	start, end int
}

func newScanner(s string) scanner {
	return scanner{s: s, nul: strings.IndexByte(s, 0)}
}

// next returns the next token, skipping whitespace.
func (sc *scanner) next() token {
	if sc.done {
		return token{kind: tokEnd, start: len(sc.s), end: len(sc.s)}
	}
	s := sc.s
	if sc.nul >= 0 {
		s = s[:sc.nul]
	}
	i := sc.pos
	for i < len(s) && isScanSpace(s[i]) {
		i++
	}
	if i >= len(s) {
		sc.pos = i
		if sc.nul >= 0 {
			return sc.unsure(i, "it contains a NUL byte")
		}
		sc.done = true
		return token{kind: tokEnd, start: len(sc.s), end: len(sc.s)}
	}
	t := sc.token(s, i)
	if t.kind == tokUnsure {
		sc.done = true
		return t
	}
	sc.pos = t.end
	return t
}

func (sc *scanner) unsure(at int, why string) token {
	sc.done, sc.why = true, why
	return token{kind: tokUnsure, start: at, end: len(sc.s)}
}

// token scans the token starting at s[i], which is not whitespace.
func (sc *scanner) token(s string, i int) token {
	c := s[i]
	var next byte
	if i+1 < len(s) {
		next = s[i+1]
	}
	switch {
	case c == '-' && next == '-':
		j := i + 2
		for j < len(s) && s[j] != '\n' && s[j] != '\r' {
			j++
		}
		return token{kind: tokLineComment, start: i, end: j}
	case c == '/' && next == '*':
		return sc.blockComment(s, i)
	case c == '\'':
		if sc.scsOff {
			return sc.quoted(s, i, i+1, tokEscapeString)
		}
		return sc.quoted(s, i, i+1, tokString)
	case c == '"':
		return sc.quotedIdent(s, i, i+1, tokQuotedIdent)
	case c == '$':
		return sc.dollar(s, i)
	case isDigit(c) || c == '.' && isDigit(next):
		return sc.number(s, i)
	case isIdentStart(c):
		if next == '\'' {
			switch c | 0x20 {
			case 'b':
				return sc.quoted(s, i, i+2, tokBitString)
			case 'x':
				return sc.quoted(s, i, i+2, tokHexString)
			case 'e':
				return sc.quoted(s, i, i+2, tokEscapeString)
			case 'n':
				// N'...': the scanner returns NCHAR for the n alone and
				// scans the string as a token of its own.
				return token{kind: tokIdent, start: i, end: i + 1}
			}
		}
		if c|0x20 == 'u' && next == '&' && i+2 < len(s) {
			switch s[i+2] {
			case '\'':
				if sc.scsOff {
					return sc.unsure(i, "a U& string under standard_conforming_strings off")
				}
				return sc.quoted(s, i, i+3, tokUnicodeString)
			case '"':
				return sc.quotedIdent(s, i, i+3, tokUnicodeIdent)
			}
		}
		j := i + 1
		for j < len(s) && isIdentCont(s[j]) {
			j++
		}
		return token{kind: tokIdent, start: i, end: j}
	case c == ':':
		switch next {
		case ':':
			return token{kind: tokTypecast, start: i, end: i + 2}
		case '=':
			return token{kind: tokColonEquals, start: i, end: i + 2}
		}
		return token{kind: tokSelf, start: i, end: i + 1}
	case c == '.':
		if next == '.' {
			return token{kind: tokDotDot, start: i, end: i + 2}
		}
		return token{kind: tokSelf, start: i, end: i + 1}
	case isOpChar(c):
		return sc.operator(s, i)
	}
	// , ( ) [ ] ; and anything else: one byte ({self} or {other}).
	return token{kind: tokSelf, start: i, end: i + 1}
}

// blockComment scans the nestable /* comment at s[i].
func (sc *scanner) blockComment(s string, i int) token {
	depth := 0
	for j := i + 2; j+1 < len(s); j++ {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			depth++
			j++
		case s[j] == '*' && s[j+1] == '/':
			if depth == 0 {
				return token{kind: tokBlockComment, start: i, end: j + 2}
			}
			depth--
			j++
		}
	}
	return sc.unsure(i, "unterminated /* comment")
}

// quoted scans a single-quoted literal whose opening quote ends at body
// (body is just past it): standard, E, U&, B or X.
func (sc *scanner) quoted(s string, start, body int, kind tokenKind) token {
	escapes := kind == tokEscapeString
	nonASCII := false // an escape produced a NUL or a byte >= 0x80
	cont := false
	j := body
	for {
		if j >= len(s) {
			return sc.unsure(start, "unterminated quoted string")
		}
		switch c := s[j]; {
		case c == '\'':
			if j+1 < len(s) && s[j+1] == '\'' && kind != tokBitString && kind != tokHexString {
				j += 2
				continue
			}
			// The closing quote: look for a continuation.
			k, newline, comment := skipContinuationSpace(s, j+1)
			if !newline || k >= len(s) || s[k] != '\'' {
				if nonASCII && !validEscapedLiteral(s[body:j]) {
					return sc.unsure(start, "an escape makes the string invalid UTF-8")
				}
				return token{kind: kind, cont: cont, start: start, end: j + 1}
			}
			if comment {
				return sc.unsure(start, whyContinuedAcrossComment)
			}
			cont = true
			j = k + 1
		case c == '\\' && escapes:
			n, bad, why := escapeLen(s, j)
			if why != "" {
				return sc.unsure(start, why)
			}
			nonASCII = nonASCII || bad
			j += n
		default:
			j++
		}
	}
}

// skipContinuationSpace skips what may separate a closing quote from the
// opening quote of its continuation: [ \t\n\r\f\v] and -- comments. It
// reports whether a newline (\n or \r) was among them and whether a
// comment was.
func skipContinuationSpace(s string, j int) (end int, newline, comment bool) {
	for j < len(s) {
		switch c := s[j]; {
		case c == '\n' || c == '\r':
			newline = true
			j++
		case c == ' ' || c == '\t' || c == '\f' || c == '\v':
			j++
		case c == '-' && j+1 < len(s) && s[j+1] == '-':
			comment = true
			for j < len(s) && s[j] != '\n' && s[j] != '\r' {
				j++
			}
		default:
			return j, newline, comment
		}
	}
	return j, newline, comment
}

// escapeLen measures the backslash escape at s[j] in an E'...' string: its
// length, whether it produces a NUL or a non-ASCII byte (the literal must
// then be valid UTF-8), or why the scanner rejects it.
func escapeLen(s string, j int) (n int, nonASCII bool, why string) {
	if j+1 >= len(s) {
		return 1, false, "" // a backslash just before the end: unterminated
	}
	switch c := s[j+1]; {
	case c >= '0' && c <= '7':
		k, v := j+1, 0
		for k < len(s) && k < j+4 && s[k] >= '0' && s[k] <= '7' {
			v = v*8 + int(s[k]-'0')
			k++
		}
		b := byte(v)
		return k - j, b == 0 || b >= 0x80, ""
	case c == 'x' && j+2 < len(s) && isHexDigit(s[j+2]):
		k, v := j+2, 0
		for k < len(s) && k < j+4 && isHexDigit(s[k]) {
			v = v*16 + hexValue(s[k])
			k++
		}
		return k - j, v == 0 || v >= 0x80, ""
	case c == 'u' || c == 'U':
		cp, k, ok := unicodeEscape(s, j)
		if !ok {
			return 0, false, "invalid Unicode escape"
		}
		switch {
		case cp >= 0xD800 && cp <= 0xDBFF:
			lo, k2, ok := unicodeEscape(s, k)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return 0, false, "invalid Unicode surrogate pair"
			}
			cp, k = 0x10000+((cp-0xD800)<<10)+(lo-0xDC00), k2
		case cp >= 0xDC00 && cp <= 0xDFFF:
			return 0, false, "invalid Unicode surrogate pair"
		}
		if cp == 0 || cp > 0x10FFFF {
			return 0, false, "invalid Unicode escape value"
		}
		return k - j, false, ""
	}
	// \n, \', \\ and any other byte: one character; a backslash before a
	// non-ASCII byte marks the literal for the UTF-8 check too.
	return 2, s[j+1] >= 0x80, ""
}

// unicodeEscape reads \uXXXX or \UXXXXXXXX at s[j].
func unicodeEscape(s string, j int) (cp rune, end int, ok bool) {
	if j+1 >= len(s) || s[j] != '\\' {
		return 0, j, false
	}
	n := 4
	switch s[j+1] {
	case 'u':
	case 'U':
		n = 8
	default:
		return 0, j, false
	}
	if j+2+n > len(s) {
		return 0, j, false
	}
	v := 0
	for _, h := range []byte(s[j+2 : j+2+n]) {
		if !isHexDigit(h) {
			return 0, j, false
		}
		v = v*16 + hexValue(h)
	}
	if v > 0x7FFFFFFF {
		v = 0x7FFFFFFF
	}
	return rune(v), j + 2 + n, true
}

// validEscapedLiteral decodes the body of an E'...' literal (continuations
// included) and reports whether the result is valid UTF-8 without NUL,
// as the scanner verifies when an escape produced such a byte.
func validEscapedLiteral(body string) bool {
	out := make([]byte, 0, len(body))
	for j := 0; j < len(body); {
		c := body[j]
		switch {
		case c == '\'':
			if j+1 < len(body) && body[j+1] == '\'' {
				out = append(out, '\'')
				j += 2
				continue
			}
			// a closing quote and its continuation
			k, _, _ := skipContinuationSpace(body, j+1)
			j = k + 1
		case c == '\\' && j+1 < len(body):
			n, _, _ := escapeLen(body, j)
			switch e := body[j+1]; {
			case e >= '0' && e <= '7':
				v := 0
				for _, d := range []byte(body[j+1 : j+n]) {
					v = v*8 + int(d-'0')
				}
				out = append(out, byte(v))
			case e == 'x' && n > 2:
				v := 0
				for _, d := range []byte(body[j+2 : j+n]) {
					v = v*16 + hexValue(d)
				}
				out = append(out, byte(v))
			case e == 'u' || e == 'U':
				cp, k, _ := unicodeEscape(body, j)
				if cp >= 0xD800 && cp <= 0xDBFF {
					lo, _, _ := unicodeEscape(body, k)
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
				}
				out = utf8.AppendRune(out, cp)
			default:
				out = append(out, unescapeByte(e))
			}
			j += n
		default:
			out = append(out, c)
			j++
		}
	}
	return utf8.Valid(out) && strings.IndexByte(string(out), 0) < 0
}

func unescapeByte(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'v':
		return '\v'
	}
	return c
}

// quotedIdent scans "..." or U&"..." whose opening quote ends at body.
func (sc *scanner) quotedIdent(s string, start, body int, kind tokenKind) token {
	for j := body; j < len(s); j++ {
		if s[j] != '"' {
			continue
		}
		if j+1 < len(s) && s[j+1] == '"' {
			j++
			continue
		}
		if j == body {
			return sc.unsure(start, "zero-length delimited identifier")
		}
		return token{kind: kind, start: start, end: j + 1}
	}
	return sc.unsure(start, "unterminated quoted identifier")
}

// dollar scans what starts with $: a parameter, a dollar-quoted string, or
// a lone $ (an identifier cannot start with $; inside one, $ is part of it).
func (sc *scanner) dollar(s string, i int) token {
	j := i + 1
	if j < len(s) && isDigit(s[j]) {
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		return token{kind: tokParam, start: i, end: j}
	}
	if j < len(s) && isIdentStart(s[j]) {
		for j < len(s) && isIdentCont(s[j]) && s[j] != '$' {
			j++
		}
	}
	if j >= len(s) || s[j] != '$' {
		return token{kind: tokSelf, start: i, end: i + 1} // {dolqfailed} or {other}: $ alone
	}
	delim := s[i : j+1]
	end := strings.Index(s[j+1:], delim)
	if end < 0 {
		return sc.unsure(i, "unterminated dollar-quoted string")
	}
	return token{kind: tokDollarString, start: i, end: j + 1 + end + len(delim)}
}

// number scans a numeric literal at s[i] (a digit, or . and a digit).
// Junk glued to a number (1abc, 0x1g, 1e, 1_) is an error, and so is a
// number whose identifier-like tail the server's longest match would take
// further than the number itself (1e5$: integer_junk).
func (sc *scanner) number(s string, i int) token {
	digits := func(j int, ok func(byte) bool) int {
		// (_?d)* after a first d at j-1
		for j < len(s) {
			if ok(s[j]) {
				j++
			} else if s[j] == '_' && j+1 < len(s) && ok(s[j+1]) {
				j += 2
			} else {
				break
			}
		}
		return j
	}
	kind := tokInteger
	var end int
	// The server's longest match also tries {decinteger}{identifier} and
	// the like: an identifier may start at any _ or e inside the number,
	// or right after it, and runs over [A-Za-z0-9_$\200-\377]. The last
	// such start runs furthest; if it runs past the number, the number
	// is junk.
	junkFrom := -1
	markJunk := func(from, to int) {
		for p := from; p < to; p++ {
			if isIdentStart(s[p]) {
				junkFrom = p
			}
		}
	}
	if s[i] == '0' && i+1 < len(s) && strings.IndexByte("xXoObB", s[i+1]) >= 0 {
		ok := isHexDigit
		switch s[i+1] | 0x20 {
		case 'o':
			ok = func(c byte) bool { return c >= '0' && c <= '7' }
		case 'b':
			ok = func(c byte) bool { return c == '0' || c == '1' }
		}
		j := i + 2
		if j < len(s) && s[j] == '_' {
			j++
		}
		if j >= len(s) || !ok(s[j]) {
			return sc.unsure(i, "invalid hexadecimal, octal or binary integer")
		}
		end = digits(j+1, ok)
		// 0x1F glued to more identifier characters is integer_junk
		// ("0" and the identifier "x1F..."), longer than the integer.
		if end < len(s) && isIdentCont(s[end]) {
			return sc.unsure(i, "trailing junk after numeric literal")
		}
		return token{kind: tokInteger, start: i, end: end}
	}
	j := i
	if isDigit(s[j]) {
		j = digits(j+1, isDigit)
		markJunk(i, j)
	}
	if j < len(s) && s[j] == '.' {
		if j+1 < len(s) && s[j+1] == '.' && j > i {
			// {numericfail}: 1..2 is the integer 1 and ..
			return token{kind: tokInteger, start: i, end: j}
		}
		kind = tokNumeric
		j++
		if j < len(s) && isDigit(s[j]) {
			k := digits(j+1, isDigit)
			markJunk(j, k)
			j = k
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		markJunk(j, j+1)
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
			if k >= len(s) || !isDigit(s[k]) {
				return sc.unsure(i, "trailing junk after numeric literal")
			}
		}
		if k < len(s) && isDigit(s[k]) {
			kind = tokNumeric
			j = digits(k+1, isDigit)
			markJunk(k, j)
		}
	}
	end = j
	if end < len(s) && isIdentStart(s[end]) {
		junkFrom = end
	}
	if junkFrom >= 0 {
		k := junkFrom + 1
		for k < len(s) && isIdentCont(s[k]) {
			k++
		}
		if k > end {
			return sc.unsure(i, "trailing junk after numeric literal")
		}
	}
	return token{kind: kind, start: i, end: end}
}

// operator scans the operator at s[i] (not a comment start) as the
// server's {operator} rule does: the longest run of operator characters,
// cut before a /* or -- inside it, and without trailing + and - unless
// the operator holds one of ~ ! @ # ^ & | ` ? %. The run is measured
// once: when the server splits it into several tokens (*+++ is * and
// three +), the later ones reuse what was measured, so a long run costs
// one pass rather than one per token.
func (sc *scanner) operator(s string, i int) token {
	r := &sc.op
	if !r.valid || i < r.start || i >= r.end {
		*r = opRun{valid: true, start: i, qual: -1}
		j := i + 1
		for j < len(s) && isOpChar(s[j]) && !(j+1 < len(s) && (s[j] == '/' && s[j+1] == '*' || s[j] == '-' && s[j+1] == '-')) {
			j++
		}
		r.end = j
		for k := i; k < j-1; k++ {
			if strings.IndexByte("~!@#^&|`?%", s[k]) >= 0 {
				r.qual = k
			}
		}
		r.signs = j
		for r.signs > i && (s[r.signs-1] == '+' || s[r.signs-1] == '-') {
			r.signs--
		}
	}
	end := r.end
	if end-i > 1 && r.signs < end && r.qual < i {
		end = max(r.signs, i+1)
	}
	op := s[i:end]
	switch n := len(op); {
	case n == 1 && strings.IndexByte(",()[].;:+-*/%^<>=", op[0]) >= 0:
		return token{kind: tokSelf, start: i, end: i + 1}
	case op == "=>":
		return token{kind: tokEqualsGreater, start: i, end: i + 2}
	case op == "<=":
		return token{kind: tokLessEquals, start: i, end: i + 2}
	case op == ">=":
		return token{kind: tokGreaterEquals, start: i, end: i + 2}
	case op == "<>" || op == "!=":
		return token{kind: tokNotEquals, start: i, end: i + 2}
	case n >= 64: // NAMEDATALEN
		return sc.unsure(i, "operator too long")
	}
	return token{kind: tokOp, start: i, end: end}
}

// opRun is the operator-character run the scanner is in: [start, end)
// up to any comment start, the last character before end-1 that keeps
// trailing signs (qual, or -1), and where the trailing + and - begin.
type opRun struct {
	valid       bool
	start, end  int
	qual, signs int
}

func isScanSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'f'
}

func hexValue(c byte) int {
	if isDigit(c) {
		return int(c - '0')
	}
	return int(c|0x20-'a') + 10
}

// isIdentStart: [A-Za-z\200-\377_]
func isIdentStart(c byte) bool {
	return c == '_' || c >= 0x80 || (c|0x20) >= 'a' && (c|0x20) <= 'z'
}

// isIdentCont: [A-Za-z\200-\377_0-9\$]
func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// isOpChar: [\~\!\@\#\^\&\|\`\?\+\-\*\/\%\<\>\=]
func isOpChar(c byte) bool {
	switch c {
	case '~', '!', '@', '#', '^', '&', '|', '`', '?', '+', '-', '*', '/', '%', '<', '>', '=':
		return true
	}
	return false
}
