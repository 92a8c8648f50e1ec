package rewrite

import (
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// Comments are data. pg_query's deparse drops them, yet sqlcommenter tags
// (/*traceparent='...',route='...'*/) are read from the statement text by
// pg_stat_statements users, pganalyze and cloud query insights, and the
// actor and reason of a soft delete may come from one. So a rewritten
// statement carries the client's comments, appended after its deparsed
// text in their original order, and a soft delete reads its actor and
// reason from the last sqlcommenter comment that sets them.

// textSpan is a byte range of the input text.
type textSpan struct{ start, end int }

// commentSpans lists the comments of sql, in order, as the scanner (and
// so the server) splits the text.
func commentSpans(sql string) []textSpan {
	var out []textSpan
	sc := newScanner(sql)
	for {
		t := sc.next()
		switch t.kind {
		case tokEnd, tokUnsure:
			return out
		case tokLineComment, tokBlockComment:
			out = append(out, textSpan{t.start, t.end})
		}
	}
}

// within is the comments that start in [from, to): a text of many
// statements looks up each one's in logarithmic time, never scanning all.
func within(comments []textSpan, from, to int) []textSpan {
	i := sort.Search(len(comments), func(i int) bool { return comments[i].start >= from })
	j := i + sort.Search(len(comments)-i, func(k int) bool { return comments[i+k].start >= to })
	return comments[i:j]
}

// appendComments appends the comments of sql that lie in [from, to) to
// out, each as written; a -- comment gets the newline that ends it.
func appendComments(out []byte, sql string, comments []textSpan, from, to int) []byte {
	for _, c := range within(comments, from, to) {
		out = append(out, ' ')
		out = append(out, sql[c.start:c.end]...)
		if sql[c.start] == '-' {
			out = append(out, '\n')
		}
	}
	return out
}

// tags are the sqlcommenter values a statement's comments give; nil
// pointers for keys no comment sets.
type tags struct {
	actor, reason *string
}

// statementTags reads the actor and reason tags of the comments in
// [from, to). A later comment overrides an earlier one, key by key. A
// value that is not UTF-8 (after URL-decoding) is refused: it could not
// be stored in a text column of the server's encoding.
func statementTags(sql string, comments []textSpan, from, to int) (tags, *Refusal) {
	var t tags
	for _, c := range within(comments, from, to) {
		if sql[c.start] != '/' {
			continue
		}
		kv, ok := parseSQLCommenter(sql[c.start+2 : c.end-2])
		if !ok {
			continue
		}
		for _, k := range []struct {
			key string
			dst **string
		}{{"actor", &t.actor}, {"reason", &t.reason}} {
			v, ok := kv[k.key]
			if !ok {
				continue
			}
			if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
				return tags{}, refuseBadTag(k.key)
			}
			*k.dst = &v
		}
	}
	return t, nil
}

// parseSQLCommenter reads a comment body in the sqlcommenter format:
// key='value' pairs separated by commas, keys and values URL-encoded,
// a quote inside a value escaped as \'. ok is false for any other
// comment, which is then just a comment.
func parseSQLCommenter(body string) (map[string]string, bool) {
	body = strings.TrimSpace(body)
	if body == "" {
		return nil, false
	}
	kv := map[string]string{}
	for i := 0; i < len(body); {
		eq := strings.IndexByte(body[i:], '=')
		if eq <= 0 || i+eq+1 >= len(body) || body[i+eq+1] != '\'' {
			return nil, false
		}
		key, err := url.QueryUnescape(strings.TrimSpace(body[i : i+eq]))
		if err != nil || key == "" {
			return nil, false
		}
		j := i + eq + 2
		var raw strings.Builder
		for ; j < len(body) && body[j] != '\''; j++ {
			if body[j] == '\\' && j+1 < len(body) {
				j++
			}
			raw.WriteByte(body[j])
		}
		if j >= len(body) {
			return nil, false // unterminated value
		}
		// PathUnescape: a + in a value is a plus sign, as sqlcommenter
		// libraries encode a space as %20.
		val, err := url.PathUnescape(raw.String())
		if err != nil {
			return nil, false
		}
		kv[key] = val
		j++ // the closing quote
		for j < len(body) && body[j] == ' ' {
			j++
		}
		if j < len(body) {
			if body[j] != ',' {
				return nil, false
			}
			j++
			for j < len(body) && body[j] == ' ' {
				j++
			}
			if j >= len(body) {
				return nil, false
			}
		}
		i = j
	}
	return kv, true
}
