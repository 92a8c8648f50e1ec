package rewrite

import (
	"slices"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tombstone-proxy/tombstone/policy"
)

// The splicer's output must mean what the engine's tree means: for every
// text, the spliced answer and the deparsed one parse to the same tree,
// locations aside (the differential check below). The deparsed answer is
// the engine's tree printed, so equal parses mean the proxy sends the
// statement the engine checked.

// zeroLocations clears every location, stmt_location and stmt_len under m.
func zeroLocations(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if n := fd.Name(); fd.Kind() == protoreflect.Int32Kind && (n == "location" || n == "stmt_location" || n == "stmt_len") {
			m.Clear(fd)
		}
		_ = eachMessage(fd, v, func(c protoreflect.Message) error {
			zeroLocations(c)
			return nil
		})
		return true
	})
}

// reflectedLocations is every location >= 0 under m, by reflection alone.
func reflectedLocations(m protoreflect.Message) []int32 {
	var out []int32
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.Int32Kind && fd.Name() == "location" && v.Int() >= 0 {
			out = append(out, int32(v.Int()))
		}
		_ = eachMessage(fd, v, func(c protoreflect.Message) error {
			out = append(out, reflectedLocations(c)...)
			return nil
		})
		return true
	})
	return out
}

// locationsAgree reports whether appendLocations, which reads common node
// kinds field by field, finds what reflection finds in sql's parse.
func locationsAgree(sql string) bool {
	tree, err := pg.Parse(sql)
	if err != nil {
		return true
	}
	for _, raw := range tree.Stmts {
		// Reflection does not see a location of 0 (proto3 leaves zero
		// values unset); appendLocations does.
		a := slices.DeleteFunc(appendLocations(nil, raw.Stmt), func(l int32) bool { return l == 0 })
		b := reflectedLocations(raw.Stmt.ProtoReflect())
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			return false
		}
	}
	return true
}

func TestLocationsMatchReflection(t *testing.T) {
	for _, sql := range templateCorpus(t) {
		if !locationsAgree(sql) {
			t.Errorf("appendLocations and reflection disagree on %s", sql)
		}
	}
}

// sameMeaning reports how the parses of a and b differ ("" when they do
// not, locations aside); skip is set when b, the deparsed text, does not
// parse (pg_query's printer has limits of its own, see deparseRoundTrips).
func sameMeaning(a, b string) (msg string, skip bool) {
	tb, err := pg.Parse(b)
	if err != nil {
		return "", true
	}
	ta, err := pg.Parse(a)
	if err != nil {
		return "spliced text does not parse: " + err.Error(), false
	}
	zeroLocations(ta.ProtoReflect())
	zeroLocations(tb.ProtoReflect())
	if !proto.Equal(ta, tb) {
		return "spliced and deparsed texts parse to different trees", false
	}
	return "", false
}

// spliceDiff rewrites sql with the splicer and without it and reports
// how the answers differ; spliced is set when the splicer made the
// answer (or the answer for the statements before a refusal).
func spliceDiff(p *policy.Policy, sql string) (msg string, spliced bool) {
	rs, rd := New(p, 0), New(p, 0)
	rd.deparseOnly = true
	a, _, ra := rs.Rewrite(sql)
	b, _, rb := rd.Rewrite(sql)
	if (ra == nil) != (rb == nil) {
		return "one refused, the other did not", false
	}
	if ra != nil {
		if ra.Reason != rb.Reason || ra.Code != rb.Code || ra.Message != rb.Message {
			return "different refusals", false
		}
		a, b = ra.Before, rb.Before
	}
	if (a == nil) != (b == nil) {
		return "one result is nil", false
	}
	if a == nil {
		return "", false
	}
	if a.Changed != b.Changed || !slices.Equal(a.Statements, b.Statements) || !slices.Equal(a.Applied, b.Applied) {
		return "different facts", false
	}
	if !a.spliced {
		if a.SQL != b.SQL {
			return "not spliced, yet not the deparsed text", false
		}
		return "", false
	}
	if b.spliced {
		return "deparseOnly rewriter spliced", true
	}
	msg, skip := sameMeaning(a.SQL, b.SQL)
	if skip {
		return "", true
	}
	if msg != "" {
		return msg + "\n spliced:  " + a.SQL + "\n deparsed: " + b.SQL, true
	}
	return "", true
}

// checkSplice fails t when the splicer's answer for sql differs in
// meaning from the deparsed one.
func checkSplice(t testing.TB, p *policy.Policy, sql string) {
	t.Helper()
	if msg, _ := spliceDiff(p, sql); msg != "" {
		t.Errorf("%s\n sql: %s", msg, sql)
	}
}

// TestSpliceMatchesDeparse runs the differential check over the golden
// cases, the FuzzRewrite seeds and the template cases, and logs how many
// of the changed golden cases the splicer answers.
func TestSpliceMatchesDeparse(t *testing.T) {
	p := testPolicy(t)
	changed, spliced := 0, 0
	for _, f := range loadGolden(t) {
		for _, c := range f.cases {
			msg, s := spliceDiff(p, c.SQL)
			if msg != "" {
				t.Errorf("%s/%s: %s\n sql: %s", f.path, c.Name, msg, c.SQL)
			}
			if c.Want != "" {
				changed++
				if s {
					spliced++
				}
			}
		}
	}
	for _, sql := range append(templateCorpus(t), spliceCases...) {
		checkSplice(t, p, sql)
	}
	t.Logf("splicer answers %d of %d rewritten golden cases", spliced, changed)
	if spliced == 0 {
		t.Fatal("the splicer answered no golden case")
	}
}

// spliceCases stress the boundaries the splicer finds: set operations
// with trailing clauses, nesting, labels that look like keywords.
var spliceCases = []string{
	"SELECT id FROM contacts UNION ALL SELECT id FROM orders WHERE amount > 1 ORDER BY 1 LIMIT 2 OFFSET 1",
	"(SELECT id FROM contacts LIMIT 1) UNION ALL SELECT id FROM orders",
	"WITH x AS (SELECT 1 AS id) SELECT id FROM x UNION SELECT id FROM contacts INTERSECT SELECT id FROM orders o WHERE o.id = 2",
	"SELECT * FROM (SELECT id FROM contacts UNION SELECT id FROM orders) u WHERE u.id = 1",
	"INSERT INTO archive SELECT id, name FROM contacts UNION SELECT id, note FROM orders ON CONFLICT DO NOTHING",
	"SELECT id FROM contacts WHERE id IN (SELECT contact_id FROM orders UNION SELECT 1) FOR UPDATE",
	"SELECT a AS from, b AS where FROM contacts AS c WHERE c.order = 1 GROUP BY 1 HAVING count(*) > 1 WINDOW w AS (ORDER BY 1)",
	"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM orders",
	"SELECT * FROM contacts c LEFT JOIN orders o ON left(o.note, 1) = 'x' JOIN notes n ON n.id = c.id",
	"SELECT * FROM notes n LEFT JOIN orders o LEFT JOIN contacts c ON c.id = o.contact_id ON o.id = n.id",
	"UPDATE orders SET amount = amount IS DISTINCT FROM 1 FROM contacts c WHERE c.id = orders.contact_id RETURNING *",
	"DELETE FROM contacts * WHERE id = 1",
	"DELETE /* c */ FROM ONLY contacts AS x USING orders o WHERE o.contact_id = x.id RETURNING x.id",
	"WITH gone AS (DELETE FROM contacts WHERE id = 1 RETURNING id) SELECT * FROM gone UNION SELECT id FROM orders",
	"PREPARE p(int) AS SELECT * FROM contacts WHERE id = $1; EXPLAIN ANALYZE SELECT * FROM orders",
	"DECLARE c CURSOR FOR SELECT * FROM contacts ORDER BY id",
	"SELECT 1; SELECT * FROM contacts; -- end\n",
}

// The check itself must fail when the spliced text means something else.
func TestSameMeaningCatchesDifferences(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"SELECT * FROM t WHERE (a = 1) AND t.d IS NULL", "SELECT * FROM t WHERE a = 1 AND t.d IS NULL", true},
		{"SELECT * FROM t WHERE (a OR b) AND t.d IS NULL", "SELECT * FROM t WHERE (a OR b) AND t.d IS NULL", true},
		{"SELECT * FROM t WHERE a OR b AND t.d IS NULL", "SELECT * FROM t WHERE (a OR b) AND t.d IS NULL", false},
		{"SELECT * FROM t  /* c */ WHERE x", "SELECT * FROM t WHERE x", true},
		{"SELECT * FROM t LEFT JOIN u ON (u.a = t.a) AND u.d IS NULL", "SELECT * FROM t LEFT JOIN u ON u.a = t.a WHERE u.d IS NULL", false},
	} {
		msg, skip := sameMeaning(c.a, c.b)
		if skip || (msg == "") != c.same {
			t.Errorf("%q vs %q: %q (skip %v), want same=%v", c.a, c.b, msg, skip, c.same)
		}
	}
}

// Spliced output keeps the client's text: formatting, comments where they
// were, statements no rule changed byte for byte.
func TestSpliceKeepsClientText(t *testing.T) {
	r := New(testPolicy(t), 0)
	for _, c := range []struct{ sql, want string }{
		{"SELECT id\n  FROM contacts /*traceparent='00-ab-cd-01'*/\n WHERE id = 1 -- by key\n ORDER BY id",
			"SELECT id\n  FROM contacts /*traceparent='00-ab-cd-01'*/\n WHERE (id = 1) AND \"contacts\".\"deleted_at\" IS NULL -- by key\n ORDER BY id"},
		{"select 1; SELECT * FROM contacts c", `select 1; SELECT * FROM contacts c WHERE "c"."deleted_at" IS NULL`},
		{"SELECT * FROM notes n LEFT JOIN contacts c ON c.id = n.id OR c.id = 0 WHERE n.x",
			`SELECT * FROM notes n LEFT JOIN contacts c ON (c.id = n.id OR c.id = 0) AND "c"."deleted_at" IS NULL WHERE n.x`},
		{"DELETE FROM contacts AS c USING notes n WHERE c.id = n.id RETURNING c.id",
			`UPDATE contacts AS c SET "deleted_at" = (SELECT pg_catalog.clock_timestamp()) FROM notes n WHERE (c.id = n.id) AND "c"."deleted_at" IS NULL RETURNING c.id`},
		{"UPDATE contacts SET name = 'x' -- why\n", "UPDATE contacts SET name = 'x' WHERE \"contacts\".\"deleted_at\" IS NULL -- why\n"},
		{"SELECT a AS where FROM contacts WHERE x IS DISTINCT FROM y", `SELECT a AS where FROM contacts WHERE (x IS DISTINCT FROM y) AND "contacts"."deleted_at" IS NULL`},
		{"INSERT INTO archive (id) SELECT id FROM contacts ON CONFLICT DO NOTHING RETURNING id",
			`INSERT INTO archive (id) SELECT id FROM contacts WHERE "contacts"."deleted_at" IS NULL ON CONFLICT DO NOTHING RETURNING id`},
		{"SELECT id FROM contacts UNION (SELECT id FROM orders o) EXCEPT SELECT 1 FROM contacts c ORDER BY 1",
			`SELECT id FROM contacts WHERE "contacts"."deleted_at" IS NULL UNION (SELECT id FROM orders o WHERE "o"."deleted_at" IS NULL) EXCEPT SELECT 1 FROM contacts c WHERE "c"."deleted_at" IS NULL ORDER BY 1`},
		{"EXPLAIN (COSTS OFF) DELETE FROM contacts WHERE id = 1",
			`EXPLAIN (COSTS OFF) UPDATE contacts SET "deleted_at" = (SELECT pg_catalog.clock_timestamp()) WHERE (id = 1) AND "contacts"."deleted_at" IS NULL`},
	} {
		res := mustRewrite(t, r, c.sql)
		if !res.spliced || res.SQL != c.want {
			t.Errorf("%q:\n got  %q (spliced %v)\n want %q", c.sql, res.SQL, res.spliced, c.want)
		}
		checkSplice(t, r.policy, c.sql)
	}
}

// A spliced soft delete reads its actor from the client's comment, which
// stays where it was; a text the splicer cannot take (COPY has no text
// form) is deparsed with each statement's comments appended after it.
func TestSpliceAndFallbackKeepComments(t *testing.T) {
	r := New(testPolicy(t), 0)
	res := mustRewrite(t, r, "DELETE FROM orders /*actor='bob'*/ WHERE id = 1")
	if !res.spliced || !strings.Contains(res.SQL, "COALESCE('bob', ") ||
		!strings.HasPrefix(res.SQL, "UPDATE orders SET ") || !strings.Contains(res.SQL, " /*actor='bob'*/ WHERE (id = 1) AND ") {
		t.Errorf("spliced delete: %s", res.SQL)
	}
	res = mustRewrite(t, r, "SELECT 1 /* a */; COPY contacts TO STDOUT -- b\n")
	if res.spliced || !strings.HasSuffix(res.SQL, "/* a */; COPY (SELECT * FROM ONLY contacts WHERE deleted_at IS NULL) TO STDOUT -- b\n") {
		t.Errorf("deparsed fallback: %q", res.SQL)
	}
}

// FuzzSplice runs the differential check on any text.
func FuzzSplice(f *testing.F) {
	for _, sql := range slices.Concat(templateCorpus(f), spliceCases, probeCases) {
		f.Add(sql)
	}
	p := testPolicy(f)
	f.Fuzz(func(t *testing.T, sql string) {
		checkSplice(t, p, sql)
		if !locationsAgree(sql) {
			t.Errorf("appendLocations and reflection disagree on %s", sql)
		}
	})
}
