package rewrite

import (
	"fmt"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// scanCorpus covers what the scanner must split exactly as the server
// does; TestScanMatchesServer compares each with pg_query's own scanner,
// and the cases seed FuzzScanMatchesServer.
var scanCorpus = []string{
	// comments and whitespace
	"SELECT 1 -- x\r, 2", "SELECT 1 -- x\n, 2", "SELECT 1 -- x\r\n, 2", "SELECT 1 --", "--", "-- only",
	"SELECT\v1", "SELECT\f1\t2", "SELECT 1\v--x\v\r2",
	"SELECT /* a /* b */ c */ 1", "/*/**/*/1", "/**/1", "/*/ 1", "/* ***/ 1", "/* unterminated", "/* /* */",
	"a--b", "a-/*x*/b", "*/", "+/*x*/1", "-/**/-1", "=--x\n1", "@--x\r1",
	// strings
	"'it''s'", "''", "'a\\'", "'a\\' , 'b'", "'unterminated", "'a'\n'b'", "'a'\r'b'", "'a'\v\n\v'b'", "'a' 'b'",
	"'a' -- c\n'b'", "'a'\n-- c\n'b'", "'a'\n/* c */'b'", "'a'\n", "'a'\n-", "'a'\n--", "'a' \n \n 'b' \n 'c'",
	"E'a\\'b'", "e'\\\\'", "E'\\x41'", "E'\\xff'", "E'\\xc3\\xa9'", "E'\\303\\251'", "E'\\0'", "E'\\400'", "E'\\u0041'", "E'\\u00'",
	"E'\\U0001F600'", "E'\\U00110000'", "E'\\u0000'", "E'\\ud83d\\ude00'", "E'\\ud83d'", "E'\\ude00'", "E'\\ud83dx'", "E'\\ud83d\\u0041'",
	"E'\\", "E'\\'", "E'a'\n'\\''", "E'\\q'", "E'\\é'", "E'\\\xff'", "E'\xff'", "E'\\x4'", "E'\\xg'",
	"U&'\\0041'", "U&'a' UESCAPE '!'", "u&'x'", "U&\"\\0041\"", "U&\"\"", "u&x", "U&", "u& 'x'", "U&'a'\n'b'",
	"B'101'", "b'1''0'", "X'1F'", "x'1f'\n'2e'", "B'", "N'abc'", "n'x'", "nx'y'", "date '2020-01-01'", "bx'1'",
	"$$x$$", "$tag$ 'x' $tag$", "$a$ $b$ $a$", "$a$$a$", "$$", "$", "$a", "$a b", "$1", "$12abc", "$1.5", "$1$2", "$$$", "$ab$x$a$ab$",
	"x$$a$$", "a$1", "\"a$\"$$x$$", "$_$x$_$", "$é$x$é$", "$1a$", "$a1$x$a1$",
	// quoted identifiers
	"\"col 1\"", "\"a\"\"b\"", "\"\"", "\"unterminated", "\"\"\"\"",
	// numbers
	"0x1F", "0X1f", "0o17", "0b101", "1_000", "1_000_000", "1__0", "1_", "1_x", "0x", "0x_1", "0x1g", "0x1F$", "0x1_F", "0x1__F", "0b2", "0o8", "0o178", "00x1",
	"1e5", "1E-3", "2.5e+4", ".5", "1.", "1.e5", "1e", "1e+", "1ex", "1e_5", "1e5$", "1e+5$", "1e5_0", "1e5_", "1.5e", "1.5.3", "1..2", "1...2", "1.x", "1._",
	"1_0.5x", "1.5_0$", "1.5_0", "1abc", ".e5", "1$", "1.5$", "9223372036854775808", "2147483648", "007", "1e5x",
	// operators
	"=>-", "<=>", "+-", "?-", "=-1", "--1", "*-1", "!=", "<>", "<=", ">=", "=>", "::", ":=", ":", "..", "...", "|/ 4", "!!=", "@-@", "~=-",
	"a->'x'", "a#>>'{a}'", "a||b", "a<->b", "+--x\n1", "=/", "<<=", "-+", "%-", "^-", "&-", "`-", strings.Repeat("+", 70), strings.Repeat("~", 63), strings.Repeat("~", 64),
	// other characters
	"\\", "{}", "\x01", "#", "a\x7fb", "é", "\xff",
	// statements
	"SELECT * FROM t WHERE id = $1 AND x = 2",
	"SELECT t1.c2, c3 FROM t1 JOIN \"t 2\" ON t1.x9 = \"t 2\".y",
	"SELECT a[1:2], b::int[], c->>'k' FROM t WHERE d BETWEEN 1 AND 2 OR e IS NOT NULL",
	"SELECT CASE WHEN a THEN 'x' ELSE 'y' END FROM t UNION ALL SELECT 1",
	"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $f$ SELECT 1 $f$",
}

// pgTokens is pg_query's scan of sql, or its error.
func pgTokens(sql string) ([]*pg.ScanToken, error) {
	r, err := pg.Scan(sql)
	if err != nil {
		return nil, err
	}
	return r.Tokens, nil
}

// pgKindMatches reports whether pg_query's token t is what our kind k is.
func pgKindMatches(k tokenKind, text string, t *pg.ScanToken) bool {
	switch k {
	case tokIdent:
		return t.Token == pg.Token_IDENT || t.KeywordKind != pg.KeywordKind_NO_KEYWORD
	case tokQuotedIdent:
		return t.Token == pg.Token_IDENT
	case tokUnicodeIdent:
		return t.Token == pg.Token_UIDENT
	case tokString, tokEscapeString, tokDollarString:
		return t.Token == pg.Token_SCONST
	case tokUnicodeString:
		return t.Token == pg.Token_USCONST
	case tokBitString:
		return t.Token == pg.Token_BCONST
	case tokHexString:
		return t.Token == pg.Token_XCONST
	case tokInteger:
		return t.Token == pg.Token_ICONST || t.Token == pg.Token_FCONST
	case tokNumeric:
		return t.Token == pg.Token_FCONST
	case tokParam:
		return t.Token == pg.Token_PARAM
	case tokOp:
		return t.Token == pg.Token_Op
	case tokSelf:
		return len(text) == 1 && int32(t.Token) == int32(text[0])
	case tokTypecast:
		return t.Token == pg.Token_TYPECAST
	case tokDotDot:
		return t.Token == pg.Token_DOT_DOT
	case tokColonEquals:
		return t.Token == pg.Token_COLON_EQUALS
	case tokEqualsGreater:
		return t.Token == pg.Token_EQUALS_GREATER
	case tokLessEquals:
		return t.Token == pg.Token_LESS_EQUALS
	case tokGreaterEquals:
		return t.Token == pg.Token_GREATER_EQUALS
	case tokNotEquals:
		return t.Token == pg.Token_NOT_EQUALS
	case tokLineComment:
		return t.Token == pg.Token_SQL_COMMENT
	case tokBlockComment:
		return t.Token == pg.Token_C_COMMENT
	}
	return false
}

// scanAll returns our tokens up to the end or the first unsure one.
func scanAll(sql string) (toks []token, last token, why string) {
	sc := newScanner(sql)
	for {
		t := sc.next()
		if t.kind == tokEnd || t.kind == tokUnsure {
			return toks, t, sc.why
		}
		toks = append(toks, t)
	}
}

// compareScan checks our scan of sql against pg_query's, and returns what
// differs ("" when they agree).
func compareScan(sql string) string {
	toks, last, why := scanAll(sql)
	text := sql
	if nul := strings.IndexByte(sql, 0); nul >= 0 {
		// pg_query reads a C string: the text ends at the NUL, and we
		// must say unsure there (or earlier).
		if last.kind != tokUnsure || last.start > nul {
			return "no unsure token for a text with a NUL"
		}
		text = sql[:nul]
		if last.start == nul {
			last = token{kind: tokEnd, start: nul, end: nul}
		}
	}
	want, err := pgTokens(text)
	switch {
	case last.kind == tokUnsure && strings.Contains(why, "-- comment") && err == nil:
		// The server reads one literal across the comment, pg_query two:
		// pg_query sees a string at the same place.
		if len(want) <= len(toks) || want[len(toks)].Start != int32(last.start) || !pgKindMatches(tokString, "", want[len(toks)]) && !pgKindMatches(tokBitString, "", want[len(toks)]) &&
			!pgKindMatches(tokHexString, "", want[len(toks)]) && !pgKindMatches(tokUnicodeString, "", want[len(toks)]) {
			return "continuation across a comment: pg_query sees no string there"
		}
		want = want[:len(toks)]
	case last.kind == tokUnsure:
		if err == nil && !strings.Contains(why, "-- comment") {
			return fmt.Sprintf("unsure at %d (%s) but pg_query scans the text", last.start, why)
		}
		// What we scanned before the unsure token, pg_query scans alike.
		if want, err = pgTokens(text[:last.start]); err != nil {
			return fmt.Sprintf("pg_query fails on the text before our unsure token at %d: %v", last.start, err)
		}
	case err != nil:
		return "pg_query fails (" + err.Error() + ") but the scanner is sure"
	}
	for i, t := range toks {
		if i >= len(want) {
			return fmt.Sprintf("extra token %d %q", t.kind, sql[t.start:t.end])
		}
		w := want[i]
		if int(w.Start) != t.start || int(w.End) != t.end || !pgKindMatches(t.kind, sql[t.start:t.end], w) {
			return fmt.Sprintf("token %d: ours kind %d [%d,%d) %q, pg_query %s [%d,%d) %q", i, t.kind, t.start, t.end, sql[t.start:t.end], w.Token, w.Start, w.End, text[w.Start:w.End])
		}
	}
	if len(want) > len(toks) {
		w := want[len(toks)]
		return fmt.Sprintf("missing token %s [%d,%d) %q", w.Token, w.Start, w.End, text[w.Start:w.End])
	}
	return ""
}

func TestScanMatchesServer(t *testing.T) {
	cases := append([]string{}, scanCorpus...)
	// Each case also inside a statement, and glued to what follows.
	for _, c := range scanCorpus {
		cases = append(cases, "SELECT "+c+" FROM t", "x"+c, c+"x", c+" 1", "("+c+")")
	}
	for _, sql := range cases {
		if msg := compareScan(sql); msg != "" {
			t.Errorf("%q: %s", sql, msg)
		}
	}
}

// FuzzScanMatchesServer: for any text, our tokens are pg_query's (kinds
// and byte ranges), and where pg_query's scanner fails we are unsure no
// later than where it stops agreeing with us.
func FuzzScanMatchesServer(f *testing.F) {
	for _, c := range scanCorpus {
		f.Add(c)
	}
	for _, c := range templateCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if msg := compareScan(sql); msg != "" {
			t.Fatalf("%q: %s", sql, msg)
		}
	})
}

// The server's rules that pg_query's scanner does not share, and the
// standard_conforming_strings off reading, which pg_query cannot be asked
// for: checked against what the server does.
func TestScanServerOnlyRules(t *testing.T) {
	for _, c := range []struct {
		sql    string
		scsOff bool
		want   []string // token texts; "?" ends with unsure
	}{
		{"'a' -- c\n'b'", false, []string{"?"}},  // one literal 'ab' for the server
		{"'a'\n-- c\n'b'", false, []string{"?"}}, // ditto
		{"'a'\n-- c\n", false, []string{"'a'", "-- c"}},
		{"'a\\' , 'b'", true, []string{"'a\\' , '", "?"}}, // b' opens a bit string
		{"'a\\'b'", true, []string{"'a\\'b'"}},
		{"'it''s'", true, []string{"'it''s'"}},
		{"U&'x'", true, []string{"?"}},
		{"'\\xff'", true, []string{"?"}},
	} {
		sc := newScanner(c.sql)
		sc.scsOff = c.scsOff
		var got []string
		for {
			tk := sc.next()
			if tk.kind == tokEnd {
				break
			}
			if tk.kind == tokUnsure {
				got = append(got, "?")
				break
			}
			got = append(got, c.sql[tk.start:tk.end])
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%q (scsOff %v): %q, want %q", c.sql, c.scsOff, got, c.want)
		}
	}
}
