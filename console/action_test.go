package console

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// tableCounts reads {"<field>": [{"table": ..., "rows": n}, ...]}.
func tableCounts(t *testing.T, r response, field string) map[string]int64 {
	t.Helper()
	var got map[string][]struct {
		Table string
		Rows  int64
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	counts := map[string]int64{}
	for _, c := range got[field] {
		counts[c.Table] = c.Rows
	}
	return counts
}

func TestAPIRestoreCascade(t *testing.T) {
	e := newEnv(t)
	r := e.postJSON(t, "support", supportPassword, "/api/v1/tables/public.customers/restore", `{"key": {"id": 1}}`)
	if r.status != 200 {
		t.Fatalf("restore customer 1: %d %s", r.status, r.body)
	}
	want := map[string]int64{"public.customers": 1, "public.orders": 2, "public.order_lines": 4, "public.notes": 1}
	if counts := tableCounts(t, r, "restored"); !reflect.DeepEqual(counts, want) {
		t.Errorf("restored %v, want %v", counts, want)
	}
	for table, want := range map[string]string{"customers": "2,5", "orders": "20,21,30,50,51", "order_lines": "200,201,210,211,300,301,500,501,510,511", "notes": "2,5"} {
		if got := e.deleted(t, table); got != want {
			t.Errorf("deleted %s after the restore: %s, want %s", table, got, want)
		}
	}
	audit := e.audit(t)
	wantAudit := []string{
		`restore public.customers {"id": 1} console:support`, `restore public.notes {"id": 1} console:support`,
		`restore public.order_lines {"id": 100} console:support`, `restore public.order_lines {"id": 101} console:support`,
		`restore public.order_lines {"id": 110} console:support`, `restore public.order_lines {"id": 111} console:support`,
		`restore public.orders {"id": 10} console:support`, `restore public.orders {"id": 11} console:support`,
	}
	if !slices.Equal(audit, wantAudit) {
		t.Errorf("audit log\n  %s\nwant\n  %s", strings.Join(audit, "\n  "), strings.Join(wantAudit, "\n  "))
	}
	// Restored already: nothing of that key is deleted any more.
	before := e.snapshot(t)
	if r := e.postJSON(t, "support", supportPassword, "/api/v1/tables/public.customers/restore", `{"key": {"id": 1}}`); r.status != 404 || !strings.Contains(r.body, `"error"`) {
		t.Errorf("second restore: %d %s; want 404", r.status, r.body)
	}
	e.unchanged(t, "a restore of a live row", before)
}

func TestAPIRestoreConflicts(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	for _, c := range []struct {
		path, body, detail string
	}{
		{"/api/v1/tables/public.customers/restore", `{"key": {"id": 2}}`, "Key (email)=(c2@example.com) already exists."},
		{"/api/v1/tables/public.orders/restore", `{"key": {"id": 50}}`, "customers"},
	} {
		r := e.postJSON(t, "support", supportPassword, c.path, c.body)
		var got struct{ Error, Detail string }
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatalf("%s: %v: %s", c.body, err, r.body)
		}
		if r.status != 409 || !strings.Contains(got.Error, "nothing was restored") || !strings.Contains(got.Detail, c.detail) {
			t.Errorf("%s %s: %d %s; want 409 with a detail naming %q", c.path, c.body, r.status, r.body, c.detail)
		}
		t.Logf("%s %s: %s", c.path, c.body, r.body)
		e.unchanged(t, c.path+" "+c.body, before)
	}
}

func TestAPIPurge(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	r := e.postJSON(t, "support", supportPassword, "/api/v1/tables/public.orders/purge", `{"key": {"id": 30}}`)
	if r.status != 403 {
		t.Errorf("purge by a restore-only user: %d %s; want 403", r.status, r.body)
	}
	e.unchanged(t, "a refused purge", before)

	r = e.postJSON(t, "dpo", dpoPassword, "/api/v1/tables/public.orders/purge", `{"key": {"id": 30}}`)
	if r.status != 200 {
		t.Fatalf("purge: %d %s", r.status, r.body)
	}
	counts := tableCounts(t, r, "purged")
	if want := map[string]int64{"public.orders": 1, "public.order_lines": 2}; !reflect.DeepEqual(counts, want) {
		t.Errorf("purged %v, want %v", counts, want)
	}
	var n int
	if err := e.conn.QueryRow(e.ctx, "SELECT (SELECT count(*) FROM orders WHERE id = 30) + (SELECT count(*) FROM order_lines WHERE order_id = 30)").Scan(&n); err != nil || n != 0 {
		t.Errorf("order 30 and its lines: %d rows left (%v)", n, err)
	}
	if audit, want := e.audit(t), []string{
		`purge public.order_lines {"id": 300} console:dpo`, `purge public.order_lines {"id": 301} console:dpo`, `purge public.orders {"id": 30} console:dpo`,
	}; !slices.Equal(audit, want) {
		t.Errorf("audit log %q, want %q", audit, want)
	}
	// A reference that does not cascade holds the row: 409, nothing
	// erased. (Erase reads foreign keys from the database itself.)
	if _, err := e.conn.Exec(e.ctx, "CREATE TABLE invoices (id int PRIMARY KEY, order_id bigint REFERENCES orders ON DELETE RESTRICT); INSERT INTO invoices VALUES (1, 20)"); err != nil {
		t.Fatal(err)
	}
	before = e.snapshot(t)
	r = e.postJSON(t, "dpo", dpoPassword, "/api/v1/tables/public.orders/purge", `{"key": {"id": 20}}`)
	if r.status != 409 || !strings.Contains(r.body, "erasure refused, nothing was removed") || !strings.Contains(r.body, "public.invoices holds 1 row") {
		t.Errorf("purge of an order an invoice references: %d %s; want 409 naming public.invoices", r.status, r.body)
	}
	e.unchanged(t, "a refused erasure", before)
	// Live rows are not the console's to erase.
	before = e.snapshot(t)
	if r := e.postJSON(t, "dpo", dpoPassword, "/api/v1/tables/public.orders/purge", `{"key": {"id": 31}}`); r.status != 404 {
		t.Errorf("purge of live order 31: %d %s; want 404", r.status, r.body)
	}
	e.unchanged(t, "a purge of a live row", before)
}

func TestAPIBadInput(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	big := `{"key": {"id": 1}, "pad": "` + strings.Repeat("x", 70<<10) + `"}`
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string // in the error
	}{
		{"POST", "/api/v1/tables/public.nonesuch/restore", `{"key": {"id": 1}}`, 404, "no soft-delete table public.nonesuch"},
		{"POST", "/api/v1/tables/customers/restore", `{"key": {"id": 1}}`, 404, "schema-qualified"},
		{"POST", "/api/v1/tables/pg_catalog.pg_authid/purge", `{"key": {"oid": 10}}`, 404, "no soft-delete table"},
		{"GET", "/api/v1/tables/public.nonesuch/deleted", "", 404, "no soft-delete table"},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": 1}`, 400, "not {\"key\""},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": 1}} {}`, 400, "more than one JSON value"},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": 1}, "where": "true"}`, 400, "unknown field"},
		{"POST", "/api/v1/tables/public.customers/restore", `{}`, 400, "no key"},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": [1]}`, 400, "not a JSON object"},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {}}`, 400, `lacks the column "id"`},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": 1, "email": "c1@example.com"}}`, 400, `the column "email", which is not in the primary key`},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": "1"}}`, 400, `"1" is not of type integer: write a JSON number`},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": 1.5}}`, 400, "1.5 is not a whole number that fits integer"},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": 1e99}}`, 400, "is not a whole number"},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": "1 OR true"}}`, 400, "not of type integer"},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": null}}`, 400, "not of type integer"},
		{"POST", "/api/v1/tables/public.pairs/restore", `{"key": {"a": 1}}`, 400, `lacks the column "b"`},
		{"POST", "/api/v1/tables/public.pairs/restore", `{"key": {"a": 1, "b": 2}}`, 400, "2 is not of type text: write a JSON string"},
		{"POST", "/api/v1/tables/public.customers/restore", big, 413, "larger than 64 KiB"},
		{"POST", "/api/v1/tables/public.customers/restore", `{"key": {"id": 999}}`, 404, "no deleted row"},
		{"GET", "/api/v1/tables/public.customers/restore", "", 405, "use POST"},
		{"DELETE", "/api/v1/tables/public.customers/deleted", "", 405, "use GET"},
		{"GET", "/api/v1/tables/public.customers/deleted?limit=501", "", 400, "limit"},
		{"GET", "/api/v1/tables/public.customers/deleted?since=yesterday", "", 400, "not a time"},
		{"GET", "/api/v1/tables/public.customers/deleted?after=bm9wZQ", "", 400, "not a cursor"},
		{"GET", "/api/v1/tables/public.customers/deleted?after=WyJub3QgYSB0aW1lIiwiMSJd", "", 400, "cannot read a value"},
		{"GET", "/api/v1/tables/public.staff/deleted?actor=bob", "", 400, "records no actor"},
		{"GET", "/api/v1/nonesuch", "", 404, "no such API endpoint"},
	} {
		var r response
		if c.method == "POST" {
			r = e.postJSON(t, "dpo", dpoPassword, c.path, c.body)
		} else {
			r = e.do(t, c.method, c.path, "dpo", dpoPassword, c.body)
		}
		var got struct{ Error string }
		err := json.Unmarshal([]byte(r.body), &got)
		if r.status != c.status || err != nil || !strings.Contains(got.Error, c.want) {
			t.Errorf("%s %s %.60s: %d %s; want %d with an error saying %q", c.method, c.path, c.body, r.status, r.body, c.status, c.want)
		}
		e.unchanged(t, c.method+" "+c.path+" "+c.body, before)
	}
}
