package buildtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ModuleRoot is the directory of the main module's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("buildtest: cannot find the module's go.mod (go env GOMOD: %q, %v)", gomod, err)
	}
	return filepath.Dir(gomod)
}

// Tombstone builds ./cmd/tombstone into a temporary directory and returns
// the binary's path. While the command's package does not exist yet the
// test is skipped, saying so; any other build failure fails the test.
func Tombstone(t testing.TB) string {
	t.Helper()
	return Command(t, "tombstone")
}

// Command builds ./cmd/<name> like Tombstone does. Under -short (make
// check) it skips the test: every test that runs a binary as a process
// also starts PostgreSQL for it, and linking the binary alone takes longer
// than the fast lane's whole budget.
func Command(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("buildtest: building and running the %s binary; skipped with -short (make check)", name)
	}
	root := ModuleRoot(t)
	pkg := filepath.Join(root, "cmd", name)
	if files, _ := filepath.Glob(filepath.Join(pkg, "*.go")); len(files) == 0 {
		t.Skipf("buildtest: %s has no Go files yet, so the %s binary cannot be built; skipping", pkg, name)
	}
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buildtest: go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}
