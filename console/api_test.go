package console

import (
	"encoding/json"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

type deletedPage struct {
	Rows []struct {
		Key           json.RawMessage `json:"key"`
		DeletedAt     string          `json:"deleted_at"`
		DeletedBy     *string         `json:"deleted_by"`
		DeletedReason *string         `json:"deleted_reason"`
		Cascaded      int64           `json:"cascaded"`
		Row           map[string]any  `json:"row"`
	} `json:"rows"`
	Next string `json:"next"`
}

func (e *env) deletedPage(t *testing.T, table, query string) deletedPage {
	t.Helper()
	r := e.get(t, "/api/v1/tables/"+table+"/deleted"+query)
	if r.status != 200 {
		t.Fatalf("GET deleted of %s%s: %d %s", table, query, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var p deletedPage
	if err := json.Unmarshal([]byte(r.body), &p); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return p
}

// keys lists a page's keys as their JSON.
func (p deletedPage) keys() []string {
	var out []string
	for _, r := range p.Rows {
		out = append(out, string(r.Key))
	}
	return out
}

func TestAPITables(t *testing.T) {
	e := newEnv(t)
	r := e.get(t, "/api/v1/tables")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var got struct{ Tables []tableInfo }
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	want := []tableInfo{
		{"public.customers", 3, true, false}, {"public.orders", 7, true, false}, {"public.order_lines", 14, true, false}, {"public.notes", 3, true, false},
		{"public.staff", 5, true, false}, {"public.pairs", 2, true, false},
	}
	if !reflect.DeepEqual(got.Tables, want) {
		t.Errorf("tables\n%+v\nwant\n%+v", got.Tables, want)
	}
	r = e.do(t, "GET", "/api/v1/tables", "dpo", dpoPassword, "")
	if !strings.Contains(r.body, `"can_purge":true`) {
		t.Errorf("dpo's tables: %s; want can_purge true", r.body)
	}
}

func TestAPIDeleted(t *testing.T) {
	e := newEnv(t)
	p := e.deletedPage(t, "public.customers", "")
	if got, want := p.keys(), []string{`{"id":5}`, `{"id":2}`, `{"id":1}`}; !slices.Equal(got, want) {
		t.Fatalf("customers' deleted rows %v, want %v (newest first)", got, want)
	}
	c1 := p.Rows[2]
	if c1.DeletedAt != "2026-03-01T10:00:00Z" || *c1.DeletedBy != "mallory" || *c1.DeletedReason != "<script>alert(1)</script>" ||
		c1.Cascaded != 7 || c1.Row["email"] != "c1@example.com" || p.Next != "" {
		t.Errorf("customer 1: %+v, next %q", c1, p.Next)
	}
	// Customer 5's deletion took order 51, its lines and note 5, not
	// order 50 and its lines, deleted before with a stamp of their own.
	if p.Rows[0].Cascaded != 4 || p.Rows[1].Cascaded != 7 {
		t.Errorf("cascaded of customers 5 and 2: %d, %d; want 4 and 7", p.Rows[0].Cascaded, p.Rows[1].Cascaded)
	}
	// A key onto its own table: staff 1 took 2, 3 and 4; 5 went alone.
	staff := e.deletedPage(t, "public.staff", "")
	cascaded := map[string]int64{}
	for i, k := range staff.keys() {
		cascaded[k] = staff.Rows[i].Cascaded
	}
	if want := map[string]int64{`{"id":5}`: 0, `{"id":4}`: 0, `{"id":3}`: 0, `{"id":2}`: 2, `{"id":1}`: 3}; !reflect.DeepEqual(cascaded, want) {
		t.Errorf("staff cascaded %v, want %v", cascaded, want)
	}

	// Paging: three at a time through orders' seven, same order as one page.
	all := e.deletedPage(t, "public.orders", "").keys()
	var paged []string
	q := "?limit=3"
	for pages := 0; ; pages++ {
		if pages > 4 {
			t.Fatal("paging does not end")
		}
		p := e.deletedPage(t, "public.orders", q)
		paged = append(paged, p.keys()...)
		if p.Next == "" {
			break
		}
		q = "?limit=3&after=" + url.QueryEscape(p.Next)
	}
	if want := []string{`{"id":51}`, `{"id":50}`, `{"id":30}`, `{"id":21}`, `{"id":20}`, `{"id":11}`, `{"id":10}`}; !slices.Equal(all, want) || !slices.Equal(paged, all) {
		t.Errorf("orders %v, paged %v; want %v", all, paged, want)
	}

	for _, c := range []struct {
		table, query string
		want         []string
	}{
		{"public.orders", "?actor=alice", []string{`{"id":50}`, `{"id":30}`}},
		{"public.orders", "?since=2026-03-02T10:00:00Z&until=2026-03-04T10:00", []string{`{"id":50}`, `{"id":30}`, `{"id":21}`, `{"id":20}`}},
		{"public.orders", "?key=30", []string{`{"id":30}`}},
		{"public.orders", "?key=" + url.QueryEscape(`{"id": 11}`), []string{`{"id":11}`}},
		{"public.pairs", "", []string{`{"b":"x","a":2}`, `{"b":"x","a":1}`}},
		{"public.pairs", "?key=" + url.QueryEscape(`{"a": 1, "b": "x"}`), []string{`{"b":"x","a":1}`}},
	} {
		if got := e.deletedPage(t, c.table, c.query).keys(); !slices.Equal(got, c.want) {
			t.Errorf("%s%s: %v, want %v", c.table, c.query, got, c.want)
		}
	}
}
