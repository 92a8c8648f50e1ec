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

// Targets that are not per workload (issue 13; memory from issue 5).
const (
	targetKiBPerConn = 64.0 // proxy RSS per idle client connection
	targetRSSGrowth  = 0.10 // RSS growth tolerated once the rewrite cache is full ...
	rssWindow        = 10 * time.Minute
)

// Report is everything one run measured.
type Report struct {
	Options    Options
	Machine    machine
	Throughput []throughputResult
	Latency    []latencyResult
	Memory     *memoryResult
	RSS        []rssSample // proxy RSS after each measured run through it
	CacheFull  int         // index of the first RSS sample taken with the rewrite cache full
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
	work  map[string]counters  // endpoint name -> the process's kernel counters over its runs
	txns  map[string]int64     // endpoint name -> transactions over its runs
	proxy activity
}

// ratio is the median over rounds of endpoint's TPS over direct's TPS in
// the same round.
func (t throughputResult) ratio(ep string) float64 { return t.ratioTo(ep, "direct") }

// ratioTo is the median over rounds of ep's TPS over ref's TPS in the same
// round: rounds alternate the endpoints, so a same-round ratio cancels
// most of the shared machine's drift.
func (t throughputResult) ratioTo(ep, ref string) float64 {
	var r []float64
	for i, d := range t.tps[ref] {
		if i < len(t.tps[ep]) && d > 0 {
			r = append(r, t.tps[ep][i]/d)
		}
	}
	return median(r)
}

// cpuPerTxn is the microseconds of CPU (user and system) the endpoint's
// process used per transaction over its runs; NaN for direct.
func (t throughputResult) cpuPerTxn(ep string) float64 {
	n := t.txns[ep]
	if n == 0 || t.work[ep] == (counters{}) {
		return math.NaN()
	}
	return float64(t.work[ep].cpu.Microseconds()) / float64(n)
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

// notJudged stands in for a verdict against PgBouncer in a run without it.
const notJudged = "not judged (no PgBouncer)"

// tally counts the verdicts the summary printed.
type tally struct{ pass, miss, open int }

func (t *tally) judge(ok bool) string {
	if ok {
		t.pass++
	} else {
		t.miss++
	}
	return verdict(ok)
}

func (t *tally) skip() string { t.open++; return notJudged }

// print writes the summary: every figure next to its target.
func (r *Report) print(w io.Writer) {
	fmt.Fprintf(w, "\n== Summary (%s, %d rounds of %ds, scale %d, suite took %s)\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), r.Options.Rounds, r.Options.pgbenchSeconds(), r.Options.Scale, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "load average before %s, after %s (the machine is shared)\n", r.Machine.LoadBefore, r.Machine.LoadAfter)
	var t tally
	r.printThroughput(w, &t)
	r.printLatency(w, &t)
	r.printMemory(w, &t)
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "Profile: %s\n", p)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "%s\n", n)
	}
	fmt.Fprintf(w, "\nTargets: %d PASS, %d MISS, %d not judged\n", t.pass, t.miss, t.open)
}

func (r *Report) hasBouncer() bool {
	return len(r.Throughput) > 0 && r.Throughput[0].tps["pgbouncer"] != nil
}

// printThroughput: TPS and the ratios to direct and to PgBouncer, and the
// CPU each proxy spent per transaction, with issue 13's targets.
func (r *Report) printThroughput(w io.Writer, t *tally) {
	bouncer := r.hasBouncer()
	fmt.Fprintf(w, "\nThroughput, %d clients: median TPS over rounds; a ratio is the median over rounds of the same-round ratio\n", clients)
	fmt.Fprintf(w, "%-12s %-8s %8s %9s %9s %8s %8s  %-28s\n", "workload", "mode", "direct", "tombstone", "pgbouncer",
		"T/direct", "B/direct", "tombstone/pgbouncer (target)")
	for _, tr := range r.Throughput {
		fmt.Fprintf(w, "%-12s %-8s %8.0f %9.0f %9s %8.3f %8s  ", tr.name, tr.mode,
			median(tr.tps["direct"]), median(tr.tps["tombstone"]), orDash(bouncer, "%.0f", median(tr.tps["pgbouncer"])),
			tr.ratio("tombstone"), orDash(bouncer, "%.3f", tr.ratio("pgbouncer")))
		if bouncer {
			rb := tr.ratioTo("tombstone", "pgbouncer")
			fmt.Fprintf(w, "%.3f (>= %.2f) %s\n", rb, tr.vsBouncer, t.judge(rb >= tr.vsBouncer))
		} else {
			fmt.Fprintf(w, "- (>= %.2f) %s\n", tr.vsBouncer, t.skip())
		}
	}
	fmt.Fprintf(w, "\nProxy CPU per transaction under that load (user+system from /proc), microseconds\n")
	fmt.Fprintf(w, "%-12s %-8s %9s %9s  %s\n", "workload", "mode", "tombstone", "pgbouncer", "target")
	for _, tr := range r.Throughput {
		ct, cb := tr.cpuPerTxn("tombstone"), tr.cpuPerTxn("pgbouncer")
		fmt.Fprintf(w, "%-12s %-8s %9.1f %9s  ", tr.name, tr.mode, ct, orDash(bouncer, "%.1f", cb))
		switch {
		case !tr.cpuTarget:
			fmt.Fprintln(w, "(reported)")
		case bouncer:
			fmt.Fprintf(w, "tombstone <= pgbouncer %s\n", t.judge(ct <= cb))
		default:
			fmt.Fprintf(w, "tombstone <= pgbouncer %s\n", t.skip())
		}
	}
	for _, tr := range r.Throughput {
		if tr.proxy.rewritten == 0 {
			fmt.Fprintf(w, "WARNING: tombstone rewrote no statement of %s %s: that run did not measure the rewriter\n", tr.name, tr.mode)
		}
	}
}

// orDash formats v, or "-" when the endpoint was not measured.
func orDash(measured bool, format string, v float64) string {
	if !measured {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// printLatency: one client, one round trip per transaction; Tombstone's
// added latency must not exceed PgBouncer's, at the median and at p99.
func (r *Report) printLatency(w io.Writer, t *tally) {
	d, ok := r.latency("direct")
	if !ok {
		return
	}
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
	ts, ok := r.latency("tombstone")
	if !ok {
		return
	}
	b, bouncer := r.latency("pgbouncer")
	for _, q := range []struct {
		name     string
		tomb, pb float64
	}{{"median", ts.median - d.median, b.median - d.median}, {"p99", ts.p99 - d.p99, b.p99 - d.p99}} {
		fmt.Fprintf(w, "tombstone added latency at the %s %+.1f µs", q.name, q.tomb)
		if bouncer {
			fmt.Fprintf(w, " (target <= pgbouncer's %+.1f µs) %s\n", q.pb, t.judge(q.tomb <= q.pb))
		} else {
			fmt.Fprintf(w, " (target <= pgbouncer's) %s\n", t.skip())
		}
	}
}

// printMemory: RSS per idle connection, and RSS growth under load once
// the rewrite cache is full (its bound is rewrite_cache_size; filling it is
// growth by design, not a leak).
func (r *Report) printMemory(w io.Writer, t *tally) {
	if m := r.Memory; m != nil {
		per := m.perConnKiB()
		fmt.Fprintf(w, "\nMemory: %d idle connections: proxy RSS %d KiB -> %d KiB = %.1f KiB per connection (target <= %.0f KiB) %s\n",
			m.conns, m.beforeKiB, m.afterKiB, per, targetKiBPerConn, t.judge(per <= targetKiBPerConn))
	}
	if len(r.RSS) == 0 {
		return
	}
	first, full, last := r.RSS[0], r.RSS[min(r.CacheFull, len(r.RSS)-1)], r.RSS[len(r.RSS)-1]
	fmt.Fprintf(w, "Proxy RSS under load: %d KiB after its first run; %d KiB after the unique-shape runs, which fill the rewrite cache; %d KiB after its last run\n",
		first.kib, full.kib, last.kib)
	growth := float64(last.kib-full.kib) / float64(full.kib)
	span := last.at - full.at
	fmt.Fprintf(w, "  growth with the cache full: %+.1f%% over %s", 100*growth, span.Round(time.Second))
	if span >= rssWindow {
		fmt.Fprintf(w, " (target <= %+.0f%% over %s) %s\n", 100*targetRSSGrowth, rssWindow, t.judge(growth <= targetRSSGrowth))
	} else {
		fmt.Fprintf(w, "; not judged on a span under %s (raise --duration or --rounds)\n", rssWindow)
		t.open++
	}
	fmt.Fprintf(w, "RSS samples (time since start MiB):")
	for _, s := range r.RSS {
		fmt.Fprintf(w, " %s %.0f", s.at.Round(time.Second), float64(s.kib)/1024)
	}
	fmt.Fprintln(w)
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
