package proxy_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

func TestHundredMegabyteResult(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 100 MB twice")
	}
	pg := pgtest.Shared(t)
	compare(t, targets(t, pg, ""), func(t *testing.T, dsn string) string {
		c := connect(t, dsn)
		// 100,000 rows of 1,000 bytes; streamed, never held whole.
		rows, err := c.Query(testCtx(t), "SELECT g, repeat(chr(65 + g % 26), 1000) FROM generate_series(1, 100000) g")
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		var n, total int
		for rows.Next() {
			raw := rows.RawValues()
			h.Write(raw[0])
			h.Write(raw[1])
			total += len(raw[1])
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != 100000 || total != 100_000_000 {
			t.Fatalf("got %d rows, %d bytes", n, total)
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	})
}

func TestMultiMegabyteMessages(t *testing.T) {
	pg := pgtest.Shared(t)
	big := strings.Repeat("0123456789abcdef", 6<<20/16) // 6 MiB
	compare(t, targets(t, pg, "CREATE TABLE blobs (id int, body text)"), func(t *testing.T, dsn string) []string {
		ctx := testCtx(t)
		c := connect(t, dsn)
		var out []string
		// One 6 MiB Bind (extended protocol) ...
		if _, err := c.Exec(ctx, "INSERT INTO blobs VALUES (1, $1)", big); err != nil {
			t.Fatal(err)
		}
		// ... one 6 MiB Query (simple protocol) ...
		if _, err := c.Exec(ctx, "INSERT INTO blobs VALUES (2, '"+big+"')", pgxSimple); err != nil {
			t.Fatal(err)
		}
		// ... and 6 MiB DataRows back.
		rows, err := c.Query(ctx, "SELECT id, body FROM blobs ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int
			var body string
			if err := rows.Scan(&id, &body); err != nil {
				t.Fatal(err)
			}
			if body != big {
				t.Fatalf("row %d: %d bytes came back, want the %d sent", id, len(body), len(big))
			}
			out = append(out, fmt.Sprint(id, len(body)))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	})
}

func TestUnixSocketListenAndUpstream(t *testing.T) {
	pg := pgtest.Shared(t)
	if pg.SocketPath() == "" {
		t.Skip("external server given by TOMBSTONE_TEST_DSN has no known socket")
	}
	dir := t.TempDir()
	p := proxytest.Start(t, pg, "listen: "+filepath.Join(dir, ".s.PGSQL.6543")+"\nupstream: "+pg.SocketPath()+"\n")
	c := connect(t, p.DSN(pg.User, "", ""))
	var viaSocket bool
	// client_addr is NULL for a Unix-socket backend.
	if err := c.QueryRow(testCtx(t), "SELECT client_addr IS NULL FROM pg_stat_activity WHERE pid = pg_backend_pid()").Scan(&viaSocket); err != nil || !viaSocket {
		t.Fatalf("upstream connection over the Unix socket: %v %v", viaSocket, err)
	}
	env := append(os.Environ(), "PGHOST="+dir, "PGPORT=6543", "PGUSER="+pg.User, "PGDATABASE=postgres")
	if out := run(t, env, "", "psql", "-X", "-A", "-t", "-c", "SELECT 40 + 2"); strings.TrimSpace(out) != "42" {
		t.Fatalf("psql over the proxy's socket: %q", out)
	}
}
