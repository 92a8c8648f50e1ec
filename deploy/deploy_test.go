package deploy_test

// These tests keep the deployment examples from rotting: they parse the
// Dockerfile, every Kubernetes manifest, the compose file and prometheus.yml,
// validate every embedded Tombstone configuration with internal/config, check
// that ports, config paths, probes and image names agree with each other and
// with the code, and then run each example configuration with the real
// binary against a real PostgreSQL and call the probes the examples use.

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// What the examples must agree on. The ports come from the code's defaults;
// the paths are the ones `tombstone serve` serves (TestExamplesRun checks
// that they answer 200 and that an unknown path does not).
const (
	configPath  = "/etc/tombstone/config.yaml"
	healthPath  = "/healthz"
	readyPath   = "/readyz"
	metricsPath = "/metrics"
)

var (
	listenPort  = portOf(config.DefaultListen)
	metricsPort = portOf(config.DefaultMetricsListen)
)

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		panic(err)
	}
	return n
}

// root is the repository root; the test runs in deploy/.
const root = ".."

// imageRepo is the image every example runs: ghcr.io/<owner>/<name> of the
// module path github.com/<owner>/<name>.
func imageRepo(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^module github\.com/(\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod: module path is not github.com/OWNER/NAME; update imageRepo in deploy_test.go")
	}
	return "ghcr.io/" + string(m[1])
}

// splitImage splits "repo:tag" (a registry port is not a tag).
func splitImage(image string) (repo, tag string) {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, ""
	}
	return image[:i], image[i+1:]
}

var pinnedTag = regexp.MustCompile(`^v?\d+\.\d+`)
