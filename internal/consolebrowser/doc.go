// Package consolebrowser is the console's browser test (issue 15): a real
// Chromium, driven by playwright-core from testdata/console.js, logs in to
// a real `tombstone serve`, finds a row that the application deleted
// through the proxy with an actor and a reason, and clicks Restore; the Go
// test then checks in PostgreSQL that the row and the rows its deletion
// took with it are live again and that the audit log names the console
// user. The script also checks that a request without credentials gets
// 401, that a cross-site POST is refused with 403 and restores nothing,
// that a restore-only user has no Purge button, and saves a screenshot of
// each page.
//
// The test carries the build tag "browser" so that go test ./... on a
// machine without Chromium does not fail; under the tag a missing browser
// is a failure, never a skip. scripts/ensure-browser.sh (make
// test-browser) installs Debian's Chromium and the playwright-core pinned
// by testdata/package-lock.json; the browser is always /usr/bin/chromium,
// never one playwright downloads.
//
// Screenshots go to $TOMBSTONE_BROWSER_OUT (make test-browser sets
// bin/browser-test), else to the test's artifact directory (kept with go
// test -artifacts). With UPDATE_SCREENSHOT=1 the table page is also copied
// to docs/console-table.png, the README's picture.
//
// Like internal/clients it is an outermost layer: tests only, running the
// tombstone binary as a user does. Nothing imports it.
package consolebrowser
