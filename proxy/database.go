package proxy

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// DefaultCatalogRefresh is how old a database's catalog may grow before
// the next session to that database reads it again.
const DefaultCatalogRefresh = time.Minute

// database is what the proxy knows of one upstream database: the
// rewriter built from the configuration and that database's catalog
// (partitions, inheritance children and foreign keys of the soft-delete
// tables). Every session of the database shares it; the cost of reading
// the catalog is paid per database, at session start, never per
// statement.
type database struct {
	name string
	rw   atomic.Pointer[rewrite.Rewriter]
	// dirty: DDL that may change the catalog went through the proxy, or
	// the configuration was reloaded; the next session start rereads it.
	dirty   atomic.Bool
	loading sync.Mutex // one catalog read at a time; others keep the current rewriter

	mu       sync.Mutex // guards the fields below
	schema   *policy.Schema
	loadedAt time.Time
	problems []policy.Problem
	err      string
}

// DatabaseStatus is what /readyz reports of one database.
type DatabaseStatus struct {
	Name     string
	LoadedAt time.Time // zero: the catalog was never read
	Problems []policy.Problem
	Err      string // the last catalog read's error, if it failed
}

// database returns the state of the named database, creating it (with
// the name-only rewriter) on first use.
func (s *Server) database(name string) *database {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	db, ok := s.dbs[name]
	if !ok {
		db = &database{name: name}
		db.rw.Store(s.rw.Load())
		s.dbs[name] = db
	}
	return db
}

// Databases reports the catalog state of every database a session has
// used, sorted by name.
func (s *Server) Databases() []DatabaseStatus {
	s.dbMu.Lock()
	dbs := make([]*database, 0, len(s.dbs))
	for _, db := range s.dbs {
		dbs = append(dbs, db)
	}
	s.dbMu.Unlock()
	out := make([]DatabaseStatus, 0, len(dbs))
	for _, db := range dbs {
		db.mu.Lock()
		out = append(out, DatabaseStatus{Name: db.name, LoadedAt: db.loadedAt, Problems: db.problems, Err: db.err})
		db.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// rebase applies a reloaded configuration's rewriter to every database:
// at once with the catalog each last read (so children and foreign keys
// stay enforced), and marked dirty so the next session rereads the
// catalog for tables the new configuration adds.
func (s *Server) rebase(base *rewrite.Rewriter) {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	for _, db := range s.dbs {
		db.mu.Lock()
		rw := base
		if db.schema != nil {
			if p, err := base.Policy().WithSchema(db.schema); err == nil {
				rw = base.With(p)
			}
		}
		db.rw.Store(rw)
		db.dirty.Store(true)
		db.mu.Unlock()
	}
}

// stale reports whether a session starting now should read the catalog.
func (db *database) stale(now time.Time, refresh time.Duration) bool {
	if db.dirty.Load() {
		return true
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.loadedAt.IsZero() || now.Sub(db.loadedAt) >= refresh
}

// loadCatalog reads the session's database catalog on the session's own
// connection, before the client sees ReadyForQuery, when it is missing,
// old or dirty. A session that finds another one reading it goes on with
// the current rewriter rather than wait. A failed read keeps the current
// rewriter (the configured tables stay enforced by name) and is logged,
// counted and shown in /readyz.
func (s *session) loadCatalog() {
	db := s.db
	if !db.stale(time.Now(), s.srv.opts.CatalogRefresh) || !db.loading.TryLock() {
		return
	}
	defer db.loading.Unlock()
	base := s.srv.rw.Load()
	db.dirty.Store(false)
	value, err := s.ask(catalog.Query(base.Policy().Spec()))
	var schema *policy.Schema
	if err == nil {
		schema, err = catalog.Decode(value)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	// A reload may have come while the query ran: build on the
	// configuration in force now (rebase stores under db.mu too), and
	// leave the catalog dirty so its new tables are read.
	if now := s.srv.rw.Load(); now != base {
		base = now
		db.dirty.Store(true)
	}
	var p *policy.Policy
	if err == nil {
		p, err = base.Policy().WithSchema(schema)
	}
	if err != nil {
		db.err = err.Error()
		db.dirty.Store(true)
		s.srv.met.CatalogLoaded(db.name, len(db.problems), false)
		s.log.Error("could not read the database catalog; soft-delete tables stay enforced by name, but their partitions, children and foreign keys are not known", "database", db.name, "err", err)
		return
	}
	db.rw.Store(base.With(p))
	db.schema, db.loadedAt, db.problems, db.err = schema, time.Now(), p.Problems(), ""
	s.srv.met.CatalogLoaded(db.name, len(db.problems), true)
	for _, pr := range db.problems {
		s.log.Warn("configured soft-delete table problem", "database", db.name, "table", pr.Table, "problem", pr.Message)
	}
	s.log.Debug("catalog read", "database", db.name, "tables", len(p.Tables()), "helpers", p.Helpers())
}
