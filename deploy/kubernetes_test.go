package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tombstone-proxy/tombstone/internal/config"
)

type meta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type object struct {
	file       string
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   meta              `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	Spec       yaml.Node         `yaml:"spec"`
}

func (o *object) String() string { return fmt.Sprintf("%s: %s %s", o.file, o.Kind, o.Metadata.Name) }

type deploymentSpec struct {
	Replicas *int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata meta    `yaml:"metadata"`
		Spec     podSpec `yaml:"spec"`
	} `yaml:"template"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64          `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               securityContext `yaml:"securityContext"`
	InitContainers                []container     `yaml:"initContainers"`
	Containers                    []container     `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string `yaml:"name"`
			Items []any  `yaml:"items"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type securityContext struct {
	RunAsNonRoot *bool `yaml:"runAsNonRoot"`
}

type container struct {
	Name          string   `yaml:"name"`
	Image         string   `yaml:"image"`
	Command       []string `yaml:"command"`
	Args          []string `yaml:"args"`
	RestartPolicy string   `yaml:"restartPolicy"`
	Ports         []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	StartupProbe   *probe `yaml:"startupProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext securityContext `yaml:"securityContext"`
	VolumeMounts    []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // a number or a port name
	} `yaml:"httpGet"`
}

type serviceSpec struct {
	Selector        map[string]string `yaml:"selector"`
	SessionAffinity string            `yaml:"sessionAffinity"`
	Ports           []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

// readManifests parses every document of every YAML file in dir.
func readManifests(t *testing.T, dir string) (objects []*object, kustomization map[string]any) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no manifests (%v)", dir, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel := relPath(f)
		if filepath.Base(f) == "kustomization.yaml" {
			if err := yaml.Unmarshal(data, &kustomization); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			o := &object{file: rel}
			if err := dec.Decode(o); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: document %d: %v", rel, i+1, err)
			}
			if o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: document %d has no kind or metadata.name", rel, i+1)
			}
			objects = append(objects, o)
		}
	}
	return objects, kustomization
}

func relPath(f string) string {
	abs, _ := filepath.Abs(f)
	top, _ := filepath.Abs(root)
	r, _ := filepath.Rel(top, abs)
	return filepath.ToSlash(r)
}

// exampleConfig is one Tombstone configuration embedded in an example, with
// the probe paths that example's orchestrator calls.
type exampleConfig struct {
	where  string // file and object, for messages
	yaml   []byte
	file   *config.File
	probes []string // HTTP paths on metrics.listen that must answer 200
}

func parseConfig(t *testing.T, where string, data []byte) *config.File {
	t.Helper()
	f, err := config.Parse(data, where)
	if err != nil {
		t.Fatalf("%s: embedded Tombstone config is invalid:\n%v", where, err)
	}
	return f
}

// kubernetesConfigs checks the Kubernetes examples and returns the
// Tombstone configurations they embed.
func kubernetesConfigs(t *testing.T) []exampleConfig {
	t.Helper()
	dir := filepath.Join(root, "deploy", "kubernetes")
	objects, kust := readManifests(t, dir)
	repo := imageRepo(t)

	// The kustomization lists every manifest and pins the image once.
	res, _ := kust["resources"].([]any)
	listed := map[string]bool{}
	for _, r := range res {
		listed[fmt.Sprint(r)] = true
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprint(r))); err != nil {
			t.Errorf("deploy/kubernetes/kustomization.yaml: resources: %v does not exist", r)
		}
	}
	for _, o := range objects {
		if !listed[path.Base(o.file)] {
			t.Errorf("deploy/kubernetes/kustomization.yaml: resources does not list %s", o.file)
		}
	}
	kustTag := ""
	images, _ := kust["images"].([]any)
	for _, im := range images {
		m, _ := im.(map[string]any)
		if m["name"] == repo {
			kustTag = fmt.Sprint(m["newTag"])
		}
	}
	if !pinnedTag.MatchString(kustTag) {
		t.Errorf("deploy/kubernetes/kustomization.yaml: images: want name %s with a version newTag, got %v", repo, images)
	}

	configMaps := map[string]*object{}
	for _, o := range objects {
		if o.Kind == "ConfigMap" {
			configMaps[o.Metadata.Name] = o
		}
	}
	var configs []exampleConfig
	deployments := 0
	for _, o := range objects {
		switch o.Kind {
		case "Deployment":
			deployments++
			var spec deploymentSpec
			if err := o.Spec.Decode(&spec); err != nil {
				t.Fatalf("%s: spec: %v", o, err)
			}
			configs = append(configs, checkDeployment(t, o, &spec, objects, configMaps, repo, kustTag))
		case "Service":
			var spec serviceSpec
			if err := o.Spec.Decode(&spec); err != nil {
				t.Fatalf("%s: spec: %v", o, err)
			}
			checkService(t, o, &spec, objects)
		case "ConfigMap":
		case "CronJob":
			checkCronJob(t, o, configMaps, repo, kustTag)
		default:
			t.Errorf("%s: kind %s is not checked by deploy_test.go; extend the test", o, o.Kind)
		}
	}
	if deployments < 2 {
		t.Errorf("deploy/kubernetes: %d Deployments, want the sidecar example and the standalone one", deployments)
	}
	return configs
}

func checkDeployment(t *testing.T, o *object, spec *deploymentSpec, objects []*object, configMaps map[string]*object, repo, tag string) exampleConfig {
	t.Helper()
	pod := &spec.Template.Spec
	for k, v := range spec.Selector.MatchLabels {
		if spec.Template.Metadata.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod template's labels", o, k, v)
		}
	}
	var tomb *container
	var others []container
	for i := range pod.InitContainers {
		c := &pod.InitContainers[i]
		if r, _ := splitImage(c.Image); r == repo {
			if c.RestartPolicy != "Always" {
				t.Errorf("%s: init container %s runs Tombstone without restartPolicy: Always, so the pod would never start (a native sidecar needs it)", o, c.Name)
			}
			tomb = c
		}
	}
	for i := range pod.Containers {
		c := &pod.Containers[i]
		if r, _ := splitImage(c.Image); r == repo {
			tomb = c
		} else {
			others = append(others, *c)
		}
	}
	if tomb == nil {
		t.Fatalf("%s: no container runs image %s", o, repo)
	}
	where := fmt.Sprintf("%s, container %s", o, tomb.Name)
	if _, ctag := splitImage(tomb.Image); ctag != tag {
		t.Errorf("%s: image %s, but kustomization.yaml pins tag %s", where, tomb.Image, tag)
	}
	if len(tomb.Command) > 0 {
		t.Errorf("%s: command %v overrides the image's ENTRYPOINT; set args only", where, tomb.Command)
	}
	if want := []string{"serve", "--config", configPath}; len(tomb.Args) > 0 && !slices.Equal(tomb.Args, want) {
		t.Errorf("%s: args %v, want %v (or none: the image's CMD)", where, tomb.Args, want)
	}

	// The config file comes from a ConfigMap mounted at configPath's directory.
	var cm *object
	for _, vm := range tomb.VolumeMounts {
		if vm.MountPath != path.Dir(configPath) {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				if len(v.ConfigMap.Items) > 0 {
					t.Errorf("%s: volume %s maps ConfigMap items; mount the whole ConfigMap so key %s is the file", where, v.Name, path.Base(configPath))
				}
				cm = configMaps[v.ConfigMap.Name]
				if cm == nil {
					t.Fatalf("%s: volume %s names ConfigMap %s, which no manifest defines", where, v.Name, v.ConfigMap.Name)
				}
			}
		}
	}
	if cm == nil {
		t.Fatalf("%s: no ConfigMap volume mounted at %s", where, path.Dir(configPath))
	}
	text, ok := cm.Data[path.Base(configPath)]
	if !ok {
		t.Fatalf("%s: has no key %s, the file Tombstone reads", cm, path.Base(configPath))
	}
	cfgWhere := fmt.Sprintf("%s data.%s", cm, path.Base(configPath))
	cfg := parseConfig(t, cfgWhere, []byte(text))

	listenHost, lport := hostPort(t, cfgWhere+" listen", cfg.Listen)
	metricsHost, mport := hostPort(t, cfgWhere+" metrics.listen", cfg.Metrics.Listen)
	if lport != listenPort || mport != metricsPort {
		t.Errorf("%s: listen port %d and metrics port %d, want the defaults %d and %d that the Dockerfile exposes", cfgWhere, lport, mport, listenPort, metricsPort)
	}
	if !anyAddress(metricsHost) {
		t.Errorf("%s: metrics.listen %s: the kubelet's probes and Prometheus connect to the pod IP; listen on 0.0.0.0", cfgWhere, cfg.Metrics.Listen)
	}
	ports := map[string]int{}
	for _, p := range tomb.Ports {
		ports[p.Name] = p.ContainerPort
		if p.ContainerPort != lport && p.ContainerPort != mport {
			t.Errorf("%s: containerPort %d (%s) is neither listen (%d) nor metrics.listen (%d)", where, p.ContainerPort, p.Name, lport, mport)
		}
	}
	resolve := func(port string) int {
		if n, err := strconv.Atoi(port); err == nil {
			return n
		}
		if n, ok := ports[port]; ok {
			return n
		}
		t.Errorf("%s: port name %q is not one of the container's ports", where, port)
		return 0
	}
	probes := []string{}
	for _, p := range []struct {
		name string
		pr   *probe
		want []string
	}{
		{"livenessProbe", tomb.LivenessProbe, []string{healthPath}},
		{"readinessProbe", tomb.ReadinessProbe, []string{readyPath}},
		{"startupProbe", tomb.StartupProbe, []string{healthPath, readyPath}},
	} {
		if p.pr == nil {
			if p.name != "startupProbe" {
				t.Errorf("%s: no %s", where, p.name)
			}
			continue
		}
		if p.pr.HTTPGet == nil {
			t.Errorf("%s: %s is not httpGet", where, p.name)
			continue
		}
		if !slices.Contains(p.want, p.pr.HTTPGet.Path) {
			t.Errorf("%s: %s.httpGet.path is %s, want %s", where, p.name, p.pr.HTTPGet.Path, strings.Join(p.want, " or "))
		}
		if n := resolve(p.pr.HTTPGet.Port); n != mport {
			t.Errorf("%s: %s.httpGet.port is %d, want metrics.listen's %d", where, p.name, n, mport)
		}
		probes = append(probes, p.pr.HTTPGet.Path)
	}

	ann := spec.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(mport) || ann["prometheus.io/path"] != metricsPath {
		t.Errorf("%s: pod annotations prometheus.io/scrape, port, path = %q, %q, %q; want \"true\", %q, %q",
			o, ann["prometheus.io/scrape"], ann["prometheus.io/port"], ann["prometheus.io/path"], strconv.Itoa(mport), metricsPath)
	}
	probes = append(probes, ann["prometheus.io/path"])

	for _, r := range []string{"cpu", "memory"} {
		if tomb.Resources.Requests[r] == "" {
			t.Errorf("%s: resources.requests.%s is not set", where, r)
		}
	}
	if lim := tomb.Resources.Limits["memory"]; lim != "" {
		if n := quantity(t, where+" resources.limits.memory", lim); n <= int64(cfg.RewriteCacheSize) {
			t.Errorf("%s: memory limit %s is not above rewrite_cache_size (%d bytes): the cache alone would get the container killed", where, lim, cfg.RewriteCacheSize)
		}
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= cfg.ShutdownTimeout {
		t.Errorf("%s: terminationGracePeriodSeconds must exceed shutdown_timeout (%s) so sessions are closed cleanly before SIGKILL", o, cfg.ShutdownTimeout)
	}
	if nr := pod.SecurityContext.RunAsNonRoot; (nr == nil || !*nr) && (tomb.SecurityContext.RunAsNonRoot == nil || !*tomb.SecurityContext.RunAsNonRoot) {
		t.Errorf("%s: set securityContext.runAsNonRoot: true (the image runs as a numeric non-root user)", where)
	}

	if len(others) > 0 {
		// Sidecar: every application container reaches Tombstone on localhost.
		for _, c := range others {
			dsn := ""
			for _, e := range c.Env {
				if e.Name == "DATABASE_URL" {
					dsn = e.Value
				}
			}
			if dsn == "" {
				t.Errorf("%s, container %s: no DATABASE_URL env pointing at Tombstone", o, c.Name)
				continue
			}
			u, err := url.Parse(dsn)
			if err != nil {
				t.Errorf("%s, container %s: DATABASE_URL %q: %v", o, c.Name, dsn, err)
				continue
			}
			if (u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1") || u.Port() != strconv.Itoa(lport) {
				t.Errorf("%s, container %s: DATABASE_URL points at %s, want localhost:%d (the sidecar's listen)", o, c.Name, u.Host, lport)
			}
			if slices.Contains(cfg.PrivilegedRoles, u.User.Username()) {
				t.Errorf("%s, container %s: DATABASE_URL logs in as %s, a privileged role: nothing would be rewritten", o, c.Name, u.User.Username())
			}
		}
	} else {
		// Shared service: reachable from other pods through a Service.
		if !anyAddress(listenHost) {
			t.Errorf("%s: listen %s: other pods connect to the pod IP; listen on 0.0.0.0", cfgWhere, cfg.Listen)
		}
		if ports["postgres"] != lport {
			t.Errorf("%s: want a containerPort named postgres = %d (listen)", where, lport)
		}
		served := false
		for _, s := range objects {
			if s.Kind != "Service" {
				continue
			}
			var ss serviceSpec
			if err := s.Spec.Decode(&ss); err == nil && selects(ss.Selector, spec.Template.Metadata.Labels) {
				for _, p := range ss.Ports {
					if resolve(p.TargetPort) == lport && p.Port == listenPort {
						served = true
					}
				}
				if (spec.Replicas == nil || *spec.Replicas > 1) && ss.SessionAffinity != "ClientIP" {
					t.Errorf("%s: Service %s spreads clients over several replicas without sessionAffinity: ClientIP, so a CancelRequest can reach a replica that does not hold the session", o, s.Metadata.Name)
				}
			}
		}
		if !served {
			t.Errorf("%s: no Service selects this pod and forwards port %d to listen (%d)", o, listenPort, lport)
		}
	}
	return exampleConfig{where: cfgWhere, yaml: []byte(text), file: cfg, probes: probes}
}

func checkService(t *testing.T, o *object, spec *serviceSpec, objects []*object) {
	t.Helper()
	for _, d := range objects {
		if d.Kind != "Deployment" {
			continue
		}
		var ds deploymentSpec
		if err := d.Spec.Decode(&ds); err != nil || !selects(spec.Selector, ds.Template.Metadata.Labels) {
			continue
		}
		names := map[string]int{}
		for _, c := range ds.Template.Spec.Containers {
			for _, p := range c.Ports {
				names[p.Name] = p.ContainerPort
			}
		}
		for _, p := range spec.Ports {
			if _, err := strconv.Atoi(p.TargetPort); err != nil && names[p.TargetPort] == 0 {
				t.Errorf("%s: port %s targets %q, which no container of %s names", o, p.Name, p.TargetPort, d.Metadata.Name)
			}
		}
		return
	}
	t.Errorf("%s: selector %v matches no Deployment's pods", o, spec.Selector)
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func hostPort(t *testing.T, where, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %q is not host:port (examples use TCP): %v", where, addr, err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func anyAddress(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

// quantity parses the Kubernetes memory quantities the examples use.
func quantity(t *testing.T, where, q string) int64 {
	t.Helper()
	m := regexp.MustCompile(`^(\d+)(Ki|Mi|Gi|k|M|G)?$`).FindStringSubmatch(q)
	if m == nil {
		t.Fatalf("%s: quantity %q: write it as a number with Ki, Mi, Gi, k, M or G", where, q)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n * map[string]int64{"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1e3, "M": 1e6, "G": 1e9}[m[2]]
}

func TestKubernetesManifests(t *testing.T) {
	configs := kubernetesConfigs(t)
	if len(configs) == 0 {
		t.Fatal("no Tombstone configuration found in deploy/kubernetes")
	}
}

// TestKustomizeRenders renders the kustomization with kubectl, when
// installed, as `kubectl apply -k` would.
func TestKustomizeRenders(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: skipped rendering deploy/kubernetes with kustomize (the manifests were still checked by TestKubernetesManifests)")
	}
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(root, "deploy", "kubernetes")).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/kubernetes: %v\n%s", err, out)
	}
	_, kust := readManifests(t, filepath.Join(root, "deploy", "kubernetes"))
	want := ""
	images, _ := kust["images"].([]any)
	for _, im := range images {
		if m, ok := im.(map[string]any); ok && m["name"] == imageRepo(t) {
			want = fmt.Sprintf("%s:%v", m["name"], m["newTag"])
		}
	}
	rendered := regexp.MustCompile(`(?m)^\s+image: (\S+)$`).FindAllStringSubmatch(string(out), -1)
	found := 0
	for _, m := range rendered {
		if r, _ := splitImage(m[1]); r == imageRepo(t) {
			found++
			if m[1] != want {
				t.Errorf("kustomize renders image %s, want %s", m[1], want)
			}
		}
	}
	if found < 2 {
		t.Errorf("kustomize output runs the Tombstone image %d times, want at least 2 (sidecar and standalone):\n%s", found, out)
	}
}
