package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// logLines collects log records, one line each, for assertions.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

// find returns the first line that contains every one of parts, or "".
func (l *logLines) find(parts ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		return line
	}
	return ""
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

// running is a Server started from a file the test can rewrite and reload.
type running struct {
	*Server
	path  string
	logs  *logLines
	admin string // http://host:port of the metrics listener
}

// start writes yamlText to a file, loads it as cmd/tombstone does and
// starts a Server on loopback ports chosen by the kernel.
func start(t *testing.T, yamlText string) *running {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tombstone.yaml")
	writeFile(t, path, yamlText)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logLines{}
	srv, err := Start(cfg, Options{
		Registry: prometheus.NewRegistry(),
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return &running{Server: srv, path: path, logs: logs, admin: "http://" + srv.AdminAddr().String()}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// configYAML is a configuration for pg with the given soft-delete tables;
// extra is appended as is.
func configYAML(pg *pgtest.Server, tables []string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nupstream: %s\nshutdown_timeout: 10s\nmetrics:\n  listen: 127.0.0.1:0\nprivileged_roles: [%s]\ntables:\n", pg.Addr(), pg.User)
	for _, tb := range tables {
		fmt.Fprintf(&b, "  - name: %s\n", tb)
	}
	b.WriteString(extra)
	return b.String()
}

// get fetches url and returns status and body.
func get(t *testing.T, method, url string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// scrape reads /metrics over HTTP in the Prometheus text format and
// returns every sample by its series as printed, e.g.
// tombstone_statements_total{action="rewritten"}.
func scrape(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	code, body, _ := get(t, "GET", admin+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// dbWithRole makes a database holding table contacts (ids 1-3) and notes
// (ids 1-2), each with one row already soft-deleted, and a login role that
// is not privileged.
func dbWithRole(t *testing.T, pg *pgtest.Server) (db, role string) {
	t.Helper()
	db = pgtest.CreateDB(t, pg)
	role = "app_" + db
	pgtest.Exec(t, pg, "", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD 'app'", role))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// After CreateDB's cleanup has dropped the database (cleanups run
		// last-in first-out, and this one was registered later, so it runs
		// first): drop what the role owns there first.
		_ = pg.Exec(ctx, db, "DROP OWNED BY "+role)
		_ = pg.Exec(ctx, "", "DROP ROLE IF EXISTS "+role)
	})
	pgtest.Exec(t, pg, db, fmt.Sprintf(`
CREATE TABLE contacts (id int PRIMARY KEY, name text, deleted_at timestamptz);
INSERT INTO contacts VALUES (1, 'ann', NULL), (2, 'bob', NULL), (3, 'cy', now());
CREATE TABLE notes (id int PRIMARY KEY, body text, deleted_at timestamptz);
INSERT INTO notes VALUES (1, 'live', NULL), (2, 'gone', now());
GRANT SELECT, INSERT, UPDATE, DELETE ON contacts, notes TO %s;`, role))
	return db, role
}

// appDSN connects as role through the proxy with the extended protocol and
// an unnamed statement per query (pgx's exec mode), so every query is a new
// Parse the proxy rewrites under the policy in force at that moment. (With
// pgx's default statement cache, a statement prepared before a reload keeps
// the text it was prepared with, as the server holds it.)
func appDSN(srv *running, role, db string) string {
	return pgcluster.URL(srv.Addr().String(), role, "app", db) + "&default_query_exec_mode=exec"
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func count(t *testing.T, conn *pgx.Conn, table string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("SELECT count(*) FROM %s: %v", table, err)
	}
	return n
}

// TestServeEndToEnd drives real traffic through the proxy, scrapes the
// metrics over HTTP, probes health, and reloads good and bad files.
func TestServeEndToEnd(t *testing.T) {
	pg := pgtest.Shared(t)
	db, role := dbWithRole(t, pg)
	srv := start(t, configYAML(pg, []string{"contacts"}, ""))
	before := scrape(t, srv.admin)

	app := connect(t, appDSN(srv, role, db))
	admin := connect(t, pgcluster.URL(srv.Addr().String(), pg.User, pg.Password, db))

	if n := count(t, app, "contacts"); n != 2 {
		t.Errorf("app sees %d contacts, want the 2 live ones", n)
	}
	tag, err := app.Exec(context.Background(), "DELETE FROM contacts WHERE id = 1")
	if err != nil || tag.String() != "DELETE 1" {
		t.Fatalf("DELETE through the proxy: tag %q, error %v; want DELETE 1", tag, err)
	}
	if n := count(t, admin, "contacts"); n != 3 {
		t.Errorf("privileged role sees %d contacts, want all 3 (the delete must have been soft)", n)
	}
	if n := count(t, app, "notes"); n != 2 {
		t.Errorf("app sees %d notes, want 2: notes is not a soft-delete table yet", n)
	}
	if n := count(t, app, "contacts"); n != 1 { // the same text again: a rewrite-cache hit
		t.Errorf("app sees %d contacts after deleting one, want 1", n)
	}
	_, err = app.Exec(context.Background(), "TRUNCATE contacts")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("TRUNCATE of a soft-delete table: %v, want a refusal with SQLSTATE 42501", err)
	}
	if line := srv.logs.find("statement refused", "conn=", "user="+role, "table=public.contacts", "fingerprint="); line == "" {
		t.Errorf("the refusal was not logged with connection, login role, table and fingerprint")
	}

	after := scrape(t, srv.admin)
	moved := func(series string, atLeast float64) {
		t.Helper()
		if d := after[series] - before[series]; d < atLeast {
			t.Errorf("%s moved by %v, want at least %v", series, d, atLeast)
		}
	}
	moved("tombstone_connections_total", 2)
	moved(`tombstone_statements_total{action="rewritten"}`, 2)
	moved(`tombstone_statements_total{action="bypassed"}`, 1)
	moved(`tombstone_statements_total{action="passthrough"}`, 1)
	// With the database's catalog read, an unqualified configured table
	// is known by the schema it lives in.
	moved(`tombstone_rewrites_total{kind="delete",table="contacts"}`, 1)
	moved(`tombstone_rewrites_total{kind="select",table="contacts"}`, 1)
	moved(`tombstone_statements_total{action="refused"}`, 1)
	moved(`tombstone_refusals_total{reason="truncate"}`, 1)
	moved("tombstone_rewrite_cache_hits_total", 1)
	moved("tombstone_rewrite_cache_misses_total", 2)
	moved("tombstone_rewrite_duration_seconds_count", 2)
	if got := after["tombstone_client_connections"]; got != 2 {
		t.Errorf("tombstone_client_connections = %v with two sessions open, want 2", got)
	}
	if after[`tombstone_build_info{goversion="`+runtime.Version()+`",revision="unknown",version="dev"}`] != 1 {
		t.Errorf("tombstone_build_info missing from /metrics")
	}

	// OpenMetrics is negotiated on Accept, as Prometheus asks for it.
	code, body, hdr := get(t, "GET", srv.admin+"/metrics", "Accept", "application/openmetrics-text;version=1.0.0")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/openmetrics-text") || !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("OpenMetrics scrape: %d, Content-Type %q, ends %q", code, hdr.Get("Content-Type"), body[max(0, len(body)-20):])
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		if code, body, _ := get(t, "GET", srv.admin+probe); code != 200 {
			t.Errorf("GET %s: %d %s", probe, code, body)
		}
	}
	if code, _, _ := get(t, "GET", srv.admin+"/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d, want 405 (only POST reloads)", code)
	}

	// A valid file: notes becomes a soft-delete table for the next
	// statement of the already open session.
	writeFile(t, srv.path, configYAML(pg, []string{"contacts", "notes"}, ""))
	if code, body, _ := get(t, "POST", srv.admin+"/-/reload"); code != 200 {
		t.Fatalf("POST /-/reload with a valid file: %d %s", code, body)
	}
	if n := count(t, app, "notes"); n != 1 {
		t.Errorf("after reload the open session sees %d notes, want the 1 live one", n)
	}
	if got := scrape(t, srv.admin)["tombstone_config_last_reload_successful"]; got != 1 {
		t.Errorf("tombstone_config_last_reload_successful = %v after a good reload, want 1", got)
	}

	// An invalid file: the running policy stays, the error is answered
	// and logged, and the gauge drops to 0.
	writeFile(t, srv.path, configYAML(pg, []string{"contacts"}, "mode: sometimes\n"))
	code, body, _ = get(t, "POST", srv.admin+"/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, `mode: "sometimes" is not enforce or shadow`) {
		t.Errorf("POST /-/reload with an invalid file: %d %q; want 500 naming the bad key", code, body)
	}
	if n := count(t, app, "notes"); n != 1 {
		t.Errorf("after a failed reload the session sees %d notes, want 1: the last good policy must stay", n)
	}
	if got := scrape(t, srv.admin)["tombstone_config_last_reload_successful"]; got != 0 {
		t.Errorf("tombstone_config_last_reload_successful = %v after a failed reload, want 0", got)
	}
	if srv.logs.find("configuration reload failed", "sometimes") == "" {
		t.Errorf("the failed reload was not logged with its reason")
	}

	// listen cannot change without a restart: the reload applies the rest
	// and says so.
	writeFile(t, srv.path, strings.Replace(configYAML(pg, []string{"contacts"}, ""), "listen: 127.0.0.1:0", "listen: 127.0.0.1:6999", 1))
	if code, body, _ := get(t, "POST", srv.admin+"/-/reload"); code != 200 {
		t.Fatalf("POST /-/reload: %d %s", code, body)
	}
	if srv.logs.find("takes effect only after a restart", "key=listen") == "" {
		t.Errorf("changing listen did not log that a restart is needed")
	}
	if n := count(t, app, "notes"); n != 2 {
		t.Errorf("after dropping notes from the file the session sees %d notes, want all 2", n)
	}

	app.Close(context.Background())
	admin.Close(context.Background())
	waitFor(t, "client connections to drop to 0", func() bool {
		return scrape(t, srv.admin)["tombstone_client_connections"] == 0
	})
}

// waitFor polls cond until it holds; sessions end asynchronously after
// the client hangs up. The bound only keeps a broken build from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// TestShadowModeIsWired checks that mode: shadow reaches the proxy: the
// DELETE really deletes and is counted as passthrough.
func TestShadowModeIsWired(t *testing.T) {
	pg := pgtest.Shared(t)
	db, role := dbWithRole(t, pg)
	srv := start(t, configYAML(pg, []string{"contacts"}, "mode: shadow\n"))
	app := connect(t, appDSN(srv, role, db))
	if n := count(t, app, "contacts"); n != 3 {
		t.Errorf("in shadow mode the app sees %d contacts, want all 3", n)
	}
	if _, err := app.Exec(context.Background(), "DELETE FROM contacts WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, app, "contacts"); n != 2 {
		t.Errorf("in shadow mode DELETE must really delete: %d contacts left, want 2", n)
	}
	m := scrape(t, srv.admin)
	if m[`tombstone_statements_total{action="passthrough"}`] < 3 || m[`tombstone_statements_total{action="rewritten"}`] != 0 {
		t.Errorf("shadow mode counted passthrough %v and rewritten %v; want all passthrough",
			m[`tombstone_statements_total{action="passthrough"}`], m[`tombstone_statements_total{action="rewritten"}`])
	}
}

// TestReadyzFollowsUpstream stops the server's own PostgreSQL cluster and
// expects /readyz to turn 503 while /healthz stays 200.
func TestReadyzFollowsUpstream(t *testing.T) {
	pg := pgtest.Start(t, pgcluster.Options{})
	srv := start(t, configYAML(pg, nil, ""))
	if code, body, _ := get(t, "GET", srv.admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz with the upstream up: %d %s", code, body)
	}
	pg.Stop()
	code, body, _ := get(t, "GET", srv.admin+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "upstream not answering") {
		t.Errorf("/readyz with the upstream stopped: %d %q; want 503 naming the upstream", code, body)
	}
	if code, _, _ := get(t, "GET", srv.admin+"/healthz"); code != 200 {
		t.Errorf("/healthz with the upstream stopped: %d, want 200 (the process is alive)", code)
	}
}

// Start fails with the listener's error when the port is taken.
func TestStartFailsOnBusyPort(t *testing.T) {
	pg := pgtest.Shared(t)
	first := start(t, configYAML(pg, nil, ""))
	cfg, err := config.Parse([]byte(strings.Replace(configYAML(pg, nil, ""), "listen: 127.0.0.1:0", "listen: "+first.Addr().String(), 1)), "busy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Start(cfg, Options{Registry: prometheus.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a busy port: %v, want an address-in-use error", err)
	}
}

// While sessions drain, /readyz says the proxy no longer accepts, so a
// load balancer stops sending clients; /healthz stays 200.
func TestReadyzDuringDrain(t *testing.T) {
	pg := pgtest.Shared(t)
	srv := start(t, strings.Replace(configYAML(pg, nil, ""), "shutdown_timeout: 10s", "shutdown_timeout: 1h", 1))
	conn := connect(t, pgcluster.URL(srv.Addr().String(), pg.User, pg.Password, ""))
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(context.Background()) }()
	waitFor(t, "/readyz to answer 503", func() bool {
		code, _, _ := get(t, "GET", srv.admin+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	if _, body, _ := get(t, "GET", srv.admin+"/readyz"); !strings.Contains(body, "not accepting connections (shutting down)") {
		t.Errorf("/readyz while draining: %q", body)
	}
	if code, _, _ := get(t, "GET", srv.admin+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d, want 200", code)
	}
	if _, err := conn.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Errorf("the open session failed while draining: %v", err)
	}
	conn.Close(context.Background())
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown after the last session ended: %v", err)
	}
}

// listen may be a Unix-domain socket path; a socket file left behind by
// a crashed process is replaced.
func TestListenOnUnixSocketReplacesStaleFile(t *testing.T) {
	pg := pgtest.Shared(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, ".s.PGSQL.6432")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // the file stays, as after a crash
	srv := start(t, strings.Replace(configYAML(pg, nil, ""), "listen: 127.0.0.1:0", "listen: "+sock, 1))
	conn := connect(t, fmt.Sprintf("host=%s port=6432 user=%s password=%s dbname=postgres sslmode=disable", dir, pg.User, pg.Password))
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query over the Unix socket: %d, %v", one, err)
	}
	if srv.Addr().String() != sock {
		t.Errorf("Addr() = %s, want %s", srv.Addr(), sock)
	}
}

// log.level applies on reload: the logger's level is shared with cmd/.
func TestReloadAppliesLogLevel(t *testing.T) {
	pg := pgtest.Shared(t)
	path := filepath.Join(t.TempDir(), "tombstone.yaml")
	writeFile(t, path, configYAML(pg, nil, "log:\n  level: warn\n"))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	srv, err := Start(cfg, Options{Registry: prometheus.NewRegistry(), Level: level})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	writeFile(t, path, configYAML(pg, nil, "log:\n  level: debug\n"))
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("after reloading log.level: debug the level is %v", level.Level())
	}
}

// A configured table that the database lacks, or one without its
// deleted_at column, is loud: /readyz lists it (and stays 200: the table
// is still enforced by name), the log warns, and the gauge counts it. A
// name written in mixed case is folded as PostgreSQL folds it, so
// DELETE FROM Notes is a soft delete.
func TestReadyzListsCatalogProblems(t *testing.T) {
	pg := pgtest.Shared(t)
	db, role := dbWithRole(t, pg)
	srv := start(t, configYAML(pg, []string{"Contacts", "missing_table", "NOTES"}, "    deleted_at: Removed_At\n"))
	app := connect(t, appDSN(srv, role, db))
	if tag, err := app.Exec(context.Background(), "DELETE FROM Contacts WHERE id = 1"); err != nil || tag.String() != "DELETE 1" {
		t.Fatalf("DELETE FROM Contacts: %q %v", tag, err)
	}
	admin := connect(t, pgcluster.URL(srv.Addr().String(), pg.User, pg.Password, db))
	if n := count(t, admin, "contacts"); n != 3 {
		t.Fatalf("DELETE FROM Contacts with tables: [{name: Contacts}] removed a row for good: %d rows left, want 3", n)
	}
	code, body, _ := get(t, "GET", srv.admin+"/readyz")
	if code != http.StatusOK {
		t.Fatalf("/readyz with catalog problems: %d %s; want 200 (loud, not fatal)", code, body)
	}
	for _, want := range []string{
		"ok (2 configuration problems; see below)",
		fmt.Sprintf("database %q: catalog read ", db),
		"  problem: missing_table: configured table missing_table does not exist in this database",
		`  problem: notes: table public.notes has no column "removed_at" (deleted_at)`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz body lacks %q:\n%s", want, body)
		}
	}
	m := scrape(t, srv.admin)
	if got := m[fmt.Sprintf(`tombstone_catalog_problems{database=%q}`, db)]; got != 2 {
		t.Errorf("tombstone_catalog_problems{database=%q} = %v, want 2", db, got)
	}
	if got := m[fmt.Sprintf(`tombstone_catalog_loads_total{database=%q,result="ok"}`, db)]; got < 1 {
		t.Errorf("tombstone_catalog_loads_total{database=%q,result=\"ok\"} = %v, want at least 1", db, got)
	}
	if srv.logs.find("missing_table", "does not exist") == "" {
		t.Errorf("the missing table was not logged")
	}

	// A reload that declares a cascade cycle fails and changes nothing.
	writeFile(t, srv.path, configYAML(pg, []string{"contacts"}, "    cascade: [{table: contacts, column: parent_id}]\n"))
	code, body, _ = get(t, "POST", srv.admin+"/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, "declared cascades form a cycle: contacts -> contacts") {
		t.Errorf("reload with a cascade cycle: %d %q; want 500 naming the cycle", code, body)
	}
}
