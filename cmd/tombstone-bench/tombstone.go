package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

// tombstone is the proxy under test, run from its binary as users run it.
type tombstone struct {
	*process
	metricsAddr string
}

// startTombstone writes a configuration that makes pgbench_accounts and
// pgbench_history soft-delete tables and starts `tombstone serve` with it,
// listening on TCP and reaching PostgreSQL over its Unix socket (or TCP),
// with Go's profiler on the metrics listener.
func startTombstone(ctx context.Context, binary string, pg *pgcluster.Server, upstreamTCP bool, dir string) (*tombstone, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	upstream := pg.SocketPath()
	if upstreamTCP || upstream == "" {
		upstream = pg.Addr()
	}
	cfg := fmt.Sprintf(`# Written by tombstone-bench.
listen: %s
upstream: %s
privileged_roles: [%s]
tables:
  - name: pgbench_accounts
  - name: pgbench_history
metrics:
  listen: %s
log:
  level: warn
`, listen, upstream, pg.User, metricsAddr)
	cfgPath := filepath.Join(dir, "tombstone.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "serve", "--config", cfgPath, "--pprof")
	p, err := startProcess(ctx, "tombstone", cmd, listen, filepath.Join(dir, "tombstone.log"))
	if err != nil {
		return nil, err
	}
	return &tombstone{process: p, metricsAddr: metricsAddr}, nil
}

// metricsSnapshot is one scrape of /metrics: sample value by series, the
// series written as in the exposition ("name{label=\"v\"}").
type metricsSnapshot map[string]float64

// scrape reads the proxy's Prometheus metrics.
func (t *tombstone) scrape(ctx context.Context) (metricsSnapshot, error) {
	body, status, err := httpGet(ctx, "http://"+t.metricsAddr+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape tombstone metrics: %w", err)
	}
	defer body.Close()
	if status != http.StatusOK {
		return nil, fmt.Errorf("scrape tombstone metrics: HTTP %d", status)
	}
	snap := metricsSnapshot{}
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			snap[line[:i]] = v
		}
	}
	return snap, sc.Err()
}

// sum adds the samples of metric name whose labels contain every one of
// labels (each written as `key="value"`).
func (s metricsSnapshot) sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range s {
		base, rest, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest, l)
		}
		if match {
			total += v
		}
	}
	return total
}

// errNoProfiler means the serve command exposes no pprof endpoint.
var errNoProfiler = errors.New("the tombstone metrics listener serves no /debug/pprof/ (serve --pprof)")

// profile fetches /debug/pprof/<what> from the proxy's metrics listener
// (for example "profile?seconds=10" for a CPU profile, "heap?gc=1") and
// writes it to path.
func (t *tombstone) profile(ctx context.Context, what, path string) error {
	body, status, err := httpGet(ctx, fmt.Sprintf("http://%s/debug/pprof/%s", t.metricsAddr, what))
	if err != nil {
		return err
	}
	defer body.Close()
	if status == http.StatusNotFound {
		return errNoProfiler
	}
	if status != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(body, 512))
		return fmt.Errorf("profile %s: HTTP %d: %s", what, status, msg)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func httpGet(ctx context.Context, url string) (io.ReadCloser, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.StatusCode, nil
}

// freeAddr is a free loopback TCP address.
func freeAddr() (string, error) {
	port, err := pgcluster.FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}
