package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// value reads one series from reg; labels are name, value pairs.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func TestMethodsMoveTheirMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "v1.2.3", "abc123")
	m.Statement(ActionRewritten)
	m.Statement(ActionRewritten)
	m.Statement(ActionRefused)
	m.Rewrite("contacts", "delete")
	m.Refusal("truncate")
	m.ClientOpened()
	m.ClientOpened()
	m.ClientClosed()
	m.CacheHit()
	m.CacheMiss(30 * time.Microsecond)
	m.UpstreamError()
	m.ConfigReloaded(false)
	m.CatalogLoaded("app", 2, true)
	m.CatalogLoaded("app", 2, false)
	m.CatalogLoaded("other", 0, true)

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"tombstone_statements_total", []string{"action", "rewritten"}, 2},
		{"tombstone_statements_total", []string{"action", "refused"}, 1},
		{"tombstone_statements_total", []string{"action", "passthrough"}, 0},
		{"tombstone_statements_total", []string{"action", "bypassed"}, 0},
		{"tombstone_rewrites_total", []string{"table", "contacts", "kind", "delete"}, 1},
		{"tombstone_refusals_total", []string{"reason", "truncate"}, 1},
		{"tombstone_client_connections", nil, 1},
		{"tombstone_connections_total", nil, 2},
		{"tombstone_rewrite_cache_hits_total", nil, 1},
		{"tombstone_rewrite_cache_misses_total", nil, 1},
		{"tombstone_rewrite_duration_seconds", nil, 1},
		{"tombstone_upstream_errors_total", nil, 1},
		{"tombstone_config_last_reload_successful", nil, 0},
		{"tombstone_catalog_problems", []string{"database", "app"}, 2},
		{"tombstone_catalog_problems", []string{"database", "other"}, 0},
		{"tombstone_catalog_loads_total", []string{"database", "app", "result", "ok"}, 1},
		{"tombstone_catalog_loads_total", []string{"database", "app", "result", "error"}, 1},
		{"tombstone_build_info", []string{"version", "v1.2.3", "revision", "abc123"}, 1},
	} {
		if got := value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	m.ConfigReloaded(true)
	if got := value(t, reg, "tombstone_config_last_reload_successful"); got != 1 {
		t.Errorf("after a good reload tombstone_config_last_reload_successful = %v, want 1", got)
	}
}

// A client names the database it connects to: past MaxDatabaseLabels the
// rest share one label value.
func TestCatalogDatabaseLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "v", "r")
	for i := 0; i < MaxDatabaseLabels+10; i++ {
		m.CatalogLoaded(fmt.Sprintf("db%d", i), 1, true)
	}
	m.CatalogLoaded("db0", 3, true) // a known name keeps its label
	if got := value(t, reg, "tombstone_catalog_problems", "database", "db0"); got != 3 {
		t.Errorf("db0 problems = %v, want 3", got)
	}
	if got := value(t, reg, "tombstone_catalog_loads_total", "database", OtherDatabases, "result", "ok"); got != 10 {
		t.Errorf("loads past the bound = %v, want 10", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "tombstone_catalog_problems" && len(f.GetMetric()) != MaxDatabaseLabels+1 {
			t.Errorf("%d problem series, want %d", len(f.GetMetric()), MaxDatabaseLabels+1)
		}
	}
}

// Rewrite runs once per applied rule of every rewritten statement: the
// hot path of a proxied read. Run with -bench Rewrite.
func BenchmarkRewrite(b *testing.B) {
	m := New(prometheus.NewRegistry(), "v", "r")
	tables := []string{"public.pgbench_accounts", "public.pgbench_history", "contacts"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Rewrite(tables[i%len(tables)], "select")
		i++
	}
}

// Bound series count into the same exported series as the vector, per
// table and kind, including concurrent first uses.
func TestRewriteSeriesBoundOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "v", "r")
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 100; i++ {
				m.Rewrite("a", "select")
				m.Rewrite("b", "delete")
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	m.Rewrite("a", "delete")
	for _, c := range []struct {
		table, kind string
		want        float64
	}{{"a", "select", 400}, {"b", "delete", 400}, {"a", "delete", 1}} {
		if got := value(t, reg, "tombstone_rewrites_total", "table", c.table, "kind", c.kind); got != c.want {
			t.Errorf("tombstone_rewrites_total{table=%q,kind=%q} = %v, want %v", c.table, c.kind, got, c.want)
		}
	}
}
