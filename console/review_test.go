package console

// Probes of the adversarial review of the console: each failed before
// the fix it names.

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Parallel guesses must not outrun the allowance: each one is checked
// against the bucket before bcrypt runs, not after, or a client sending
// many at once gets that many guesses per token.
func TestLoginRateLimitParallel(t *testing.T) {
	e := newEnv(t)
	// A real cost, so that the guesses overlap.
	h, err := bcrypt.GenerateFromPassword([]byte(supportPassword), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	if e.console.users, err = newUsers([]User{{Name: "support", PasswordHash: string(h), CanRestore: true}}); err != nil {
		t.Fatal(err)
	}
	const guesses = 20
	statuses := make([]int, guesses)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/tables", nil)
			req.SetBasicAuth("support", "guess")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	checked := 0
	for _, s := range statuses {
		switch s {
		case 401:
			checked++
		case 429:
		default:
			t.Errorf("a guess got %d, want 401 or 429", s)
		}
	}
	if checked > 5 {
		t.Errorf("%d of %d parallel guesses had their password checked; the allowance is 5 a minute", checked, guesses)
	}
	// The right password still works once the allowance refills, and
	// a success gives its token back.
	e.clock.t = e.clock.t.Add(12 * time.Second)
	for range 3 {
		if r := e.get(t, "/api/v1/tables"); r.status != 200 {
			t.Errorf("the right password 12 s later: %d %s; want 200", r.status, r.body)
		}
	}
}

// Addresses of one IPv6 /64 are one client: whoever has one has them
// all, and would otherwise get a fresh allowance with each.
func TestLoginRateLimitIPv6Prefix(t *testing.T) {
	e := newEnv(t)
	send := func(addr, pw string) int {
		req := httptest.NewRequest("GET", "/api/v1/tables", nil)
		req.RemoteAddr = addr
		req.SetBasicAuth("support", pw)
		w := httptest.NewRecorder()
		e.console.ServeHTTP(w, req)
		return w.Code
	}
	for i := range 5 {
		if s := send("[2001:db8:1:2::"+string(rune('a'+i))+"]:4000", "guess"); s != 401 {
			t.Fatalf("guess %d: %d, want 401", i+1, s)
		}
	}
	if s := send("[2001:db8:1:2:ffff::1]:4000", "guess"); s != 429 {
		t.Errorf("a sixth guess from another address of the same /64: %d, want 429", s)
	}
	if s := send("[2001:db8:1:3::1]:4000", supportPassword); s != 200 {
		t.Errorf("another /64: %d, want 200", s)
	}
	if s := send("192.0.2.7:4000", supportPassword); s != 200 {
		t.Errorf("an IPv4 client: %d, want 200", s)
	}
}

// An INSERT through the proxy writes its VALUES untouched, deleted_at
// included: an application can add a "deleted" row stamped 'infinity'
// or in the year 10000. Such a row must not take the table's page and
// listing down for every other row.
func TestOddDeletionStamps(t *testing.T) {
	e := newEnv(t)
	if _, err := e.conn.Exec(e.ctx, `INSERT INTO orders (id, customer_id, deleted_at, deleted_by) VALUES
		(97, 3, 'infinity', 'app'), (98, 3, '10000-01-01 00:00:00+00', 'app'), (99, 3, '-infinity', 'app')`); err != nil {
		t.Fatal(err)
	}
	p := e.deletedPage(t, "public.orders", "")
	stamps := map[string]string{}
	for _, r := range p.Rows {
		stamps[string(r.Key)] = r.DeletedAt
	}
	for key, want := range map[string]string{`{"id":97}`: "infinity", `{"id":98}`: "10000-01-01T00:00:00Z", `{"id":99}`: "-infinity", `{"id":30}`: "2026-03-03T10:00:00Z"} {
		if stamps[key] != want {
			t.Errorf("deleted_at of %s: %q, want %q (all: %v)", key, stamps[key], want, stamps)
		}
	}
	if len(p.Rows) != 10 {
		t.Errorf("%d rows, want 10: %v", len(p.Rows), p.keys())
	}
	// Paging passes over them too.
	var paged []string
	for q, pages := "?limit=4", 0; ; pages++ {
		if pages > 4 {
			t.Fatal("paging does not end")
		}
		pp := e.deletedPage(t, "public.orders", q)
		paged = append(paged, pp.keys()...)
		if pp.Next == "" {
			break
		}
		q = "?limit=4&after=" + url.QueryEscape(pp.Next)
	}
	if strings.Join(paged, " ") != strings.Join(p.keys(), " ") {
		t.Errorf("paged %v, want %v", paged, p.keys())
	}
	r := e.get(t, "/tables/public.orders")
	if r.status != 200 || !strings.Contains(r.body, `data-key="{&#34;id&#34;:97}"`) || !strings.Contains(r.body, ">infinity</time>") {
		t.Errorf("table page: %d\n%s", r.status, r.body)
	}
	if r := e.postJSON(t, "support", supportPassword, "/api/v1/tables/public.orders/restore", `{"key":{"id":97}}`); r.status != 200 {
		t.Errorf("restore of the row stamped infinity: %d %s", r.status, r.body)
	}
}

// A key of text the application chose (quotes, backslashes, a comment,
// line breaks, U+2028, HTML) goes from the page's data-key and form back
// to the restore and names exactly that row.
func TestHostileTextKeyRoundTrip(t *testing.T) {
	e := newEnv(t)
	evil := "x'); DELETE FROM customers; --\\\n\r\u2028\"<b>é\t"
	if _, err := e.conn.Exec(e.ctx, `INSERT INTO pairs (a, b, deleted_at) VALUES (1, $1, '2026-03-07 10:00:00+00'), (2, $1, NULL)`, evil); err != nil {
		t.Fatal(err)
	}
	p := e.deletedPage(t, "public.pairs", "?limit=1")
	if len(p.Rows) != 1 {
		t.Fatalf("rows %v", p.keys())
	}
	var key struct {
		B string
		A int
	}
	if err := json.Unmarshal(p.Rows[0].Key, &key); err != nil || key.B != evil || key.A != 1 {
		t.Fatalf("key %s (%v), want b=%q a=1", p.Rows[0].Key, err, evil)
	}
	page := e.get(t, "/tables/public.pairs")
	if strings.Contains(page.body, "<b>") {
		t.Errorf("the page holds the key's HTML unescaped:\n%s", page.body)
	}
	before := e.snapshot(t)
	r := e.form(t, "/tables/public.pairs/restore", e.srv.URL, url.Values{"key": {string(p.Rows[0].Key)}, "csrf_token": {e.console.csrfToken(&User{Name: "support"})}}, "support", supportPassword)
	if r.status != http.StatusSeeOther {
		t.Fatalf("form restore: %d %s", r.status, r.body)
	}
	var n int
	if err := e.conn.QueryRow(e.ctx, `SELECT count(*) FROM pairs WHERE b = $1 AND deleted_at IS NULL`, evil).Scan(&n); err != nil || n != 2 {
		t.Errorf("live rows with the hostile key: %d (%v), want 2", n, err)
	}
	if e.snapshot(t) == before {
		t.Error("nothing changed")
	}
	if got := e.deleted(t, "customers"); got != "1,2,5" {
		t.Errorf("deleted customers %s, want 1,2,5", got)
	}
}

// Junk sent to every endpoint gets a 4xx (JSON on the API), never a 5xx
// or a dropped connection, and changes nothing.
func TestJunkInput(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	cursor := func(vals ...string) string {
		b, _ := json.Marshal(vals)
		return url.QueryEscape(base64.RawURLEncoding.EncodeToString(b))
	}
	queries := []string{
		"since=yesterday", "until=2026-13-01", "since=99999-01-01", "limit=-1", "limit=0", "limit=501", "limit=99999999999999999999", "limit=1e3",
		"after=%%%", "after=" + cursor("x"), "after=" + cursor("not a time", "1"), "after=" + cursor("2026-03-01 10:00:00+00", "ten"),
		"after=" + cursor("2026-03-01 10:00:00+00", "\x00"), "after=" + cursor("infinity", "99999999999999999999"),
		"key=%7B", "key=" + url.QueryEscape(`{"id":"x"}`), "key=%00", "key=%FF", "key=" + url.QueryEscape(`{"id":1,"nope":2}`),
		"actor=%00", "actor=%FF%FE", "key=" + url.QueryEscape(`{"b":"\u0000","a":1}`),
	}
	bodies := []string{
		"", "null", "[]", "{", `{"key":null}`, `{"key":[]}`, `{"key":"x"}`, `{"key":{}}`, `{"key":{"id":null}}`, `{"key":{"id":{"a":1}}}`,
		`{"key":{"id":[1]}}`, `{"key":{"id":1e400}}`, `{"key":{"id":1.5}}`, `{"key":{"id":99999999999999999999999}}`, `{"key":{"id":"30"}}`,
		`{"key":{"id":true}}`, `{"key":{"id":"\u0000"}}`, `{"key":{"b":"\u0000","a":1}}`, `{"key":{"b":"\ud800","a":1}}`, "{\"key\":{\"b\":\"\xff\",\"a\":1}}",
		`{"key":{"a":1,"b":"x","a":2}}`, `{"key":{"id":30}}{}`, `{"key":{"id":30},"other":1}`, strings.Repeat("[", 20000),
		`{"key":{"a":2147483648,"b":"x"}}`, `{"key":{"a":-0,"b":"x"}}`,
	}
	tables := []string{"public.customers", "public.orders", "public.pairs", "public.staff", "public.nonesuch", "orders", "public.orders%00", "%2e%2e", "public.%22orders%22"}
	check := func(what string, r response, api bool) {
		t.Helper()
		if r.status >= 500 || r.status < 200 {
			t.Errorf("%s: %d %s", what, r.status, r.body)
		}
		if api && !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: Content-Type %q, want JSON", what, r.header.Get("Content-Type"))
		}
	}
	token := e.console.csrfToken(&User{Name: "dpo"})
	for _, table := range tables {
		for _, q := range queries {
			check("GET deleted of "+table+"?"+q, e.get(t, "/api/v1/tables/"+table+"/deleted?"+q), true)
			check("GET page of "+table+"?"+q, e.get(t, "/tables/"+table+"?"+q), false)
		}
		for _, action := range []string{"restore", "purge"} {
			for _, b := range bodies {
				check("POST "+action+" of "+table+" "+b, e.postJSON(t, "dpo", dpoPassword, "/api/v1/tables/"+table+"/"+action, b), true)
				for _, confirm := range []string{"", "yes"} {
					r := e.form(t, "/tables/"+table+"/"+action, e.srv.URL, url.Values{"key": {b}, "csrf_token": {token}, "confirm": {confirm}}, "dpo", dpoPassword)
					check("form "+action+" of "+table+" "+b, r, false)
				}
			}
			for _, m := range []string{"GET", "PUT", "DELETE", "PATCH", "OPTIONS"} {
				check(m+" "+action, e.do(t, m, "/api/v1/tables/"+table+"/"+action, "dpo", dpoPassword, `{"key":{"id":30}}`, "Content-Type", "application/json", "Origin", e.srv.URL), true)
			}
		}
	}
	e.unchanged(t, "junk", before)
}

// A restore racing the deletion of the row's parent: the parent check
// waits for the deleting transaction and then sees the parent deleted,
// so the restore is a conflict and brings nothing back.
func TestRestoreRacesParentDeletion(t *testing.T) {
	e := newEnv(t)
	tx, err := e.conn.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, "UPDATE customers SET deleted_at = pg_catalog.now() WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	done := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/tables/public.orders/restore", strings.NewReader(`{"key":{"id":30}}`))
		req.SetBasicAuth("support", supportPassword)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- response{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- response{status: resp.StatusCode, body: string(b)}
	}()
	// Wait until the restore waits for the deleting transaction's lock.
	for waiting := false; !waiting; {
		select {
		case r := <-done:
			t.Fatalf("the restore did not wait for the deletion of its parent: %d %s", r.status, r.body)
		case <-time.After(20 * time.Millisecond):
		}
		if err := e.console.opts.DB.QueryRow(e.ctx, "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(new(int)); err == nil {
			waiting = true
		}
	}
	if err := tx.Commit(e.ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.status != 409 || !strings.Contains(r.body, "customers") {
		t.Errorf("restore of order 30 while customer 3 was being deleted: %d %s; want 409 naming customers", r.status, r.body)
	}
	if got := e.deleted(t, "orders"); !strings.Contains(got, "30") {
		t.Errorf("deleted orders %s: order 30 came back under a deleted customer", got)
	}
}

// The purge's cascade takes every row referencing the purged one, not
// only what its deletion took: order 50, deleted on its own before,
// goes too. The confirmation page says so in numbers before anything is
// erased. A live note that a declared cascade (no constraint) lets
// reference deleted customer 5 makes the purge refuse: the console
// empties the trash and never erases a live row.
func TestPurgeConfirmationCounts(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	token := e.console.csrfToken(&User{Name: "dpo"})
	vals := url.Values{"key": {`{"id":5}`}, "csrf_token": {token}}
	r := e.form(t, "/tables/public.customers/purge", e.srv.URL, vals, "dpo", dpoPassword)
	want := `<p id="purge-removes">It erases 8 rows: public.order_lines 4, public.orders 2, public.notes 1, public.customers 1.</p>`
	if r.status != 200 || !strings.Contains(r.body, want) {
		t.Errorf("confirmation page: %d, want it to hold %s:\n%s", r.status, want, r.body)
	}
	e.unchanged(t, "the confirmation page", before)
	if a := e.audit(t); len(a) != 0 {
		t.Errorf("the dry run wrote the audit log: %q", a)
	}

	if _, err := e.conn.Exec(e.ctx, `INSERT INTO notes (id, customer_id) VALUES (99, 5)`); err != nil {
		t.Fatal(err)
	}
	before = e.snapshot(t)
	for _, confirm := range []string{"", "yes"} {
		vals.Set("confirm", confirm)
		r = e.form(t, "/tables/public.customers/purge", e.srv.URL, vals, "dpo", dpoPassword)
		if r.status != http.StatusSeeOther {
			t.Errorf("purge (confirm=%q) of customer 5 with a live note: %d %s; want 303 back to the table with an error", confirm, r.status, r.body)
		}
		page := e.do(t, "GET", "/tables/public.customers", "dpo", dpoPassword, "", "Cookie", cookieOf(t, r))
		if !strings.Contains(page.body, "public.notes holds 1 live row that would go with them") {
			t.Errorf("the page after a refused purge (confirm=%q) does not name the live row:\n%.3000s", confirm, page.body)
		}
		e.unchanged(t, "a purge that would take a live row", before)
	}
	if r := e.postJSON(t, "dpo", dpoPassword, "/api/v1/tables/public.customers/purge", `{"key":{"id":5}}`); r.status != 409 || !strings.Contains(r.body, "live row") {
		t.Errorf("API purge taking a live row: %d %s; want 409 naming the live row", r.status, r.body)
	}
	e.unchanged(t, "an API purge that would take a live row", before)

	// A key the purge cannot use says why before any confirmation.
	vals.Set("confirm", "")
	vals.Set("key", `{"id":3}`)
	r = e.form(t, "/tables/public.customers/purge", e.srv.URL, vals, "dpo", dpoPassword)
	if r.status != http.StatusSeeOther {
		t.Errorf("purge of live customer 3: %d %s; want 303 back to the table with an error", r.status, r.body)
	}
	e.unchanged(t, "an unconfirmable purge", before)
}

// A conflict's DETAIL quotes the key's values, which the application
// wrote and may make as long as it likes; the flash cookie carrying it
// must stay under the 4096 bytes browsers keep (a longer one is dropped,
// and the page would say nothing about why nothing was restored).
func TestLongConflictFlash(t *testing.T) {
	e := newEnv(t)
	if _, err := e.conn.Exec(e.ctx, `UPDATE customers SET email = pg_catalog.repeat('x', 100000) WHERE id IN (2, 7)`); err != nil {
		t.Fatal(err)
	}
	r := e.form(t, "/tables/public.customers/restore", e.srv.URL, url.Values{"key": {`{"id":2}`}, "csrf_token": {e.console.csrfToken(&User{Name: "support"})}}, "support", supportPassword)
	if r.status != http.StatusSeeOther {
		t.Fatalf("restore of customer 2: %d %s", r.status, r.body)
	}
	if n := len(r.header.Get("Set-Cookie")); n > 4096 {
		t.Errorf("the flash cookie is %d bytes long; browsers drop one over 4096", n)
	}
	page := e.do(t, "GET", "/tables/public.customers", "support", supportPassword, "", "Cookie", cookieOf(t, r))
	if !strings.Contains(page.body, `<div id="flash" class="error" role="status">Nothing was restored: duplicate key value violates unique constraint`) || !strings.Contains(page.body, "xxx…</div>") {
		t.Errorf("the page lacks the shortened conflict:\n%.3000s", page.body)
	}
}

// A table's name may hold any character; the index links to its page
// with the name escaped as the table page's own links are, not cut at a
// ? or # or split at a /.
func TestIndexLinksEscapeNames(t *testing.T) {
	e := newEnv(t)
	w := httptest.NewRecorder()
	e.console.render(w, 200, "index.html", map[string]any{"User": &User{Name: "support"}, "Tables": []tableInfo{{Name: "odd.a?b#c/d e"}}})
	if want := `href="/tables/odd.a%3Fb%23c%2Fd%20e"`; !strings.Contains(w.Body.String(), want) {
		t.Errorf("index page lacks %s:\n%s", want, w.Body.String())
	}
}
