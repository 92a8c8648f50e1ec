package rewrite

import (
	"fmt"
	"strings"
)

// The C parser recurses on nested input and can overflow the thread's stack
// inside the cgo call, where recover() cannot help. These bounds are
// checked on the text before it reaches the parser.
//
// Brackets are not the only way to nest: a left-associative chain
// (a+b+c+..., x::int::int..., NOT NOT ...) nests one expression level per
// operator, and each UNION or JOIN nests one more set operation or join
// node. Measured with pg_query_go v6 on this project's machine, 25000
// chained + or ::, or 25000 JOINs, overflow the stack (SIGSEGV kills the
// process), and 5000 already exceed the protobuf decoder's recursion
// limit; the bounds below leave a margin of 5 to 25 times.
const (
	MaxStatementBytes = 1 << 20 // longer texts are refused (ReasonTooLong)
	MaxNestingDepth   = 256     // deeper bracket nesting is refused (ReasonTooDeep)
	MaxOperatorChain  = 1000    // longer operator chains at one bracket level are refused (ReasonTooDeep)
	MaxSetOperations  = 500     // more UNION, INTERSECT and EXCEPT are refused (ReasonTooDeep)
	MaxJoins          = 500     // more JOIN keywords are refused (ReasonTooDeep)
)

// shape is what the bounds judge, measured on the text without parsing.
type shape struct {
	depth  int // deepest nesting of ( and [
	chain  int // longest run of operators at one bracket level (see measure)
	setOps int // UNION, INTERSECT and EXCEPT keywords
	joins  int // JOIN keywords
}

// textShape measures sql outside string literals, quoted identifiers and
// comments. Whether a backslash escapes a quote in '...' depends on the
// session's standard_conforming_strings, which the rewriter cannot see, so
// the text is measured both ways and the larger answer wins. Where the
// lexing is unsure (an unterminated quote) it counts what follows rather
// than skip it: over-counting refuses a statement, under-counting could
// crash the process.
func textShape(sql string) shape {
	a, b := measure(sql, false), measure(sql, true)
	return shape{depth: max(a.depth, b.depth), chain: max(a.chain, b.chain),
		setOps: max(a.setOps, b.setOps), joins: max(a.joins, b.joins)}
}

// tooDeep refuses a shape beyond any bound, or returns nil.
func (s shape) tooDeep() *Refusal {
	var what string
	switch {
	case s.depth > MaxNestingDepth:
		what = fmt.Sprintf("nests brackets %d levels deep (limit %d)", s.depth, MaxNestingDepth)
	case s.chain > MaxOperatorChain:
		what = fmt.Sprintf("chains %d operators without brackets (limit %d)", s.chain, MaxOperatorChain)
	case s.setOps > MaxSetOperations:
		what = fmt.Sprintf("has %d UNION/INTERSECT/EXCEPT operations (limit %d)", s.setOps, MaxSetOperations)
	case s.joins > MaxJoins:
		what = fmt.Sprintf("has %d JOINs (limit %d)", s.joins, MaxJoins)
	default:
		return nil
	}
	return &Refusal{
		Reason:  ReasonTooDeep,
		Code:    "54001",
		Message: "tombstone: statement " + what + ", deeper than Tombstone parses safely, so it was refused",
		Hint:    "Flatten the nested expressions, subqueries, set operations or joins, or split the statement.",
	}
}

// measure is textShape for one reading of backslashes.
//
// The operator chain counts, per bracket level, operators (a run of
// operator characters is one, but each + or - in it counts alone, since
// PostgreSQL splits those into unary operators) and the keywords that
// build one expression node on top of another without brackets (NOT, IS,
// LIKE, CASE, ...). A comma, a semicolon, AND and OR end the run: list
// items are siblings, and the parser folds AND and OR chains into one
// flat node. A bracketed term does not end it: a+(b)+(c) nests as deep
// as a+b+c.
func measure(sql string, backslashQuotes bool) shape {
	var s shape
	chains := []int{0} // chains[d]: current run at bracket depth d
	prevOp := false
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		op := false
		switch c {
		case '(', '[':
			chains = append(chains, 0)
			s.depth = max(s.depth, len(chains)-1)
		case ')', ']':
			if len(chains) > 1 {
				chains = chains[:len(chains)-1]
			}
		case ',', ';':
			chains[len(chains)-1] = 0
		case '-':
			if i+1 < len(sql) && sql[i+1] == '-' {
				end := strings.IndexByte(sql[i:], '\n')
				if end < 0 {
					return s
				}
				i += end
				break
			}
			op = true
		case '/':
			if i+1 < len(sql) && sql[i+1] == '*' {
				i, _ = skipBlockComment(sql, i)
				break
			}
			op = true
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
		case '+', '*', '<', '>', '=', '~', '!', '@', '#', '%', '^', '&', '|', '`', '?', ':':
			op = true
		default:
			if !identByte(c) {
				break
			}
			j := i + 1
			for j < len(sql) && identByte(sql[j]) {
				j++
			}
			switch keywordKind(sql[i:j]) {
			case kwChain:
				chains[len(chains)-1]++
			case kwBoolean:
				chains[len(chains)-1] = 0
			case kwSetOp:
				s.setOps++
			case kwJoin:
				s.joins++
			}
			i = j - 1
		}
		if op && (!prevOp || c == '+' || c == '-') {
			chains[len(chains)-1]++
		}
		s.chain = max(s.chain, chains[len(chains)-1])
		prevOp = op
	}
	return s
}

type keyword uint8

const (
	kwOther   keyword = iota
	kwChain           // builds an expression node on the one before it
	kwBoolean         // AND, OR: folded into one flat node
	kwSetOp           // UNION, INTERSECT, EXCEPT
	kwJoin            // JOIN
)

// keywordKind classifies a word, letter case ignored.
func keywordKind(w string) keyword {
	if len(w) < 2 || len(w) > 9 {
		return kwOther
	}
	var b [9]byte
	for i := 0; i < len(w); i++ {
		b[i] = w[i] | 0x20
	}
	switch string(b[:len(w)]) {
	case "not", "is", "like", "ilike", "similar", "between", "in", "collate", "at", "case", "isnull", "notnull":
		return kwChain
	case "and", "or":
		return kwBoolean
	case "union", "intersect", "except":
		return kwSetOp
	case "join":
		return kwJoin
	}
	return kwOther
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
