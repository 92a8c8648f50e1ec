package metrics

import (
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Statement actions, the values of tombstone_statements_total{action}.
const (
	ActionRewritten   = "rewritten"   // changed by the rewriter and sent
	ActionPassthrough = "passthrough" // needed no change (or shadow mode)
	ActionBypassed    = "bypassed"    // privileged login role, not inspected
	ActionRefused     = "refused"     // answered with an ErrorResponse
)

// Metrics holds every Tombstone collector. All methods are safe for
// concurrent use.
type Metrics struct {
	rewrites        *prometheus.CounterVec
	statements      *prometheus.CounterVec
	refusals        *prometheus.CounterVec
	clients         prometheus.Gauge
	connections     prometheus.Counter
	cacheHits       prometheus.Counter
	cacheMisses     prometheus.Counter
	rewriteDuration prometheus.Histogram
	upstreamErrors  prometheus.Counter
	reloadOK        prometheus.Gauge
	reloadTime      prometheus.Gauge
	catalogProblems *prometheus.GaugeVec
	catalogLoads    *prometheus.CounterVec

	dbMu    sync.Mutex
	dbNames map[string]struct{} // database label values in use, at most MaxDatabaseLabels

	// Pre-bound children for the per-statement hot path: a label lookup
	// hashes strings, and these are hit on every query.
	stmtRewritten, stmtPassthrough, stmtBypassed, stmtRefused prometheus.Counter

	// rewriteSeries holds tombstone_rewrites_total's series bound so far,
	// copied on write: Rewrite runs per applied rule of every rewritten
	// statement, and a bound series makes it a map read and an atomic
	// add instead of the vector's label hashing and locking. Its keys are
	// bounded by the configuration, as the vector's are.
	rewriteSeries atomic.Pointer[map[rewriteKey]prometheus.Counter]
	rewriteMu     sync.Mutex // serialises adding to rewriteSeries
}

// rewriteKey names one series of tombstone_rewrites_total.
type rewriteKey struct{ table, kind string }

// New creates the collectors and registers them on reg. version and
// revision label tombstone_build_info.
func New(reg prometheus.Registerer, version, revision string) *Metrics {
	m := &Metrics{
		rewrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tombstone_rewrites_total",
			Help: "Soft-delete rewrites applied, by configured table and kind (delete, select, update, merge, copy, cascade, restore).",
		}, []string{"table", "kind"}),
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tombstone_statements_total",
			Help: "Statements seen from clients, by what Tombstone did with them.",
		}, []string{"action"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tombstone_refusals_total",
			Help: "Statements refused, by reason.",
		}, []string{"reason"}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tombstone_client_connections",
			Help: "Client connections open now.",
		}),
		connections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tombstone_connections_total",
			Help: "Client connections accepted since start.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tombstone_rewrite_cache_hits_total",
			Help: "Statements whose rewrite came from the cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tombstone_rewrite_cache_misses_total",
			Help: "Statements that had to be parsed and rewritten.",
		}),
		rewriteDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tombstone_rewrite_duration_seconds",
			Help:    "Time spent parsing and rewriting a statement on a cache miss.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 5e-2},
		}),
		upstreamErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tombstone_upstream_errors_total",
			Help: "Failures to connect to or talk with the upstream PostgreSQL server.",
		}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tombstone_config_last_reload_successful",
			Help: "1 when the last configuration reload succeeded, 0 when it failed and the previous configuration stayed in force.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tombstone_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
		catalogProblems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tombstone_catalog_problems",
			Help: "Configured soft-delete tables that are missing from a database or lack their columns, as of the last catalog read of that database. Any value above 0 needs attention: see /readyz and the log.",
		}, []string{"database"}),
		catalogLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tombstone_catalog_loads_total",
			Help: "Catalog reads of a database, by result (ok or error).",
		}, []string{"database", "result"}),
		dbNames: map[string]struct{}{},
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tombstone_build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "revision", "goversion"})
	build.WithLabelValues(version, revision, runtime.Version()).Set(1)
	reg.MustRegister(m.rewrites, m.statements, m.refusals, m.clients, m.connections,
		m.cacheHits, m.cacheMisses, m.rewriteDuration, m.upstreamErrors, m.reloadOK, m.reloadTime,
		m.catalogProblems, m.catalogLoads, build)
	m.stmtRewritten = m.statements.WithLabelValues(ActionRewritten)
	m.stmtPassthrough = m.statements.WithLabelValues(ActionPassthrough)
	m.stmtBypassed = m.statements.WithLabelValues(ActionBypassed)
	m.stmtRefused = m.statements.WithLabelValues(ActionRefused)
	m.reloadOK.Set(1)
	m.reloadTime.SetToCurrentTime()
	return m
}

// Statement counts one client statement by action (one of the Action constants).
func (m *Metrics) Statement(action string) {
	switch action {
	case ActionRewritten:
		m.stmtRewritten.Inc()
	case ActionPassthrough:
		m.stmtPassthrough.Inc()
	case ActionBypassed:
		m.stmtBypassed.Inc()
	case ActionRefused:
		m.stmtRefused.Inc()
	default:
		panic("metrics: unknown statement action " + action)
	}
}

// Rewrite counts one rule applied to a configured table. table must be a
// configured name (policy.Table.QualifiedName) and kind one of the
// rewriter's fixed kinds.
func (m *Metrics) Rewrite(table, kind string) {
	k := rewriteKey{table, kind}
	if p := m.rewriteSeries.Load(); p != nil {
		if c, ok := (*p)[k]; ok {
			c.Inc()
			return
		}
	}
	m.bindRewrite(k).Inc()
}

// bindRewrite binds the series for k, the first time a rule is applied
// to that table and kind.
func (m *Metrics) bindRewrite(k rewriteKey) prometheus.Counter {
	m.rewriteMu.Lock()
	defer m.rewriteMu.Unlock()
	var old map[rewriteKey]prometheus.Counter
	if p := m.rewriteSeries.Load(); p != nil {
		old = *p
	}
	if c, ok := old[k]; ok {
		return c
	}
	next := maps.Clone(old)
	if next == nil {
		next = map[rewriteKey]prometheus.Counter{}
	}
	c := m.rewrites.WithLabelValues(k.table, k.kind)
	next[k] = c
	m.rewriteSeries.Store(&next)
	return c
}

// Refusal counts one refused statement; reason is one of the rewriter's
// fixed refusal reasons.
func (m *Metrics) Refusal(reason string) { m.refusals.WithLabelValues(reason).Inc() }

// ClientOpened and ClientClosed track client connections.
func (m *Metrics) ClientOpened() { m.clients.Inc(); m.connections.Inc() }

// ClientClosed is the counterpart of ClientOpened.
func (m *Metrics) ClientClosed() { m.clients.Dec() }

// CacheHit and CacheMiss count rewrite-cache lookups.
func (m *Metrics) CacheHit() { m.cacheHits.Inc() }

// CacheMiss counts a rewrite that had to parse; d is how long it took.
func (m *Metrics) CacheMiss(d time.Duration) {
	m.cacheMisses.Inc()
	m.rewriteDuration.Observe(d.Seconds())
}

// UpstreamError counts a failure to reach or talk to PostgreSQL.
func (m *Metrics) UpstreamError() { m.upstreamErrors.Inc() }

// ConfigReloaded records the outcome of a configuration reload.
func (m *Metrics) ConfigReloaded(ok bool) {
	if ok {
		m.reloadOK.Set(1)
		m.reloadTime.SetToCurrentTime()
		return
	}
	m.reloadOK.Set(0)
}

// MaxDatabaseLabels bounds the database label's values: a client names the
// database it connects to, so past this many the rest share the label
// value OtherDatabases.
const MaxDatabaseLabels = 64

// OtherDatabases is the database label of databases past MaxDatabaseLabels.
const OtherDatabases = "_other"

// CatalogLoaded records one catalog read of a database: problems is how
// many configuration problems it found (kept from the previous read when
// ok is false), ok whether the read succeeded.
func (m *Metrics) CatalogLoaded(database string, problems int, ok bool) {
	database = m.databaseLabel(database)
	result := "ok"
	if !ok {
		result = "error"
	}
	m.catalogLoads.WithLabelValues(database, result).Inc()
	m.catalogProblems.WithLabelValues(database).Set(float64(problems))
}

func (m *Metrics) databaseLabel(name string) string {
	m.dbMu.Lock()
	defer m.dbMu.Unlock()
	if _, ok := m.dbNames[name]; ok {
		return name
	}
	if len(m.dbNames) >= MaxDatabaseLabels {
		return OtherDatabases
	}
	m.dbNames[name] = struct{}{}
	return name
}
