package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	stampVersion  = "v9.9.9-test"
	stampRevision = "abc1234"
)

// buildBinary builds this command the way the Makefile does, with the
// version stamped through -ldflags.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tombstone")
	pkg := "github.com/tombstone-proxy/tombstone/internal/buildinfo"
	cmd := exec.Command("go", "build", "-o", bin,
		"-ldflags", fmt.Sprintf("-X %s.Version=%s -X %s.Revision=%s", pkg, stampVersion, pkg, stampRevision), ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is `tombstone serve` running as a child, its stderr read line by
// line.
type process struct {
	cmd    *exec.Cmd
	lines  chan string // stderr, one log record per line
	seen   []string    // lines consumed by waitLog
	exited chan error
}

func startServe(t *testing.T, bin, configPath string) *process {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", configPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, lines: make(chan string, 1000), exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("tombstone serve stderr:\n%s", strings.Join(p.seen, "\n"))
		}
	})
	return p
}

// waitLog consumes stderr until a line contains every part, and returns it.
func (p *process) waitLog(t *testing.T, parts ...string) string {
	t.Helper()
	timeout := time.After(time.Minute) // only keeps a broken build from hanging
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("tombstone serve exited before logging %q", parts)
			}
			p.seen = append(p.seen, line)
			found := true
			for _, part := range parts {
				found = found && strings.Contains(line, part)
			}
			if found {
				return line
			}
		case <-timeout:
			t.Fatalf("tombstone serve did not log %q", parts)
		}
	}
}

// wait drains stderr and returns the exit code.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	for line := range p.lines {
		p.seen = append(p.seen, line)
	}
	err := <-p.exited
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBinary runs the built command as users do: version stamping, a
// start failure, SIGHUP reloads and SIGTERM shutdowns.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)

	t.Run("version is stamped at build time", func(t *testing.T) {
		out, err := exec.Command(bin, "version").Output()
		want := fmt.Sprintf("tombstone %s (revision %s, go", stampVersion, stampRevision)
		if err != nil || !strings.HasPrefix(string(out), want) {
			t.Fatalf("tombstone version: %q, %v; want prefix %q", out, err, want)
		}
	})

	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, `
CREATE TABLE contacts (id int PRIMARY KEY, deleted_at timestamptz);
INSERT INTO contacts VALUES (1, NULL), (2, now());
CREATE TABLE notes (id int PRIMARY KEY, deleted_at timestamptz);
INSERT INTO notes VALUES (1, NULL), (2, now());`)
	// The superuser is not listed as privileged here, so its statements
	// are rewritten; exec mode sends a fresh Parse for every query.
	config := func(listen, metrics, extra string, tables ...string) string {
		s := fmt.Sprintf("listen: %s\nupstream: %s\nmetrics:\n  listen: %s\nlog:\n  format: json\n%stables:\n", listen, pg.Addr(), metrics, extra)
		for _, tb := range tables {
			s += "  - name: " + tb + "\n"
		}
		return s
	}
	dsn := func(listen string) string {
		return pgcluster.URL(listen, pg.User, pg.Password, db) + "&default_query_exec_mode=exec"
	}
	count := func(t *testing.T, conn *pgx.Conn, table string) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("SELECT count(*) FROM %s: %v", table, err)
		}
		return n
	}

	t.Run("SIGHUP reloads and SIGTERM drains", func(t *testing.T) {
		listen, metrics := freeAddr(t), freeAddr(t)
		path := writeConfig(t, config(listen, metrics, "shutdown_timeout: 1m\n", "contacts"))
		p := startServe(t, bin, path)
		p.waitLog(t, `"msg":"serving"`, listen)

		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn(listen))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if n := count(t, conn, "notes"); n != 2 {
			t.Fatalf("notes is not configured yet, so all 2 rows are visible; got %d", n)
		}

		if err := os.WriteFile(path, []byte(config(listen, metrics, "shutdown_timeout: 1m\n", "contacts", "notes")), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		p.waitLog(t, `"msg":"configuration reloaded"`, `"tables":2`)
		if n := count(t, conn, "notes"); n != 1 {
			t.Errorf("after SIGHUP the open session sees %d notes, want the 1 live one", n)
		}

		if err := os.WriteFile(path, []byte("mode: sometimes\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		p.waitLog(t, `"level":"ERROR"`, `"msg":"configuration reload failed; the running configuration stays in force"`, `mode: \"sometimes\" is not enforce or shadow`)
		if n := count(t, conn, "notes"); n != 1 {
			t.Errorf("after a bad SIGHUP the session sees %d notes, want 1: the last good policy stays", n)
		}
		if code, body := httpGet(t, "http://"+metrics+"/metrics"); code != 200 || !strings.Contains(body, "\ntombstone_config_last_reload_successful 0\n") {
			t.Errorf("/metrics after a failed reload: %d, want tombstone_config_last_reload_successful 0", code)
		}

		// SIGTERM with a transaction open: new connections are refused,
		// the open session finishes its work, and the process exits 0 once
		// it hangs up.
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		p.waitLog(t, `"msg":"shutting down: stopped accepting; waiting for open sessions"`)
		if c, err := pgx.Connect(ctx, dsn(listen)); err == nil {
			c.Close(ctx)
			t.Errorf("a new connection was accepted after SIGTERM")
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM contacts").Scan(&n); err != nil || n != 1 {
			t.Errorf("the open session could not finish its work after SIGTERM: %d live contacts, %v", n, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("COMMIT after SIGTERM: %v", err)
		}
		conn.Close(ctx)
		if code := p.wait(t); code != 0 {
			t.Errorf("exit code %d after a graceful shutdown, want 0", code)
		}
		for _, line := range p.seen {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["component"] == nil {
				t.Errorf("log line is not JSON with a component: %s", line)
			}
		}
		if !strings.Contains(p.seen[len(p.seen)-1], `"msg":"stopped"`) {
			t.Errorf("last log line %s, want the stopped record", p.seen[len(p.seen)-1])
		}
	})

	// Sessions still open when the drain ends get FATAL 57P01: at once
	// with shutdown_timeout 0s, or on a second signal.
	for _, c := range []struct {
		name    string
		timeout string
		signals []os.Signal
	}{
		{"shutdown_timeout 0s closes sessions with 57P01", "0s", []os.Signal{syscall.SIGINT}},
		{"a second SIGTERM closes sessions with 57P01", "1h", []os.Signal{syscall.SIGTERM, syscall.SIGTERM}},
	} {
		t.Run(c.name, func(t *testing.T) {
			listen := freeAddr(t)
			p := startServe(t, bin, writeConfig(t, config(listen, `""`, "shutdown_timeout: "+c.timeout+"\n", "contacts")))
			p.waitLog(t, `"msg":"serving"`)
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, dsn(listen))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			for _, sig := range c.signals {
				if err := p.cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				p.waitLog(t, `"msg":"s`) // "shutting down..." or "second signal..."
			}
			if code := p.wait(t); code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			_, err = conn.Exec(ctx, "SELECT 1")
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
				t.Errorf("query after the drain ended: %v, want SQLSTATE 57P01", err)
			}
		})
	}

	t.Run("a busy port exits 1 with one line", func(t *testing.T) {
		busy := freeAddr(t)
		first := startServe(t, bin, writeConfig(t, config(busy, `""`, "")))
		first.waitLog(t, `"msg":"serving"`)
		second := startServe(t, bin, writeConfig(t, config(busy, `""`, "")))
		if code := second.wait(t); code != exitRuntime {
			t.Errorf("exit code %d, want %d", code, exitRuntime)
		}
		last := second.seen[len(second.seen)-1]
		if !strings.HasPrefix(last, "tombstone serve: cannot start: listen: ") || !strings.Contains(last, "address already in use") {
			t.Errorf("last stderr line %q, want a one-line listen error", last)
		}
	})
}
