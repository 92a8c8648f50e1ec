package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

// Targets of issue 5 that are not per workload.
const (
	targetAddedMedianMicros = 15.0 // added latency per round trip, one client, prepared
	targetKiBPerConn        = 64.0 // proxy RSS per idle client connection
	targetRSSGrowth         = 0.10 // steady-state RSS growth tolerated ...
	rssWindow               = 10 * time.Minute
)

// Report is everything one run measured.
type Report struct {
	Options    Options
	Machine    machine
	Throughput []throughputResult
	Latency    []latencyResult
	Memory     *memoryResult
	RSS        []rssSample // proxy RSS after each measured run through it
	Profiles   []string
	Notes      []string // steps skipped and why
	Elapsed    time.Duration
}

type machine struct {
	CPUs                  int
	CPUModel              string
	Kernel                string
	Postgres              string
	Pgbench               string
	PgBouncer             string
	Tombstone             string
	Go                    string
	LoadBefore, LoadAfter string
}

type throughputResult struct {
	workload
	tps   map[string][]float64 // endpoint name -> TPS per round
	proxy activity
}

// ratio is the median over rounds of endpoint's TPS over direct's TPS in
// the same round.
func (t throughputResult) ratio(ep string) float64 {
	var r []float64
	for i, d := range t.tps["direct"] {
		if i < len(t.tps[ep]) && d > 0 {
			r = append(r, t.tps[ep][i]/d)
		}
	}
	return median(r)
}

// activity is what the proxy's own metrics say it did during a workload:
// proof that the proxied runs were rewritten, and how often the rewrite
// cache helped.
type activity struct {
	statements, rewritten, refused, cacheHits, cacheMisses float64
}

func proxyActivity(before, after metricsSnapshot) activity {
	d := func(name string, labels ...string) float64 {
		return after.sum(name, labels...) - before.sum(name, labels...)
	}
	return activity{
		statements:  d("tombstone_statements_total"),
		rewritten:   d("tombstone_statements_total", `action="rewritten"`),
		refused:     d("tombstone_statements_total", `action="refused"`),
		cacheHits:   d("tombstone_rewrite_cache_hits_total"),
		cacheMisses: d("tombstone_rewrite_cache_misses_total"),
	}
}

func (a activity) String() string {
	s := fmt.Sprintf("%.0f statements, %.0f rewritten, %.0f refused, rewrite cache %.0f hits / %.0f misses",
		a.statements, a.rewritten, a.refused, a.cacheHits, a.cacheMisses)
	if lookups := a.cacheHits + a.cacheMisses; lookups > 0 {
		s += fmt.Sprintf(" (%.1f%% misses)", 100*a.cacheMisses/lookups)
	}
	return s
}

type latencyResult struct {
	endpoint    string
	samples     int
	median, p99 float64  // microseconds per transaction
	work        counters // the proxy process's counters over its runs; zero for direct
}

type rssSample struct {
	at  time.Duration
	kib int64
}

func (r *Report) latency(ep string) (latencyResult, bool) {
	for _, l := range r.Latency {
		if l.endpoint == ep {
			return l, true
		}
	}
	return latencyResult{}, false
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// print writes the summary: every figure next to its target.
func (r *Report) print(w io.Writer) {
	fmt.Fprintf(w, "\n== Summary (%s, %d rounds of %ds, scale %d, suite took %s)\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), r.Options.Rounds, r.Options.pgbenchSeconds(), r.Options.Scale, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "load average before %s, after %s (the machine is shared)\n", r.Machine.LoadBefore, r.Machine.LoadAfter)

	hasBouncer := len(r.Throughput) > 0 && r.Throughput[0].tps["pgbouncer"] != nil
	fmt.Fprintf(w, "\nThroughput, median TPS over rounds; ratio = median over rounds of (TPS / direct TPS in the same round)\n")
	fmt.Fprintf(w, "%-12s %-9s %9s %9s %9s  %-26s", "workload", "mode", "direct", "tombstone", "pgbouncer", "tombstone/direct (target)")
	fmt.Fprintf(w, " %s\n", "pgbouncer/direct")
	for _, t := range r.Throughput {
		ratio := t.ratio("tombstone")
		bouncer, bouncerRatio := "-", "-"
		if hasBouncer {
			bouncer = fmt.Sprintf("%.0f", median(t.tps["pgbouncer"]))
			bouncerRatio = fmt.Sprintf("%.3f", t.ratio("pgbouncer"))
		}
		fmt.Fprintf(w, "%-12s %-9s %9.0f %9.0f %9s  %.3f (>= %.2f) %-10s %s\n", t.name, t.mode,
			median(t.tps["direct"]), median(t.tps["tombstone"]), bouncer, ratio, t.target, verdict(ratio >= t.target), bouncerRatio)
	}
	for _, t := range r.Throughput {
		if t.proxy.rewritten == 0 {
			fmt.Fprintf(w, "WARNING: tombstone rewrote no statement of %s %s: that run did not measure the rewriter\n", t.name, t.mode)
		}
	}

	if d, ok := r.latency("direct"); ok {
		fmt.Fprintf(w, "\nLatency per transaction (1 client, -M prepared, read-only = one round trip), microseconds\n")
		fmt.Fprintf(w, "%-10s %9s %9s %9s %12s %12s\n", "endpoint", "samples", "median", "p99", "added med.", "added p99")
		for _, l := range r.Latency {
			fmt.Fprintf(w, "%-10s %9d %9.1f %9.1f", l.endpoint, l.samples, l.median, l.p99)
			if l.endpoint != "direct" {
				fmt.Fprintf(w, " %+12.1f %+12.1f", l.median-d.median, l.p99-d.p99)
			}
			fmt.Fprintln(w)
		}
		for _, l := range r.Latency {
			if l.work == (counters{}) || l.samples == 0 {
				continue
			}
			n := float64(l.samples)
			fmt.Fprintf(w, "%s per transaction: %.1f µs of CPU, %.1f context switches", l.endpoint,
				float64(l.work.cpu.Microseconds())/n, float64(l.work.switches)/n)
			// /proc/PID/io counts read(2) and write(2), which Go uses on
			// sockets; PgBouncer's recv(2) and send(2) do not show there.
			if l.work.reads > 0 {
				fmt.Fprintf(w, ", %.1f read(2) and %.1f write(2) calls (reads that found nothing included)",
					float64(l.work.reads)/n, float64(l.work.writes)/n)
			}
			fmt.Fprintln(w)
		}
		if t, ok := r.latency("tombstone"); ok {
			added := t.median - d.median
			fmt.Fprintf(w, "tombstone added latency at the median %.1f µs (target <= %.0f µs) %s; at p99 %.1f µs (reported)\n",
				added, targetAddedMedianMicros, verdict(added <= targetAddedMedianMicros), t.p99-d.p99)
		}
	}

	if m := r.Memory; m != nil {
		per := m.perConnKiB()
		fmt.Fprintf(w, "\nMemory: %d idle connections: proxy RSS %d KiB -> %d KiB = %.1f KiB per connection (target <= %.0f KiB) %s\n",
			m.conns, m.beforeKiB, m.afterKiB, per, targetKiBPerConn, verdict(per <= targetKiBPerConn))
	}
	if len(r.RSS) > 1 {
		first, last := r.RSS[0], r.RSS[len(r.RSS)-1]
		growth := float64(last.kib-first.kib) / float64(first.kib)
		span := last.at - first.at
		fmt.Fprintf(w, "Proxy RSS under load: %d KiB after its first measured run, %d KiB after its last, %s later (%+.1f%%)",
			first.kib, last.kib, span.Round(time.Second), 100*growth)
		if span >= rssWindow {
			fmt.Fprintf(w, " (target: no growth over %s, <= %+.0f%%) %s\n", rssWindow, 100*targetRSSGrowth, verdict(growth <= targetRSSGrowth))
		} else {
			fmt.Fprintf(w, "; the %s target is not judged on a shorter span (raise --duration or --rounds)\n", rssWindow)
		}
		fmt.Fprintf(w, "RSS samples (time since start MiB):")
		for _, r := range r.RSS {
			fmt.Fprintf(w, " %s %.0f", r.at.Round(time.Second), float64(r.kib)/1024)
		}
		fmt.Fprintln(w)
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "Profile: %s\n", p)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "%s\n", n)
	}
}

func (s *suite) printMachine() {
	m := s.report.Machine
	s.printf("\nMachine: %d CPUs, %s, Linux %s, load average %s\n", m.CPUs, m.CPUModel, m.Kernel, m.LoadBefore)
	s.printf("PostgreSQL: %s\npgbench: %s\ntombstone: %s\n", m.Postgres, m.Pgbench, m.Tombstone)
	if m.PgBouncer != "" {
		s.printf("pgbouncer: %s\n", m.PgBouncer)
	}
	upstream := "Unix socket"
	if s.opts.UpstreamTCP {
		upstream = "TCP"
	}
	s.printf("Clients reach every endpoint over TCP 127.0.0.1; tombstone and pgbouncer reach PostgreSQL over its %s.\n", upstream)
}

func describeMachine(binary string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Pgbench: commandLine("pgbench", "--version"),
		Tombstone: commandLine(binary, "version")}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// commandLine is the first line of a command's output, or why there is none.
func commandLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		return fmt.Sprintf("unknown (%s %s: %v)", name, strings.Join(args, " "), err)
	}
	return first
}

func serverVersion(ctx context.Context, pg *pgcluster.Server) (string, error) {
	conn, err := pgx.Connect(ctx, pg.DSN(""))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var v string
	err = conn.QueryRow(ctx, "SELECT version()").Scan(&v)
	return v, err
}

// loadAverage is the 1, 5 and 15 minute load average from /proc/loadavg.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func median(v []float64) float64 { return percentile(v, 0.5) }

// percentile is the nearest-rank percentile of v (NaN for no values).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if p == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
