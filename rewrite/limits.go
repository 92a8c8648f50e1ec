package rewrite

import (
	"fmt"
	"strings"
)

// pg_query's C code recurses on nested input and can overflow the stack
// it runs on inside the cgo call, where recover() cannot help: a SIGSEGV
// kills every session. bigstack.go runs it on a 4 GiB parser stack, which
// no text of MaxStatementBytes can overflow; these bounds come first, so
// that what reaches the parser also parses (pg_query's own limits below
// are refusals, not crashes) and needs a sliver of that stack.
//
// Brackets are not the only way to nest: a left-associative chain
// (a+b+c+..., x::int::int..., NOT NOT ...) nests one expression level per
// operator, and each UNION or JOIN nests one more set operation or join
// node. Chains add up through brackets: in ((a+a+...)+a+...)+a+... each
// bracket level's chain sits below the next one's.
//
// Measured with pg_query_go v6.2.5 on this project's machine: each
// construct nested n times, pg_query_go's Parse and Deparse run in a child
// process on a Go thread's 8 MiB stack (the overflow points scale with
// the stack; "-" is none up to n = 1,000,000, or for the deparse up to
// the largest n that parses):
//
//	construct                                parses up to n  then             parse overflows  deparse overflows
//	((((1))))  ((SELECT 1))                  9,984           bison's stack    -                -
//	1+1+1 (- * || ^ -> #>> :: IS NULL        4,992           decoder          23,808           4,446
//	  COLLATE AT TIME ZONE alike)
//	NOT NOT x, - - x                         4,992           decoder          -                4,446
//	x AND x AND x, OR                        flat            -                -                -
//	CASE WHEN x THEN CASE ...                1,992           bison's stack    -                -
//	(SELECT (SELECT 1)), EXISTS, IN (SELECT  1,664           decoder          -                1,482
//	FROM (SELECT * FROM (...) a) a, WITH     1,664           bison's stack    -                -
//	UNION [ALL] / INTERSECT / EXCEPT chain   9,984           decoder          47,616           8,892
//	SELECT 1 UNION (SELECT 1 UNION (...))    2,496           bison's stack    -                -
//	t JOIN t USING (id) ..., CROSS JOIN      4,992           decoder          23,808           4,446
//	(t JOIN (t JOIN ...))                    3,328           bison's stack    -                -
//	f(f(1)), coalesce(...), ARRAY[ARRAY[..   4,992           bison's stack    -                4,446
//	ARRAY[[[1]]]                             4,992           decoder          -                4,446
//	ROW(1, ROW(...)), (1, (1, ...))          2,496 / 3,328   bison's stack    -                -
//	x[1][1], IN (1, 1, ...), VALUES (1),     flat            -                -                -
//	  (1), multi-row INSERT
//
// "bison's stack" is the grammar's own limit (10,000 states: "memory
// exhausted"), "decoder" the protobuf decoder's recursion limit (10,000
// messages, 2 per operator level, 6 per subquery): both refuse the text.
// A parse overflows at 23,808 levels (352 bytes of stack each, 176 per
// byte of text); every deparse at 8,892 protobuf messages (943 bytes
// each), within what parses: on a thread's stack, deparse is the weak
// point. At the bounds below a tree is at most treeDepth() = 20,024
// messages deep: 19 MB of deparse stack, under 0.5% of a parser stack
// (TestShapeBoundsTreeDepth). They also stay 1.8 to 5.8 times under the
// 8 MiB overflow points, for callers that still run pg_query_go on a
// thread's stack.
//
// Length alone is not dangerous to the stack: a flat 16 MiB multi-row
// INSERT parses. It is costly in memory: pg_query's tree and its protobuf
// copies take about 40 times the text (a 16 MiB INSERT: 5 s of CPU and
// 700 MB to parse and print), and any client may send one, so the length
// bound is 4 MiB: a 1.3 MB multi-row INSERT and a 200,000-element IN list
// fit, and one statement costs at most about 175 MB.
const (
	MaxStatementBytes  = 4 << 20 // longer texts are refused (ReasonTooLong)
	MaxNestingDepth    = 256     // deeper bracket nesting is refused (ReasonTooDeep)
	MaxExpressionDepth = 1000    // deeper operator nesting, brackets included, is refused (ReasonTooDeep)
	MaxSetOperations   = 5000    // more UNION, INTERSECT and EXCEPT are refused (ReasonTooDeep)
	MaxJoins           = 2500    // more JOIN keywords are refused (ReasonTooDeep)
)

// Stack the C code needs per level of a chain of binary operators, the
// construct that needs the most per byte of text (measured on this
// machine: a chain of n "+1" overflows a parser stack of S bytes at
// n = S/352 in pg_query_parse_protobuf, its output functions; the deparse
// of such a tree at n = S/1886). TestParserStackBoundsRecursion checks
// both against the real parser.
const (
	parseStackPerLevel   = 352
	deparseStackPerLevel = 1886
)

// shape is what the bounds judge, measured on the text without parsing.
type shape struct {
	depth  int // deepest nesting of ( and [
	expr   int // expression nesting: operators chained through brackets and CASE (see measure)
	setOps int // UNION, INTERSECT and EXCEPT keywords
	joins  int // JOIN keywords
	// unsure: the scanner could not follow the server to the end (the
	// rest was counted without regard to quotes and comments), and why.
	unsure string
}

// textShape measures sql as PostgreSQL's scanner splits it (scan.go), so
// that brackets, operators and keywords inside string literals, quoted
// identifiers and comments do not count, and those outside always do.
// pg_query parses with standard_conforming_strings on; should a caller
// ever parse with it off, a backslash in '...' escapes the next byte, so
// a text with a backslash is measured both ways and the larger answer
// wins (without a backslash the two readings are the same).
func textShape(sql string) shape {
	s := measure(sql, false)
	if strings.IndexByte(sql, '\\') >= 0 {
		s = s.widen(measure(sql, true))
	}
	return s
}

func (s shape) widen(o shape) shape {
	unsure := s.unsure
	if unsure == "" {
		unsure = o.unsure
	}
	return shape{depth: max(s.depth, o.depth), expr: max(s.expr, o.expr),
		setOps: max(s.setOps, o.setOps), joins: max(s.joins, o.joins), unsure: unsure}
}

// treeDepth bounds the nesting depth of pg_query's tree for a text of
// this shape, counted in protobuf messages (the unit of the decoder's
// recursion limit; the C parser's output and deparse functions recurse
// once or twice per message). Every unit of expr (an operator or a level)
// adds at most treeDepthPerLevel messages, each set operation one (a
// SelectStmt whose larg is the previous one) and each JOIN two (Node and
// JoinExpr). FuzzShapeBoundsTreeDepth checks the bound on random texts.
func (s shape) treeDepth() int {
	return treeDepthPerLevel*s.expr + s.setOps + 2*s.joins + treeDepthBase
}

const (
	treeDepthPerLevel = 10 // messages per unit of expr; the largest seen is 8 (see limits_test.go)
	treeDepthBase     = 24 // ParseResult, RawStmt, wrapping statements (EXPLAIN, CREATE TABLE AS), the clause, OR over AND
)

// tooDeep refuses a shape beyond any bound, or a text that the server
// and pg_query read differently; or returns nil.
func (s shape) tooDeep() *Refusal {
	var what string
	switch {
	case s.unsure == whyContinuedAcrossComment:
		// pg_query's parse would judge another statement than the
		// server runs (in practice it fails: two adjacent strings).
		return refuseUnparseable("it holds " + whyContinuedAcrossComment)
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
// flat node. A run's depth is its operator count (each operator token,
// each :: and each of the keywords NOT, IS, LIKE, ... counts one) plus
// the depth of its deepest nested level, one more for the level itself:
// a bracketed term can sit at the bottom of the chain. A level's depth is
// that of its deepest run.
//
// Where the scanner is unsure (an unterminated quote, say: the parser
// will reject the text, but it would read up to there first), the rest of
// the text is counted without regard to quotes, comments or closing
// brackets: over-counting refuses a statement, under-counting could let
// one through deeper than measured.
func measure(sql string, scsOff bool) shape {
	var s shape
	levels := []exprLevel{{}}
	top := func() *exprLevel { return &levels[len(levels)-1] }
	closeLevel := func() {
		d := levels[len(levels)-1].depth() + 1
		levels = levels[:len(levels)-1]
		top().child = max(top().child, d)
	}
	sc := newScanner(sql)
	sc.scsOff = scsOff
	for {
		t := sc.next()
		switch t.kind {
		case tokEnd:
			for len(levels) > 1 {
				closeLevel()
			}
			s.expr = levels[0].depth()
			return s
		case tokUnsure:
			for len(levels) > 1 {
				closeLevel()
			}
			s.expr = levels[0].depth()
			s.unsure = sc.why
			return s.widenRaw(sql[t.start:])
		case tokSelf:
			switch c := sql[t.start]; c {
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
			case '+', '-', '*', '/', '%', '^', '<', '>', '=', ':':
				top().run++
			}
		case tokOp, tokTypecast, tokLessEquals, tokGreaterEquals, tokNotEquals, tokEqualsGreater, tokColonEquals:
			top().run++
		case tokIdent:
			switch keywordKind(sql[t.start:t.end]) {
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
		}
	}
}

// widenRaw adds to s what rest may hold however the server reads it:
// every ( or [ nests one more level, every operator character and every
// operator keyword one more operator, with nothing closing a level or
// ending a run; words are letter runs, so a keyword glued to anything
// is still found.
func (s shape) widenRaw(rest string) shape {
	brackets, ops := 0, 0
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == '(' || c == '[':
			brackets++
		case isOpChar(c) || c == ':':
			ops++
		case (c|0x20) >= 'a' && (c|0x20) <= 'z' || c == '_' || c >= 0x80:
			j := i + 1
			for j < len(rest) && ((rest[j]|0x20) >= 'a' && (rest[j]|0x20) <= 'z' || rest[j] == '_' || rest[j] >= 0x80) {
				j++
			}
			switch keywordKind(rest[i:j]) {
			case kwOperator, kwCase:
				ops++
			case kwSetOp:
				s.setOps++
			case kwJoin:
				s.joins++
			}
			i = j - 1
		}
	}
	s.depth += brackets
	s.expr += brackets + ops
	if s.depth > MaxNestingDepth {
		s.depth = MaxNestingDepth + 1 // refused: count no further, as measure does
	}
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
