package rewrite

import "github.com/tombstone-proxy/tombstone/policy"

// Rewriter rewrites statements under one immutable policy and caches the
// results. A configuration reload builds a new Rewriter. It is safe for
// concurrent use.
type Rewriter struct {
	policy *policy.Policy
}

// New returns a Rewriter for p whose cache holds about cacheBytes of
// statement text and results.
func New(p *policy.Policy, cacheBytes int64) *Rewriter {
	return &Rewriter{policy: p}
}

// Policy is the policy this Rewriter applies.
func (r *Rewriter) Policy() *policy.Policy { return r.policy }

// Rewrite rewrites one SQL text (a simple Query's string, or a Parse
// message's query). res is nil when the text cannot mention any configured
// table nor any statement the proxy must track (the prefilter skipped the
// parser): send it unchanged. hit reports whether the answer came from the
// cache. A *Refusal error means the statement must not be sent.
func (r *Rewriter) Rewrite(sql string) (res *Result, hit bool, err error) {
	// Placeholder until the rewrite engine lands: refuse everything that
	// could touch a table, so nothing is ever passed through unfiltered.
	for _, t := range r.policy.Tables() {
		_ = t
		return nil, false, &Refusal{Reason: ReasonUnsupported, Code: "0A000", Message: "tombstone: rewrite engine not built yet"}
	}
	return nil, false, nil
}
