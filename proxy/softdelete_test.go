package proxy_test

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

const softDeleteYAML = "privileged_roles: [postgres]\ntables:\n  - name: contacts\n"

// softDeleteDB makes a database with a soft-delete table of 20 live rows
// and a role app_user, and returns the proxy in front of it.
func softDeleteDB(t *testing.T, yaml string) (*pgtest.Server, *proxytest.Proxy, string) {
	pg := pgtest.Shared(t)
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, "", `DO $$ BEGIN CREATE ROLE app_user LOGIN PASSWORD 'app'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	pgtest.Exec(t, pg, db, `CREATE TABLE contacts (id int PRIMARY KEY, name text, deleted_at timestamptz);
		INSERT INTO contacts SELECT g, 'c' || g FROM generate_series(1, 20) g;
		GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON contacts TO app_user`)
	return pg, proxytest.Start(t, pg, yaml), db
}

// liveAndDeleted counts rows as the superuser sees them, directly.
func liveAndDeleted(t *testing.T, pg *pgtest.Server, db string) (live, deleted int) {
	t.Helper()
	c := connect(t, pg.DSN(db))
	if err := c.QueryRow(testCtx(t), "SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM contacts").Scan(&live, &deleted); err != nil {
		t.Fatal(err)
	}
	return live, deleted
}

func tags(results []*pgconn.Result) []string {
	var out []string
	for _, r := range results {
		if r.Err != nil {
			out = append(out, "error "+pgCode(r.Err))
			continue
		}
		out = append(out, r.CommandTag.String())
	}
	return out
}

func TestDeleteTagSimpleAndExtendedProtocol(t *testing.T) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	ctx := testCtx(t)
	c := connect(t, p.DSN("app_user", "app", db))

	// Simple protocol, several statements in one Query: each tag is the
	// statement's own, DELETE where the client deleted.
	res, err := c.PgConn().Exec(ctx, "DELETE FROM contacts WHERE id = 1; SELECT 1; UPDATE contacts SET name = 'x' WHERE id = 2; DELETE FROM contacts WHERE id IN (3, 4)").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tags(res), ","); got != "DELETE 1,SELECT 1,UPDATE 1,DELETE 2" {
		t.Fatalf("simple protocol tags: %s", got)
	}
	// Extended protocol: a named statement (pgx caches it; the second run
	// is Bind/Execute only), the unnamed statement, and describe-exec.
	for i, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeSimpleProtocol} {
		tag, err := c.Exec(ctx, "DELETE FROM contacts WHERE id = $1 OR id = $2", mode, 5+2*i, 6+2*i)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if !tag.Delete() || tag.RowsAffected() != 2 {
			t.Fatalf("%v: tag %q, want DELETE 2", mode, tag)
		}
	}
	// Deleting an already deleted row affects nothing.
	if tag, err := c.Exec(ctx, "DELETE FROM contacts WHERE id = 1"); err != nil || tag.String() != "DELETE 0" {
		t.Fatalf("second delete of a row: %q %v", tag, err)
	}
	// The rows are still there, marked.
	if live, deleted := liveAndDeleted(t, pg, db); deleted != 13 || live != 7 {
		t.Fatalf("live %d deleted %d, want 7 and 13", live, deleted)
	}
	var visible int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM contacts").Scan(&visible); err != nil || visible != 7 {
		t.Fatalf("app sees %d rows (%v), want 7", visible, err)
	}
}

func TestDeleteTagInPipelineWithErrorsAndSQLPrepare(t *testing.T) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	ctx := testCtx(t)
	c := connect(t, p.DSN("app_user", "app", db))
	batch := &pgx.Batch{}
	batch.Queue("DELETE FROM contacts WHERE id = $1", 1)
	batch.Queue("SELECT count(*) FROM contacts")
	batch.Queue("UPDATE contacts SET name = $1 WHERE id = 2", "y")
	batch.Queue("DELETE FROM contacts WHERE id IN ($1, $2)", 3, 4)
	if s := strings.Join(batchResults(ctx, c, batch), ","); s != "DELETE 1|,SELECT 1|,UPDATE 1|,DELETE 2|" {
		t.Fatalf("pipeline tags: %s", s)
	}
	// An error mid-pipeline: the server skips to Sync, and the tags of
	// the next pipeline must still line up; the same as directly against
	// a table where the DELETE is real.
	failing := func(c *pgx.Conn) string {
		batch := &pgx.Batch{}
		batch.Queue("DELETE FROM contacts WHERE id = $1", 5)
		batch.Queue("SELECT 1/0")
		batch.Queue("DELETE FROM contacts WHERE id = $1", 6)
		return strings.Join(batchResults(ctx, c, batch), ",")
	}
	plain := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, plain, "CREATE TABLE contacts AS SELECT g AS id FROM generate_series(1, 20) g")
	if got, want := failing(c), failing(connect(t, pg.DSN(plain))); got != want || !strings.HasPrefix(got, "DELETE 1|") {
		t.Fatalf("pipeline with an error: %s, directly %s", got, want)
	}
	// pgx ran the batch in an implicit transaction: the first delete rolled back.
	if tag, err := c.Exec(ctx, "DELETE FROM contacts WHERE id = 5 OR id = 6"); err != nil || tag.String() != "DELETE 2" {
		t.Fatalf("after the failed pipeline: %q %v", tag, err)
	}
	// SQL-level PREPARE/EXECUTE.
	res, err := c.PgConn().Exec(ctx, "PREPARE d(int) AS DELETE FROM contacts WHERE id = $1; EXECUTE d(7); PREPARE s AS SELECT 1; EXECUTE s").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(tags(res), ","); s != "PREPARE,DELETE 1,PREPARE,SELECT 1" {
		t.Fatalf("PREPARE/EXECUTE tags: %s", s)
	}
	if tag, err := c.Exec(ctx, "EXECUTE d(8)"); err != nil || tag.String() != "DELETE 1" {
		t.Fatalf("EXECUTE of a prepared delete later: %q %v", tag, err)
	}
	if _, err := c.Exec(ctx, "DEALLOCATE d"); err != nil {
		t.Fatal(err)
	}
	// Deleted: 1, 3, 4 (first pipeline), 5, 6, then 7 and 8.
	if live, deleted := liveAndDeleted(t, pg, db); deleted != 7 || live != 13 {
		t.Fatalf("live %d deleted %d, want 13 and 7", live, deleted)
	}
}

// An Execute with a row limit suspends the portal; the tag comes with the
// Execute that finishes it, as a real DELETE's does.
func TestDeleteTagWithRowLimitedExecute(t *testing.T) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	run := func(dsn string) string {
		c := connect(t, dsn)
		fe := c.PgConn().Frontend()
		fe.Send(&pgproto3.Parse{Name: "del", Query: "DELETE FROM contacts WHERE id <= $1 RETURNING id", ParameterOIDs: []uint32{23}})
		fe.Send(&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "del", Parameters: [][]byte{[]byte("3")}})
		fe.Send(&pgproto3.Execute{Portal: "p", MaxRows: 1})
		fe.Send(&pgproto3.Execute{Portal: "p"})
		fe.Send(&pgproto3.Sync{})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			msg, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			switch m := msg.(type) {
			case *pgproto3.DataRow:
				got = append(got, "row "+string(m.Values[0]))
			case *pgproto3.PortalSuspended:
				got = append(got, "suspended")
			case *pgproto3.CommandComplete:
				got = append(got, string(m.CommandTag))
			case *pgproto3.ErrorResponse:
				t.Fatalf("error: %s", m.Message)
			case *pgproto3.ReadyForQuery:
				return strings.Join(got, ",")
			}
		}
	}
	proxied := run(p.DSN("app_user", "app", db))
	// The same against Postgres directly, where the DELETE is real.
	plain := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, plain, "CREATE TABLE contacts AS SELECT g AS id FROM generate_series(1, 20) g")
	direct := run(pg.DSN(plain))
	if proxied != direct || !strings.Contains(proxied, "suspended") || !strings.Contains(proxied, "DELETE") {
		t.Fatalf("row-limited delete: proxied %q, direct %q", proxied, direct)
	}
}

func TestDeleteTagOtherClients(t *testing.T) {
	_, p, db := softDeleteDB(t, softDeleteYAML)
	dsn := p.DSN("app_user", "app", db)
	sdb, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	for _, args := range [][]any{{}, {1}} {
		q := "DELETE FROM contacts WHERE id IN (1, 2)"
		if len(args) > 0 {
			q = "DELETE FROM contacts WHERE id IN ($1, 3, 4)"
		}
		res, err := sdb.ExecContext(testCtx(t), q, args...)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 2 {
			t.Fatalf("lib/pq %q: RowsAffected %d, want 2", q, n)
		}
	}
	out := run(t, libpqEnv(t, dsn), "", "psql", "-X", "-c", "DELETE FROM contacts WHERE id > 18")
	if strings.TrimSpace(out) != "DELETE 2" {
		t.Fatalf("psql: %q", out)
	}
}

func TestRefusalTravelsThroughTheServer(t *testing.T) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	ctx := testCtx(t)
	c := connect(t, p.DSN("app_user", "app", db))
	var pe *pgconn.PgError
	_, err := c.Exec(ctx, "TRUNCATE contacts")
	if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "tombstone") || pe.Severity != "ERROR" {
		t.Fatalf("TRUNCATE: want refusal 42501, got %v", err)
	}
	// Inside a transaction the refusal aborts it like any error.
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "DELETE FROM contacts WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "TRUNCATE contacts", pgxSimple); pgCode(err) != "42501" {
		t.Fatalf("TRUNCATE in a transaction: %v", err)
	}
	if _, err := c.Exec(ctx, "SELECT 1"); pgCode(err) != "25P02" {
		t.Fatalf("after a refusal in a transaction: want 25P02, got %v", err)
	}
	if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// In a pipeline the refusal comes in order and the rest is skipped,
	// exactly as for a statement the server itself rejects at parse
	// analysis (run directly for comparison).
	refusals := 2
	direct := connect(t, pg.DSN(db))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		pipeline := func(c *pgx.Conn, failing string) string {
			batch := &pgx.Batch{}
			batch.Queue("SELECT 1")
			batch.Queue(failing)
			batch.Queue("DELETE FROM contacts WHERE id = 2")
			return strings.Join(batchResults(ctx, c, batch), ",")
		}
		c.Config().DefaultQueryExecMode = mode
		direct.Config().DefaultQueryExecMode = mode
		want := strings.ReplaceAll(pipeline(direct, "SELECT no_such_column"), "42703", "42501")
		if got := pipeline(c, "TRUNCATE contacts"); got != want || !strings.Contains(got, "42501") {
			t.Fatalf("%v pipeline with a refusal: %s, want %s as directly", mode, got, want)
		}
		refusals++
	}
	// A statement that names the table but does not parse is refused too.
	_, err = c.Exec(ctx, "DELETE FROM contacts WHERE id = 'secret-value' AND (", pgxSimple)
	if !errors.As(err, &pe) || pe.Code != "42601" || !strings.Contains(pe.Message, "tombstone") {
		t.Fatalf("unparseable: want a refusal, got %v", err)
	}
	if live, deleted := liveAndDeleted(t, pg, db); live != 20 || deleted != 0 {
		t.Fatalf("refused and rolled-back work changed rows: live %d deleted %d", live, deleted)
	}
	if got := p.Metric(t, "tombstone_statements_total", "action", "refused"); got != float64(refusals+1) {
		t.Fatalf("refused statements counted %v, want %d", got, refusals+1)
	}
	if got := p.Metric(t, "tombstone_refusals_total", "reason", "truncate"); got != float64(refusals) {
		t.Fatalf("truncate refusals counted %v, want %d", got, refusals)
	}
	logs := p.Logs()
	if strings.Count(logs, `msg="statement refused"`) != refusals+1 || !strings.Contains(logs, "fingerprint=") || !strings.Contains(logs, "user=app_user") {
		t.Fatalf("refusals not logged with user and fingerprint:\n%s", logs)
	}
	if strings.Contains(logs, "secret-value") {
		t.Fatalf("a literal value reached the log:\n%s", logs)
	}
	// The session is still good.
	if tag, err := c.Exec(ctx, "DELETE FROM contacts WHERE id = 3"); err != nil || tag.String() != "DELETE 1" {
		t.Fatalf("after refusals: %q %v", tag, err)
	}
}

func TestShadowPrivilegedAndReload(t *testing.T) {
	pg, p, db := softDeleteDB(t, "mode: shadow\n"+softDeleteYAML)
	ctx := testCtx(t)
	app := connect(t, p.DSN("app_user", "app", db))
	// Shadow: the real DELETE runs, and the rewrite is only counted.
	if tag, err := app.Exec(ctx, "DELETE FROM contacts WHERE id = 1"); err != nil || tag.String() != "DELETE 1" {
		t.Fatalf("shadow delete: %q %v", tag, err)
	}
	if live, deleted := liveAndDeleted(t, pg, db); live != 19 || deleted != 0 {
		t.Fatalf("shadow mode changed the statement: live %d deleted %d", live, deleted)
	}
	if got := p.Metric(t, "tombstone_rewrites_total", "kind", "delete"); got != 1 {
		t.Fatalf("shadow rewrites counted %v, want 1", got)
	}
	if got := p.Metric(t, "tombstone_statements_total", "action", "rewritten"); got != 0 {
		t.Fatalf("shadow mode counted %v statements as rewritten", got)
	}
	// Reload to enforce: the open session's next statement is rewritten.
	p.Server.SetRewriter(proxytest.Rewriter(t, softDeleteYAML))
	if tag, err := app.Exec(ctx, "DELETE FROM contacts WHERE id = 2"); err != nil || tag.String() != "DELETE 1" {
		t.Fatalf("enforced delete after reload: %q %v", tag, err)
	}
	if live, deleted := liveAndDeleted(t, pg, db); live != 18 || deleted != 1 {
		t.Fatalf("after reload: live %d deleted %d, want 18 and 1", live, deleted)
	}
	// A privileged role deletes for real, with nothing rewritten.
	admin := connect(t, p.DSN(pg.User, pg.Password, db))
	if tag, err := admin.Exec(ctx, "DELETE FROM contacts WHERE id = 2"); err != nil || tag.String() != "DELETE 1" {
		t.Fatalf("privileged hard delete: %q %v", tag, err)
	}
	if live, deleted := liveAndDeleted(t, pg, db); live != 18 || deleted != 0 {
		t.Fatalf("after the hard delete: live %d deleted %d, want 18 and 0", live, deleted)
	}
}

// libpq runs COPY in the extended protocol as Parse, Bind, Execute, Sync,
// and sends a second Sync after CopyDone; the server ignores the first
// (it arrives in copy-in mode). The proxy must not wait for an answer to
// it, or every later tag would be matched to the wrong statement.
func TestDeleteTagAfterExtendedProtocolCopy(t *testing.T) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	pgtest.Exec(t, pg, db, "CREATE TABLE imports (v text); GRANT INSERT ON imports TO app_user")
	c := connect(t, p.DSN("app_user", "app", db))
	fe := c.PgConn().Frontend()
	receiveUntil := func(stop func(pgproto3.BackendMessage) bool) []string {
		var got []string
		for {
			msg, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			switch m := msg.(type) {
			case *pgproto3.CommandComplete:
				got = append(got, string(m.CommandTag))
			case *pgproto3.ErrorResponse:
				t.Fatalf("error: %s", m.Message)
			}
			if stop(msg) {
				return got
			}
		}
	}
	for round := 0; round < 2; round++ {
		fe.Send(&pgproto3.Parse{Query: "COPY imports FROM STDIN"})
		fe.Send(&pgproto3.Bind{})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		receiveUntil(func(m pgproto3.BackendMessage) bool { _, ok := m.(*pgproto3.CopyInResponse); return ok })
		fe.Send(&pgproto3.CopyData{Data: []byte("a\nb\n")})
		fe.Send(&pgproto3.CopyDone{})
		fe.Send(&pgproto3.Sync{})
		fe.Send(&pgproto3.Parse{Query: "DELETE FROM contacts WHERE id = $1", ParameterOIDs: []uint32{23}})
		fe.Send(&pgproto3.Bind{Parameters: [][]byte{[]byte(fmt.Sprint(round + 1))}})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		ready := 0
		got := receiveUntil(func(m pgproto3.BackendMessage) bool {
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				ready++
			}
			return ready == 2
		})
		if s := strings.Join(got, ","); s != "COPY 2,DELETE 1" {
			t.Fatalf("round %d: tags %s, want COPY 2,DELETE 1", round, s)
		}
	}
	if live, deleted := liveAndDeleted(t, pg, db); live != 18 || deleted != 2 {
		t.Fatalf("live %d deleted %d, want 18 and 2", live, deleted)
	}
}

// Parse and SQL PREPARE share one namespace in PostgreSQL: a DELETE
// prepared by either is run by the other, and its tag must read DELETE.
func TestDeleteTagAcrossPrepareNamespaces(t *testing.T) {
	_, p, db := softDeleteDB(t, softDeleteYAML)
	ctx := testCtx(t)
	c := connect(t, p.DSN("app_user", "app", db))
	if _, err := c.PgConn().Prepare(ctx, "pd", "DELETE FROM contacts WHERE id = $1", nil); err != nil {
		t.Fatal(err)
	}
	res, err := c.PgConn().Exec(ctx, "EXECUTE pd(1)").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(tags(res), ","); s != "DELETE 1" {
		t.Fatalf("SQL EXECUTE of a Parsed DELETE: %s", s)
	}
	if _, err := c.Exec(ctx, "PREPARE sd(int) AS DELETE FROM contacts WHERE id = $1"); err != nil {
		t.Fatal(err)
	}
	r := c.PgConn().ExecPrepared(ctx, "sd", [][]byte{[]byte("2")}, nil, nil).Read()
	if r.Err != nil || r.CommandTag.String() != "DELETE 1" {
		t.Fatalf("Bind/Execute of an SQL-PREPAREd DELETE: %q %v", r.CommandTag, r.Err)
	}
}
