package deploy_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tombstone-proxy/tombstone/deploy"
	"github.com/tombstone-proxy/tombstone/internal/buildtest"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

// TestExamplesRun starts the real binary with each example configuration
// (only the addresses changed) against a real PostgreSQL, calls every probe
// path the example's orchestrator would call, runs the Dockerfile's
// HEALTHCHECK command, and runs the compose demo app through it.
func TestExamplesRun(t *testing.T) {
	examples := append([]exampleConfig{composeConfig(t)}, kubernetesConfigs(t)...)
	bin := buildtest.Tombstone(t)
	pg := pgtest.Shared(t)

	for _, ex := range examples {
		t.Run(ex.where, func(t *testing.T) {
			lport, mport := freePort(t), freePort(t)
			cfg, err := deploy.Override(ex.yaml, map[string]string{
				"listen":         fmt.Sprintf("127.0.0.1:%d", lport),
				"upstream":       pg.Addr(),
				"metrics.listen": fmt.Sprintf("127.0.0.1:%d", mport),
			})
			if err != nil {
				t.Fatal(err)
			}
			base := startTombstone(t, bin, cfg, mport)
			for _, p := range ex.probes {
				if code, body := get(t, base+p); code != 200 {
					t.Errorf("%s: GET %s answered %d, want 200:\n%s", ex.where, p, code, body)
				}
			}
			if code, _ := get(t, base+"/no-such-path"); code == 200 {
				t.Errorf("GET /no-such-path answered 200: the metrics listener answers every path, so the probe checks above prove nothing")
			}
			if _, body := get(t, base+metricsPath); !strings.Contains(body, "tombstone_build_info") {
				t.Errorf("GET %s has no tombstone_build_info:\n%s", metricsPath, body)
			}
			if strings.HasPrefix(ex.where, "deploy/compose/") {
				runHealthcheck(t, mport)
				runComposeApp(t, pg, lport)
			}
		})
	}
}

// runHealthcheck runs the Dockerfile's HEALTHCHECK command against the
// running binary, and checks that it fails for a path that is not served.
func runHealthcheck(t *testing.T, mport int) {
	hc := parseDockerfile(t).healthcheck
	port := func(args []string, path string) []string {
		out := slices.Clone(args)
		for i := range out {
			out[i] = strings.ReplaceAll(out[i], fmt.Sprintf("/dev/tcp/127.0.0.1/%d", metricsPort), fmt.Sprintf("/dev/tcp/127.0.0.1/%d", mport))
			out[i] = strings.ReplaceAll(out[i], "GET "+healthPath+" ", "GET "+path+" ")
		}
		return out
	}
	ok := port(hc, healthPath)
	if out, err := exec.Command(ok[0], ok[1:]...).CombinedOutput(); err != nil {
		t.Errorf("Dockerfile HEALTHCHECK %v failed against a healthy tombstone: %v\n%s", ok, err, out)
	}
	bad := port(hc, "/no-such-path")
	if err := exec.Command(bad[0], bad[1:]...).Run(); err == nil {
		t.Errorf("Dockerfile HEALTHCHECK succeeds for a path answered 404: it does not check the status")
	}
}

// runComposeApp loads the demo schema and runs deploy/compose/app.sh, the
// compose demo's client, through Tombstone, then checks directly that its
// DELETEs were soft.
func runComposeApp(t *testing.T, pg *pgtest.Server, lport int) {
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, deploy.DemoSQL)
	app := exec.Command("bash", filepath.Join(root, "deploy", "compose", "app.sh"))
	app.Env = append(os.Environ(), "ITERATIONS=2", "INTERVAL=0",
		"DATABASE_URL="+fmt.Sprintf("postgres://app:app@127.0.0.1:%d/%s?sslmode=disable", lport, db))
	out, err := app.CombinedOutput()
	if err != nil {
		t.Fatalf("deploy/compose/app.sh through tombstone: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "DELETE 1"); n != 2 {
		t.Errorf("deploy/compose/app.sh printed DELETE 1 %d times, want 2 (one per round):\n%s", n, out)
	}
	res, err := exec.Command("psql", pg.DSN(db), "-XAtc",
		"SELECT count(*) FROM contacts WHERE deleted_at IS NOT NULL AND deleted_by = 'app'").CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, res)
	}
	if deleted, _ := strconv.Atoi(strings.TrimSpace(string(res))); deleted != 2 {
		t.Errorf("after app.sh, %d contacts are soft-deleted by app, want 2 (its DELETEs must keep the rows)", deleted)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startTombstone runs `tombstone serve` with cfg until the test ends and
// returns the base URL of its metrics listener once /healthz answers.
func startTombstone(t *testing.T, bin string, cfg []byte, mport int) string {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "tombstone.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("tombstone log:\n%s", log)
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", mport)
	// Generous: this waits for start-up, it does not measure it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("tombstone serve exited before answering %s: %v\n%s\nconfig:\n%s", healthPath, err, log, cfg)
		default:
		}
		if code, _ := getQuiet(base + healthPath); code == 200 {
			return base
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("tombstone serve did not answer %s within a minute\n%s", healthPath, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	code, body := getQuiet(u)
	if code == 0 {
		t.Errorf("GET %s: %s", u, body)
	}
	return code, body
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// getQuiet returns the status and body of a GET, or 0 and the error.
func getQuiet(u string) (int, string) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, b.String()
}
