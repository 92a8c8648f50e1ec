package rewrite

import (
	"slices"
	"sort"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The splicer: for the common statements the rewritten text is the
// client's own text with the rules' additions inserted at byte offsets,
// instead of pg_query's deparse of the changed tree. Deparse costs about
// as much as the parse, and it loses the client's formatting and the
// place of its comments (sqlcommenter tags, read by pg_stat_statements
// users and APM tools).
//
// The engine records each change it makes to the tree as an edit (engine
// fields edits and untextable). The splicer places an edit only where it
// is certain of the text it changes: offsets come from the parse tree's
// location fields and from the package's one SQL scanner (scan.go), which
// finds clause keywords at the right parenthesis depth; then every
// located node of the statement must lie in the text span of the clause
// it belongs to (a count per span, so that a keyword taken for a clause
// boundary that is not one is caught). Anything else (a change with no
// text form, a statement shape the splicer does not know, a boundary it
// cannot verify) makes the whole text fall back to deparse.
//
// Statements without edits stay byte-for-byte as sent; comments stay
// where the client put them.

type editKind uint8

const (
	// editWhere: add ANDed into the WHERE of owner (*pg.SelectStmt,
	// *pg.UpdateStmt or *pg.DeleteStmt), whose WHERE was orig.
	editWhere editKind = iota
	// editOn: add ANDed into the ON of owner (*pg.JoinExpr), which was
	// orig.
	editOn
	// editDelete: the DELETE owner (*pg.DeleteStmt, held by node) became
	// UPDATE ... SET set [FROM its USING] WHERE orig AND add.
	editDelete
)

// textEdit is one change the engine made to the tree, in a form the splicer
// can put into the text.
type textEdit struct {
	kind  editKind
	stmt  int // index of the top-level statement it belongs to
	owner proto.Message
	node  *pg.Node // editDelete: the node that held the DELETE
	orig  *pg.Node
	add   []*pg.Node
	set   string
	// setOps: owner is an arm of these set operations, innermost first.
	setOps []*pg.SelectStmt
}

// record notes an edit of the current top-level statement.
func (e *engine) record(ed textEdit) {
	ed.stmt = e.stmtIndex
	if s, ok := ed.owner.(*pg.SelectStmt); ok {
		for p := e.setOps[s]; p != nil; p = e.setOps[p] {
			ed.setOps = append(ed.setOps, p)
		}
	}
	e.edits = append(e.edits, ed)
}

// armOf notes that s's arms belong to the set operation s.
func (e *engine) armOf(s *pg.SelectStmt) {
	if e.setOps == nil {
		e.setOps = make(map[*pg.SelectStmt]*pg.SelectStmt)
	}
	for _, a := range []*pg.SelectStmt{s.Larg, s.Rarg} {
		if a != nil {
			e.setOps[a] = s
		}
	}
}

// noText notes a change the splicer cannot express: the text is deparsed.
func (e *engine) noText() { e.untextable = true }

// patch replaces sql[at:end] by text.
type patch struct {
	at, end int
	text    string
}

// splice returns sql with edits made in its text; ok is false when any
// edit cannot be placed with certainty. tree is sql's parse (the engine's
// changed tree: the splicer reads only nodes the client wrote).
func splice(sql string, tree *pg.ParseResult, edits []textEdit) (string, bool) {
	var patches []patch
	for i := 0; i < len(edits); {
		j := i
		for j < len(edits) && edits[j].stmt == edits[i].stmt {
			j++
		}
		n := edits[i].stmt
		if n >= len(tree.Stmts) {
			return "", false
		}
		p, ok := spliceStmt(sql, tree.Stmts[n], edits[i:j])
		if !ok {
			return "", false
		}
		patches = append(patches, p...)
		i = j
	}
	slices.SortStableFunc(patches, func(a, b patch) int { return a.at - b.at })
	var b strings.Builder
	size := len(sql)
	for _, p := range patches {
		size += len(p.text)
	}
	b.Grow(size)
	last := 0
	for _, p := range patches {
		if p.at < last {
			return "", false // overlapping patches
		}
		b.WriteString(sql[last:p.at])
		b.WriteString(p.text)
		last = p.end
	}
	b.WriteString(sql[last:])
	return b.String(), true
}

// stmtText is one top-level statement's tokens (offsets into the whole
// text) and the sorted locations of its located nodes.
type stmtText struct {
	sql      string
	from, to int // the statement's text
	toks     []stok
	locs     []int32
}

// stok is a token with the parenthesis depth it stands at ('(' and its
// ')' at the depth outside them) and whether it is a comment.
type stok struct {
	token
	depth   int
	comment bool
	// encl is the index of the innermost '(' around the token, -1 if
	// none; match is, for a '(', the index of its ')' (-1 if none).
	encl, match int32
}

// spliceStmt places the edits of one top-level statement.
func spliceStmt(sql string, raw *pg.RawStmt, edits []textEdit) ([]patch, bool) {
	from, to := int(raw.StmtLocation), stmtEnd(sql, raw)
	if from < 0 || to > len(sql) || from > to {
		return nil, false
	}
	// About one token per five bytes of SQL: one allocation for most.
	st := &stmtText{sql: sql, from: from, to: to, toks: make([]stok, 0, (to-from)/5+8)}
	sc := newScanner(sql[from:to])
	depth := 0
	var open []int32 // the '(' not yet closed
	for {
		t := sc.next()
		if t.kind == tokUnsure {
			return nil, false
		}
		if t.kind == tokEnd {
			break
		}
		t.start, t.end = t.start+from, t.end+from
		c := sql[t.start]
		self := t.kind == tokSelf
		if self && (c == ')' || c == ']') {
			depth--
		}
		if self && c == ')' && len(open) > 0 {
			st.toks[open[len(open)-1]].match = int32(len(st.toks))
			open = open[:len(open)-1]
		}
		encl := int32(-1)
		if len(open) > 0 {
			encl = open[len(open)-1]
		}
		st.toks = append(st.toks, stok{token: t, depth: depth, comment: t.kind == tokLineComment || t.kind == tokBlockComment, encl: encl, match: -1})
		if self && c == '(' {
			open = append(open, int32(len(st.toks)-1))
		}
		if self && (c == '(' || c == '[') {
			depth++
		}
	}
	// Every node the client wrote (the SET lists the rules parse carry
	// no location, see setTargets).
	st.locs = appendLocations(st.locs, raw.Stmt)
	slices.Sort(st.locs)

	var out []patch
	for _, ed := range edits {
		var p []patch
		ok := false
		switch ed.kind {
		case editWhere:
			p, ok = st.where(raw.Stmt, ed)
		case editOn:
			p, ok = st.on(ed)
		case editDelete:
			p, ok = st.delete(raw.Stmt, ed)
		}
		if !ok {
			return nil, false
		}
		out = append(out, p...)
	}
	return out, true
}

// whereStops end a WHERE expression, a FROM list or a SET list at depth 0.
var whereStops = map[string]bool{
	"where": true, "group": true, "having": true, "window": true, "order": true, "limit": true,
	"offset": true, "fetch": true, "for": true, "union": true, "intersect": true, "except": true,
	"returning": true, "on": true, // ON: an INSERT ... SELECT's ON CONFLICT
}

// relStops end a DELETE's target.
var relStops = map[string]bool{"using": true, "where": true, "returning": true}

// joinStops end an ON expression at its depth, besides whereStops.
var joinStops = map[string]bool{
	"join": true, "inner": true, "left": true, "right": true, "full": true, "cross": true,
	"natural": true, "on": true,
}

// keyword reports whether toks[i] is the keyword kw (lower case) used as
// one: not a column label after AS or a dot, and GROUP not that of
// WITHIN GROUP.
func (st *stmtText) keyword(i int, kw string) bool {
	t := st.toks[i]
	if t.kind != tokIdent || !strings.EqualFold(st.sql[t.start:t.end], kw) {
		return false
	}
	if p := st.prev(i); p >= 0 {
		pt := st.toks[p]
		prev := st.sql[pt.start:pt.end]
		if prev == "." || pt.kind == tokIdent && strings.EqualFold(prev, "as") ||
			kw == "group" && pt.kind == tokIdent && strings.EqualFold(prev, "within") {
			return false
		}
	}
	return true
}

// word is the lower-case keyword toks[i] stands for, "" if none.
func (st *stmtText) word(i int, set map[string]bool) string {
	t := st.toks[i]
	if t.kind != tokIdent || t.end-t.start > 9 {
		return ""
	}
	var buf [9]byte
	w := buf[:t.end-t.start]
	for k := range w {
		c := st.sql[t.start+k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		w[k] = c
	}
	if !set[string(w)] { // no allocation: the compiler looks the bytes up
		return ""
	}
	if kw := string(w); st.keyword(i, kw) {
		return kw
	}
	return ""
}

// prev and next are the indexes of the significant tokens around i, -1
// or len(toks) when none.
func (st *stmtText) prev(i int) int {
	for i--; i >= 0 && st.toks[i].comment; i-- {
	}
	return i
}

func (st *stmtText) next(i int) int {
	for i++; i < len(st.toks) && st.toks[i].comment; i++ {
	}
	return i
}

// first is the index of the first token starting after offset at.
func (st *stmtText) first(at int32) int {
	return sort.Search(len(st.toks), func(i int) bool { return st.toks[i].start > int(at) })
}

// stop is the first significant token after offset at (a location) that
// ends a clause at depth: a keyword of sets, a ',' when comma is set, a
// ';', or a token outside the depth. It returns len(toks) at the end.
func (st *stmtText) stop(at int32, depth int, comma bool, sets ...map[string]bool) int {
	for i := st.first(at); i < len(st.toks); i++ {
		t := st.toks[i]
		if t.comment {
			continue
		}
		if t.depth < depth {
			return i
		}
		if t.depth > depth {
			continue
		}
		if t.kind == tokSelf && (st.sql[t.start] == ';' || comma && st.sql[t.start] == ',') {
			return i
		}
		for _, set := range sets {
			if st.word(i, set) != "" {
				return i
			}
		}
	}
	return len(st.toks)
}

// endBefore is the end offset of the last significant token before toks[i].
func (st *stmtText) endBefore(i int) (int, bool) {
	p := st.prev(i)
	if p < 0 {
		return 0, false
	}
	return st.toks[p].end, true
}

// count is the number of located nodes in [from, to).
func (st *stmtText) count(from, to int) int {
	a := sort.Search(len(st.locs), func(i int) bool { return int(st.locs[i]) >= from })
	b := sort.Search(len(st.locs), func(i int) bool { return int(st.locs[i]) >= to })
	return b - a
}

// locStats is the number of located nodes under the messages and their
// largest and smallest location (-1 when none).
type locStats struct {
	n        int
	min, max int32
}

func statsOf[M proto.Message](ms ...M) locStats {
	s := locStats{min: -1, max: -1}
	var buf [16]int32
	for _, m := range ms {
		for _, l := range appendLocations(buf[:0], m) {
			s.n++
			if s.min < 0 || l < s.min {
				s.min = l
			}
			if l > s.max {
				s.max = l
			}
		}
	}
	return s
}

func (a locStats) plus(b locStats) locStats {
	out := locStats{n: a.n + b.n, min: a.min, max: a.max}
	if out.min < 0 || b.min >= 0 && b.min < out.min {
		out.min = b.min
	}
	if b.max > out.max {
		out.max = b.max
	}
	return out
}

// appendLocations appends every location >= 0 in the tree under m. The
// common node kinds are read field by field: protobuf reflection over a
// whole statement costs as much as the deparse the splicer saves. Other
// kinds go through reflection, whose *pg.Node children come back here.
// TestLocationsMatchReflection holds the two ways to the same answer.
func appendLocations(dst []int32, m proto.Message) []int32 {
	switch x := m.(type) {
	case *pg.Node:
		return appendNodeLocations(dst, x)
	case *pg.RangeVar:
		return appendLoc(dst, x.Location) // an Alias has no location
	case *pg.SelectStmt:
		if x == nil {
			return dst
		}
		for _, l := range [][]*pg.Node{x.DistinctClause, x.TargetList, x.FromClause, x.GroupClause, x.WindowClause, x.ValuesLists, x.SortClause, x.LockingClause} {
			dst = appendNodes(dst, l)
		}
		for _, n := range []*pg.Node{x.WhereClause, x.HavingClause, x.LimitOffset, x.LimitCount} {
			dst = appendNodeLocations(dst, n)
		}
		if x.IntoClause != nil {
			dst = appendReflected(dst, x.IntoClause.ProtoReflect())
		}
		if x.WithClause != nil {
			dst = appendReflected(dst, x.WithClause.ProtoReflect())
		}
		return appendLocations(appendLocations(dst, x.Larg), x.Rarg)
	case *pg.TypeName:
		if x == nil {
			return dst
		}
		return appendLoc(appendNodes(appendNodes(appendNodes(dst, x.Names), x.Typmods), x.ArrayBounds), x.Location)
	case *pg.WindowDef:
		if x == nil {
			return dst
		}
		dst = appendNodes(appendNodes(dst, x.PartitionClause), x.OrderClause)
		return appendLoc(appendNodeLocations(appendNodeLocations(dst, x.StartOffset), x.EndOffset), x.Location)
	}
	if r := m.ProtoReflect(); r.IsValid() {
		return appendReflected(dst, r)
	}
	return dst
}

func appendLoc(dst []int32, l int32) []int32 {
	if l >= 0 {
		dst = append(dst, l)
	}
	return dst
}

func appendNodes(dst []int32, l []*pg.Node) []int32 {
	for _, n := range l {
		dst = appendNodeLocations(dst, n)
	}
	return dst
}

func appendNodeLocations(dst []int32, n *pg.Node) []int32 {
	if n == nil {
		return dst
	}
	switch x := n.Node.(type) {
	case *pg.Node_String_, *pg.Node_Integer, *pg.Node_Float, *pg.Node_Boolean, *pg.Node_AStar, *pg.Node_BitString:
		return dst
	case *pg.Node_ColumnRef:
		return appendLoc(appendNodes(dst, x.ColumnRef.Fields), x.ColumnRef.Location)
	case *pg.Node_AConst:
		return appendLoc(dst, x.AConst.Location) // its value has none
	case *pg.Node_ParamRef:
		return appendLoc(dst, x.ParamRef.Location)
	case *pg.Node_AExpr:
		dst = appendNodeLocations(appendNodes(dst, x.AExpr.Name), x.AExpr.Lexpr)
		return appendLoc(appendNodeLocations(dst, x.AExpr.Rexpr), x.AExpr.Location)
	case *pg.Node_BoolExpr:
		return appendLoc(appendNodes(appendNodeLocations(dst, x.BoolExpr.Xpr), x.BoolExpr.Args), x.BoolExpr.Location)
	case *pg.Node_NullTest:
		return appendLoc(appendNodeLocations(appendNodeLocations(dst, x.NullTest.Xpr), x.NullTest.Arg), x.NullTest.Location)
	case *pg.Node_ResTarget:
		return appendLoc(appendNodeLocations(appendNodes(dst, x.ResTarget.Indirection), x.ResTarget.Val), x.ResTarget.Location)
	case *pg.Node_RangeVar:
		return appendLocations(dst, x.RangeVar)
	case *pg.Node_FuncCall:
		f := x.FuncCall
		dst = appendNodes(appendNodes(appendNodes(dst, f.Funcname), f.Args), f.AggOrder)
		return appendLoc(appendLocations(appendNodeLocations(dst, f.AggFilter), f.Over), f.Location)
	case *pg.Node_TypeCast:
		return appendLoc(appendLocations(appendNodeLocations(dst, x.TypeCast.Arg), x.TypeCast.TypeName), x.TypeCast.Location)
	case *pg.Node_TypeName:
		return appendLocations(dst, x.TypeName)
	case *pg.Node_SortBy:
		return appendLoc(appendNodes(appendNodeLocations(dst, x.SortBy.Node), x.SortBy.UseOp), x.SortBy.Location)
	case *pg.Node_SubLink:
		l := x.SubLink
		dst = appendNodes(appendNodeLocations(appendNodeLocations(dst, l.Xpr), l.Testexpr), l.OperName)
		return appendLoc(appendNodeLocations(dst, l.Subselect), l.Location)
	case *pg.Node_JoinExpr:
		j := x.JoinExpr // its Alias and JoinUsingAlias have no location
		return appendNodeLocations(appendNodes(appendNodeLocations(appendNodeLocations(dst, j.Larg), j.Rarg), j.UsingClause), j.Quals)
	case *pg.Node_SelectStmt:
		return appendLocations(dst, x.SelectStmt)
	case *pg.Node_RangeSubselect:
		return appendNodeLocations(dst, x.RangeSubselect.Subquery)
	case *pg.Node_AIndirection:
		return appendNodes(appendNodeLocations(dst, x.AIndirection.Arg), x.AIndirection.Indirection)
	case *pg.Node_AIndices:
		return appendNodeLocations(appendNodeLocations(dst, x.AIndices.Lidx), x.AIndices.Uidx)
	case *pg.Node_List:
		return appendNodes(dst, x.List.Items)
	}
	return appendReflected(dst, n.ProtoReflect())
}

// appendReflected is appendLocations through reflection, for m itself.
func appendReflected(dst []int32, m protoreflect.Message) []int32 {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.Int32Kind && fd.Name() == "location" {
			dst = appendLoc(dst, int32(v.Int()))
		}
		_ = eachMessage(fd, v, func(c protoreflect.Message) error {
			dst = appendLocations(dst, c.Interface())
			return nil
		})
		return true
	})
	return dst
}

// conjuncts is the text of filters ANDed together; ok is false for a
// filter that is not ref.col IS NULL, the only one the rules add here.
func conjuncts(add []*pg.Node) (string, bool) {
	var b strings.Builder
	for i, n := range add {
		nt := n.GetNullTest()
		if nt == nil || nt.Nulltesttype != pg.NullTestType_IS_NULL || nt.Argisrow {
			return "", false
		}
		cr := nt.Arg.GetColumnRef()
		if cr == nil || len(cr.Fields) == 0 {
			return "", false
		}
		if i > 0 {
			b.WriteString(" AND ")
		}
		for k, f := range cr.Fields {
			s := f.GetString_()
			if s == nil {
				return "", false
			}
			if k > 0 {
				b.WriteByte('.')
			}
			b.WriteString(quoteIdent(s.Sval))
		}
		b.WriteString(" IS NULL")
	}
	return b.String(), len(add) > 0
}

// whereParts is how a statement's located nodes divide around its WHERE:
// the clauses before it (the last of which the WHERE follows) and after.
func whereParts(stmt proto.Message) (before, after locStats, ok bool) {
	switch s := stmt.(type) {
	case *pg.SelectStmt:
		if s.Op != pg.SetOperation_SETOP_NONE || len(s.ValuesLists) > 0 {
			return before, after, false
		}
		before = statsOf(s.WithClause).plus(statsOf(s.IntoClause)).
			plus(statsOf(s.DistinctClause...)).plus(statsOf(s.TargetList...)).plus(statsOf(s.FromClause...))
		after = statsOf(s.GroupClause...).plus(statsOf(s.HavingClause, s.LimitOffset, s.LimitCount)).
			plus(statsOf(s.WindowClause...)).plus(statsOf(s.SortClause...)).plus(statsOf(s.LockingClause...))
	case *pg.UpdateStmt:
		before = statsOf(s.WithClause).plus(statsOf(s.Relation)).plus(statsOf(s.TargetList...)).plus(statsOf(s.FromClause...))
		after = statsOf(s.ReturningList...)
	case *pg.DeleteStmt:
		before = statsOf(s.WithClause).plus(statsOf(s.Relation)).plus(statsOf(s.UsingClause...))
		after = statsOf(s.ReturningList...)
	default:
		return before, after, false
	}
	return before, after, true
}

// textExtent is the text of one statement of the tree: [from, to) at paren
// depth depth.
type textExtent struct {
	from, to, depth int
}

// extent is where the statement owner (held by node, for a DELETE that
// became an UPDATE) stands in the text: the whole top-level statement, or
// the statement of an INSERT ... SELECT, EXPLAIN, PREPARE or DECLARE
// (child), or a parenthesized one (a subquery, a CTE's body) whose
// parentheses are the innermost holding all its located nodes. It must
// open with lead, or WITH. Set-operation arms and the query of CREATE
// TABLE AS (WITH NO DATA may follow it) are not placed.
func (st *stmtText) extent(top *pg.Node, owner proto.Message, node *pg.Node, lead string) (textExtent, bool) {
	sp := textExtent{from: st.from, to: st.to}
	if c, ok := st.child(top, owner, node, lead); ok {
		sp = c
	} else if node != top && !topOwner(top, owner) {
		s := statsOf(owner)
		if s.n == 0 {
			return textExtent{}, false
		}
		// The parentheses around the first located node, innermost
		// first.
		i := st.first(s.min - 1)
		if i >= len(st.toks) || st.toks[i].start != int(s.min) {
			return textExtent{}, false
		}
		found := false
		for o := st.toks[i].encl; o >= 0 && !found; o = st.toks[o].encl {
			c := st.toks[o].match
			if c < 0 {
				return textExtent{}, false
			}
			if st.toks[c].start > int(s.max) {
				sp, found = textExtent{from: st.toks[o].end, to: st.toks[c].start, depth: st.toks[o].depth + 1}, true
			}
		}
		if !found || st.count(sp.from, sp.to) != s.n {
			return textExtent{}, false
		}
	}
	i := st.first(int32(sp.from) - 1)
	for i < len(st.toks) && st.toks[i].comment {
		i++
	}
	if i >= len(st.toks) || !st.keyword(i, lead) && !st.keyword(i, "with") {
		return textExtent{}, false
	}
	return sp, true
}

// arm places an arm of set operations (ops, innermost first) written
// without parentheses: within the outermost operation's text, from the
// last SELECT before the arm's first node up to the next UNION,
// INTERSECT or EXCEPT at its depth, or to the outermost operation's own
// ORDER BY, LIMIT or locking clause. A parenthesized arm is placed by its
// parentheses.
func (st *stmtText) arm(top *pg.Node, a *pg.SelectStmt, ops []*pg.SelectStmt) (textExtent, bool) {
	if sp, ok := st.extent(top, a, nil, "select"); ok {
		return sp, true // parenthesized: parentheses holding exactly its nodes
	}
	root := ops[len(ops)-1]
	r, ok := st.extent(top, root, nil, "select")
	if !ok {
		return textExtent{}, false
	}
	s := statsOf(a)
	if s.n == 0 {
		return textExtent{}, false
	}
	// Back from the arm's first node to its SELECT: the arm's own
	// tokens only, so that a thousand arms cost linear time.
	start := -1
	for i := st.first(s.min-1) - 1; i >= 0 && st.toks[i].start >= r.from; i-- {
		if st.toks[i].depth == r.depth && st.word(i, setOpStops) != "" {
			break
		}
		if st.toks[i].depth == r.depth && st.keyword(i, "select") {
			start = i
			break
		}
	}
	if start < 0 {
		return textExtent{}, false
	}
	to := r.to
	if i := st.stop(s.max, r.depth, false, setOpStops); i < len(st.toks) && st.toks[i].start < to {
		to = st.toks[i].start
	}
	trailing := statsOf(root.SortClause...).plus(statsOf(root.LimitOffset, root.LimitCount)).plus(statsOf(root.LockingClause...))
	if trailing.n > 0 && int(trailing.min) < to {
		to = int(trailing.min)
	}
	if st.count(st.toks[start].start, to) != s.n {
		return textExtent{}, false
	}
	return textExtent{from: st.toks[start].start, to: to, depth: r.depth}, true
}

// setOpStops end a set operation's arm.
var setOpStops = map[string]bool{"union": true, "intersect": true, "except": true}

// child places the statement written without parentheses as the query
// of the top-level statement: from its lead (or WITH) keyword, after
// everything of the parent before it, up to what follows it (an INSERT's
// ON CONFLICT or RETURNING).
func (st *stmtText) child(top *pg.Node, owner proto.Message, node *pg.Node, lead string) (textExtent, bool) {
	var q *pg.Node
	var before, after locStats
	switch p := top.Node.(type) {
	case *pg.Node_InsertStmt:
		i := p.InsertStmt
		q = i.SelectStmt
		before = statsOf(i.WithClause).plus(statsOf(i.Relation)).plus(statsOf(i.Cols...))
		after = statsOf(i.OnConflictClause).plus(statsOf(i.ReturningList...))
	case *pg.Node_ExplainStmt:
		q, before = p.ExplainStmt.Query, statsOf(p.ExplainStmt.Options...)
	case *pg.Node_PrepareStmt:
		q, before = p.PrepareStmt.Query, statsOf(p.PrepareStmt.Argtypes...)
	case *pg.Node_DeclareCursorStmt:
		q = p.DeclareCursorStmt.Query
	default:
		return textExtent{}, false
	}
	if q == nil || node != q && !topOwner(q, owner) {
		return textExtent{}, false
	}
	s := statsOf(owner)
	if s.n == 0 || st.count(st.from, st.to) != before.n+s.n+after.n {
		return textExtent{}, false
	}
	start := -1
	for i := st.first(max(before.max, int32(st.from)-1)); i < len(st.toks) && st.toks[i].start < int(s.min); i++ {
		if st.toks[i].depth == 0 && (st.keyword(i, lead) || st.keyword(i, "with")) {
			start = i
		}
	}
	to := st.to
	if after.n > 0 {
		to = int(after.min)
	}
	if start < 0 || st.count(st.toks[start].start, to) != s.n {
		return textExtent{}, false
	}
	return textExtent{from: st.toks[start].start, to: to}, true
}

// topOwner reports whether owner is the top-level statement stmt.
func topOwner(stmt *pg.Node, owner proto.Message) bool {
	switch s := owner.(type) {
	case *pg.SelectStmt:
		return stmt.GetSelectStmt() == s
	case *pg.UpdateStmt:
		return stmt.GetUpdateStmt() == s
	case *pg.DeleteStmt:
		return stmt.GetDeleteStmt() == s
	}
	return false
}

// where places an editWhere.
func (st *stmtText) where(top *pg.Node, ed textEdit) ([]patch, bool) {
	before, after, ok := whereParts(ed.owner)
	if !ok {
		return nil, false
	}
	var lead string
	var with locStats
	switch s := ed.owner.(type) {
	case *pg.SelectStmt:
		lead, with = "select", statsOf(s.WithClause)
	case *pg.UpdateStmt:
		lead, with = "update", statsOf(s.WithClause)
	case *pg.DeleteStmt:
		lead, with = "delete", statsOf(s.WithClause)
	}
	var sp textExtent
	if len(ed.setOps) > 0 {
		sp, ok = st.arm(top, ed.owner.(*pg.SelectStmt), ed.setOps)
	} else {
		sp, ok = st.extent(top, ed.owner, nil, lead)
	}
	if !ok || !st.leads(max(with.max, int32(sp.from)-1), sp.depth, lead) {
		return nil, false // TABLE t, or a parenthesized SELECT
	}
	return st.whereAnd(sp, before, after, ed.orig, ed.add)
}

// leads reports whether the first word at depth after location at is kw:
// the statement's keyword after its WITH clause.
func (st *stmtText) leads(at int32, depth int, kw string) bool {
	for i := st.first(at); i < len(st.toks); i++ {
		if t := st.toks[i]; !t.comment && t.depth == depth && t.kind != tokSelf {
			return st.keyword(i, kw)
		}
	}
	return false
}

// whereAnd ANDs add into the WHERE orig (nil: none) of the statement at
// sp whose other located nodes are before and after it.
func (st *stmtText) whereAnd(sp textExtent, before, after locStats, orig *pg.Node, add []*pg.Node) ([]patch, bool) {
	filters, ok := conjuncts(add)
	x := statsOf(orig)
	if !ok || st.count(sp.from, sp.to) != before.n+after.n+x.n {
		return nil, false
	}
	from := max(before.max, int32(sp.from)-1)
	if orig == nil {
		// No WHERE: one goes after the clause before it.
		i := st.stop(from, sp.depth, false, whereStops)
		if i < len(st.toks) && st.word(i, whereStops) == "where" {
			return nil, false
		}
		at, ok := st.endBefore(i)
		if !ok || int32(at) <= from || at > sp.to || st.count(sp.from, at) != before.n {
			return nil, false
		}
		return []patch{{at: at, end: at, text: " WHERE " + filters}}, true
	}
	if x.n == 0 {
		return nil, false
	}
	kw := -1
	for i := st.first(from); i < len(st.toks) && st.toks[i].start < int(x.min); i++ {
		if st.toks[i].depth == sp.depth && st.keyword(i, "where") {
			kw = i
		}
	}
	if kw < 0 {
		return nil, false
	}
	start := st.next(kw)
	end, ok := st.endBefore(st.stop(x.max, sp.depth, false, whereStops))
	if !ok || start >= len(st.toks) || st.toks[start].start > int(x.min) || end <= int(x.max) || end > sp.to ||
		st.count(sp.from, st.toks[kw].start) != before.n || st.count(st.toks[kw].start, end) != x.n {
		return nil, false
	}
	return []patch{
		{at: st.toks[start].start, end: st.toks[start].start, text: "("},
		{at: end, end: end, text: ") AND " + filters},
	}, true
}

// on places an editOn. Where the join stands needs no finding: the ON
// keyword follows the join's sides, and the span of its expression must
// hold exactly the expression's located nodes of the whole statement.
func (st *stmtText) on(ed textEdit) ([]patch, bool) {
	j, ok := ed.owner.(*pg.JoinExpr)
	if !ok || ed.orig == nil {
		return nil, false
	}
	filters, ok := conjuncts(ed.add)
	if !ok {
		return nil, false
	}
	sides := statsOf(j.Larg, j.Rarg)
	x := statsOf(ed.orig)
	if x.n == 0 || sides.n == 0 {
		return nil, false
	}
	kw := -1
	for i := st.first(sides.max); i < len(st.toks) && st.toks[i].start < int(x.min); i++ {
		if st.keyword(i, "on") {
			kw = i
		}
	}
	if kw < 0 {
		return nil, false
	}
	start := st.next(kw)
	end, ok := st.endBefore(st.stop(x.max, st.toks[kw].depth, true, whereStops, joinStops))
	if !ok || start >= len(st.toks) || st.toks[start].start > int(x.min) || end <= int(x.max) ||
		st.count(st.toks[kw].start, end) != x.n {
		return nil, false
	}
	return []patch{
		{at: st.toks[start].start, end: st.toks[start].start, text: "("},
		{at: end, end: end, text: ") AND " + filters},
	}, true
}

// delete turns the top-level DELETE into its soft UPDATE in the text:
// DELETE FROM rel USING list WHERE cond RETURNING ... becomes
// UPDATE rel SET ... FROM list WHERE (cond) AND filters RETURNING ...
func (st *stmtText) delete(top *pg.Node, ed textEdit) ([]patch, bool) {
	d, ok := ed.owner.(*pg.DeleteStmt)
	if !ok || d.Relation == nil {
		return nil, false
	}
	with, rel, using := statsOf(d.WithClause), statsOf(d.Relation), statsOf(d.UsingClause...)
	if rel.n != 1 {
		return nil, false
	}
	sp, ok := st.extent(top, d, ed.node, "delete")
	if !ok || !st.leads(max(with.max, int32(sp.from)-1), sp.depth, "delete") {
		return nil, false
	}
	del := st.first(max(with.max, int32(sp.from)-1))
	for st.toks[del].depth != sp.depth || !st.keyword(del, "delete") {
		del++
	}
	from := st.next(del)
	if from >= len(st.toks) || !st.keyword(from, "from") || st.toks[from].depth != sp.depth ||
		st.count(sp.from, st.toks[del].start) != with.n {
		return nil, false
	}
	stop := st.stop(rel.max, sp.depth, false, relStops)
	relEnd, ok := st.endBefore(stop)
	if !ok || int32(relEnd) <= rel.max || st.count(st.toks[del].start, relEnd) != 1 {
		return nil, false
	}
	p := []patch{{at: st.toks[del].start, end: st.toks[from].end, text: "UPDATE"}}
	if from != del+1 {
		// A comment between DELETE and FROM stays.
		p = []patch{
			{at: st.toks[del].start, end: st.toks[del].end, text: "UPDATE"},
			{at: st.toks[from].start, end: st.toks[from].end, text: ""},
		}
	}
	p = append(p, patch{at: relEnd, end: relEnd, text: " SET " + ed.set})
	if len(d.UsingClause) > 0 {
		if stop >= len(st.toks) || st.word(stop, relStops) != "using" || using.n == 0 ||
			st.count(relEnd, st.toks[stop].start) != 0 {
			return nil, false
		}
		p = append(p, patch{at: st.toks[stop].start, end: st.toks[stop].end, text: "FROM"})
	}
	w, ok := st.whereAnd(sp, with.plus(rel).plus(using), statsOf(d.ReturningList...), d.WhereClause, ed.add)
	if !ok {
		return nil, false
	}
	return append(p, w...), true
}

// clearLocations sets every location under m to -1 (unknown).
func clearLocations(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.Int32Kind && fd.Name() == "location" {
			m.Set(fd, protoreflect.ValueOfInt32(-1))
		}
		_ = eachMessage(fd, v, func(c protoreflect.Message) error {
			clearLocations(c)
			return nil
		})
		return true
	})
}
