package e2e

import (
	"testing"
	"time"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
)

// A privileged login role gets no rewriting through Tombstone: it sees
// soft-deleted rows, can restore them, and can delete for real.
func TestPrivilegedRoleSeesRestoresAndPurges(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	app := connect(t, p.softDSN(appUser, appPassword))
	admin := connect(t, p.softDSN(pgcluster.SuperUser, pgcluster.SuperPassword))

	if tag, err := app.Exec(ctx, "DELETE FROM users WHERE user_id IN (5, 6)"); err != nil || tag.String() != "DELETE 2" {
		t.Fatalf("app DELETE: %q, %v", tag, err)
	}
	if n := scalar[int](t, app, "SELECT count(*) FROM users"); n != 38 {
		t.Errorf("app sees %d users after deleting 2 of 40", n)
	}
	bypassed := p.proxy.Metric(t, "tombstone_statements_total", "action", "bypassed")
	if n := scalar[int](t, admin, "SELECT count(*) FROM users"); n != 40 {
		t.Errorf("privileged role sees %d users through Tombstone, want all 40", n)
	}
	var at *time.Time
	var by string
	if err := admin.QueryRow(ctx, "SELECT removed_at, removed_by FROM users WHERE user_id = 5").Scan(&at, &by); err != nil || at == nil || by != appUser {
		t.Errorf("privileged role reads deleted user 5 as removed_at=%v removed_by=%q (%v); want a time and %q", at, by, err, appUser)
	}
	if tag, err := admin.Exec(ctx, "UPDATE users SET removed_at = NULL, removed_by = NULL WHERE user_id = 5"); err != nil || tag.String() != "UPDATE 1" {
		t.Errorf("restore: %q, %v", tag, err)
	}
	if n := scalar[int](t, app, "SELECT count(*) FROM users WHERE user_id = 5"); n != 1 {
		t.Errorf("restored user 5 is not visible to the app again")
	}
	if tag, err := admin.Exec(ctx, "DELETE FROM users WHERE user_id = 6"); err != nil || tag.String() != "DELETE 1" {
		t.Errorf("privileged hard delete: %q, %v", tag, err)
	}
	if n := scalar[int](t, p.super(t), "SELECT count(*) FROM users WHERE user_id = 6"); n != 0 {
		t.Errorf("a privileged DELETE through Tombstone left the row on disk")
	}
	if tag, err := admin.Exec(ctx, "TRUNCATE orders"); err != nil || tag.String() != "TRUNCATE TABLE" {
		t.Errorf("privileged TRUNCATE: %q, %v", tag, err)
	}
	if got := p.proxy.Metric(t, "tombstone_statements_total", "action", "bypassed"); got < bypassed+5 {
		t.Errorf("tombstone_statements_total{action=bypassed} went from %v to %v over 5 privileged statements", bypassed, got)
	}
}

// Shadow mode changes nothing on the wire: deletes are real, reads are
// unfiltered. It only counts what enforce mode would have rewritten.
func TestShadowModePassesThroughAndCounts(t *testing.T) {
	p := newPair(t, "mode: shadow\n"+proxyConfig)
	ctx := testCtx(t)
	app := connect(t, p.softDSN(appUser, appPassword))
	// A row soft-deleted earlier (say, while enforcing): shadow mode
	// does not hide it.
	if _, err := p.super(t).Exec(ctx, "UPDATE users SET removed_at = now() WHERE user_id = 9"); err != nil {
		t.Fatal(err)
	}
	if tag, err := app.Exec(ctx, "DELETE FROM users WHERE user_id IN (7, 8)"); err != nil || tag.String() != "DELETE 2" {
		t.Errorf("DELETE in shadow mode: %q, %v", tag, err)
	}
	if n := scalar[int](t, p.super(t), "SELECT count(*) FROM users WHERE user_id IN (7, 8)"); n != 0 {
		t.Errorf("shadow mode soft-deleted instead of passing the DELETE through: %d rows left", n)
	}
	if n := scalar[int](t, app, "SELECT count(*) FROM users"); n != 38 {
		t.Errorf("shadow mode read sees %d users, want 38 (unfiltered: user 9 included)", n)
	}
	if got := p.proxy.Metric(t, "tombstone_rewrites_total", "table", "users", "kind", "delete"); got != 1 {
		t.Errorf("tombstone_rewrites_total{table=users,kind=delete} = %v, want 1", got)
	}
	if got := p.proxy.Metric(t, "tombstone_rewrites_total", "table", "users", "kind", "select"); got < 1 {
		t.Errorf("tombstone_rewrites_total{table=users,kind=select} = %v, want >= 1", got)
	}
	// What enforce mode would refuse runs, and is counted as a refusal.
	if tag, err := app.Exec(ctx, "TRUNCATE orders"); err != nil || tag.String() != "TRUNCATE TABLE" {
		t.Errorf("TRUNCATE in shadow mode: %q, %v; want it passed through", tag, err)
	}
	if got := p.proxy.Metric(t, "tombstone_refusals_total", "reason", "truncate"); got != 1 {
		t.Errorf("tombstone_refusals_total{reason=truncate} = %v in shadow mode, want 1", got)
	}
	if got := p.proxy.Metric(t, "tombstone_statements_total", "action", "rewritten"); got != 0 {
		t.Errorf("tombstone_statements_total{action=rewritten} = %v in shadow mode, want 0", got)
	}
}
