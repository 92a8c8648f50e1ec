package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type dockerfile struct {
	args        map[string]string // global ARG defaults
	from        []string          // resolved base images, in order
	stages      map[string]bool
	run         []string
	expose      []int
	healthcheck []string // exec form of HEALTHCHECK CMD
	entrypoint  []string
	cmd         []string
	user        string
	labels      string
}

func parseDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerfile{args: map[string]string{}, stages: map[string]bool{}}
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue // Docker drops comment lines, also inside a continuation
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	jsonArray := func(instr, s string) []string {
		var v []string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("Dockerfile: %s %s: use the exec (JSON array) form: %v", instr, s, err)
		}
		return v
	}
	for _, l := range logical {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "ARG":
			if len(d.from) == 0 {
				name, def, _ := strings.Cut(rest, "=")
				d.args[name] = def
			}
		case "FROM":
			f := strings.Fields(rest)
			image := os.Expand(f[0], func(k string) string { return d.args[k] })
			d.from = append(d.from, image)
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				d.stages[f[2]] = true
			}
		case "RUN":
			d.run = append(d.run, rest)
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				if err != nil {
					t.Fatalf("Dockerfile: EXPOSE %s: not a TCP port", p)
				}
				d.expose = append(d.expose, n)
			}
		case "HEALTHCHECK":
			_, c, ok := strings.Cut(rest, "CMD ")
			if !ok {
				t.Fatalf("Dockerfile: HEALTHCHECK %s: no CMD", rest)
			}
			d.healthcheck = jsonArray("HEALTHCHECK CMD", c)
		case "ENTRYPOINT":
			d.entrypoint = jsonArray("ENTRYPOINT", rest)
		case "CMD":
			d.cmd = jsonArray("CMD", rest)
		case "USER":
			d.user = rest
		case "LABEL":
			d.labels += rest + "\n"
		}
	}
	return d
}

func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t)
	repo := imageRepo(t)

	if len(d.from) < 2 {
		t.Errorf("Dockerfile: %d FROM lines, want a build stage and a runtime stage", len(d.from))
	}
	for _, img := range d.from {
		if d.stages[img] {
			continue
		}
		if _, tag := splitImage(img); !pinnedTag.MatchString(tag) {
			t.Errorf("Dockerfile: FROM %s: pin an exact version tag (like golang:1.26.8-bookworm), not %q", img, tag)
		}
	}
	// The build stage's Go must be at least go.mod's, and both stages the
	// same Debian release, or the binary may need a newer glibc than the
	// runtime image has.
	build, runtime := d.from[0], d.from[len(d.from)-1]
	buildRepo, buildTag := splitImage(build)
	if buildRepo != "golang" || !strings.HasSuffix(buildTag, "-bookworm") {
		t.Errorf("Dockerfile: build stage FROM %s, want golang:<version>-bookworm (cgo needs the C toolchain of Debian 12, the runtime's release)", build)
	}
	if goVer := goModVersion(t); !versionAtLeast(strings.TrimSuffix(buildTag, "-bookworm"), goVer) {
		t.Errorf("Dockerfile: build stage Go %s is older than go.mod's go %s", buildTag, goVer)
	}
	if r, tag := splitImage(runtime); r != "debian" || !strings.HasPrefix(tag, "12.") {
		t.Errorf("Dockerfile: runtime FROM %s, want debian:12.N-slim (same glibc as the bookworm build stage, and bash for the HEALTHCHECK)", runtime)
	}

	buildCmd := ""
	for _, r := range d.run {
		if strings.Contains(r, "go build") {
			buildCmd = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=1", "-trimpath", "./cmd/tombstone"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("Dockerfile: the go build step lacks %s:\n%s", want, buildCmd)
		}
	}
	// The version is stamped with the same -X flags as the Makefile's,
	// and each names a variable that exists in internal/buildinfo.
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerX, makeX := ldflagVars(buildCmd), ldflagVars(string(makefile))
	if len(dockerX) == 0 || !slices.Equal(dockerX, makeX) {
		t.Errorf("Dockerfile: go build stamps %v with -ldflags -X, the Makefile %v: they must stamp the same variables", dockerX, makeX)
	}
	vars := buildinfoVars(t)
	for _, x := range dockerX {
		dot := strings.LastIndex(x, ".")
		pkg, name := x[:dot], x[dot+1:]
		if pkg != goModulePath(t)+"/internal/buildinfo" || !vars[name] {
			t.Errorf("Dockerfile: -X %s names no string variable of internal/buildinfo (it declares %v)", x, vars)
		}
	}

	if !slices.Equal(sorted(d.expose), []int{listenPort, metricsPort}) {
		t.Errorf("Dockerfile: EXPOSE %v, want %d (listen) and %d (metrics.listen)", d.expose, listenPort, metricsPort)
	}
	if d.user == "" || strings.HasPrefix(d.user, "0") || strings.HasPrefix(d.user, "root") {
		t.Errorf("Dockerfile: USER %q: run as a non-root numeric user (Kubernetes runAsNonRoot checks the number)", d.user)
	} else if _, err := strconv.Atoi(strings.Split(d.user, ":")[0]); err != nil {
		t.Errorf("Dockerfile: USER %q: use a numeric UID so runAsNonRoot can verify it", d.user)
	}
	if len(d.entrypoint) != 1 || path.Base(d.entrypoint[0]) != "tombstone" {
		t.Errorf("Dockerfile: ENTRYPOINT %v, want the tombstone binary alone (so `docker run IMAGE version` works)", d.entrypoint)
	}
	if want := []string{"serve", "--config", configPath}; !slices.Equal(d.cmd, want) {
		t.Errorf("Dockerfile: CMD %v, want %v", d.cmd, want)
	}
	hc := strings.Join(d.healthcheck, " ")
	if !strings.Contains(hc, fmt.Sprintf("/dev/tcp/127.0.0.1/%d", metricsPort)) || !strings.Contains(hc, "GET "+healthPath+" ") {
		t.Errorf("Dockerfile: HEALTHCHECK %q must GET %s on 127.0.0.1:%d (metrics.listen)", hc, healthPath, metricsPort)
	}
	if src := "https://" + goModulePath(t); !strings.Contains(d.labels, "org.opencontainers.image.source=\""+src+"\"") {
		t.Errorf("Dockerfile: LABEL org.opencontainers.image.source should be %q, the module's repository (it links %s to its source)", src, repo)
	}
	// The build command in the header names the image the manifests run.
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	tags := regexp.MustCompile(`docker build -t (\S+)`).FindAllStringSubmatch(string(data), -1)
	if len(tags) == 0 {
		t.Errorf("Dockerfile: the header shows no `docker build -t IMAGE` command")
	}
	for _, m := range tags {
		if r, _ := splitImage(m[1]); r != repo {
			t.Errorf("Dockerfile: the header builds %s, but the manifests run %s", m[1], repo)
		}
	}
}

func goModulePath(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^module (\S+)$`).FindSubmatch(data)
	return string(m[1])
}

func goModVersion(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// versionAtLeast compares dotted numeric versions.
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := range max(len(h), len(w)) {
		var a, b int
		if i < len(h) {
			a, _ = strconv.Atoi(h[i])
		}
		if i < len(w) {
			b, _ = strconv.Atoi(w[i])
		}
		if a != b {
			return a > b
		}
	}
	return true
}

var ldflagX = regexp.MustCompile(`-X\s+([\w./-]+)=`)

func ldflagVars(s string) []string {
	var out []string
	for _, m := range ldflagX.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// buildinfoVars lists the package-level string variables of
// internal/buildinfo, the only ones -X can set.
func buildinfoVars(t *testing.T) map[string]bool {
	pkgs, err := parser.ParseDir(token.NewFileSet(), filepath.Join(root, "internal", "buildinfo"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, decl := range f.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || g.Tok != token.VAR {
					continue
				}
				for _, s := range g.Specs {
					for _, n := range s.(*ast.ValueSpec).Names {
						vars[n.Name] = true
					}
				}
			}
		}
	}
	return vars
}

func sorted(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestDockerignoreKeepsBuildInputs checks that no file the binary is built
// from (Go, C and embedded files of the module's packages) is excluded from
// the build context.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []*regexp.Regexp
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: exception %q: this test does not understand exceptions; extend it", line)
		}
		patterns = append(patterns, ignorePattern(strings.TrimSuffix(strings.TrimPrefix(line, "/"), "/")))
	}
	excluded := func(p string) string {
		for _, re := range patterns {
			for q := p; q != "." && q != "/"; q = path.Dir(q) {
				if re.MatchString(q) {
					return re.String()
				}
			}
		}
		return ""
	}
	if files, _ := filepath.Glob(filepath.Join(root, "cmd", "tombstone", "*.go")); len(files) == 0 {
		t.Skip("cmd/tombstone has no Go files yet: cannot list the binary's build inputs")
	}
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .CgoFiles}}{{$d}}/{{.}}
{{end}}{{range .CFiles}}{{$d}}/{{.}}
{{end}}{{range .HFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}{{end}}`, "./cmd/tombstone")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/tombstone: %v", err)
	}
	abs, _ := filepath.Abs(root)
	inputs := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, _ := filepath.Rel(abs, f)
		inputs = append(inputs, filepath.ToSlash(rel))
	}
	if len(inputs) < 3 {
		t.Fatalf("go list found no files for ./cmd/tombstone:\n%s", out)
	}
	for _, f := range inputs {
		if p := excluded(f); p != "" {
			t.Errorf(".dockerignore: pattern %s excludes %s, which `go build ./cmd/tombstone` needs", p, f)
		}
	}
}

// ignorePattern translates a .dockerignore pattern (Go filepath.Match
// syntax plus **) into a regexp over slash-separated relative paths.
func ignorePattern(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case p[i] == '*':
			b.WriteString("[^/]*")
		case p[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestDockerfileBuildStep runs the Dockerfile's `go build` step on this
// machine, with the build arguments the image would get, so the stamped
// version, -trimpath and the runtime image's libraries are checked even
// where no Docker engine can build the image.
func TestDockerfileBuildStep(t *testing.T) {
	if testing.Short() {
		// A -trimpath build with the image's flags shares little with the
		// developer's build cache: half a minute, too slow for make check.
		t.Skip("runs the Dockerfile's go build step; skipped with -short (make check)")
	}
	if files, _ := filepath.Glob(filepath.Join(root, "cmd", "tombstone", "*.go")); len(files) == 0 {
		t.Skip("cmd/tombstone has no Go files yet: nothing to build")
	}
	d := parseDockerfile(t)
	step := ""
	for _, r := range d.run {
		if strings.Contains(r, "go build") {
			step = r
		}
	}
	// BuildKit's --mount flags belong to RUN, not to the shell command.
	for strings.HasPrefix(step, "--mount=") {
		_, step, _ = strings.Cut(step, " ")
		step = strings.TrimSpace(step)
	}
	bin := filepath.Join(t.TempDir(), "tombstone")
	if !strings.Contains(step, "-o /out/tombstone ") {
		t.Fatalf("Dockerfile: the go build step does not write /out/tombstone, which the runtime stage copies:\n%s", step)
	}
	step = strings.Replace(step, "-o /out/tombstone ", "-o "+bin+" ", 1)
	build := exec.Command("sh", "-c", step)
	build.Dir = root
	build.Env = append(os.Environ(), "VERSION=v9.8.7-deploytest", "REVISION=abc1234")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("Dockerfile's build step failed here: %v\n%s\n%s", err, step, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v9.8.7-deploytest") || !strings.Contains(string(out), "abc1234") {
		t.Errorf("`tombstone version` of the Dockerfile's build printed %q (%v), want the VERSION and REVISION build arguments", out, err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if abs, _ := filepath.Abs(root); bytes.Contains(data, []byte(abs+"/")) {
		t.Errorf("the binary contains the source path %s: the build is not -trimpath'ed, so it differs between machines", abs)
	}

	// The runtime stage is debian-slim: the binary may link only glibc's
	// own libraries, which its libc6 package provides.
	ldd, err := exec.LookPath("ldd")
	if err != nil {
		t.Skip("ldd is not installed: skipped checking the binary's shared libraries")
	}
	libs, err := exec.Command(ldd, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("ldd %s: %v\n%s", bin, err, libs)
	}
	glibc := regexp.MustCompile(`^(linux-vdso\.so|ld-linux[-\w]*\.so|lib(c|m|pthread|dl|rt|resolv)\.so)\.`)
	for _, l := range strings.Split(strings.TrimSpace(string(libs)), "\n") {
		name := path.Base(strings.Fields(l)[0])
		if !glibc.MatchString(name) {
			t.Errorf("the binary links %s, which %s may not have: %s", name, d.from[len(d.from)-1], strings.TrimSpace(l))
		}
	}
}

// TestDockerBuild builds the image and runs `tombstone version` in it when
// a Docker engine is available.
func TestDockerBuild(t *testing.T) {
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine (docker info: %v: %s): skipped building the image; TestDockerfile and TestDockerfileBuildStep still checked the Dockerfile and ran its go build step", err, lastLine(out))
	}
	tag := fmt.Sprintf("tombstone-deploy-test:%d", os.Getpid())
	build := exec.Command("docker", "build", "-t", tag, "--build-arg", "VERSION=deploy-test", "--build-arg", "REVISION=0000000", ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	out, err := exec.Command("docker", "run", "--rm", tag, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "deploy-test") {
		t.Errorf("docker run %s version: %v: %s (want the stamped version deploy-test)", tag, err, out)
	}
	if out, err := exec.Command("docker", "compose", "-f", filepath.Join(root, "deploy", "compose", "compose.yaml"), "config", "--quiet").CombinedOutput(); err != nil {
		t.Errorf("docker compose config: %v\n%s", err, out)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
