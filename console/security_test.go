package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	e.console.limit = newLimiter(100, e.clock.now) // TestLoginRateLimit tests the limit
	for _, c := range []struct{ user, pw string }{{"", ""}, {"support", "wrong"}, {"nobody", supportPassword}, {"Support", supportPassword}} {
		for _, path := range []string{"/", "/api/v1/tables", "/static/console.css"} {
			r := e.do(t, "GET", path, c.user, c.pw, "")
			if r.status != 401 || r.header.Get("WWW-Authenticate") != `Basic realm="Tombstone console", charset="UTF-8"` {
				t.Errorf("GET %s as %q/%q: %d, WWW-Authenticate %q; want 401 asking for basic auth", path, c.user, c.pw, r.status, r.header.Get("WWW-Authenticate"))
			}
			if strings.Contains(r.body, "public.customers") {
				t.Errorf("GET %s as %q/%q: the 401 shows data: %s", path, c.user, c.pw, r.body)
			}
		}
	}
	// Three user/password pairs were wrong, at three paths each; a
	// missing login is no failure.
	if n := failures(t, e); n != 9 {
		t.Errorf("failures counted: %v, want 9", n)
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	// Five failures are allowed a minute.
	for i := 0; i < 5; i++ {
		if r := e.do(t, "GET", "/api/v1/tables", "support", "guess", ""); r.status != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, r.status)
		}
	}
	for _, c := range []struct{ user, pw string }{{"support", "guess"}, {"support", supportPassword}} {
		r := e.do(t, "GET", "/api/v1/tables", c.user, c.pw, "")
		if r.status != 429 || r.header.Get("Retry-After") != "12" || !strings.Contains(r.body, "too many failed logins") {
			t.Errorf("after five failures, %s/%s: %d, Retry-After %q, %s; want 429 and Retry-After 12", c.user, c.pw, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if n := failures(t, e); n != 7 {
		t.Errorf("failures counted: %v, want 7 (five wrong passwords, two refused by the limit)", n)
	}
	// The allowance refills at five a minute: one try every 12 s.
	e.clock.t = e.clock.t.Add(12 * time.Second)
	if r := e.get(t, "/api/v1/tables"); r.status != 200 {
		t.Errorf("12 s later, the right password: %d %s; want 200", r.status, r.body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	for _, r := range []response{
		e.get(t, "/"), e.get(t, "/tables/public.customers"), e.get(t, "/api/v1/tables"), e.get(t, "/static/console.css"),
		e.do(t, "GET", "/", "", "", ""), e.get(t, "/tables/public.nonesuch"),
	} {
		for k, want := range map[string]string{
			"Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin",
			"Cache-Control":           "no-store",
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("response %d: %s: %q, want %q", r.status, k, got, want)
			}
		}
	}
	if r := e.get(t, "/static/console.css"); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %q", r.status, r.header.Get("Content-Type"))
	}
	if r := e.get(t, "/"); strings.Contains(r.body, "<script") || strings.Contains(r.body, "style=") || strings.Contains(r.body, "<style") {
		t.Errorf("the index page has inline script or style:\n%s", r.body)
	}
}

// form posts a form as support with the given Origin ("" for none).
func (e *env) form(t *testing.T, path, origin string, values url.Values, user, pw string) response {
	t.Helper()
	h := []string{"Content-Type", "application/x-www-form-urlencoded"}
	if origin != "" {
		h = append(h, "Origin", origin)
	}
	return e.do(t, "POST", path, user, pw, values.Encode(), h...)
}

func TestCrossSiteRequests(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	token := e.console.csrfToken(&User{Name: "support"})
	key := url.Values{"key": {`{"id":30}`}, "csrf_token": {token}}
	for _, c := range []struct {
		what string
		r    response
	}{
		{"API POST from another site", e.do(t, "POST", "/api/v1/tables/public.orders/restore", "support", supportPassword, `{"key":{"id":30}}`,
			"Content-Type", "application/json", "Origin", "https://evil.example")},
		{"API POST with another site's Referer", e.do(t, "POST", "/api/v1/tables/public.orders/restore", "support", supportPassword, `{"key":{"id":30}}`,
			"Content-Type", "application/json", "Referer", "https://evil.example/page")},
		{"API POST as a form", e.do(t, "POST", "/api/v1/tables/public.orders/restore", "support", supportPassword, `key={"id":30}`,
			"Content-Type", "text/plain")},
		{"form POST from another site, with the token", e.form(t, "/tables/public.orders/restore", "https://evil.example", key, "support", supportPassword)},
		{"form POST without Origin or Referer", e.form(t, "/tables/public.orders/restore", "", key, "support", supportPassword)},
		{"form POST without token", e.form(t, "/tables/public.orders/restore", e.srv.URL, url.Values{"key": {`{"id":30}`}}, "support", supportPassword)},
		{"form POST with another user's token", e.form(t, "/tables/public.orders/restore", e.srv.URL,
			url.Values{"key": {`{"id":30}`}, "csrf_token": {e.console.csrfToken(&User{Name: "dpo"})}}, "support", supportPassword)},
		{"form POST with Origin null", e.form(t, "/tables/public.orders/restore", "null", key, "support", supportPassword)},
	} {
		if c.r.status != http.StatusForbidden {
			t.Errorf("%s: %d %s; want 403", c.what, c.r.status, c.r.body)
		}
		e.unchanged(t, c.what, before)
	}
	// The page's own form, with Origin and token, works.
	r := e.form(t, "/tables/public.orders/restore", e.srv.URL, key, "support", supportPassword)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/tables/public.orders" {
		t.Fatalf("form restore: %d %v %s; want 303 to the table page", r.status, r.header, r.body)
	}
	if got := e.deleted(t, "orders"); got != "10,11,20,21,50,51" {
		t.Errorf("deleted orders after the form restore: %s", got)
	}
}

// htpasswd -nbB writes $2y$ hashes; they log in like $2a$ ones.
func TestHtpasswdHash(t *testing.T) {
	e := newEnv(t)
	h := e.console.users.list[0].PasswordHash
	us, err := newUsers([]User{{Name: "support", PasswordHash: "$2y$" + h[4:], CanRestore: true}})
	if err != nil {
		t.Fatal(err)
	}
	e.console.users = us
	if r := e.get(t, "/api/v1/tables"); r.status != 200 {
		t.Errorf("a $2y$ hash: %d %s; want 200", r.status, r.body)
	}
}
