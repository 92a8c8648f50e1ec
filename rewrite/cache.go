package rewrite

import (
	"hash/maphash"
	"sync"
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

// entryOverhead approximates the map slot, entry and Result headers.
const entryOverhead = 160

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

func entryCost(sql string, e cacheEntry) int64 {
	n := int64(len(sql)) + entryOverhead
	if r := e.res; r != nil {
		if r.Changed {
			n += int64(len(r.SQL))
		}
		n += int64(len(r.Statements))*64 + int64(len(r.Applied))*32
		for _, st := range r.Statements {
			n += int64(len(st.Prepare) + len(st.Execute) + len(st.Deallocate))
		}
	}
	if t := e.tmpl; t != nil {
		// segments are substrings of res.SQL, counted above
		n += int64(len(t.segments))*16 + int64(len(t.order))*8
	}
	if f := e.refusal; f != nil {
		n += int64(len(f.Message) + len(f.Detail) + len(f.Hint) + len(f.Table))
	}
	return n
}
