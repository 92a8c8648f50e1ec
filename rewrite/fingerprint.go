package rewrite

import (
	"fmt"
	"hash/fnv"
	"strconv"
)

// Fingerprint identifies a statement in logs without its literal values:
// 16 hex digits of a hash of its tokens (scan.go), every literal and
// parameter replaced by one mark, comments and whitespace left out, and
// unquoted words in lower case. Texts that differ only in literal values
// (or parameters in their place), keyword case, spacing or comments share
// a fingerprint.
//
// It scans and parses nothing else, so it is safe for any text a client
// sends, the ones refused as too deep or too long included: pg_query's
// own fingerprint parses the text in C on the calling thread's stack.
func Fingerprint(sql string) string {
	h := fnv.New64a()
	var low []byte
	sc := newScanner(sql)
	for {
		t := sc.next()
		switch t.kind {
		case tokEnd:
			return fmt.Sprintf("%016x", h.Sum64())
		case tokLineComment, tokBlockComment:
			continue
		case tokString, tokEscapeString, tokUnicodeString, tokBitString, tokHexString,
			tokDollarString, tokInteger, tokNumeric, tokParam:
			// A parameter is a value too: DELETE ... WHERE id = $1 and
			// id = 7 are one shape, and a template (whose literals are
			// parameters) fingerprints as the texts it stands for.
			_, _ = h.Write([]byte{'?', 0})
		case tokUnsure:
			// What follows cannot be split as the server splits it: its
			// length stands for it, never its bytes (it may be a value).
			_, _ = h.Write(strconv.AppendInt([]byte{'!'}, int64(len(sql)-t.start), 10))
			return fmt.Sprintf("%016x", h.Sum64())
		case tokIdent:
			low = low[:0]
			for i := t.start; i < t.end; i++ {
				c := sql[i]
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				low = append(low, c)
			}
			_, _ = h.Write(append(low, 0))
		default:
			_, _ = h.Write([]byte(sql[t.start:t.end]))
			_, _ = h.Write([]byte{0})
		}
	}
}
