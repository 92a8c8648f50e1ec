package rewrite

import (
	"bytes"
	"encoding/binary"
)

// prefilter decides, without parsing, that a text cannot mention any
// configured table nor a statement the proxy must track. It errs on the
// side of parsing: a false "may match" costs a parse, a false "cannot"
// would let a statement through unfiltered.
//
// Both the needles and the text are folded by setting bit 0x20 of every
// byte. That maps A-Z onto a-z, so every occurrence in any letter case is
// found; it also merges a few punctuation pairs ('@' and '`', '_' and DEL),
// which can only add false positives. Folding eight bytes at a time and
// searching with bytes.Index (SIMD) keeps a 200-byte text well under the
// 300 ns budget without allocating.
type prefilter struct {
	needles [][]byte
	overlap int // longest needle - 1: chunks overlap by this much
}

// trackedKeywords are the statements the proxy follows by name (EXECUTE,
// DEALLOCATE, DISCARD ALL); "u&" catches U&"..." identifiers, whose escapes
// could spell a table name the plain search would miss.
var trackedKeywords = []string{"execute", "deallocate", "discard", "u&"}

func newPrefilter(tableNames []string) *prefilter {
	f := &prefilter{}
	for _, s := range append(append([]string(nil), tableNames...), trackedKeywords...) {
		nd := []byte(s)
		for i := range nd {
			nd[i] |= 0x20
		}
		f.needles = append(f.needles, nd)
		f.overlap = max(f.overlap, len(nd)-1)
	}
	return f
}

// chunk is the stack buffer the folded text is searched in.
const chunk = 1024

// mayMatch reports whether sql may mention a needle.
func (f *prefilter) mayMatch(sql string) bool {
	var buf [chunk]byte
	for start := 0; start < len(sql); {
		n := copy(buf[:], sql[start:])
		i := 0
		for ; i+8 <= n; i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], binary.LittleEndian.Uint64(buf[i:])|0x2020202020202020)
		}
		for ; i < n; i++ {
			buf[i] |= 0x20
		}
		for _, nd := range f.needles {
			if bytes.Index(buf[:n], nd) >= 0 {
				return true
			}
		}
		if start+n >= len(sql) {
			break
		}
		start += n - f.overlap
	}
	return false
}
