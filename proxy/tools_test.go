package proxy_test

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

// libpqEnv turns a postgres:// URL into PG* variables for psql and
// pgbench, so the same command line runs against either target.
func libpqEnv(t *testing.T, dsn string) []string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	host, port := u.Hostname(), u.Port()
	if h := u.Query().Get("host"); h != "" {
		host, port = h, u.Query().Get("port")
	}
	return append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER="+u.User.Username(),
		"PGPASSWORD="+pw, "PGDATABASE="+strings.TrimPrefix(u.Path, "/"), "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
}

func run(t *testing.T, env []string, dir, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	cmd := exec.CommandContext(testCtx(t), path, args...)
	cmd.Env, cmd.Dir = env, dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

const psqlScript = `
CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL, note text);
INSERT INTO people (name, note) SELECT 'p' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('n', g) END FROM generate_series(1, 300) g;
BEGIN;
UPDATE people SET note = 'updated' WHERE id <= 10;
SAVEPOINT s1;
DELETE FROM people WHERE id > 290;
ROLLBACK TO s1;
COMMIT;
\copy people (name, note) FROM 'in.csv' WITH (FORMAT csv)
\copy (SELECT * FROM people ORDER BY id) TO 'out.csv' WITH (FORMAT csv)
SELECT count(*), count(note), max(id) FROM people;
PREPARE q(int) AS SELECT name FROM people WHERE id = $1;
EXECUTE q(5);
DEALLOCATE q;
DO $$ BEGIN RAISE NOTICE 'notice from script'; END $$;
SELECT name FROM people WHERE id = 7 \gset first_
\echo :first_name
DELETE FROM people WHERE id % 2 = 0;
SELECT count(*) FROM people;
`

func TestPsqlMatchesDirect(t *testing.T) {
	pg := pgtest.Shared(t)
	ts := targets(t, pg, "")
	var csvIn strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&csvIn, "copied %d,\"quoted, \"\"note\"\" %d\"\n", i, i)
	}
	compare(t, ts, func(t *testing.T, dsn string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "in.csv"), []byte(csvIn.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "script.sql"), []byte(psqlScript), 0o644); err != nil {
			t.Fatal(err)
		}
		env := libpqEnv(t, dsn)
		out := run(t, env, dir, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-f", "script.sql")
		out += run(t, env, dir, "psql", "-X", "-A", "-t", "-c", "SELECT 1 AS a; SELECT 'two', NULL; SELECT count(*) FROM people")
		// An error in -c output and exit status must be the same too.
		cmd := exec.CommandContext(testCtx(t), "psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "SELECT 1/0")
		cmd.Env = env
		errOut, err := cmd.CombinedOutput()
		out += fmt.Sprintf("%s exit=%v\n", errOut, err)
		copied, err := os.ReadFile(filepath.Join(dir, "out.csv"))
		if err != nil {
			t.Fatal(err)
		}
		return out + fmt.Sprintf("out.csv: %d bytes, %d lines\n", len(copied), strings.Count(string(copied), "\n"))
	})
}

var pgbenchDone = regexp.MustCompile(`number of transactions actually processed: (\d+)/(\d+)`)

func TestPgbenchThroughProxy(t *testing.T) {
	pg := pgtest.Shared(t)
	ts := targets(t, pg, "")
	compare(t, ts, func(t *testing.T, dsn string) string {
		env := libpqEnv(t, dsn)
		dir := t.TempDir()
		out := run(t, env, dir, "pgbench", "-i", "-s", "1", "-q")
		if !strings.Contains(out, "done") {
			t.Fatalf("pgbench -i did not finish:\n%s", out)
		}
		var summary strings.Builder
		for _, mode := range []string{"simple", "extended", "prepared"} {
			out := run(t, env, dir, "pgbench", "-M", mode, "-c", "2", "-t", "50", "-n")
			m := pgbenchDone.FindStringSubmatch(out)
			if m == nil || m[1] != m[2] || m[1] != "100" {
				t.Fatalf("pgbench -M %s:\n%s", mode, out)
			}
			fmt.Fprintf(&summary, "%s: %s/%s\n", mode, m[1], m[2])
		}
		// Each pgbench transaction appends one history row.
		summary.WriteString(run(t, env, dir, "psql", "-X", "-A", "-t", "-c", "SELECT count(*) FROM pgbench_history"))
		return summary.String()
	})
}

// Ctrl-C in psql sends a CancelRequest to the address psql connected to:
// the proxy must forward it to the backend running the query.
func TestPsqlCtrlCCancelsThroughProxy(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "")
	path, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed")
	}
	cmd := exec.CommandContext(testCtx(t), path, "-X", "-c", "SELECT pg_sleep(60)")
	cmd.Env = append(libpqEnv(t, p.DSN(pg.User, pg.Password, "")), "PGAPPNAME=psql_ctrl_c")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForQuery(t, pg, "psql_ctrl_c")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // psql exits 1 after a cancelled query
	if !strings.Contains(out.String(), "canceling statement due to user request") {
		t.Fatalf("psql output after Ctrl-C: %q", out.String())
	}
}
