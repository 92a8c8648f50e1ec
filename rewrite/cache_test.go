package rewrite

import (
	"fmt"
	"runtime"
	"testing"
)

// cacheTexts returns n texts, each a shape of its own, of the kinds a
// cache holds: a rewritten statement without literals (exact cache), one
// with literals (a template), an unchanged one, one with a long result,
// and refusals (cached by text or, for TRUNCATE, by template).
func cacheTexts(n int) []string {
	texts := make([]string, 0, n)
	for i := 0; len(texts) < n; i++ {
		texts = append(texts,
			fmt.Sprintf("SELECT * FROM contacts c%d", i),
			fmt.Sprintf("SELECT * FROM contacts c%d WHERE id = 1 AND name = 'x'", i),
			fmt.Sprintf("SELECT id FROM notes n%d WHERE body = 'contacts'", i),
			fmt.Sprintf("SELECT c%d.*, o.* FROM contacts c%d JOIN orders o ON o.contact_id = c%d.id LEFT JOIN orders o2 ON o2.id = o.id WHERE c%d.name LIKE 'a%%'", i, i, i, i),
			fmt.Sprintf("TRUNCATE contacts, t%d", i),
			fmt.Sprintf("TRUNCATE contacts, t%d; SELECT 1", i),
			fmt.Sprintf("DELETE FROM orders o%d WHERE id = 7 RETURNING *", i),
		)
	}
	return texts[:n]
}

// The cache's byte bound holds for the heap it really uses: filled well
// past its bound with every kind of entry, the live heap it holds (after
// a GC) is within the configured bytes, and entryCost does not count
// less than that heap.
func TestCacheHeapWithinBound(t *testing.T) {
	const bound = 2 << 20
	p := testPolicy(t)
	texts := cacheTexts(16000)
	// Warm up what is allocated once (pools, pg_query's and protobuf's
	// registries) on another Rewriter.
	warm := New(p, bound)
	for _, sql := range texts[:200] {
		warm.Rewrite(sql)
	}
	warm = nil
	r := New(p, bound)
	for _, sql := range texts {
		r.Rewrite(sql)
	}
	// What r holds: the live heap with it, less the live heap without it.
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(r)
	var accounted int64
	entries := 0
	for _, c := range []*cache{r.cache, r.templates} {
		for i := range c.shards {
			s := &c.shards[i]
			var sum int64
			for k, e := range s.m {
				if e.cost != entryCost(k, e) {
					t.Fatalf("entry cost drifted")
				}
				sum += e.cost
			}
			if sum != s.bytes || s.bytes > s.limit {
				t.Fatalf("shard %d: accounted %d, actual %d, limit %d", i, s.bytes, sum, s.limit)
			}
			accounted += s.bytes
			entries += len(s.m)
		}
	}
	r = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	held := int64(with.HeapAlloc) - int64(without.HeapAlloc)
	t.Logf("%d entries: entryCost %d bytes, heap held %d bytes, bound %d", entries, accounted, held, bound)
	if entries == 0 || entries >= len(texts) {
		t.Fatalf("the caches hold %d entries of %d texts: they must evict yet keep some", entries, len(texts))
	}
	if held > bound {
		t.Errorf("the caches hold %d bytes of heap, more than their bound of %d", held, bound)
	}
	if held > accounted {
		t.Errorf("entryCost counts %d bytes for %d bytes of heap: it under-counts", accounted, held)
	}
}
