package deploy_test

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tombstone-proxy/tombstone/deploy"
)

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
	DependsOn       dependsOn         `yaml:"depends_on"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
}

// dependsOn is compose's depends_on in either form: a list of services or
// a map from service to its condition.
type dependsOn map[string]any

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, s := range names {
			(*d)[s] = nil
		}
		return nil
	}
	return n.Decode((*map[string]any)(d))
}

// composeConfig checks deploy/compose and returns its Tombstone config.
func composeConfig(t *testing.T) exampleConfig {
	t.Helper()
	dir := filepath.Join(root, "deploy", "compose")
	const file = "deploy/compose/compose.yaml"
	data, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for name, s := range c.Services {
		if _, tag := splitImage(s.Image); !pinnedTag.MatchString(tag) && s.Build == nil {
			t.Errorf("%s: services.%s.image %s: pin a version tag", file, name, s.Image)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("%s: services.%s.volumes: %s does not exist", file, name, src)
				}
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s: services.%s.depends_on names %s, which is not a service", file, name, dep)
			}
		}
	}
	tomb, ok := c.Services["tombstone"]
	if !ok {
		t.Fatalf("%s: no service named tombstone", file)
	}
	if r, _ := splitImage(tomb.Image); r != imageRepo(t) {
		t.Errorf("%s: services.tombstone.image %s, want repository %s", file, tomb.Image, imageRepo(t))
	}
	if tomb.Build == nil {
		t.Errorf("%s: services.tombstone has no build: the demo builds the image from this repository", file)
	} else if _, err := os.Stat(filepath.Join(dir, tomb.Build.Context, tomb.Build.Dockerfile)); err != nil || filepath.Clean(filepath.Join(dir, tomb.Build.Context)) != filepath.Clean(root) {
		t.Errorf("%s: services.tombstone.build: context %s and dockerfile %s must name the repository root's Dockerfile", file, tomb.Build.Context, tomb.Build.Dockerfile)
	}
	cfgFile := ""
	for _, v := range tomb.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == configPath {
			cfgFile = parts[0]
		}
	}
	if cfgFile == "" {
		t.Fatalf("%s: services.tombstone.volumes mounts nothing at %s", file, configPath)
	}
	cfgWhere := "deploy/compose/" + path.Clean(cfgFile)
	text, err := os.ReadFile(filepath.Join(dir, cfgFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(text, deploy.DemoConfig) {
		t.Errorf("%s differs from deploy.DemoConfig: compose must mount the file the demo embeds", cfgWhere)
	}
	cfg := parseConfig(t, cfgWhere, text)
	lh, lport := hostPort(t, cfgWhere+" listen", cfg.Listen)
	mh, mport := hostPort(t, cfgWhere+" metrics.listen", cfg.Metrics.Listen)
	if !anyAddress(lh) || !anyAddress(mh) || lport != listenPort || mport != metricsPort {
		t.Errorf("%s: listen %s and metrics.listen %s: want 0.0.0.0:%d and 0.0.0.0:%d (reachable from other containers, the ports the Dockerfile exposes)", cfgWhere, cfg.Listen, cfg.Metrics.Listen, listenPort, metricsPort)
	}
	for _, want := range []int{lport, mport} {
		found := false
		for _, p := range tomb.Ports {
			p = strings.Trim(p, `"`)
			if strings.HasSuffix(p, ":"+strconv.Itoa(want)) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: services.tombstone.ports %v does not publish container port %d", file, tomb.Ports, want)
		}
	}
	uh, up := hostPort(t, cfgWhere+" upstream", cfg.Upstream)
	if pg, ok := c.Services[uh]; !ok || !strings.HasPrefix(pg.Image, "postgres:") || up != 5432 {
		t.Errorf("%s: upstream %s: want the compose service running postgres, on 5432", cfgWhere, cfg.Upstream)
	}
	if _, ok := tomb.DependsOn[uh]; !ok {
		t.Errorf("%s: services.tombstone.depends_on lacks %s, its upstream", file, uh)
	}
	grace := 10 * time.Second // compose's default
	if tomb.StopGracePeriod != "" {
		grace, _ = time.ParseDuration(tomb.StopGracePeriod)
	}
	if cfg.ShutdownTimeout >= grace {
		t.Errorf("%s: shutdown_timeout %s must be shorter than the container's stop grace period %s", cfgWhere, cfg.ShutdownTimeout, grace)
	}

	// The demo app talks to Tombstone, as a non-privileged role.
	app, ok := c.Services["app"]
	if !ok {
		t.Fatalf("%s: no demo client service named app", file)
	}
	u, err := url.Parse(app.Environment["DATABASE_URL"])
	if err != nil || u.Hostname() != "tombstone" || u.Port() != strconv.Itoa(lport) {
		t.Errorf("%s: services.app DATABASE_URL %q must point at tombstone:%d", file, app.Environment["DATABASE_URL"], lport)
	} else if slices.Contains(cfg.PrivilegedRoles, u.User.Username()) {
		t.Errorf("%s: services.app logs in as %s, a privileged role: the demo would show no soft delete", file, u.User.Username())
	}
	if d, ok := app.DependsOn["tombstone"].(map[string]any); ok && d["condition"] == "service_healthy" && len(parseDockerfile(t).healthcheck) == 0 {
		t.Errorf("%s: services.app waits for tombstone to be healthy, but the Dockerfile has no HEALTHCHECK", file)
	}

	// Prometheus scrapes Tombstone's metrics listener.
	prom, ok := c.Services["prometheus"]
	if !ok {
		t.Fatalf("%s: no prometheus service", file)
	}
	promFile := ""
	for _, v := range prom.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == "/etc/prometheus/prometheus.yml" {
			promFile = parts[0]
		}
	}
	if promFile == "" {
		t.Fatalf("%s: services.prometheus mounts nothing at /etc/prometheus/prometheus.yml", file)
	}
	metricsPathUsed := checkPrometheus(t, filepath.Join(dir, promFile), fmt.Sprintf("tombstone:%d", mport))

	hc := parseDockerfile(t).healthcheck
	probes := []string{metricsPathUsed}
	if m := regexp.MustCompile(`GET (\S+) `).FindStringSubmatch(strings.Join(hc, " ")); m != nil {
		probes = append(probes, m[1])
	}
	return exampleConfig{where: cfgWhere, yaml: text, file: cfg, probes: probes}
}

func checkPrometheus(t *testing.T, file, target string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", relPath(file), err)
	}
	for _, sc := range p.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			if slices.Contains(s.Targets, target) {
				mp := sc.MetricsPath
				if mp == "" {
					mp = "/metrics" // Prometheus' default
				}
				if mp != metricsPath {
					t.Errorf("%s: job %s scrapes %s, want %s", relPath(file), sc.JobName, mp, metricsPath)
				}
				return mp
			}
		}
	}
	t.Errorf("%s: no scrape config targets %s", relPath(file), target)
	return metricsPath
}

func TestCompose(t *testing.T) { composeConfig(t) }
