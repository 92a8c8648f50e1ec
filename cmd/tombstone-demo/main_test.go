package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/buildtest"
	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

// TestDemo runs the demo as `make demo` does, follows its printed
// instructions literally (the three psql commands), checks what they print,
// then stops it with SIGINT and checks that it cleaned up.
func TestDemo(t *testing.T) {
	tombstone := buildtest.Tombstone(t)
	demoBin := buildtest.Command(t, "tombstone-demo")
	listen := freeAddr(t)
	cmd := exec.Command(demoBin, "--binary", tombstone, "--listen", listen, "--metrics-listen", freeAddr(t))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
		}
	})

	// Read the instructions up to the last line. The deadline only guards
	// against a hang; it measures nothing.
	var out []string
	deadline := time.After(3 * time.Minute)
read:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited before printing its instructions (%v):\n%s\n%s", <-exited, strings.Join(out, "\n"), stderr.String())
			}
			out = append(out, l)
			if strings.HasPrefix(l, "Press Ctrl-C") {
				break read
			}
		case <-deadline:
			t.Fatalf("demo printed no instructions within 3 minutes:\n%s\n%s", strings.Join(out, "\n"), stderr.String())
		}
	}
	text := strings.Join(out, "\n")
	appURL := field(t, text, "DATABASE_URL")
	adminURL := field(t, text, "ADMIN_URL")
	var dirs []string
	for _, m := range regexp.MustCompile(`in (/\S+)`).FindAllStringSubmatch(text, -1) {
		dirs = append(dirs, m[1])
	}
	if len(dirs) != 2 {
		t.Fatalf("want the PostgreSQL and Tombstone directories in the output, got %v:\n%s", dirs, text)
	}

	// The printed commands, run exactly as printed.
	cmds := regexp.MustCompile(`(?m)^\s+\d\. (psql .*)$`).FindAllStringSubmatch(text, -1)
	if len(cmds) != 3 {
		t.Fatalf("want 3 example psql commands, got %d:\n%s", len(cmds), text)
	}
	wants := [][]string{
		{"DELETE 1"},
		{"(0 rows)"},
		{"(1 row)", " | app"},
	}
	for i, c := range cmds {
		res, err := exec.Command("bash", "-c", c[1]+" -X").CombinedOutput()
		if err != nil {
			t.Errorf("example %d: %s: %v\n%s", i+1, c[1], err, res)
			continue
		}
		for _, w := range wants[i] {
			if !strings.Contains(string(res), w) {
				t.Errorf("example %d: %s printed\n%s\nwant it to contain %q", i+1, c[1], res, w)
			}
		}
	}
	if !strings.Contains(cmds[0][1], appURL) || !strings.Contains(cmds[2][1], adminURL) {
		t.Errorf("examples 1 and 3 must use DATABASE_URL and ADMIN_URL:\n%s", text)
	}

	// Through the printed URL the application sees only live contacts;
	// the privileged role sees them all.
	ctx := context.Background()
	appCount := count(t, ctx, appURL, "SELECT count(*) FROM contacts")
	allCount := count(t, ctx, adminURL, "SELECT count(*) FROM contacts")
	liveCount := count(t, ctx, adminURL, "SELECT count(*) FROM contacts WHERE deleted_at IS NULL")
	if appCount != liveCount || appCount >= allCount {
		t.Errorf("contacts: app sees %d, privileged sees %d of which %d live; want app = live < all", appCount, allCount, liveCount)
	}

	// Ctrl-C: the demo exits 0 and leaves nothing behind.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("demo exit after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("demo still running a minute after SIGINT:\n%s", stderr.String())
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists after the demo stopped (stat: %v)", d, err)
		}
	}
	if c, err := net.Dial("tcp", listen); err == nil {
		c.Close()
		t.Errorf("something still accepts on %s after the demo stopped", listen)
	}
}

func TestDemoRejectsBadFlags(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), []string{"--binary", "/nonexistent/tombstone"}, &strings.Builder{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "make build") {
		t.Errorf("missing binary: exit %d, stderr %q; want 2 and a hint to run make build", code, stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"extra"}, &strings.Builder{}, &stderr); code != 2 || !strings.Contains(stderr.String(), `"extra"`) {
		t.Errorf("extra argument: exit %d, stderr %q; want 2 naming it", code, stderr.String())
	}
}

func field(t *testing.T, text, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+` + name + `=(\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %s= line in the demo's output:\n%s", name, text)
	}
	return m[1]
}

func count(t *testing.T, ctx context.Context, url, sql string) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s via %s: %v", sql, url, err)
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	p, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}
