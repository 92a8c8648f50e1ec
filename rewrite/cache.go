package rewrite

import (
	"hash/maphash"
	"sync"
	"unsafe"
)

// cache memoises Rewrite by exact text. It is bounded by an estimate of the
// bytes it holds rather than by entries, since statement texts range from a
// few bytes to a megabyte. It is sharded so that concurrent sessions rarely
// wait on one lock, and a hit takes a read lock, a hash and a map lookup:
// no allocation.
type cache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

const cacheShards = 16

type cacheShard struct {
	mu    sync.RWMutex
	m     map[string]cacheEntry
	bytes int64
	limit int64
}

// cacheEntry holds either a result or a refusal (refusals are cached too:
// a client retrying a refused statement must not cost a parse each time).
// In the template cache it holds a template or a refusal instead.
type cacheEntry struct {
	res     *Result
	refusal *Refusal
	tmpl    *template
	cost    int64
}

// Heap bytes of what an entry holds besides its strings' bytes, from the
// sizes of the types on 64-bit platforms rounded up to Go's allocation
// size classes. A map slot (key header, cacheEntry, control byte) is
// counted twice over, since a Go map's table holds up to twice as many
// slots as entries and never shrinks. TestCacheHeapWithinBound checks
// the sum against the heap a full cache really holds.
const (
	slotBytes      = 2 * 56
	resultBytes    = 80  // Result
	statementBytes = 64  // Statement
	appliedBytes   = 24  // Applied (Table points into the policy)
	templateBytes  = 64  // template
	refusalBytes   = 112 // Refusal
	stringBytes    = 16  // a string header in a slice
)

func newCache(limit int64) *cache {
	if limit <= 0 {
		return nil
	}
	c := &cache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
		c.shards[i].limit = limit / cacheShards
	}
	return c
}

func (c *cache) shard(sql string) *cacheShard {
	return &c.shards[maphash.String(c.seed, sql)%cacheShards]
}

func (c *cache) get(sql string) (cacheEntry, bool) {
	if c == nil {
		return cacheEntry{}, false
	}
	s := c.shard(sql)
	s.mu.RLock()
	e, ok := s.m[sql]
	s.mu.RUnlock()
	return e, ok
}

// getBytes is get for a key being built in a reused buffer: hashing the
// bytes and indexing the map with string(key) do not copy them.
func (c *cache) getBytes(key []byte) (cacheEntry, bool) {
	if c == nil {
		return cacheEntry{}, false
	}
	s := &c.shards[maphash.Bytes(c.seed, key)%cacheShards]
	s.mu.RLock()
	e, ok := s.m[string(key)]
	s.mu.RUnlock()
	return e, ok
}

// put stores an entry, evicting arbitrary entries (Go's map iteration
// starts at a random slot) until it fits. An entry larger than a shard is
// not stored.
func (c *cache) put(sql string, e cacheEntry) {
	if c == nil {
		return
	}
	e.cost = entryCost(sql, e)
	s := c.shard(sql)
	if e.cost > s.limit {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[sql]; ok {
		return // a concurrent miss stored the same (deterministic) answer
	}
	for s.bytes+e.cost > s.limit {
		for k, old := range s.m {
			delete(s.m, k)
			s.bytes -= old.cost
			break
		}
	}
	s.m[sql] = e
	s.bytes += e.cost
}

// replace stores e under key in place of the entry there (a shape's
// witness giving way to its template), or as put does when there is none.
func (c *cache) replace(key string, e cacheEntry) {
	if c == nil {
		return
	}
	s := c.shard(key)
	s.mu.Lock()
	if old, ok := s.m[key]; ok {
		delete(s.m, key)
		s.bytes -= old.cost
	}
	s.mu.Unlock()
	c.put(key, e)
}

// entryCost is what an entry costs the heap: the key, and every result,
// template and refusal the entry holds, with their strings (a Result's
// SQL only when it is not the key's own bytes).
func entryCost(key string, e cacheEntry) int64 {
	n := int64(len(key)) + slotBytes
	n += resultCost(e.res, key)
	if w := e.tmpl.witnessOf(); w != nil {
		n += templateBytes + int64(len(w.sql)) + resultCost(w.res, w.sql)
		if f := w.refusal; f != nil {
			n += refusalCost(f)
		}
	} else if t := e.tmpl; t != nil && t != exactOnly {
		// segments are substrings of res.SQL: only their headers count
		n += templateBytes + int64(len(t.segments))*stringBytes + int64(len(t.order))*8
		n += resultCost(t.res, "")
	}
	if f := e.refusal; f != nil {
		n += refusalCost(f)
	}
	return n
}

func refusalCost(f *Refusal) int64 {
	return refusalBytes + int64(len(f.Reason)+len(f.Code)+len(f.Message)+len(f.Detail)+len(f.Hint)+len(f.Table)) +
		resultCost(f.Before, "")
}

func resultCost(r *Result, key string) int64 {
	if r == nil {
		return 0
	}
	n := int64(resultBytes)
	if len(r.SQL) > 0 && (len(key) == 0 || unsafe.StringData(r.SQL) != unsafe.StringData(key)) {
		n += int64(len(r.SQL))
	}
	n += int64(cap(r.Statements))*statementBytes + int64(cap(r.Applied))*appliedBytes
	for _, st := range r.Statements {
		n += int64(len(st.Prepare) + len(st.Execute) + len(st.Deallocate))
	}
	return n
}
