package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickSuiteProducesRatios runs the whole suite in a smoke-sized
// configuration against the real tombstone binary and a real PostgreSQL,
// and checks that it measured every figure it reports. It judges no
// figure: on a smoke run they are noise, and targets are the suite's
// business, not a unit test's.
func TestQuickSuiteProducesRatios(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pgbench for about 40s; skipped with -short")
	}
	if _, err := exec.LookPath("pgbench"); err != nil {
		t.Skip("pgbench is not on PATH: install the postgresql-client package (make deps does)")
	}
	bin := filepath.Join(t.TempDir(), "tombstone")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tombstone")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("the tombstone binary cannot be built yet, so there is nothing to measure:\n%s", out)
	}

	// 2s runs: on a loaded 2-core machine a 1s write-mix run can end
	// before its clients have connected and prepared.
	opts := Options{Binary: bin, Duration: 2 * time.Second, Rounds: 1, Scale: 1, IdleConns: 20,
		SkipPgBouncer: true, Out: t.TempDir()} // PgBouncer would add a third of the time
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	report, err := Run(ctx, opts, &out)
	if err != nil {
		t.Fatalf("suite failed: %v\noutput:\n%s", err, out.String())
	}

	if len(report.Throughput) != len(workloads) {
		t.Fatalf("measured %d workloads, want %d:\n%s", len(report.Throughput), len(workloads), out.String())
	}
	for _, tr := range report.Throughput {
		r := tr.ratio("tombstone")
		if math.IsNaN(r) || r <= 0 {
			t.Errorf("%s %s: ratio tombstone/direct = %v, want a positive number", tr.name, tr.mode, r)
		}
		if tr.proxy.rewritten == 0 {
			t.Errorf("%s %s: tombstone rewrote no statement (%s)", tr.name, tr.mode, tr.proxy)
		}
		if tr.proxy.refused != 0 {
			t.Errorf("%s %s: tombstone refused statements (%s)", tr.name, tr.mode, tr.proxy)
		}
	}
	for _, ep := range []string{"direct", "tombstone"} {
		l, ok := report.latency(ep)
		if !ok || l.samples == 0 || !(l.median > 0) || l.p99 < l.median {
			t.Errorf("latency via %s: %+v, want samples with 0 < median <= p99", ep, l)
		}
	}
	if len(report.Profiles) != 3 {
		t.Errorf("profiles %v, want a CPU profile per read-only mode and a heap profile", report.Profiles)
	}
	for _, p := range report.Profiles {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("CPU profile %s is missing or empty (%v)", p, err)
		}
	}
	if m := report.Memory; m == nil || m.conns != opts.IdleConns || m.afterKiB <= 0 {
		t.Errorf("memory measurement %+v, want %d connections and an RSS", m, opts.IdleConns)
	}
	text := out.String()
	for _, want := range []string{"tombstone/pgbouncer (target)", "Proxy CPU per transaction", "added latency at the median", "KiB per connection", "PgBouncer: skipped", "Targets: "} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	saved, err := os.ReadFile(filepath.Join(opts.Out, "results.txt"))
	if err != nil || !bytes.Equal(saved, out.Bytes()) {
		t.Errorf("results.txt does not hold what was printed (err %v)", err)
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct {
		p    float64
		want float64
	}{{0.5, 5.5}, {0.99, 10}, {0.1, 1}, {0.9, 9}} {
		if got := percentile(v, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 values = %v, want 2", got)
	}
	if got := percentile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("percentile of nothing = %v, want NaN", got)
	}
}

func TestRatioIsMedianOfSameRoundRatios(t *testing.T) {
	tr := throughputResult{tps: map[string][]float64{
		"direct":    {1000, 2000, 1000},
		"tombstone": {900, 1000, 800}, // 0.9, 0.5, 0.8
	}}
	if got := tr.ratio("tombstone"); got != 0.8 {
		t.Errorf("ratio = %v, want 0.8 (median of 0.9, 0.5, 0.8)", got)
	}
	if got := tr.ratio("pgbouncer"); !math.IsNaN(got) {
		t.Errorf("ratio of an endpoint never measured = %v, want NaN", got)
	}
}

func TestMetricsSnapshotSum(t *testing.T) {
	s := metricsSnapshot{
		`tombstone_statements_total{action="rewritten"}`:   7,
		`tombstone_statements_total{action="passthrough"}`: 3,
		`tombstone_statements_totalx`:                      100,
		`tombstone_client_connections`:                     2,
	}
	if got := s.sum("tombstone_statements_total"); got != 10 {
		t.Errorf("sum over actions = %v, want 10", got)
	}
	if got := s.sum("tombstone_statements_total", `action="rewritten"`); got != 7 {
		t.Errorf("rewritten = %v, want 7", got)
	}
	if got := s.sum("tombstone_client_connections"); got != 2 {
		t.Errorf("unlabelled gauge = %v, want 2", got)
	}
}

func TestReadLatencies(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "lat")
	// pgbench --log format: client_id transaction_no time_us script_no epoch epoch_us
	if err := os.WriteFile(prefix+".123", []byte("0 1 70 0 1700000000 1\n0 2 90 0 1700000000 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prefix+".123.1", []byte("1 1 80 0 1700000000 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lat, err := readLatencies(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 3 || median(lat) != 80 {
		t.Errorf("latencies %v, want 3 values with median 80", lat)
	}
	if err := os.WriteFile(prefix+".123.2", []byte("1 1 oops 0 1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readLatencies(prefix); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("a garbled log line gave %v, want an error naming it", err)
	}
	if _, err := readLatencies(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing log gave no error")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},                              // no --binary
		{"--binary", "/nonexistent/ts"}, // not a file
		{"--binary", os.Args[0], "--rounds", "0"},
		{"--binary", os.Args[0], "--duration", "100ms"},
		{"--binary", os.Args[0], "--idle-conns", "5000"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--") {
			t.Errorf("run(%q) = %d, stderr %q; want exit 2 naming the flag", args, code, stderr.String())
		}
	}
}

// TestSummaryJudgesAgainstPgBouncer: with PgBouncer measured, each target
// is judged on same-round ratios and per-transaction CPU; without it, none
// is judged rather than judged against nothing.
func TestSummaryJudgesAgainstPgBouncer(t *testing.T) {
	tr := throughputResult{
		workload: workload{name: "read-only", mode: "simple", vsBouncer: 1, cpuTarget: true},
		tps: map[string][]float64{
			"direct":    {1000, 1000, 1000},
			"tombstone": {900, 500, 800},
			"pgbouncer": {800, 600, 900}, // same-round ratios 1.125, 0.833, 0.889
		},
		work: map[string]counters{"tombstone": {cpu: 30 * time.Millisecond}, "pgbouncer": {cpu: 20 * time.Millisecond}},
		txns: map[string]int64{"tombstone": 2000, "pgbouncer": 2000},
	}
	if got := tr.ratioTo("tombstone", "pgbouncer"); math.Abs(got-0.8889) > 1e-3 {
		t.Errorf("tombstone/pgbouncer = %v, want the median same-round ratio 0.889", got)
	}
	if got := tr.cpuPerTxn("tombstone"); got != 15 {
		t.Errorf("CPU per transaction = %v µs, want 30ms/2000 = 15", got)
	}
	if got := tr.cpuPerTxn("direct"); !math.IsNaN(got) {
		t.Errorf("CPU per transaction of direct = %v, want NaN (not measured)", got)
	}
	r := &Report{Throughput: []throughputResult{tr}, Latency: []latencyResult{
		{endpoint: "direct", samples: 10, median: 70, p99: 130},
		{endpoint: "tombstone", samples: 10, median: 100, p99: 160},
		{endpoint: "pgbouncer", samples: 10, median: 110, p99: 150},
	}}
	var out bytes.Buffer
	r.print(&out)
	text := out.String()
	for _, want := range []string{
		"0.889 (>= 1.00) MISS",                                         // throughput below PgBouncer's
		"15.0      10.0  tombstone <= pgbouncer MISS",                  // CPU above PgBouncer's
		"at the median +30.0 µs (target <= pgbouncer's +40.0 µs) PASS", // latency below PgBouncer's
		"at the p99 +30.0 µs (target <= pgbouncer's +20.0 µs) MISS",
		"Targets: 1 PASS, 3 MISS, 0 not judged",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}

	delete(tr.tps, "pgbouncer")
	r = &Report{Throughput: []throughputResult{tr}}
	out.Reset()
	r.print(&out)
	if text := out.String(); !strings.Contains(text, "Targets: 0 PASS, 0 MISS, 2 not judged") {
		t.Errorf("without PgBouncer every PgBouncer target must be not judged:\n%s", text)
	}
}
