package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

// startPgBouncer runs PgBouncer in session mode in front of pg, the
// reference issue 5 compares Tombstone with. It reaches PostgreSQL the same
// way Tombstone does (Unix socket unless upstreamTCP) and authenticates the
// benchmark role with SCRAM, as PostgreSQL does over TCP.
func startPgBouncer(ctx context.Context, path string, pg *pgcluster.Server, upstreamTCP bool, dir string) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	upstreamHost := pg.SocketDir
	if upstreamTCP || upstreamHost == "" {
		upstreamHost = pg.Host
	}
	users := filepath.Join(dir, "pgbouncer-users.txt")
	if err := os.WriteFile(users, []byte(fmt.Sprintf("%q %q\n", benchRole, benchPassword)), 0o644); err != nil {
		return nil, err
	}
	ini := fmt.Sprintf(`; Written by tombstone-bench.
[databases]
%s = host=%s port=%d dbname=%s

[pgbouncer]
listen_addr = %s
listen_port = %s
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = session
max_client_conn = 100
default_pool_size = 20
log_connections = 0
log_disconnections = 0
`, benchDB, upstreamHost, pg.Port, benchDB, host, port, users)
	iniPath := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(iniPath, []byte(ini), 0o644); err != nil {
		return nil, err
	}
	args := []string{iniPath}
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root; the cluster's OS user will do.
		args = []string{"-u", "postgres", iniPath}
	}
	return startProcess(ctx, "pgbouncer", exec.Command(path, args...), addr, filepath.Join(dir, "pgbouncer.log"))
}
