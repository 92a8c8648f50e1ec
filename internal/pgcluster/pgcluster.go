package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// SuperUser is the bootstrap superuser of a cluster this package starts. It
// logs in with password SuperPassword over TCP and is trusted on the socket.
const (
	SuperUser     = "postgres"
	SuperPassword = "postgres"
)

// Server describes a running PostgreSQL server.
type Server struct {
	Host      string // TCP host, e.g. 127.0.0.1
	Port      int
	SocketDir string // directory of the Unix-domain socket; empty for an external server
	DataDir   string // empty for an external server
	BinDir    string // PostgreSQL server binaries
	User      string // superuser
	Password  string
	external  bool
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the server process has exited
	osUser    *user.User    // non-nil when the cluster runs as another OS user
}

// FromDSN describes an already running server given by a connection string.
func FromDSN(dsn string) (*Server, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	return &Server{Host: cfg.Host, Port: int(cfg.Port), User: cfg.User, Password: cfg.Password, external: true}, nil
}

// Options changes how Start configures a new cluster.
type Options struct {
	// Settings are extra postgresql.conf lines, e.g. "ssl = on".
	Settings []string
	// HBA replaces the default pg_hba.conf (trust on the socket, scram over TCP).
	HBA string
	// Setup runs as the cluster's OS user on the data directory before the
	// server starts (for copying certificates into place, say).
	Setup func(dataDir string) error
}

// BinDir finds the PostgreSQL server binaries: $PG_BINDIR, then
// `pg_config --bindir`, then the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		best := matches[0]
		for _, m := range matches {
			if version(m) > version(best) {
				best = m
			}
		}
		return filepath.Dir(best), nil
	}
	return "", errors.New("no PostgreSQL server binaries found (initdb): install the postgresql package, or set PG_BINDIR or TOMBSTONE_TEST_DSN")
}

func version(initdbPath string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdbPath))))
	return n
}

// Start creates and starts a new throwaway cluster. Call Stop when done.
func Start(opts Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tombstone-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", BinDir: bin, User: SuperUser, Password: SuperPassword,
		DataDir: filepath.Join(dir, "data"), SocketDir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs an OS user named postgres to own the test cluster: %w", err)
		}
		s.osUser = u
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(SuperPassword+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := s.chown(pwfile); err != nil {
		return nil, err
	}
	if out, err := s.command(filepath.Join(bin, "initdb"), "-D", s.DataDir, "-U", SuperUser,
		"--pwfile", pwfile, "-A", "trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
		"--locale=C").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if opts.HBA != "" {
		if err := s.writeFile(filepath.Join(s.DataDir, "pg_hba.conf"), opts.HBA); err != nil {
			return nil, err
		}
	}
	if opts.Setup != nil {
		if err := opts.Setup(s.DataDir); err != nil {
			return nil, err
		}
	}
	// A free port can be taken by someone else between our probe and the
	// server's bind; retry a few times on a new port.
	for attempt := 0; ; attempt++ {
		s.Port, err = FreePort()
		if err != nil {
			return nil, err
		}
		conf := []string{
			"listen_addresses = '127.0.0.1'",
			fmt.Sprintf("port = %d", s.Port),
			fmt.Sprintf("unix_socket_directories = '%s'", s.SocketDir),
			"fsync = off", "synchronous_commit = off", "full_page_writes = off",
			"max_connections = 700", "shared_buffers = 128MB",
			"log_min_messages = warning", "logging_collector = off",
		}
		conf = append(conf, opts.Settings...)
		if err := s.writeFile(filepath.Join(s.DataDir, "postgresql.auto.conf"), strings.Join(conf, "\n")+"\n"); err != nil {
			return nil, err
		}
		s.cmd = s.command(filepath.Join(bin, "postgres"), "-D", s.DataDir)
		logf, err := os.Create(filepath.Join(dir, "postgres.log"))
		if err != nil {
			return nil, err
		}
		s.cmd.Stdout, s.cmd.Stderr = logf, logf
		s.cmd.SysProcAttr.Setpgid = true
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
		s.exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); logf.Close(); close(exited) }(s.cmd, s.exited)
		if err := s.waitReady(30 * time.Second); err == nil {
			return s, nil
		} else if attempt >= 3 {
			s.Stop()
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return nil, fmt.Errorf("postgres did not start: %v\n%s", err, log)
		}
		s.kill()
	}
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.osUser != nil {
		uid, _ := strconv.Atoi(s.osUser.Uid)
		gid, _ := strconv.Atoi(s.osUser.Gid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		cmd.Dir = s.SocketDir
	}
	return cmd
}

func (s *Server) chown(path string) error {
	if s.osUser == nil {
		return nil
	}
	uid, _ := strconv.Atoi(s.osUser.Uid)
	gid, _ := strconv.Atoi(s.osUser.Gid)
	return os.Chown(path, uid, gid)
}

// WriteFile writes a file into the cluster's directories owned by the
// cluster's OS user, with mode 0600 (what the server demands of a key).
func (s *Server) WriteFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return s.chown(path)
}

func (s *Server) writeFile(path, content string) error { return s.WriteFile(path, []byte(content)) }

func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return errors.New("postgres exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN(""))
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

// Addr is the server's TCP address, host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// SocketPath is the server's Unix-domain socket, or "" for an external server.
func (s *Server) SocketPath() string {
	if s.SocketDir == "" {
		return ""
	}
	return filepath.Join(s.SocketDir, fmt.Sprintf(".s.PGSQL.%d", s.Port))
}

// DSN is a connection URL for the superuser to database db ("" = postgres).
func (s *Server) DSN(db string) string {
	return URL(s.Addr(), s.User, s.Password, db)
}

// URL builds a postgres:// connection URL to addr (host:port).
func URL(addr, user, password, db string) string {
	if db == "" {
		db = "postgres"
	}
	u := url.URL{Scheme: "postgres", Host: addr, Path: "/" + db, RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// Exec runs SQL as the superuser on database db ("" = postgres).
func (s *Server) Exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop shuts the cluster down and removes its directory. It is a no-op for
// an external server.
func (s *Server) Stop() {
	if s.external || s.cmd == nil {
		return
	}
	s.kill()
	os.RemoveAll(s.SocketDir)
}

// Kill stops the server at once (SIGKILL to the postmaster and all its
// backends), for tests of an upstream that dies mid-query.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

// kill stops the server with an immediate shutdown (SIGQUIT), falling back
// to SIGKILL when it does not exit within 10 seconds.
func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGQUIT)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.Kill()
	}
}

// FreePort asks the kernel for a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
