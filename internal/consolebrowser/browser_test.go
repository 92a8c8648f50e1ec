//go:build browser

package consolebrowser

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/buildtest"
	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

// The application's login role: not privileged, so its DELETEs through the
// proxy become soft deletes.
const appUser, appPassword = "shop_app", "shop-secret"

// The console's users: support may restore, admin may also purge.
var users = []struct{ name, password, can string }{
	{"support", "support-secret", "[restore]"},
	{"admin", "admin-secret", "[restore, purge]"},
}

// schema: order 42 has two items, so deleting it takes them along; order
// 43 (one item) is deleted too, by someone else with a reason holding
// markup, and must stay deleted: it is the target of the cross-site POST
// and of the Purge that is never confirmed. customer is unique among live
// orders.
const schema = `
CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL,
                     deleted_at timestamptz, deleted_by text, deleted_reason text);
CREATE UNIQUE INDEX orders_customer_live ON orders (customer) WHERE deleted_at IS NULL;
CREATE TABLE order_items (id bigint PRIMARY KEY,
                          order_id bigint NOT NULL REFERENCES orders ON DELETE CASCADE,
                          sku text NOT NULL, quantity integer NOT NULL,
                          deleted_at timestamptz, deleted_by text, deleted_reason text);
INSERT INTO orders (id, customer) VALUES (41, 'Ada'), (42, 'Grace'), (43, 'Linus'), (44, 'Barbara');
INSERT INTO order_items VALUES (410, 41, 'pen', 1), (420, 42, 'ink', 2), (421, 42, 'paper', 5), (430, 43, 'nib', 1);
CREATE ROLE ` + appUser + ` LOGIN PASSWORD '` + appPassword + `';
GRANT SELECT, INSERT, UPDATE, DELETE ON orders, order_items TO ` + appUser + `;
`

// The application's deletions, through the proxy, with sqlcommenter
// comments (values URL-encoded). The last one is the row the browser
// restores; order 43 and item 410 stay deleted, and item 410's reason
// holds markup, which the page must show as text.
const (
	otherDelete   = `DELETE FROM orders WHERE id = 43 /*actor='bob',reason='customer%27s%20second%20account'*/`
	otherReason   = `customer's second account`
	markupDelete  = `DELETE FROM order_items WHERE id = 410 /*actor='carol',reason='%3Cem%3Ewrong%3C%2Fem%3E%20colour%3Cimg%20src%3Dx%3E'*/`
	markupReason  = `<em>wrong</em> colour<img src=x>`
	targetDelete  = `DELETE FROM orders WHERE id = 42 /*actor='alice',reason='duplicate%20order'*/`
	actor, reason = "alice", "duplicate order"
)

// TestConsoleInBrowser: see the package doc.
func TestConsoleInBrowser(t *testing.T) {
	for _, need := range []string{"/usr/bin/chromium", "testdata/node_modules/playwright-core/package.json"} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("the browser test needs %s: %v; run scripts/ensure-browser.sh (make test-browser does)", need, err)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("the browser test needs node: %v; run scripts/ensure-browser.sh (make test-browser does)", err)
	}
	out := os.Getenv("TOMBSTONE_BROWSER_OUT")
	if out == "" {
		out = t.ArtifactDir()
	}
	bin := buildtest.Tombstone(t)
	pg := pgtest.Start(t, pgcluster.Options{})
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, schema)

	addrs := freeAddrs(t, 3)
	proxyAddr, consoleAddr, metricsAddr := addrs[0], addrs[1], addrs[2]
	var b strings.Builder
	fmt.Fprintf(&b, `listen: %s
upstream: %s
privileged_roles: [%s]
metrics: {listen: %s}
audit: {table: tombstone.audit_log}
tables:
  - {name: orders, deleted_by: deleted_by, deleted_reason: deleted_reason}
  - {name: order_items, deleted_by: deleted_by, deleted_reason: deleted_reason}
console:
  listen: %s
  dsn: ${TOMBSTONE_CONSOLE_DSN}
  users:
`, proxyAddr, pg.Addr(), pg.User, metricsAddr, consoleAddr)
	for _, u := range users {
		fmt.Fprintf(&b, "    - {name: %s, password_hash: %q, can: %s}\n", u.name, hashPassword(t, bin, u.password), u.can)
	}
	cfg := filepath.Join(t.TempDir(), "tombstone.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// The console's DSN comes from the environment, as the documented
	// configuration has it; migrate reads the same file.
	adminDSN := pg.DSN(db)
	t.Setenv("TOMBSTONE_CONSOLE_DSN", adminDSN)
	if o, err := exec.Command(bin, "migrate", "--config", cfg, "--dsn", adminDSN, "--apply").CombinedOutput(); err != nil {
		t.Fatalf("tombstone migrate --apply: %v\n%s\nconfig:\n%s", err, o, b.String())
	}

	consoleURL := "http://" + consoleAddr
	serveLog := startServe(t, bin, cfg, consoleURL)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	app, err := pgx.Connect(ctx, pgcluster.URL(proxyAddr, appUser, appPassword, db))
	if err != nil {
		t.Fatalf("connect to the proxy as %s: %v", appUser, err)
	}
	defer app.Close(ctx)
	for _, del := range []string{markupDelete, otherDelete, targetDelete} {
		tag, err := app.Exec(ctx, del)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("through the proxy as %s: %s: %v, %d rows; want DELETE 1", appUser, del, err, tag.RowsAffected())
		}
	}
	direct, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	// The deletion is soft and says who and why, or the browser's view of
	// it proves nothing.
	wantRows(t, ctx, direct, "after the DELETEs through the proxy",
		`SELECT 'orders', id, deleted_at IS NOT NULL, deleted_by, deleted_reason FROM orders WHERE id IN (41, 42, 43)
		 UNION ALL SELECT 'order_items', id, deleted_at IS NOT NULL, deleted_by, deleted_reason FROM order_items WHERE order_id IN (41, 42, 43) ORDER BY 1, 2`,
		"[order_items 410 true carol "+markupReason+"]",
		"[order_items 420 true alice duplicate order]",
		"[order_items 421 true alice duplicate order]",
		"[order_items 430 true bob "+otherReason+"]",
		"[orders 41 false NULL NULL]",
		"[orders 42 true alice duplicate order]",
		"[orders 43 true bob "+otherReason+"]")

	script := exec.CommandContext(ctx, "node", "console.js")
	script.Dir = "testdata"
	script.Env = append(os.Environ(),
		"CONSOLE_URL="+consoleURL,
		"SCREENSHOT_DIR="+out,
		"TABLE=public.orders",
		"CASCADE_TABLE=public.order_items",
		`KEY={"id":42}`,
		"ACTOR="+actor,
		"REASON="+reason,
		"CASCADED=2",
		`OTHER_KEY={"id":43}`,
		"OTHER_REASON="+otherReason,
		`CHILD_KEY={"id":420}`,
		`MARKUP_KEY={"id":410}`,
		"MARKUP_REASON="+markupReason,
		"DELETED_COUNT=2",
		"SUPPORT_USER="+users[0].name, "SUPPORT_PASSWORD="+users[0].password,
		"ADMIN_USER="+users[1].name, "ADMIN_PASSWORD="+users[1].password,
	)
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		script.Env = append(script.Env, "DOC_SCREENSHOT="+filepath.Join(buildtest.ModuleRoot(t), "docs", "console-table.png"))
	}
	script.WaitDelay = 5 * time.Second
	started := time.Now()
	o, err := script.CombinedOutput()
	t.Logf("testdata/console.js (%s), screenshots in %s:\n%s", time.Since(started).Round(time.Millisecond), out, o)
	if err != nil {
		log, _ := os.ReadFile(serveLog)
		t.Fatalf("testdata/console.js failed: %v (its output is above)\ntombstone serve log:\n%s", err, log)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(o)), "all checks passed") {
		t.Fatalf("testdata/console.js exited 0 without printing \"all checks passed\" last: it stopped early")
	}

	// Order 42 and both its items are live again; 43 and its item, and
	// item 410, are still deleted: neither the cross-site POST nor the
	// unconfirmed Purge changed anything.
	wantRows(t, ctx, direct, "after the browser's Restore (true: live)",
		`SELECT 'orders', id, deleted_at IS NULL FROM orders WHERE id IN (42, 43)
		 UNION ALL SELECT 'order_items', id, deleted_at IS NULL FROM order_items WHERE order_id IN (41, 42, 43) ORDER BY 1, 2`,
		"[order_items 410 false]",
		"[order_items 420 true]",
		"[order_items 421 true]",
		"[order_items 430 false]",
		"[orders 42 true]",
		"[orders 43 false]")
	wantRows(t, ctx, direct, "the audit log's restores and purges",
		`SELECT action, table_name, key::text, actor FROM tombstone.audit_log WHERE action <> 'delete' ORDER BY table_name, key::text`,
		`[restore public.order_items {"id": 420} console:support]`,
		`[restore public.order_items {"id": 421} console:support]`,
		`[restore public.orders {"id": 42} console:support]`)

	// The script sent one wrong password.
	if n := metric(t, "http://"+metricsAddr+"/metrics", "tombstone_console_login_failures_total"); n < 1 {
		t.Errorf("tombstone_console_login_failures_total is %v after a wrong password, want at least 1", n)
	}
}

// freeAddrs gives n loopback addresses with free ports.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		port, err := pgcluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", port)
	}
	return addrs
}

// hashPassword runs `tombstone hash-password` with the password on stdin.
func hashPassword(t *testing.T, bin, password string) string {
	t.Helper()
	cmd := exec.Command(bin, "hash-password")
	cmd.Stdin = strings.NewReader(password + "\n")
	o, err := cmd.Output()
	h := strings.TrimSpace(string(o))
	if err != nil || !strings.HasPrefix(h, "$2") {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("tombstone hash-password printed %q (%v), want a bcrypt hash\n%s", h, err, stderr)
	}
	return h
}

// startServe runs `tombstone serve` until the test ends, with its output in
// a log file whose path it returns, once the console answers HTTP (401:
// no credentials are sent). At cleanup it is stopped as an operator stops
// it, with SIGINT, and killed only if it has not exited 30s later.
func startServe(t *testing.T, bin, cfg, consoleURL string) string {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "tombstone.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		stop()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stop()
		<-exited
		logf.Close()
	})
	client := &http.Client{Timeout: 5 * time.Second}
	for deadline := time.Now().Add(time.Minute); ; {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("tombstone serve exited before the console answered at %s: %v\n%s", consoleURL, err, log)
		default:
		}
		if resp, err := client.Get(consoleURL + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return logPath
			}
			t.Fatalf("GET %s/ without credentials answered %s, want 401", consoleURL, resp.Status)
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("the console did not answer at %s within a minute of tombstone serve starting (is console.listen served?)\n%s", consoleURL, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantRows checks a query's rows, each rendered as fmt.Sprint of its values.
func wantRows(t *testing.T, ctx context.Context, c *pgx.Conn, what, sql string, want ...string) {
	t.Helper()
	rows, err := c.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, sql)
	}
	var got []string
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.ReplaceAll(fmt.Sprint(v), "<nil>", "NULL"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n%s\ngot:\n  %s\nwant:\n  %s", what, sql, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// metric reads one unlabelled sample from a Prometheus text page.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	for _, line := range strings.Split(string(page), "\n") {
		var v float64
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			if _, err := fmt.Sscan(f[1], &v); err == nil {
				return v
			}
		}
	}
	t.Errorf("GET %s has no sample %s", url, name)
	return -1
}
