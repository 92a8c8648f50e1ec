package rewrite

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Templates: a client that writes values into its statements (the simple
// protocol, ORMs that interpolate) sends a new text for every statement, so
// the exact-text cache misses and each one would pay a parse and a deparse.
// The rules never look at a literal's value, so texts that differ only in
// literals rewrite alike: the rewriter replaces each string and numeric
// literal with a placeholder $k, rewrites that template once, and for every
// later text of the same shape splices the text's own literal bytes into
// the cached output.
//
// The output equals the exact path's up to how a literal is spelled (the
// text's own bytes rather than pg_query's reprint of them): the same
// statement for PostgreSQL. A shape is not templated when the scanner is
// unsure of a token, when the text already holds parameters, when the
// template does not parse or is refused for a reason that could depend on a
// literal (varchar($1) is not SQL), when the deparsed template does not
// carry each placeholder exactly once, or when the spliced answer for the
// first text of the shape differs from that text's exact rewrite. Such a
// text takes the exact path, and the shape is remembered so the next text
// of it goes there directly.
//
// A text served by its template is not stored by exact text: the cache
// holds one entry per shape, so unique-text load does not fill it, and a
// repeated text costs a template hit (a scan and a splice, about 1 µs)
// rather than an exact hit.
//
// The template is compiled when the second text of a shape comes, not
// the first: the first text's exact answer is kept as the witness the
// template is then checked against. A load where every text is a new
// shape (a generated alias, a per-request comment) then costs one
// rewrite per text instead of two; a shape that repeats costs the same
// two rewrites as before, one of them a text later. The second text is
// answered by the template it compiled, and is not reported as a hit.

// template is a cached rewrite of a template text.
type template struct {
	// res is the template's rewrite; nil means the shape takes the exact
	// path. Its Statements and Applied are shared by every spliced Result.
	res *Result
	// segments is res.SQL cut around its placeholders (len(order)+1
	// pieces) when res.Changed; literal order[k] goes between segments k
	// and k+1.
	segments []string
	order    []int
	// witness, when set, marks a shape seen once: no template yet, only
	// the first text's exact answer (res is nil then).
	witness *witness
}

// witness is a shape's first text and its exact answer.
type witness struct {
	sql     string
	res     *Result
	refusal *Refusal
}

// exactOnly marks a shape that is not templated.
var exactOnly = &template{}

// literalSpan is the byte range of one literal in the input text.
type literalSpan struct{ start, end int }

// templateScratch holds one text's template key and literal ranges while
// it is looked up; pooled, so that a template hit allocates only its
// Result. The key is the template text, a NUL (no template holds one) and
// one kind letter per literal: the grammar accepts a string where it
// rejects a number (a typed literal: date '2020-01-01' but not date 1) and
// an int4-sized integer where it rejects a larger one or a decimal
// (int[3]), while pg_query's grammar accepts a placeholder in all of those
// places. Texts whose literals differ in kind are different shapes.
type templateScratch struct {
	key     []byte
	textLen int // key[:textLen] is the template text
	spans   []literalSpan
}

var scratchPool = sync.Pool{New: func() any { return new(templateScratch) }}

func (sc *templateScratch) template() string { return string(sc.key[:sc.textLen]) }

// scan builds sql's template key in sc and reports whether sql may be
// templated: it holds at least one literal, no parameter and nothing the
// scanner is unsure of. The key is sql's own token sequence (scan.go,
// PostgreSQL's rules) with each literal replaced by a placeholder and its
// kind: two texts share a key only if they are the same tokens up to
// literals of the same kinds. What is parsed is the template text, so it
// must lex as those tokens too: a placeholder must not glue onto its
// neighbours (a$1 is one identifier, $12 one parameter), so a literal
// touching an identifier character on either side is not templated.
func (sc *templateScratch) scan(sql string) bool {
	sc.key, sc.spans = sc.key[:0], sc.spans[:0]
	if strings.IndexByte(sql, 0) >= 0 || !utf8.ValidString(sql) {
		// A NUL is refused by the exact path, whose message must not
		// depend on where it is; invalid UTF-8 makes pg_query's parse
		// fail (its protobuf strings must be UTF-8), so the answer
		// would depend on the literal that holds it.
		return false
	}
	l := newScanner(sql)
	last := 0
	for {
		t := l.next()
		switch t.kind {
		case tokEnd:
			if len(sc.spans) == 0 {
				return false
			}
			sc.key = append(sc.key, sql[last:]...)
			sc.textLen = len(sc.key)
			sc.key = append(sc.key, 0)
			for _, sp := range sc.spans {
				sc.key = append(sc.key, literalKind(sql[sp.start:sp.end]))
			}
			return true
		case tokParam, tokUnsure: // the client numbers parameters; or the scanner cannot follow
			return false
		}
		if !templateLiteral(sql, t) {
			continue // kept verbatim in the key
		}
		if t.start > 0 && isIdentCont(sql[t.start-1]) || t.end < len(sql) && isIdentCont(sql[t.end]) {
			return false
		}
		sc.spans = append(sc.spans, literalSpan{t.start, t.end})
		sc.key = append(sc.key, sql[last:t.start]...)
		sc.key = append(sc.key, '$')
		sc.key = strconv.AppendInt(sc.key, int64(len(sc.spans)), 10)
		last = t.end
	}
}

// templateLiteral reports whether t is a literal the template replaces:
// a plain '...' string on one piece (no continuation), or a decimal
// number without underscores. Other literals (E'...', U&'...', B'...',
// X'...', dollar quotes, 0x1F, 1_000) stay verbatim in the key: a text
// with one is its own shape.
func templateLiteral(sql string, t token) bool {
	switch t.kind {
	case tokString:
		return !t.cont
	case tokInteger, tokNumeric:
		lit := sql[t.start:t.end]
		return strings.IndexByte(lit, '_') < 0 && (len(lit) < 2 || lit[1]|0x20 != 'x' && lit[1]|0x20 != 'o' && lit[1]|0x20 != 'b')
	}
	return false
}

// literalKind is the token PostgreSQL's scanner makes of a literal:
// 's' a string (SCONST), 'i' an integer that fits int4 (ICONST), 'f' any
// other number (FCONST).
func literalKind(lit string) byte {
	if lit[0] == '\'' {
		return 's'
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] < '0' || lit[i] > '9' {
			return 'f'
		}
	}
	digits := strings.TrimLeft(lit, "0")
	if len(digits) < 10 || len(digits) == 10 && digits <= "2147483647" {
		return 'i'
	}
	return 'f'
}

// relexesAsTemplate reports whether the template text (sql with each span
// replaced by $1, $2, ...) scans as sql's tokens with each literal
// replaced by a parameter. scan's rule about neighbours guarantees it;
// compileTemplate checks it once per shape all the same, since the
// template text is what pg_query parses for every text of the shape.
func relexesAsTemplate(sql, text string, spans []literalSpan) bool {
	a, b := newScanner(sql), newScanner(text)
	k := 0
	for {
		x, y := a.next(), b.next()
		if k < len(spans) && x.start == spans[k].start {
			k++
			if y.kind != tokParam || text[y.start:y.end] != "$"+strconv.Itoa(k) {
				return false
			}
			continue
		}
		if x.kind != y.kind || sql[x.start:x.end] != text[y.start:y.end] {
			return false
		}
		if x.kind == tokEnd || x.kind == tokUnsure {
			return x.kind == tokEnd && k == len(spans)
		}
	}
}

// viaTemplate answers sql through its template. ok is false when sql must
// take the exact path; hit reports that the template was cached.
func (r *Rewriter) viaTemplate(sql string) (res *Result, hit bool, refusal *Refusal, ok bool) {
	if r.templates == nil || int64(len(sql)) > r.templates.shards[0].limit/4 {
		// A template this long could hardly be kept (an entry larger
		// than a shard is not stored), and compiling it costs a second
		// parse: long texts, and those too long to parse at all (refused
		// by the exact path with their length), take the exact path.
		return nil, false, nil, false
	}
	sc := scratchPool.Get().(*templateScratch)
	defer scratchPool.Put(sc)
	if !sc.scan(sql) {
		return nil, false, nil, false
	}
	e, hit := r.templates.getBytes(sc.key)
	if !hit {
		sql = strings.Clone(sql)
		res, refusal = r.rewrite(sql)
		r.templates.put(string(sc.key), cacheEntry{tmpl: &template{witness: &witness{sql: sql, res: res, refusal: refusal}}})
		return res, false, refusal, true
	}
	if w := e.tmpl.witnessOf(); w != nil {
		var ws templateScratch
		if !ws.scan(w.sql) || len(ws.spans) != len(sc.spans) {
			return nil, false, nil, false // cannot be: the same key
		}
		e = r.compileTemplate(w.sql, sc.template(), ws.spans, w.res, w.refusal)
		r.templates.replace(string(sc.key), e)
		hit = false
	}
	switch {
	case e.refusal != nil:
		return nil, hit, e.refusal, true
	case e.tmpl.res == nil:
		return nil, false, nil, false
	}
	return e.tmpl.splice(sql, sc.spans), hit, nil, true
}

// witnessOf is the witness of a shape seen once, nil otherwise.
func (t *template) witnessOf() *witness {
	if t == nil {
		return nil
	}
	return t.witness
}

// compileTemplate rewrites the template text (one placeholder per span of
// sql, the witness) and returns its cache entry. want and wantRef are the
// exact path's answer for sql: the spliced answer for sql must be that
// answer, or the shape takes the exact path: one parse more per shape, in
// exchange for never trusting a template the engine treated differently
// from a text of its shape.
func (r *Rewriter) compileTemplate(sql, text string, spans []literalSpan, want *Result, wantRef *Refusal) cacheEntry {
	if !relexesAsTemplate(sql, text, spans) {
		return cacheEntry{tmpl: exactOnly}
	}
	e := r.templateEntry(text, len(spans))
	switch {
	case e.refusal != nil:
		if wantRef == nil || wantRef.Reason != e.refusal.Reason || wantRef.Table != e.refusal.Table {
			e = cacheEntry{tmpl: exactOnly}
		}
	case e.tmpl.res != nil:
		if wantRef != nil || !sameResult(e.tmpl.splice(sql, spans), want) {
			e = cacheEntry{tmpl: exactOnly}
		}
	}
	return e
}

// templateEntry rewrites a template text of n placeholders and cuts its
// output for splicing.
func (r *Rewriter) templateEntry(text string, n int) cacheEntry {
	res, refusal := r.rewrite(text)
	switch {
	case refusal != nil && refusal.Reason == ReasonTruncate && refusal.Before == nil:
		// A statement kind: no literal changes it. Statements ahead of
		// it (Before) would carry placeholders: that shape is exact-only.
		return cacheEntry{refusal: refusal}
	case refusal != nil:
		// Unparseable (often because of a placeholder), too deep, or a
		// construct refused: let the text itself decide.
		return cacheEntry{tmpl: exactOnly}
	case !res.Changed:
		return cacheEntry{tmpl: &template{res: res}}
	}
	segments, order, ok := cutAtPlaceholders(res.SQL, n)
	if !ok {
		return cacheEntry{tmpl: exactOnly}
	}
	return cacheEntry{tmpl: &template{res: res, segments: segments, order: order}}
}

// sameResult reports whether two answers for one text agree: the same
// facts, and SQL that is the same statement (equal after pg_query prints
// both; the spliced text spells literals as the client did).
func sameResult(a, b *Result) bool {
	if a.Changed != b.Changed || !slices.Equal(a.Statements, b.Statements) || !slices.Equal(a.Applied, b.Applied) {
		return false
	}
	if a.SQL == b.SQL {
		return true
	}
	ca, errA := reprint(a.SQL)
	cb, errB := reprint(b.SQL)
	return errA == nil && errB == nil && ca == cb
}

func reprint(sql string) (string, error) {
	tree, err := pgParse(sql)
	if err != nil {
		return "", err
	}
	return pgDeparse(tree)
}

// cutAtPlaceholders splits the template's rewrite around $1..$n, which
// must each occur exactly once. The deparser may move a placeholder (a
// filter pushed into an ON clause), so the order is recorded. A literal
// spliced in place of a placeholder must stay one token with the same
// neighbours, as the placeholder was: see spliceSafe.
func cutAtPlaceholders(out string, n int) (segments []string, order []int, ok bool) {
	seen := make([]bool, n)
	l := newScanner(out)
	last := 0
	prev := token{kind: tokEnd}
	for {
		t := l.next()
		switch t.kind {
		case tokEnd:
			return append(segments, out[last:]), order, len(order) == n
		case tokUnsure:
			return nil, nil, false
		case tokParam:
			k, err := strconv.Atoi(out[t.start+1 : t.end])
			if err != nil || k < 1 || k > n || seen[k-1] || !spliceSafe(out, prev, t.start, t.end) {
				return nil, nil, false
			}
			seen[k-1] = true
			segments = append(segments, out[last:t.start])
			order = append(order, k-1)
			last = t.end
		}
		prev = t
	}
}

// spliceSafe reports whether any template literal ('...', or a decimal
// number such as 5, 1.5, .5, 1., 1e5) may replace out[start:end], the
// token after prev, without joining the bytes around it: an identifier
// character on either side would glue on (x'a' is a bit string, a5 an
// identifier, 5e an error), a quote next to a string's quote would be
// read as a doubled quote inside one string, a dot would make a number
// (.5, 1..), & after u would make a U& string, and whitespace holding a
// newline between two strings continues the first. The splicer keeps the
// client's line breaks, so a newline is refused only where a string or a
// comment (which may hide one: the server continues a string across a
// -- comment) stands across it.
func spliceSafe(out string, prev token, start, end int) bool {
	unsafe := func(c byte) bool { return isIdentCont(c) || c == '\'' || c == '.' || c == '&' }
	if start > 0 && unsafe(out[start-1]) || end < len(out) && unsafe(out[end]) {
		return false
	}
	stringy := func(k tokenKind) bool {
		return k == tokLineComment || k == tokBlockComment || out[prev.end-1] == '\''
	}
	for i := start - 1; i >= 0 && isScanSpace(out[i]); i-- {
		if (out[i] == '\n' || out[i] == '\r') && prev.kind != tokEnd && stringy(prev.kind) {
			return false
		}
	}
	newline := false
	i := end
	for ; i < len(out) && isScanSpace(out[i]); i++ {
		newline = newline || out[i] == '\n' || out[i] == '\r'
	}
	if newline && i < len(out) {
		rest := out[i:]
		if rest[0] == '\'' || strings.HasPrefix(rest, "--") || strings.HasPrefix(rest, "/*") {
			return false
		}
	}
	return true
}

// splice builds the rewrite of sql from the template's output and sql's
// own literals: one allocation for the text, one for the Result.
func (t *template) splice(sql string, spans []literalSpan) *Result {
	if !t.res.Changed {
		return &Result{SQL: strings.Clone(sql), Statements: t.res.Statements}
	}
	size := 0
	for _, s := range t.segments {
		size += len(s)
	}
	for _, sp := range spans {
		size += sp.end - sp.start
	}
	var b strings.Builder
	b.Grow(size)
	for k, lit := range t.order {
		b.WriteString(t.segments[k])
		b.WriteString(sql[spans[lit].start:spans[lit].end])
	}
	b.WriteString(t.segments[len(t.order)])
	return &Result{SQL: b.String(), Changed: true, Statements: t.res.Statements, Applied: t.res.Applied}
}
