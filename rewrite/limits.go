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
// node. Chains add up through brackets: in ((a+a+...)+a+...)+a+... each
// bracket level's chain sits below the next one's. Measured with
// pg_query_go v6 on this project's machine, 25000 chained + or ::, 30
// brackets each followed by 900 +, or 25000 JOINs overflow the stack
// (SIGSEGV kills the process), and 5000 levels already exceed the
// protobuf decoder's recursion limit; the bounds below leave a margin of
// 5 to 25 times.
const (
	MaxStatementBytes  = 1 << 20 // longer texts are refused (ReasonTooLong)
	MaxNestingDepth    = 256     // deeper bracket nesting is refused (ReasonTooDeep)
	MaxExpressionDepth = 1000    // deeper operator nesting, brackets included, is refused (ReasonTooDeep)
	MaxSetOperations   = 500     // more UNION, INTERSECT and EXCEPT are refused (ReasonTooDeep)
	MaxJoins           = 500     // more JOIN keywords are refused (ReasonTooDeep)
)

// shape is what the bounds judge, measured on the text without parsing.
type shape struct {
	depth  int // deepest nesting of ( and [
	expr   int // expression nesting: operators chained through brackets and CASE (see measure)
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
	return shape{depth: max(a.depth, b.depth), expr: max(a.expr, b.expr),
		setOps: max(a.setOps, b.setOps), joins: max(a.joins, b.joins)}
}

// tooDeep refuses a shape beyond any bound, or returns nil.
func (s shape) tooDeep() *Refusal {
	var what string
	switch {
	case s.depth > MaxNestingDepth:
		what = fmt.Sprintf("nests brackets %d levels deep (limit %d)", s.depth, MaxNestingDepth)
	case s.expr > MaxExpressionDepth:
		what = fmt.Sprintf("nests operators up to %d levels deep (limit %d)", s.expr, MaxExpressionDepth)
	case s.setOps > MaxSetOperations:
		what = fmt.Sprintf("has %d UNION/INTERSECT/EXCEPT operations (limit %d)", s.setOps, MaxSetOperations)
	case s.joins > MaxJoins:
		what = fmt.Sprintf("has %d JOINs (limit %d)", s.joins, MaxJoins)
	default:
		return nil
	}
	return refuseTooDeep(what)
}

// measure is textShape for one reading of backslashes.
//
// The expression depth is an upper bound on how deep operators nest. A
// level (the whole text, a bracket, or CASE ... END) is split into runs
// by commas, semicolons, AND, OR, WHEN, THEN and ELSE: list items and
// CASE arms are siblings, and the parser folds AND and OR chains into one
// flat node. A run's depth is its operator count (a run of operator
// characters is one, but each + or - in it counts alone, since PostgreSQL
// splits those into unary operators; keywords such as NOT, IS, LIKE and
// OPERATOR count one each) plus the depth of its deepest nested level, one
// more for the level itself: a bracketed term can sit at the bottom of
// the chain. A level's depth is that of its deepest run.
func measure(sql string, backslashQuotes bool) shape {
	var s shape
	levels := []exprLevel{{}}
	top := func() *exprLevel { return &levels[len(levels)-1] }
	closeLevel := func() {
		d := levels[len(levels)-1].depth() + 1
		levels = levels[:len(levels)-1]
		top().child = max(top().child, d)
	}
	prevOp := false
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		op := false
		switch c {
		case '(', '[':
			levels = append(levels, exprLevel{brackets: top().brackets + 1})
			s.depth = max(s.depth, top().brackets)
			if s.depth > MaxNestingDepth {
				return s // refused whatever follows; stop before the stack grows with the text
			}
		case ')', ']':
			// An unclosed CASE ends with its bracket (the parser
			// rejects it; measure it anyway).
			for len(levels) > 1 {
				isCase := top().isCase
				closeLevel()
				if !isCase {
					break
				}
			}
		case ',', ';':
			top().endRun()
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
			case kwOperator:
				top().run++
			case kwSeparator:
				top().endRun()
			case kwCase:
				levels = append(levels, exprLevel{brackets: top().brackets, isCase: true})
				if len(levels) > MaxExpressionDepth {
					s.expr = len(levels) // each level adds at least one
					return s
				}
			case kwEnd:
				if top().isCase {
					closeLevel()
				}
			case kwSetOp:
				s.setOps++
			case kwJoin:
				s.joins++
			}
			i = j - 1
		}
		if op && (!prevOp || c == '+' || c == '-') {
			top().run++
		}
		prevOp = op
	}
	for len(levels) > 1 {
		closeLevel()
	}
	s.expr = levels[0].depth()
	return s
}

// exprLevel is one level of measure's expression depth.
type exprLevel struct {
	run    int // operators in the current run
	child  int // depth of the deepest level nested in the current run
	deeper int // depth of the deepest finished run
	// brackets counts the open brackets up to this level.
	brackets int
	isCase   bool
}

func (l *exprLevel) depth() int { return max(l.deeper, l.run+l.child) }

func (l *exprLevel) endRun() { l.deeper, l.run, l.child = l.depth(), 0, 0 }

type keyword uint8

const (
	kwOther     keyword = iota
	kwOperator          // builds an expression node on the one before it
	kwSeparator         // AND, OR (folded into one flat node), WHEN, THEN, ELSE
	kwCase              // opens a level
	kwEnd               // closes a CASE level
	kwSetOp             // UNION, INTERSECT, EXCEPT
	kwJoin              // JOIN
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
	case "not", "is", "like", "ilike", "similar", "between", "in", "collate", "at", "isnull", "notnull", "operator":
		return kwOperator
	case "and", "or", "when", "then", "else":
		return kwSeparator
	case "case":
		return kwCase
	case "end":
		return kwEnd
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
