package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/deploy"
	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

const (
	demoDB      = "demo"
	appUser     = "app" // created by deploy.DemoSQL, not privileged
	appPassword = "app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit code: 0 after a clean stop on a signal, 1 when the
// demo could not start or Tombstone died, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tombstone-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binary := fs.String("binary", "bin/tombstone", "the tombstone binary to run (`make build` makes bin/tombstone)")
	listen := fs.String("listen", "", "where Tombstone listens (default 127.0.0.1:6432, or a free port when 6432 is taken)")
	metricsListen := fs.String("metrics-listen", "", "where Tombstone serves /metrics (default 127.0.0.1:9187, or a free port)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tombstone-demo [--binary bin/tombstone] [--listen HOST:PORT] [--metrics-listen HOST:PORT]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tombstone-demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if _, err := os.Stat(*binary); err != nil {
		fmt.Fprintf(stderr, "tombstone-demo: %v: build it with `make build` or pass --binary\n", err)
		return 2
	}
	d := &demo{binary: *binary, stdout: stdout, stderr: stderr}
	defer d.cleanup()
	if err := d.start(ctx, *listen, *metricsListen); err != nil {
		if ctx.Err() != nil {
			return 0 // interrupted while starting: cleaned up, nothing to report
		}
		fmt.Fprintf(stderr, "tombstone-demo: %v\n", err)
		return 1
	}
	d.printInstructions()
	select {
	case <-ctx.Done():
		fmt.Fprintln(stderr, "\nstopping Tombstone and PostgreSQL...")
		return 0
	case <-d.exited:
		fmt.Fprintf(stderr, "tombstone-demo: tombstone exited unexpectedly (%v); its log %s:\n%s\n", d.cmd.ProcessState, d.logPath, readFile(d.logPath))
		return 1
	}
}

// demo is what the demo started, so cleanup can undo exactly that.
type demo struct {
	binary         string
	stdout, stderr io.Writer

	pg      *pgcluster.Server
	dir     string // config and log of Tombstone
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when tombstone has exited

	listen, metrics string
}

func (d *demo) start(ctx context.Context, listen, metricsListen string) error {
	var err error
	if listen, err = addrOrFree(listen, "127.0.0.1:6432"); err != nil {
		return err
	}
	if metricsListen, err = addrOrFree(metricsListen, "127.0.0.1:9187"); err != nil {
		return err
	}
	d.listen, d.metrics = listen, metricsListen

	fmt.Fprintln(d.stderr, "starting a throwaway PostgreSQL...")
	if d.pg, err = pgcluster.Start(pgcluster.Options{}); err != nil {
		return err
	}
	if err := d.pg.Exec(ctx, "", "CREATE DATABASE "+demoDB); err != nil {
		return fmt.Errorf("create database %s: %w", demoDB, err)
	}
	if err := d.pg.Exec(ctx, demoDB, deploy.DemoSQL); err != nil {
		return fmt.Errorf("load the demo schema: %w", err)
	}

	if d.dir, err = os.MkdirTemp("", "tombstone-demo-"); err != nil {
		return err
	}
	cfg, err := deploy.Override(deploy.DemoConfig, map[string]string{
		"listen":         listen,
		"upstream":       d.pg.Addr(),
		"metrics.listen": metricsListen,
		// Ctrl-C should not wait for psql sessions left open elsewhere.
		"shutdown_timeout": "2s",
	})
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(d.dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return err
	}
	d.logPath = filepath.Join(d.dir, "tombstone.log")
	logf, err := os.Create(d.logPath)
	if err != nil {
		return err
	}
	fmt.Fprintln(d.stderr, "starting Tombstone...")
	d.cmd = exec.Command(d.binary, "serve", "--config", cfgPath)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group: Ctrl-C in the terminal reaches only the demo,
	// which then stops Tombstone before PostgreSQL.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", d.binary, err)
	}
	d.exited = make(chan struct{})
	go func() { _ = d.cmd.Wait(); logf.Close(); close(d.exited) }()
	return d.waitReady(ctx)
}

// waitReady waits until a query as the application role gets through
// Tombstone, which proves that the proxy, its upstream and the role work.
func (d *demo) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ping(ctx, d.appURL())
		if err == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("tombstone exited (%v) before accepting connections; its log %s:\n%s", d.cmd.ProcessState, d.logPath, readFile(d.logPath))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer through tombstone on %s after 30s: %v (log %s)", d.listen, err, d.logPath)
		}
	}
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

func (d *demo) appURL() string { return pgcluster.URL(d.listen, appUser, appPassword, demoDB) }

func (d *demo) adminURL() string {
	return pgcluster.URL(d.listen, pgcluster.SuperUser, pgcluster.SuperPassword, demoDB)
}

func (d *demo) printInstructions() {
	app, admin := d.appURL(), d.adminURL()
	fmt.Fprintf(d.stdout, `
Tombstone is running in front of a throwaway PostgreSQL.
  database    %s (tables customers and contacts are soft-delete tables; orders is not)
  PostgreSQL  %s from %s, files in %s
  Tombstone   %s, config and log in %s
  metrics     http://%s/metrics

Connect as the application (role %s: DELETE becomes a soft delete, reads see live rows):
  DATABASE_URL=%s
Connect as a privileged role (postgres: passes through untouched):
  ADMIN_URL=%s

Try it:
  1. psql '%s' -c "DELETE FROM contacts WHERE id = 1"
     DELETE 1, as without Tombstone.
  2. psql '%s' -c "SELECT * FROM contacts WHERE id = 1"
     (0 rows): for the application the contact is gone.
  3. psql '%s' -c "SELECT id, name, deleted_at, deleted_by FROM contacts WHERE id = 1"
     (1 row): the row is still there, with deleted_at and deleted_by = %s.

Press Ctrl-C to stop Tombstone and PostgreSQL and remove their files.
`, demoDB, d.pg.Addr(), d.pg.BinDir, d.pg.SocketDir, d.listen, d.dir, d.metrics,
		appUser, app, admin, app, app, admin, appUser)
}

// cleanup stops Tombstone, then PostgreSQL, and removes their directories.
func (d *demo) cleanup() {
	if d.cmd != nil && d.exited != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
	}
	if d.pg != nil {
		d.pg.Stop() // also removes its directory
	}
	if d.dir != "" {
		if err := os.RemoveAll(d.dir); err != nil {
			fmt.Fprintf(d.stderr, "tombstone-demo: remove %s: %v\n", d.dir, err)
		}
	}
	if d.pg != nil {
		fmt.Fprintf(d.stderr, "stopped; removed %s and %s\n", d.pg.SocketDir, d.dir)
	}
}

// addrOrFree returns addr when given; otherwise preferred when that port is
// free, else a free port on loopback, so a second demo or a local PgBouncer
// on 6432 does not stop the demo.
func addrOrFree(addr, preferred string) (string, error) {
	if addr != "" {
		return addr, nil
	}
	if l, err := net.Listen("tcp", preferred); err == nil {
		l.Close()
		return preferred, nil
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
