//go:build clients

package clients

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The two application roles: neither is privileged, so Tombstone rewrites
// their statements. One logs in with SCRAM-SHA-256, the other with MD5
// (pg_hba.conf below picks the method per role), because drivers implement
// the two exchanges separately.
const (
	scramUser, scramPassword = "matrix_scram", "scram-secret"
	md5User, md5Password     = "matrix_md5", "md5-secret"
)

// hba: trust on the socket for the harness, md5 for the MD5 role over TCP
// (its password is stored as an MD5 hash), SCRAM for everyone else.
const hba = `local all all trust
host all ` + md5User + ` 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
`

// schema is loaded into each client's two databases. authors and books are
// soft-delete tables (authors also records who deleted), books cascades
// from authors with a real foreign key and refers to genres, a plain table
// Tombstone leaves alone. Ids are fixed and the sequences set past them so
// that inserts on both sides get the same ids. lock_version is
// ActiveRecord's optimistic-locking column; name is UNIQUE for the
// find-or-create and upsert APIs.
const schema = `
CREATE TABLE genres  (id serial PRIMARY KEY, label text NOT NULL);
CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL UNIQUE,
                      lock_version integer NOT NULL DEFAULT 0,
                      deleted_at timestamptz, deleted_by text);
CREATE TABLE books   (id serial PRIMARY KEY,
                      author_id integer NOT NULL REFERENCES authors (id) ON DELETE CASCADE,
                      genre_id integer REFERENCES genres (id),
                      title text NOT NULL, pages integer NOT NULL,
                      deleted_at timestamptz);
INSERT INTO genres SELECT g, 'genre' || g FROM generate_series(1, 3) g;
INSERT INTO authors (id, name) SELECT g, 'author' || g FROM generate_series(1, 6) g;
INSERT INTO books (id, author_id, genre_id, title, pages)
  SELECT g, 1 + (g - 1) / 3, 1 + g % 3, 'book' || g, g * 10 FROM generate_series(1, 18) g;
SELECT setval('genres_id_seq', 100), setval('authors_id_seq', 100), setval('books_id_seq', 100);
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + scramUser + `, ` + md5User + `;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ` + scramUser + `, ` + md5User + `;
`

// seeded are the rows schema inserts: every one of them must still be on
// disk in the soft-delete database after a client ran, deleted or not.
var seeded = map[string]int{"genres": 3, "authors": 6, "books": 18}

const proxyConfig = `
privileged_roles: [postgres]
tables:
  - name: authors
    deleted_by: deleted_by
  - name: books
`

// client is one entry of the matrix: the command that runs its script
// (relative to testdata/) and the tools it needs, checked before it runs so
// that a missing one is reported as what to install.
type client struct {
	name  string
	cmd   []string
	needs []string
}

// The Debian interpreters, not whatever python3 or ruby comes first on
// PATH (a pyenv build, say): the client libraries are Debian packages.
var matrix = []client{
	{"node-postgres", []string{"node", "node-postgres.js"}, []string{"node", "node_modules/pg", "node_modules/pg-cursor"}},
	{"sequelize", []string{"node", "sequelize.js"}, []string{"node", "node_modules/sequelize"}},
	{"knex", []string{"node", "knex.js"}, []string{"node", "node_modules/knex", "node_modules/pg-query-stream"}},
	{"psycopg2", []string{"/usr/bin/python3", "psycopg2_client.py"}, []string{"/usr/bin/python3"}},
	{"django", []string{"/usr/bin/python3", "django_client.py"}, []string{"/usr/bin/python3"}},
	{"sqlalchemy", []string{"/usr/bin/python3", "sqlalchemy_client.py"}, []string{"/usr/bin/python3"}},
	{"activerecord", []string{"/usr/bin/ruby", "activerecord_client.rb"}, []string{"/usr/bin/ruby"}},
	{"psql", []string{"/bin/bash", "psql_client.sh"}, []string{"psql", "expect"}},
}

var versionLine = regexp.MustCompile(`^version: (\S+) (.+)$`)

// TestClientMatrix runs every client of the matrix, in parallel, each on
// databases of its own behind one shared proxy.
func TestClientMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the client matrix starts PostgreSQL and eight client runtimes")
	}
	pg := pgtest.Start(t, pgcluster.Options{HBA: hba})
	pgtest.Exec(t, pg, "", `CREATE ROLE `+scramUser+` LOGIN PASSWORD '`+scramPassword+`';
SET password_encryption = 'md5';
CREATE ROLE `+md5User+` LOGIN PASSWORD '`+md5Password+`';`)
	// The MD5 role must really log in with MD5: pg_hba.conf picks md5
	// for it, and the server falls back to SCRAM for a SCRAM-stored
	// password, which would leave the MD5 exchange untested.
	func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, pg.DSN(""))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var stored string
		if err := c.QueryRow(ctx, "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = $1", md5User).Scan(&stored); err != nil || stored != "md5" {
			t.Fatalf("%s's password is stored as %q (%v), want an MD5 hash", md5User, stored, err)
		}
	}()
	p := proxytest.Start(t, pg, proxyConfig)

	var mu sync.Mutex
	versions := map[string][]string{}
	t.Cleanup(func() {
		// One block in the log that lists what ran, for release notes and
		// for reading a failure against the versions it happened with.
		names := make([]string, 0, len(versions))
		for n := range versions {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "  %-14s %s\n", n, strings.Join(versions[n], ", "))
		}
		t.Logf("client versions:\n%s", b.String())
		// pool.end() and the like must not look like a lost upstream.
		if n := p.Metric(t, "tombstone_upstream_errors_total"); n != 0 {
			t.Errorf("tombstone_upstream_errors_total = %v after the matrix, want 0: a client's disconnect was taken for a lost upstream", n)
		}
	})

	for _, c := range matrix {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, need := range c.needs {
				if err := present(need); err != nil {
					t.Fatalf("%s needs %s: %v; run scripts/ensure-clients.sh (make test-clients does) to install it", c.name, need, err)
				}
			}
			soft, real := pgtest.CreateDB(t, pg), pgtest.CreateDB(t, pg)
			pgtest.Exec(t, pg, soft, schema)
			pgtest.Exec(t, pg, real, schema)
			env := []string{
				"TS_SOFT_URL=" + p.DSN(scramUser, scramPassword, soft),
				"TS_SOFT_MD5_URL=" + p.DSN(md5User, md5Password, soft),
				"TS_REAL_URL=" + pgcluster.URL(pg.Addr(), scramUser, scramPassword, real),
				"TS_REAL_MD5_URL=" + pgcluster.URL(pg.Addr(), md5User, md5Password, real),
				"TS_ADMIN_SOFT_URL=" + pgcluster.URL(pg.Addr(), pg.User, pg.Password, soft),
			}
			out, err := runScript(t, c, env)
			var got []string
			oks := 0
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				line := sc.Text()
				if m := versionLine.FindStringSubmatch(line); m != nil {
					got = append(got, m[1]+" "+m[2])
				}
				if strings.HasPrefix(line, "ok: ") {
					oks++
				}
			}
			mu.Lock()
			versions[c.name] = got
			mu.Unlock()
			t.Logf("%s output:\n%s", c.name, out)
			if err != nil {
				// What is on disk tells a hard delete from a wrong answer.
				compareOnDisk(t, pg, soft, real)
				t.Fatalf("%s script failed: %v (its output is above)", c.name, err)
			}
			if oks == 0 || len(got) == 0 {
				t.Fatalf("%s script printed %d checks and %d versions: it must print both (\"ok: ...\", \"version: name x.y\")", c.name, oks, len(got))
			}
			compareOnDisk(t, pg, soft, real)
		})
	}
}

// present reports whether a command is on PATH or a file under testdata/
// (or an absolute path) exists.
func present(need string) error {
	if strings.HasPrefix(need, "/") || strings.Contains(need, "/") {
		p := need
		if !filepath.IsAbs(p) {
			p = filepath.Join("testdata", need)
		}
		_, err := os.Stat(p)
		return err
	}
	_, err := exec.LookPath(need)
	return err
}

// runScript runs a client's script in testdata/ with the connection URLs
// in its environment and returns what it printed.
func runScript(t *testing.T, c client, env []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.cmd[0], c.cmd[1:]...)
	cmd.Dir = "testdata"
	// PYTHONNOUSERSITE and the cleared PYTHONPATH keep the Debian
	// interpreter on the Debian packages (and bytecode out of the tree);
	// PSQLRC keeps a developer's ~/.psqlrc out of psql's output.
	cmd.Env = append(os.Environ(), "PYTHONNOUSERSITE=1", "PYTHONPATH=", "PYTHONDONTWRITEBYTECODE=1", "PSQLRC=/dev/null", "PGCONNECT_TIMEOUT=10")
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after 5m: %w", err)
	}
	return string(out), err
}

// compareOnDisk holds the soft-delete database to the hard-delete one
// after the same client work: its live rows (deleted_at IS NULL) are
// exactly the other's rows, every seeded row is still on disk, and at
// least one row is soft-deleted (every script deletes).
func compareOnDisk(t *testing.T, pg *pgtest.Server, soft, real string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc, err := pgx.Connect(ctx, pg.DSN(soft))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close(ctx)
	rc, err := pgx.Connect(ctx, pg.DSN(real))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	cols := map[string]string{
		"genres":  "id, label",
		"authors": "id, name, lock_version",
		"books":   "id, author_id, genre_id, title, pages",
	}
	deleted := 0
	for table, c := range cols {
		live := "deleted_at IS NULL"
		if table == "genres" {
			live = "true"
		}
		softRows := rows(t, sc, "SELECT "+c+" FROM "+table+" WHERE "+live+" ORDER BY id")
		realRows := rows(t, rc, "SELECT "+c+" FROM "+table+" ORDER BY id")
		if !slices.Equal(softRows, realRows) {
			t.Errorf("%s: live rows in the soft-delete database differ from the rows of the hard-delete one:\nsoft: %v\nreal: %v", table, softRows, realRows)
		}
		var kept int
		if err := sc.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE id <= %d", table, seeded[table])).Scan(&kept); err != nil {
			t.Fatal(err)
		}
		if kept != seeded[table] {
			t.Errorf("%s: %d of the %d seeded rows are left on disk in the soft-delete database: a delete went through for good", table, kept, seeded[table])
		}
		if table != "genres" {
			var n int
			if err := sc.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE deleted_at IS NOT NULL").Scan(&n); err != nil {
				t.Fatal(err)
			}
			deleted += n
		}
	}
	var by string
	if err := sc.QueryRow(ctx, "SELECT coalesce(string_agg(DISTINCT deleted_by, ','), '') FROM authors WHERE deleted_at IS NOT NULL").Scan(&by); err != nil {
		t.Fatal(err)
	}
	if by == "" || strings.Contains(by, pg.User) {
		t.Errorf("authors deleted through Tombstone have deleted_by %q, want the application roles", by)
	}
	if deleted == 0 {
		t.Errorf("no row is soft-deleted in the soft-delete database: the script deleted nothing, or its deletes did not reach it")
	}
}

// rows renders a query's rows as strings, for comparing two databases.
func rows(t *testing.T, c *pgx.Conn, sql string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := c.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		v, err := rs.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(v))
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}
