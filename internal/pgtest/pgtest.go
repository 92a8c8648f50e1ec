package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

// Server is a running PostgreSQL server; see pgcluster.Server.
type Server = pgcluster.Server

var (
	startOnce sync.Once
	shared    *Server
	startErr  error
)

// Main wraps testing.M.Run: it stops the shared cluster, if this package
// started one, after the package's tests have run. Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop() // a no-op for a server given by TOMBSTONE_TEST_DSN
	}
	os.Exit(code)
}

// Shared returns the package-wide server, starting it on first use. Tests
// that need a server of their own (TLS, a killed upstream) call Start.
//
// Under -short (make check) it skips the test: the fast lane runs only
// tests that need no PostgreSQL.
func Shared(t testing.TB) *Server {
	t.Helper()
	skipShort(t)
	startOnce.Do(func() {
		if dsn := os.Getenv("TOMBSTONE_TEST_DSN"); dsn != "" {
			shared, startErr = pgcluster.FromDSN(dsn)
			return
		}
		shared, startErr = pgcluster.Start(pgcluster.Options{})
	})
	if startErr != nil {
		t.Fatalf("pgtest: %v", startErr)
	}
	return shared
}

// Start gives the test a cluster of its own, stopped at cleanup. Tests that
// change server settings or kill the server use it instead of Shared.
// Under -short it skips the test, as Shared does.
func Start(t testing.TB, opts pgcluster.Options) *Server {
	t.Helper()
	skipShort(t)
	s, err := pgcluster.Start(opts)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// skipShort skips a test that needs PostgreSQL when -short is given.
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL; skipped with -short (make check)")
	}
}

// Exec runs SQL as the superuser on database db and fails the test on error.
func Exec(t testing.TB, s *Server, db, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Exec(ctx, db, sql); err != nil {
		t.Fatalf("pgtest: %v\n%s", err, sql)
	}
}

var dbSeq struct {
	sync.Mutex
	n int
}

// CreateDB makes a fresh database for one test and drops it at cleanup, so
// tests sharing a server never see each other's tables.
func CreateDB(t testing.TB, s *Server) string {
	t.Helper()
	dbSeq.Lock()
	dbSeq.n++
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), dbSeq.n)
	dbSeq.Unlock()
	Exec(t, s, "", "CREATE DATABASE "+name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.DSN(""))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return name
}
