package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// endpoint is a place pgbench connects to: PostgreSQL itself, Tombstone or
// PgBouncer. Only Tombstone gets the scripts without hand-written filters;
// the others get the hand-filtered SQL an application would need without
// Tombstone.
type endpoint struct {
	name    string
	host    string
	port    int
	proxied bool
	proc    *process // nil for PostgreSQL itself
}

// pgbenchRun is one pgbench invocation.
type pgbenchRun struct {
	script    string // path of the script file
	mode      string // -M: simple or prepared
	clients   int
	threads   int
	seconds   int
	vars      []string // -D options
	logPrefix string   // non-empty: write the per-transaction log with this prefix
}

// pgbenchResult is what one run measured.
type pgbenchResult struct {
	tps          float64
	transactions int64
}

// errNoTransactions: the run ended before any transaction completed,
// typically because connecting took the whole (short) run on a loaded
// machine.
var errNoTransactions = errors.New("processed no transaction")

var (
	tpsRe   = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	txnsRe  = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	failsRe = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
)

// runPgbench runs pgbench against ep as the benchmark role and reads TPS
// (without the initial connection time) from its report. A run in which any
// transaction failed is an error: its TPS would not compare like with like.
func runPgbench(ctx context.Context, ep endpoint, r pgbenchRun) (pgbenchResult, error) {
	args := []string{"-n", "-h", ep.host, "-p", strconv.Itoa(ep.port), "-U", benchRole,
		"-c", strconv.Itoa(r.clients), "-j", strconv.Itoa(r.threads), "-T", strconv.Itoa(r.seconds),
		"-M", r.mode, "-f", r.script}
	args = append(args, r.vars...)
	if r.logPrefix != "" {
		args = append(args, "--log", "--log-prefix="+r.logPrefix)
	}
	args = append(args, benchDB)
	cmd := exec.CommandContext(ctx, "pgbench", args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+benchPassword, "PGSSLMODE=disable", "PGAPPNAME=tombstone-bench")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	report := out.String()
	if err != nil {
		return pgbenchResult{}, fmt.Errorf("pgbench %s via %s failed: %w\n%s", filepath.Base(r.script), ep.name, err, tail(report, 20))
	}
	var res pgbenchResult
	if m := txnsRe.FindStringSubmatch(report); m != nil {
		res.transactions, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := failsRe.FindStringSubmatch(report); m != nil && m[1] != "0" {
		return res, fmt.Errorf("pgbench %s via %s: %s transactions failed:\n%s", filepath.Base(r.script), ep.name, m[1], tail(report, 20))
	}
	if res.transactions == 0 {
		return res, fmt.Errorf("pgbench %s via %s %w in %ds (run too short for this machine's load? raise --duration):\n%s",
			filepath.Base(r.script), ep.name, errNoTransactions, r.seconds, tail(report, 20))
	}
	m := tpsRe.FindStringSubmatch(report)
	if m == nil {
		return res, fmt.Errorf("pgbench %s via %s printed no tps line:\n%s", filepath.Base(r.script), ep.name, tail(report, 20))
	}
	res.tps, _ = strconv.ParseFloat(m[1], 64)
	return res, nil
}

// readLatencies reads the per-transaction latencies in microseconds from the
// logs pgbench wrote for logPrefix (one file per thread: prefix.PID and
// prefix.PID.N). Each line is "client_id transaction_no time_us script_no
// time_epoch time_us_frac ...".
func readLatencies(logPrefix string) ([]float64, error) {
	files, err := filepath.Glob(logPrefix + ".*")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no pgbench transaction log %s.*", logPrefix)
	}
	var lat []float64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			v, err := strconv.ParseFloat(fields[2], 64)
			if err != nil {
				fh.Close()
				return nil, fmt.Errorf("%s: %q is not a latency in microseconds", f, fields[2])
			}
			lat = append(lat, v)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return lat, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
