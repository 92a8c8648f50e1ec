package console

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// cookieOf returns the flash cookie a response set, as a Cookie header.
func cookieOf(t *testing.T, r response) string {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == flashCookie {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no flash cookie in %v", r.header)
	return ""
}

func TestPages(t *testing.T) {
	e := newEnv(t)
	index := e.get(t, "/")
	for _, want := range []string{
		`<table id="tables">`, `<tr data-table="public.customers">`,
		`<a class="table-link" href="/tables/public.customers">public.customers</a>`, `<td class="deleted-count">3</td>`,
		`<tr data-table="public.order_lines">`, `<td class="deleted-count">14</td>`,
	} {
		if !strings.Contains(index.body, want) {
			t.Errorf("index page lacks %s:\n%s", want, index.body)
		}
	}
	page := e.get(t, "/tables/public.customers")
	for _, want := range []string{
		`<form id="filter" method="get"`, `name="actor"`, `name="since"`, `name="until"`, `name="key"`, `<table id="deleted">`,
		`<tr class="deleted-row" data-key="{&#34;id&#34;:1}">`, `<td class="deleted-by">mallory</td>`, `<td class="cascaded">7</td>`,
		`<form class="restore" method="post" action="/tables/public.customers/restore">`, `<button type="submit" class="restore-button">Restore</button>`,
		`name="csrf_token" value="` + e.console.csrfToken(&User{Name: "support"}) + `"`,
		// The reason is a script, shown as text.
		`<td class="deleted-reason">&lt;script&gt;alert(1)&lt;/script&gt;</td>`,
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("table page lacks %s:\n%s", want, page.body)
		}
	}
	if strings.Contains(page.body, "<script>alert(1)") {
		t.Errorf("table page holds the row's script unescaped:\n%s", page.body)
	}
	if strings.Contains(page.body, "purge-button") {
		t.Errorf("a restore-only user sees a Purge button")
	}
	if dpo := e.do(t, "GET", "/tables/public.customers", "dpo", dpoPassword, ""); !strings.Contains(dpo.body, `<button type="submit" class="purge-button">Purge</button>`) {
		t.Errorf("dpo sees no Purge button:\n%s", dpo.body)
	}
	// Paging and filters as links.
	p1 := e.get(t, "/tables/public.orders?limit=1&actor=alice")
	next := regexp.MustCompile(`<a id="next-page" href="([^"]+)"`).FindStringSubmatch(p1.body)
	if next == nil || strings.Count(p1.body, `class="deleted-row"`) != 1 || !strings.Contains(p1.body, `data-key="{&#34;id&#34;:50}"`) {
		t.Fatalf("first page of two: %s", p1.body)
	}
	p2 := e.get(t, strings.ReplaceAll(next[1], "&amp;", "&"))
	if strings.Count(p2.body, `class="deleted-row"`) != 1 || !strings.Contains(p2.body, `data-key="{&#34;id&#34;:30}"`) || strings.Contains(p2.body, "next-page") || !strings.Contains(p2.body, `value="alice"`) {
		t.Errorf("second page (alice deleted two orders): %s", p2.body)
	}
	if r := e.get(t, "/tables/public.nonesuch"); r.status != 404 || !strings.Contains(r.body, `<div id="flash" class="error"`) {
		t.Errorf("unknown table page: %d %s", r.status, r.body)
	}
}

func TestPageRestoreFlash(t *testing.T) {
	e := newEnv(t)
	token := e.console.csrfToken(&User{Name: "support"})
	r := e.form(t, "/tables/public.customers/restore", e.srv.URL, url.Values{"key": {`{"id":1}`}, "csrf_token": {token}}, "support", supportPassword)
	if r.status != http.StatusSeeOther {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	page := e.do(t, "GET", "/tables/public.customers", "support", supportPassword, "", "Cookie", cookieOf(t, r))
	if want := `<div id="flash" class="ok" role="status">Restored 8 rows: public.customers 1, public.notes 1, public.order_lines 4, public.orders 2</div>`; !strings.Contains(page.body, want) {
		t.Errorf("page after the restore lacks %s:\n%s", want, page.body)
	}
	// A conflict says why, and restores nothing.
	before := e.snapshot(t)
	r = e.form(t, "/tables/public.customers/restore", e.srv.URL, url.Values{"key": {`{"id":2}`}, "csrf_token": {token}}, "support", supportPassword)
	page = e.do(t, "GET", "/tables/public.customers", "support", supportPassword, "", "Cookie", cookieOf(t, r))
	if want := `<div id="flash" class="error" role="status">Nothing was restored: duplicate key value violates unique constraint &#34;customers_email_live&#34;: Key (email)=(c2@example.com) already exists.</div>`; !strings.Contains(page.body, want) {
		t.Errorf("page after the conflict lacks %s:\n%s", want, page.body)
	}
	e.unchanged(t, "a conflicting restore from the page", before)
	// A forged flash cookie shows nothing.
	forged := e.do(t, "GET", "/tables/public.customers", "support", supportPassword, "", "Cookie", flashCookie+"=b2sKaGFja2Vk.00")
	if strings.Contains(forged.body, `id="flash"`) {
		t.Errorf("a forged flash cookie is shown: %s", forged.body)
	}
}

func TestPagePurgeConfirms(t *testing.T) {
	e := newEnv(t)
	token := e.console.csrfToken(&User{Name: "dpo"})
	before := e.snapshot(t)
	vals := url.Values{"key": {`{"id":5}`}, "csrf_token": {token}}
	r := e.form(t, "/tables/public.staff/purge", e.srv.URL, vals, "dpo", dpoPassword)
	if r.status != 200 || !strings.Contains(r.body, `<form id="confirm-purge"`) || !strings.Contains(r.body, `id="confirm-purge-button"`) {
		t.Fatalf("unconfirmed purge: %d %s; want the confirmation page", r.status, r.body)
	}
	e.unchanged(t, "an unconfirmed purge", before)
	if r := e.form(t, "/tables/public.staff/purge", e.srv.URL, url.Values{"key": {`{"id":5}`}, "csrf_token": {e.console.csrfToken(&User{Name: "support"})}, "confirm": {"yes"}}, "support", supportPassword); r.status != 403 {
		t.Errorf("confirmed purge by a restore-only user: %d; want 403", r.status)
	}
	e.unchanged(t, "a refused purge", before)
	vals.Set("confirm", "yes")
	r = e.form(t, "/tables/public.staff/purge", e.srv.URL, vals, "dpo", dpoPassword)
	if r.status != http.StatusSeeOther {
		t.Fatalf("confirmed purge: %d %s", r.status, r.body)
	}
	page := e.do(t, "GET", "/tables/public.staff", "dpo", dpoPassword, "", "Cookie", cookieOf(t, r))
	if want := `<div id="flash" class="ok" role="status">Purged 1 row for good: public.staff 1</div>`; !strings.Contains(page.body, want) {
		t.Errorf("page after the purge lacks %s:\n%s", want, page.body)
	}
	if got := e.deleted(t, "staff"); got != "1,2,3,4" {
		t.Errorf("deleted staff after purging 5: %s", got)
	}
	if a := e.audit(t); len(a) != 1 || a[0] != `purge public.staff {"id": 5} console:dpo` {
		t.Errorf("audit log %q", a)
	}
}
