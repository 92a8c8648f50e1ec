package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

//go:embed scripts/*.sql
var scriptFS embed.FS

// workload is one pgbench throughput measurement. Its scripts are
// scripts/<script>-proxied.sql (sent through Tombstone, which adds the
// filters) and scripts/<script>-direct.sql (filtered by hand, sent to
// PostgreSQL and to PgBouncer).
type workload struct {
	name   string
	mode   string // pgbench -M
	script string
	// Issue 13's targets, judged against PgBouncer in the same run:
	// the minimum median ratio of Tombstone's TPS to PgBouncer's, and
	// whether Tombstone's CPU per transaction must not exceed PgBouncer's.
	vsBouncer float64
	cpuTarget bool
}

// workloads run in this order. Unique shape comes first: every statement
// of it is a cache miss, so it fills the rewrite cache (rewrite_cache_size)
// at once, and the RSS samples taken after it show whether memory still
// grows once the cache is full (issue 13).
var workloads = []workload{
	{name: "unique shape", mode: "simple", script: "uniqueshape", vsBouncer: 0.75},
	{name: "read-only", mode: "simple", script: "readonly", vsBouncer: 1, cpuTarget: true},
	{name: "read-only", mode: "prepared", script: "readonly", vsBouncer: 1, cpuTarget: true},
	{name: "write mix", mode: "simple", script: "writemix", vsBouncer: 1, cpuTarget: true},
	{name: "write mix", mode: "prepared", script: "writemix", vsBouncer: 1, cpuTarget: true},
	// Texts differing only in literals share one template: a cache hit
	// almost every time, so this is the template path's figure.
	{name: "unique text", mode: "simple", script: "uniquetext", vsBouncer: 0.75},
}

// suite holds what every step of one run shares.
type suite struct {
	opts      Options
	out       io.Writer // the console and results.txt
	pg        *pgcluster.Server
	data      dataset
	scripts   string // directory of the script files
	direct    endpoint
	tombstone *tombstone
	bouncer   *process // nil when PgBouncer is not measured
	started   time.Time
	measuring bool // RSS sampling: past the warm-up, before the profiles
	report    *Report
}

// endpoints are the places every workload runs against, in the order of
// each round.
func (s *suite) endpoints() []endpoint {
	eps := []endpoint{s.direct, s.tombstone.endpoint(true)}
	if s.bouncer != nil {
		eps = append(eps, s.bouncer.endpoint(false))
	}
	return eps
}

func (s *suite) scriptFor(w workload, ep endpoint) string {
	side := "direct"
	if ep.proxied {
		side = "proxied"
	}
	return filepath.Join(s.scripts, w.script+"-"+side+".sql")
}

func (s *suite) printf(format string, args ...any) { fmt.Fprintf(s.out, format, args...) }

// Run runs the whole suite and prints its results to stdout and to
// results.txt in opts.Out. It returns an error only when a measurement
// could not be made; missed targets are results.
func Run(ctx context.Context, opts Options, stdout io.Writer) (*Report, error) {
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	resultsFile, err := os.Create(filepath.Join(opts.Out, "results.txt"))
	if err != nil {
		return nil, err
	}
	defer resultsFile.Close()
	s := &suite{opts: opts, out: io.MultiWriter(stdout, resultsFile), data: newDataset(opts.Scale),
		started: time.Now(), report: &Report{Options: opts}}
	if s.scripts, err = writeScripts(opts.Out); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("pgbench"); err != nil {
		return nil, errors.New("pgbench is not on PATH: install the postgresql-client package (make deps does)")
	}
	s.report.Machine = describeMachine(opts.Binary)

	s.printf("Starting a throwaway PostgreSQL and loading pgbench at scale %d...\n", opts.Scale)
	if s.pg, err = pgcluster.Start(pgcluster.Options{}); err != nil {
		return nil, err
	}
	defer s.pg.Stop()
	if s.report.Machine.Postgres, err = serverVersion(ctx, s.pg); err != nil {
		return nil, err
	}
	setupLog, err := os.Create(filepath.Join(opts.Out, "setup.log"))
	if err != nil {
		return nil, err
	}
	err = prepareDatabase(ctx, s.pg, s.data, setupLog)
	setupLog.Close()
	if err != nil {
		return nil, err
	}
	s.direct = endpoint{name: "direct", host: s.pg.Host, port: s.pg.Port}

	if s.tombstone, err = startTombstone(ctx, opts.Binary, s.pg, opts.UpstreamTCP, opts.Out); err != nil {
		return nil, err
	}
	defer s.tombstone.stop()
	if err := s.startPgBouncer(ctx); err != nil {
		return nil, err
	}
	if s.bouncer != nil {
		defer s.bouncer.stop()
	}
	s.report.Machine.LoadBefore = loadAverage()
	s.printMachine()

	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"warm-up", s.warmUp},
		{"throughput", s.measureThroughput},
		{"latency", s.measureLatency},
		{"profiles", s.captureProfiles},
		{"idle-connection memory", s.measureMemory},
	}
	for _, step := range steps {
		if err := step.run(ctx); err != nil {
			return s.report, fmt.Errorf("%s: %w", step.name, err)
		}
	}
	s.report.Machine.LoadAfter = loadAverage()
	s.report.Elapsed = time.Since(s.started)
	s.report.print(s.out)
	s.printf("\nResults, profiles and logs: %s\n", opts.Out)
	return s.report, nil
}

// writeScripts copies the embedded pgbench scripts into dir/scripts, where
// pgbench reads them and where they stay with the results.
func writeScripts(dir string) (string, error) {
	dst := filepath.Join(dir, "scripts")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	entries, err := scriptFS.ReadDir("scripts")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		data, err := scriptFS.ReadFile("scripts/" + e.Name())
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			return "", err
		}
	}
	return dst, nil
}

func (s *suite) startPgBouncer(ctx context.Context) error {
	if s.opts.SkipPgBouncer {
		s.report.Notes = append(s.report.Notes, "PgBouncer: skipped (--no-pgbouncer).")
		return nil
	}
	path, err := exec.LookPath("pgbouncer")
	if err != nil {
		s.report.Notes = append(s.report.Notes, "PgBouncer: skipped, pgbouncer is not on PATH (apt-get install pgbouncer to measure the reference).")
		return nil
	}
	if s.bouncer, err = startPgBouncer(ctx, path, s.pg, s.opts.UpstreamTCP, s.opts.Out); err != nil {
		return err
	}
	s.report.Machine.PgBouncer = commandLine(path, "--version")
	return nil
}

// warmUp runs each workload briefly against every endpoint, unrecorded, so
// that the first measured round does not pay for cold caches (shared
// buffers, the proxy's rewrite cache, the runtime's heap growth). A warm-up
// run that finished no transaction (its clients were still connecting on
// a loaded machine) has still warmed what it could; failures are errors.
func (s *suite) warmUp(ctx context.Context) error {
	s.printf("\nWarming up...\n")
	for _, w := range workloads {
		if w.mode != "prepared" {
			continue // one pass over each script's tables is enough
		}
		for _, ep := range s.endpoints() {
			if _, err := s.pgbench(ctx, w, ep, clients, threads, 1, ""); err != nil && !errors.Is(err, errNoTransactions) {
				return err
			}
		}
	}
	s.measuring = true
	return nil
}

// pgbench runs workload w against ep and checks that the proxy survived.
// After each measured run through the proxy it samples the proxy's RSS, for
// the steady-state memory figure.
func (s *suite) pgbench(ctx context.Context, w workload, ep endpoint, nclients, nthreads, seconds int, logPrefix string) (pgbenchResult, error) {
	res, err := runPgbench(ctx, ep, pgbenchRun{script: s.scriptFor(w, ep), mode: w.mode, clients: nclients,
		threads: nthreads, seconds: seconds, vars: s.data.pgbenchVars(), logPrefix: logPrefix})
	if alive := s.tombstone.alive(); alive != nil {
		return res, alive
	}
	if err != nil || !ep.proxied || !s.measuring {
		return res, err
	}
	kib, err := s.tombstone.rssKiB()
	s.report.RSS = append(s.report.RSS, rssSample{at: time.Since(s.started), kib: kib})
	return res, err
}

// pgbenchCounted is pgbench with the proxy's kernel counters (CPU time,
// system calls, context switches) over the run; zero for direct.
func (s *suite) pgbenchCounted(ctx context.Context, w workload, ep endpoint, nclients, nthreads, seconds int, logPrefix string) (pgbenchResult, counters, error) {
	var before counters
	if ep.proc != nil {
		var err error
		if before, err = ep.proc.counters(); err != nil {
			return pgbenchResult{}, counters{}, err
		}
	}
	res, err := s.pgbench(ctx, w, ep, nclients, nthreads, seconds, logPrefix)
	if err != nil || ep.proc == nil {
		return res, counters{}, err
	}
	after, err := ep.proc.counters()
	return res, after.minus(before), err
}

// measureThroughput runs every workload for opts.Rounds rounds, each round
// running direct, Tombstone and PgBouncer one after the other, and records
// what the proxy reports it did with the statements.
func (s *suite) measureThroughput(ctx context.Context) error {
	s.printf("\nThroughput: %d clients, %d threads, %ds per run, %d rounds (TPS without connection time)\n",
		clients, threads, s.opts.pgbenchSeconds(), s.opts.Rounds)
	for _, w := range workloads {
		tr := throughputResult{workload: w, tps: map[string][]float64{}, work: map[string]counters{}, txns: map[string]int64{}}
		before, err := s.tombstone.scrape(ctx)
		if err != nil {
			return err
		}
		for round := 1; round <= s.opts.Rounds; round++ {
			s.printf("  %-12s %-8s round %d/%d:", w.name, w.mode, round, s.opts.Rounds)
			for _, ep := range s.endpoints() {
				res, work, err := s.pgbenchCounted(ctx, w, ep, clients, threads, s.opts.pgbenchSeconds(), "")
				if err != nil {
					s.printf("\n")
					return err
				}
				tr.tps[ep.name] = append(tr.tps[ep.name], res.tps)
				tr.work[ep.name] = tr.work[ep.name].plus(work)
				tr.txns[ep.name] += res.transactions
				s.printf("  %s %.0f", ep.name, res.tps)
			}
			s.printf("\n")
		}
		after, err := s.tombstone.scrape(ctx)
		if err != nil {
			return err
		}
		tr.proxy = proxyActivity(before, after)
		if w.script == "uniqueshape" && len(s.report.RSS) > 0 {
			// Every later sample is taken with the rewrite cache full.
			s.report.CacheFull = len(s.report.RSS) - 1
		}
		s.printf("  %-12s %-8s tombstone saw %s\n", w.name, w.mode, tr.proxy)
		s.report.Throughput = append(s.report.Throughput, tr)
	}
	return nil
}

// measureLatency runs the read-only workload with one client in prepared
// mode (one round trip per transaction) against each endpoint, rounds
// alternating, and pools pgbench's per-transaction latencies. It also
// counts the proxies' system calls and context switches over their runs.
func (s *suite) measureLatency(ctx context.Context) error {
	w := workload{name: "read-only", mode: "prepared", script: "readonly"}
	s.printf("\nLatency: 1 client, -M prepared, read-only, %ds per run, %d rounds\n", s.opts.pgbenchSeconds(), s.opts.Rounds)
	logs, err := os.MkdirTemp("", "tombstone-bench-latency-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(logs) // tens of MB of per-transaction lines
	lat := map[string][]float64{}
	work := map[string]counters{} // the proxies' syscalls and context switches during their runs
	for round := 1; round <= s.opts.Rounds; round++ {
		s.printf("  round %d/%d:", round, s.opts.Rounds)
		for _, ep := range s.endpoints() {
			prefix := filepath.Join(logs, ep.name+"-"+strconv.Itoa(round))
			res, used, err := s.pgbenchCounted(ctx, w, ep, 1, 1, s.opts.pgbenchSeconds(), prefix)
			if err != nil {
				s.printf("\n")
				return err
			}
			work[ep.name] = work[ep.name].plus(used)
			l, err := readLatencies(prefix)
			if err != nil {
				return err
			}
			lat[ep.name] = append(lat[ep.name], l...)
			s.printf("  %s %.0f tps", ep.name, res.tps)
		}
		s.printf("\n")
	}
	for _, ep := range s.endpoints() {
		s.report.Latency = append(s.report.Latency, latencyResult{endpoint: ep.name, samples: len(lat[ep.name]),
			median: percentile(lat[ep.name], 0.50), p99: percentile(lat[ep.name], 0.99), work: work[ep.name]})
	}
	return nil
}

// captureProfiles records a CPU profile of the proxy under the read-only
// load in each mode, and then a heap profile, through the serve command's
// pprof endpoint, and saves them in opts.Out.
func (s *suite) captureProfiles(ctx context.Context) error {
	secs := s.opts.pgbenchSeconds()
	// The profiler's own buffers would show in RSS: the steady-state
	// samples end here.
	s.measuring = false
	s.printf("\nProfiles of the proxy: CPU under the read-only load (%ds per mode), then the heap\n", secs)
	for _, w := range workloads {
		if w.script != "readonly" {
			continue
		}
		path := filepath.Join(s.opts.Out, "cpu-readonly-"+w.mode+".pprof")
		before, err := s.tombstone.counters()
		if err != nil {
			return err
		}
		profErr := make(chan error, 1)
		go func() { profErr <- s.tombstone.profile(ctx, fmt.Sprintf("profile?seconds=%d", secs), path) }()
		// pgbench runs a second longer than the profile so that the
		// whole profile window is under load.
		_, err = s.pgbench(ctx, w, s.tombstone.endpoint(true), clients, threads, secs+1, "")
		perr := <-profErr
		if err != nil {
			return err
		}
		if errors.Is(perr, errNoProfiler) {
			s.report.Notes = append(s.report.Notes, "CPU profile: skipped, "+perr.Error()+".")
			return nil
		}
		if perr != nil {
			return perr
		}
		after, err := s.tombstone.counters()
		if err != nil {
			return err
		}
		top := s.keepProfile(path)
		s.checkProfileCoverage(path, top, after.minus(before).cpu, secs+1)
	}
	// What holds the proxy's memory after all the load: the figure behind
	// the RSS samples.
	path := filepath.Join(s.opts.Out, "heap-after-load.pprof")
	if err := s.tombstone.profile(ctx, "heap?gc=1", path); err != nil {
		return err
	}
	s.keepProfile(path)
	return nil
}

// keepProfile lists a saved profile in the report and writes `go tool pprof
// -top` of it beside it when Go is installed. It returns that summary ("" when
// there is none).
func (s *suite) keepProfile(path string) string {
	s.report.Profiles = append(s.report.Profiles, path)
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", s.opts.Binary, path).Output()
	if err != nil {
		s.printf("  %s\n", path)
		return ""
	}
	_ = os.WriteFile(path+".top.txt", out, 0o644)
	s.printf("  %s (top functions in %s.top.txt)\n", path, filepath.Base(path))
	return string(out)
}

var totalSamplesRe = regexp.MustCompile(`Total samples = ([0-9.]+[a-zµ]*s)`)

// checkProfileCoverage compares the CPU time a profile sampled with the CPU
// time the kernel charged the proxy over the load run (a second longer than
// the profile). Go's profiler can lose samples on a loaded machine; a
// profile that saw much less than the proxy used must not be read for
// proportions, and the report says so.
func (s *suite) checkProfileCoverage(path, top string, used time.Duration, runSeconds int) {
	m := totalSamplesRe.FindStringSubmatch(top)
	if m == nil {
		return
	}
	sampled, err := time.ParseDuration(m[1])
	if err != nil || used <= 0 {
		return
	}
	s.printf("    sampled %s of CPU; the kernel charged the proxy %s over the %ds run (%.2f CPUs)\n",
		sampled, used, runSeconds, used.Seconds()/float64(runSeconds))
	if float64(sampled) < 0.5*float64(used)*float64(runSeconds-1)/float64(runSeconds) {
		s.report.Notes = append(s.report.Notes, fmt.Sprintf(
			"WARNING: %s sampled %s of the proxy's %s of CPU: the profiler lost samples, do not read proportions from it.",
			filepath.Base(path), sampled, used))
	}
}

// measureMemory opens idle connections through a fresh Tombstone process,
// so the measurement is not blurred by heap the load left behind.
func (s *suite) measureMemory(ctx context.Context) error {
	s.printf("\nMemory: %d idle connections through a fresh tombstone process\n", s.opts.IdleConns)
	dir := filepath.Join(s.opts.Out, "memory")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	t, err := startTombstone(ctx, s.opts.Binary, s.pg, s.opts.UpstreamTCP, dir)
	if err != nil {
		return err
	}
	defer t.stop()
	m, err := measureIdleMemory(ctx, t, s.opts.IdleConns)
	if err != nil {
		return err
	}
	s.report.Memory = &m
	return nil
}
