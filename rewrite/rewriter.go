package rewrite

import (
	"errors"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/tombstone-proxy/tombstone/policy"
)

// Rewriter rewrites statements under one immutable policy and caches the
// results. A configuration reload builds a new Rewriter. It is safe for
// concurrent use.
type Rewriter struct {
	policy     *policy.Policy
	filter     *prefilter
	cache      *cache // by exact text
	templates  *cache // by template text (template.go)
	cacheBytes int64
	// deparseOnly turns the splicer off (splice.go): the differential
	// tests compare its output with the deparsed one.
	deparseOnly bool
}

// New returns a Rewriter for p whose caches hold about cacheBytes of
// statement text and results (0 disables caching and templates). An eighth
// of it goes to templates: one per statement shape, so far fewer entries
// than texts.
func New(p *policy.Policy, cacheBytes int64) *Rewriter {
	return &Rewriter{
		policy:     p,
		filter:     newPrefilter(p.TableNames()),
		cache:      newCache(cacheBytes - cacheBytes/8),
		templates:  newCache(cacheBytes / 8),
		cacheBytes: cacheBytes,
	}
}

// With returns a Rewriter for p with empty caches of this one's size: a
// database's catalog gives it a policy of its own, and results made
// under one policy must never answer under another.
func (r *Rewriter) With(p *policy.Policy) *Rewriter { return New(p, r.cacheBytes) }

// Policy is the policy this Rewriter applies.
func (r *Rewriter) Policy() *policy.Policy { return r.policy }

// Rewrite rewrites one SQL text (a simple Query's string, or a Parse
// message's query). res is nil when the text cannot mention any configured
// table nor any statement the proxy must track (the prefilter skipped the
// parser): send it unchanged. hit reports whether the answer came from the
// cache, by exact text or by template (a text whose literals were
// replaced by placeholders, see template.go). A non-nil refusal means the
// statement must not be sent.
//
// The answer depends only on the text and the policy, so a given text (and
// so a prepared statement's name) always maps to the same rewritten text.
// sql may alias a buffer the caller reuses once Rewrite returns: what the
// Rewriter keeps (cache key, Result.SQL) is its own copy.
func (r *Rewriter) Rewrite(sql string) (res *Result, hit bool, refusal *Refusal) {
	if !r.filter.mayMatch(sql) {
		return nil, false, nil
	}
	if e, ok := r.cache.get(sql); ok {
		if e.refusal != nil {
			return nil, true, e.refusal
		}
		return e.res, true, nil
	}
	if res, hit, refusal, ok := r.viaTemplate(sql); ok {
		return res, hit, refusal
	}
	sql = strings.Clone(sql)
	res, refusal = r.rewrite(sql)
	r.cache.put(sql, cacheEntry{res: res, refusal: refusal})
	return res, false, refusal
}

// rewrite is the uncached pipeline: bounds, parse, rules, check, deparse.
func (r *Rewriter) rewrite(sql string) (*Result, *Refusal) {
	if len(sql) > MaxStatementBytes {
		return nil, refuseTooLong(len(sql))
	}
	if ref := textShape(sql).tooDeep(); ref != nil {
		return nil, ref
	}
	if strings.IndexByte(sql, 0) >= 0 {
		// The C parser would stop at the NUL and judge only the text
		// before it.
		return nil, refuseUnparseable("it contains a NUL byte")
	}
	tree, err := pgParse(sql)
	if err != nil {
		return nil, refuseUnparseable(err.Error())
	}
	e := &engine{policy: r.policy, filter: r.filter, handled: make(map[*pg.RangeVar]struct{})}
	comments := commentSpans(sql)
	stmts := make([]Statement, 0, len(tree.Stmts))
	for i, raw := range tree.Stmts {
		changedBefore, appliedBefore := e.changed, len(e.applied)
		editsBefore, untextableBefore := len(e.edits), e.untextable
		e.stmtIndex = i
		from, to := stmtRange(sql, tree, i)
		var bad *Refusal
		if e.tags, bad = statementTags(sql, comments, from, to); bad != nil {
			return nil, bad
		}
		e.fingerprint = Fingerprint(sql[from:stmtEnd(sql, raw)])
		e.ctxMade = false
		st, err := e.topLevel(raw.Stmt)
		if err == nil {
			err = e.verify(raw.Stmt)
		}
		if err == nil {
			stmts = append(stmts, st)
			continue
		}
		ref := asRefusal(err)
		if i == 0 {
			return nil, ref
		}
		// PostgreSQL runs a simple Query's statements one by one: those
		// ahead of the refused one run (and may open a transaction that
		// the refusal must then abort). They go to the proxy in Before.
		last := tree.Stmts[i-1]
		end := stmtEnd(sql, last)
		before, bad := result(sql[:end], within(comments, 0, end),
			&pg.ParseResult{Version: tree.Version, Stmts: tree.Stmts[:i]},
			changedBefore, stmts, e.applied[:appliedBefore], r.textEdits(e.edits[:editsBefore], untextableBefore))
		if bad != nil {
			return nil, bad
		}
		withBefore := *ref
		withBefore.Before = before
		return nil, &withBefore
	}
	return result(sql, comments, tree, e.changed, stmts, e.applied, r.textEdits(e.edits, e.untextable))
}

// textEdits is the edits the splicer may make, nil when the text must be
// deparsed.
func (r *Rewriter) textEdits(edits []textEdit, untextable bool) []textEdit {
	if untextable || r.deparseOnly || len(edits) == 0 {
		return nil
	}
	return edits
}

// result is the Result for parsed text: the text itself when no rule
// changed it, else the text with edits made in it (splice.go) when the
// splicer can place them all, else the deparsed tree. Deparse drops
// comments, so each
// statement's comments follow its deparsed text (comment.go); a text with
// several statements and comments is deparsed statement by statement, so
// that each keeps its own.
// comments are sql's (commentSpans).
func result(sql string, comments []textSpan, tree *pg.ParseResult, changed bool, stmts []Statement, applied []Applied, edits []textEdit) (*Result, *Refusal) {
	if !changed {
		return &Result{SQL: sql, Statements: stmts}, nil
	}
	if edits != nil {
		if out, ok := splice(sql, tree, edits); ok {
			return &Result{SQL: out, Changed: true, Statements: stmts, Applied: applied, spliced: true}, nil
		}
	}
	if len(comments) == 0 || len(tree.Stmts) == 1 {
		out, err := pgDeparse(tree)
		if err != nil {
			return nil, refuseDeparse(err)
		}
		if len(comments) > 0 {
			out = string(appendComments([]byte(out), sql, comments, 0, len(sql)))
		}
		return &Result{SQL: out, Changed: true, Statements: stmts, Applied: applied}, nil
	}
	var out []byte
	for i, raw := range tree.Stmts {
		one, err := pgDeparse(&pg.ParseResult{Version: tree.Version, Stmts: []*pg.RawStmt{raw}})
		if err != nil {
			return nil, refuseDeparse(err)
		}
		if i > 0 {
			out = append(out, "; "...)
		}
		from, to := stmtRange(sql, tree, i)
		out = appendComments(append(out, one...), sql, comments, from, to)
	}
	return &Result{SQL: string(out), Changed: true, Statements: stmts, Applied: applied}, nil
}

// stmtRange is the part of sql that belongs to statement i: from its start
// to the next statement's, the last one to the end of the text (so a
// comment after the final semicolon is the last statement's).
func stmtRange(sql string, tree *pg.ParseResult, i int) (from, to int) {
	if i > 0 {
		from = stmtEnd(sql, tree.Stmts[i-1])
	}
	to = len(sql)
	if i+1 < len(tree.Stmts) {
		to = stmtEnd(sql, tree.Stmts[i])
	}
	return from, to
}

// stmtEnd is where raw's text ends; pg_query gives the last statement a
// length of 0, meaning the rest of the text.
func stmtEnd(sql string, raw *pg.RawStmt) int {
	if raw.StmtLen == 0 {
		return len(sql)
	}
	return int(raw.StmtLocation + raw.StmtLen)
}

// asRefusal returns the engine's refusal. The engine only fails with
// *Refusal; anything else would be a bug, and refusing is the safe answer.
func asRefusal(err error) *Refusal {
	var ref *Refusal
	if errors.As(err, &ref) {
		return ref
	}
	return refuseInternal(err)
}
