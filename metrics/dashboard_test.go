package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// recorder remembers every collector metrics.New registers, so the test
// sees a metric vector even before it has a child (Gather would skip it).
type recorder struct {
	prometheus.Registerer
	names map[string]bool
}

var fqNameRe = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := fqNameRe.FindStringSubmatch(d.String())
		if m == nil {
			panic("cannot read the metric name from " + d.String())
		}
		r.names[m[1]] = true
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var metricNameRe = regexp.MustCompile(`\btombstone_[a-z0-9_]+`)

// The Grafana dashboard must use only metric names that exist, and show
// every one of them, so a renamed metric cannot leave a blank panel.
func TestDashboardUsesRegisteredMetrics(t *testing.T) {
	rec := &recorder{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	New(rec, "test", "test")
	if len(rec.names) < 12 {
		t.Fatalf("recorded only %d metric names from metrics.New: %v", len(rec.names), rec.names)
	}

	data, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "tombstone.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("deploy/grafana/tombstone.json is not JSON: %v", err)
	}
	used := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		case string:
			for _, name := range metricNameRe.FindAllString(v, -1) {
				used[name] = true
			}
		}
	}
	walk(dash)

	for name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && rec.names[b] {
				base = b
			}
		}
		if !rec.names[base] {
			t.Errorf("the dashboard queries %s, which metrics.New does not register", name)
		}
		used[base] = true
	}
	var missing []string
	for name := range rec.names {
		if !used[name] {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard shows no panel for %v", missing)
	}
}
