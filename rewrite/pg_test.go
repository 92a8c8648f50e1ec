package rewrite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

// TestGoldenOnPostgres runs every golden case that has a rewrite (or must
// stay unchanged) against real Postgres, twice: the rewritten SQL on a
// database where deleted rows carry deleted_at, and the original SQL on an
// identical database where those rows were really deleted. Both run in a
// transaction that is rolled back. They must return the same rows and row
// counts (ignoring the deleted_at and deleted_by columns, which only the
// soft side has values in), leave the same live rows behind, and the soft
// side must not have touched any row that was already deleted. This proves
// both that each rewrite is valid SQL and that its semantics are exactly
// those of a real delete, outer joins included.
func TestGoldenOnPostgres(t *testing.T) {
	s := pgtest.Shared(t)
	schema, err := os.ReadFile("testdata/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	p := testPolicy(t)
	softDB, hardDB := pgtest.CreateDB(t, s), pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, softDB, string(schema))
	pgtest.Exec(t, s, hardDB, string(schema))
	for _, tb := range p.Tables() {
		pgtest.Exec(t, s, hardDB, "DELETE FROM "+tb.QualifiedName()+" WHERE "+tb.DeletedAt+" IS NOT NULL")
	}
	ctx := context.Background()
	soft, hard := connect(t, s.DSN(softDB)), connect(t, s.DSN(hardDB))
	tables := tableNames(t, soft)

	r := New(p, 1<<20)
	ran := 0
	for _, f := range loadGolden(t) {
		for _, c := range f.cases {
			if c.Error != "" || c.NoExec != "" {
				continue
			}
			ran++
			t.Run(strings.TrimSuffix(strings.TrimPrefix(f.path, "testdata/"), ".yaml")+"/"+c.Name, func(t *testing.T) {
				softSQL := c.SQL
				if !c.Unchanged {
					softSQL = c.Want
				}
				softSetup := c.Setup
				if c.Setup != "" {
					if res, _, err := r.Rewrite(c.Setup); err != nil {
						t.Fatalf("setup refused: %v", err)
					} else if res != nil {
						softSetup = res.SQL
					}
				}
				got, err := runCase(ctx, soft, softSetup, softSQL, tables)
				if err != nil {
					t.Fatalf("rewritten SQL failed on Postgres: %v\n%s", err, softSQL)
				}
				want, err := runCase(ctx, hard, c.Setup, c.SQL, tables)
				if err != nil {
					t.Fatalf("original SQL failed on the hard-delete database: %v\n%s", err, c.SQL)
				}
				explain := explains(t, c.SQL)
				if len(got.results) != len(want.results) {
					t.Fatalf("%d results, want %d", len(got.results), len(want.results))
				}
				for i := range got.results {
					if got.results[i].rowsAffected != want.results[i].rowsAffected {
						t.Errorf("statement %d affected %d rows, a real delete gives %d\n%s", i, got.results[i].rowsAffected, want.results[i].rowsAffected, softSQL)
					}
					if i < len(explain) && explain[i] {
						continue // plans differ by design
					}
					if !slices.Equal(got.results[i].rows, want.results[i].rows) {
						t.Errorf("statement %d rows differ from a real delete\nrewritten: %s\n got:  %q\n want: %q", i, softSQL, got.results[i].rows, want.results[i].rows)
					}
				}
				for tb, rows := range want.live {
					if got.live[tb] != rows {
						t.Errorf("live rows of %s differ after the statement\n got:  %s\n want: %s", tb, got.live[tb], rows)
					}
				}
				for _, row := range got.deletedBefore {
					if !slices.Contains(got.deletedAfter, row) {
						t.Errorf("the statement changed an already deleted row: %s", row)
					}
				}
			})
		}
	}
	if ran < 50 {
		t.Fatalf("only %d golden cases executed; the golden files lost their executable cases", ran)
	}
}

type caseResult struct {
	rowsAffected int64
	rows         []string // sorted; deleted_at and deleted_by left out
}

type caseRun struct {
	results       []caseResult
	live          map[string]string // table -> its live rows, sorted JSON
	deletedBefore []string
	deletedAfter  []string
}

func connect(t *testing.T, dsn string) *pgconn.PgConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func tableNames(t *testing.T, c *pgconn.PgConn) []string {
	t.Helper()
	res := c.ExecParams(context.Background(),
		"SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables WHERE schemaname IN ('public', 's1') ORDER BY 1",
		nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var names []string
	for _, row := range res.Rows {
		names = append(names, string(row[0]))
	}
	return names
}

// runCase runs setup and sql in a transaction it rolls back, and records
// what the statements returned and the tables' state afterwards.
func runCase(ctx context.Context, c *pgconn.PgConn, setup, sql string, tables []string) (run caseRun, err error) {
	if _, err := c.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		return run, err
	}
	defer func() {
		if _, rbErr := c.Exec(ctx, "ROLLBACK").ReadAll(); rbErr != nil && err == nil {
			err = rbErr
		}
	}()
	if setup != "" {
		if _, err := c.Exec(ctx, setup).ReadAll(); err != nil {
			return run, fmt.Errorf("setup: %w", err)
		}
	}
	if run.deletedBefore, err = deletedRows(ctx, c, tables); err != nil {
		return run, err
	}
	if isCopyTo(sql) {
		var buf bytes.Buffer
		tag, err := c.CopyTo(ctx, &buf, sql)
		if err != nil {
			return run, err
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		slices.Sort(lines)
		run.results = []caseResult{{rowsAffected: tag.RowsAffected(), rows: lines}}
	} else {
		results, err := c.Exec(ctx, sql).ReadAll()
		if err != nil {
			return run, err
		}
		for _, res := range results {
			run.results = append(run.results, resultRows(res))
		}
	}
	run.live = map[string]string{}
	for _, tb := range tables {
		q := "SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '') FROM (SELECT to_jsonb(t) - 'deleted_at' - 'deleted_by' AS x FROM ONLY " + tb + " t" +
			" WHERE (to_jsonb(t)->>'deleted_at') IS NULL) s"
		res := c.ExecParams(ctx, q, nil, nil, nil, nil).Read()
		if res.Err != nil {
			return run, res.Err
		}
		run.live[tb] = string(res.Rows[0][0])
	}
	run.deletedAfter, err = deletedRows(ctx, c, tables)
	return run, err
}

// deletedRows lists every row that carries a deleted_at, as JSON.
func deletedRows(ctx context.Context, c *pgconn.PgConn, tables []string) ([]string, error) {
	var rows []string
	for _, tb := range tables {
		res := c.ExecParams(ctx, "SELECT to_jsonb(t)::text FROM ONLY "+tb+" t WHERE (to_jsonb(t)->>'deleted_at') IS NOT NULL", nil, nil, nil, nil).Read()
		if res.Err != nil {
			return nil, res.Err
		}
		for _, r := range res.Rows {
			rows = append(rows, tb+" "+string(r[0]))
		}
	}
	return rows, nil
}

func resultRows(res *pgconn.Result) caseResult {
	keep := make([]bool, len(res.FieldDescriptions))
	for i, fd := range res.FieldDescriptions {
		keep[i] = fd.Name != "deleted_at" && fd.Name != "deleted_by"
	}
	out := caseResult{rowsAffected: res.CommandTag.RowsAffected()}
	for _, row := range res.Rows {
		var b strings.Builder
		for i, v := range row {
			if !keep[i] {
				continue
			}
			if v == nil {
				b.WriteString("NULL")
			} else {
				fmt.Fprintf(&b, "%q", v)
			}
			b.WriteByte('|')
		}
		out.rows = append(out.rows, b.String())
	}
	slices.Sort(out.rows)
	return out
}

func isCopyTo(sql string) bool {
	tree, err := pg.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return false
	}
	cp := tree.Stmts[0].Stmt.GetCopyStmt()
	return cp != nil && !cp.IsFrom
}

// explains flags the statements whose output is a plan.
func explains(t *testing.T, sql string) []bool {
	tree, err := pg.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	var out []bool
	for _, s := range tree.Stmts {
		out = append(out, s.Stmt.GetExplainStmt() != nil)
	}
	return out
}

// softDB returns a connection to a fresh database holding the golden
// schema with its soft-deleted rows, and a function that sends a text the
// way the proxy would: rewritten when the rewriter parses it.
func softDB(t *testing.T) (*pgconn.PgConn, func(sql string) ([]*pgconn.Result, error)) {
	t.Helper()
	s := pgtest.Shared(t)
	schema, err := os.ReadFile("testdata/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.CreateDB(t, s)
	pgtest.Exec(t, s, db, string(schema))
	c := connect(t, s.DSN(db))
	r := New(testPolicy(t), 1<<20)
	send := func(sql string) ([]*pgconn.Result, error) {
		res, _, err := r.Rewrite(sql)
		if err != nil {
			t.Fatalf("%s: refused: %v", sql, err)
		}
		if res != nil {
			sql = res.SQL
		}
		return c.Exec(context.Background(), sql).ReadAll()
	}
	return c, send
}

func queryRows(t *testing.T, c *pgconn.PgConn, sql string) []string {
	t.Helper()
	res := c.ExecParams(context.Background(), sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatalf("%s: %v", sql, res.Err)
	}
	var rows []string
	for _, r := range res.Rows {
		rows = append(rows, string(bytes.Join(r, []byte("|"))))
	}
	return rows
}

// A view made through Tombstone over one soft-delete table must not be
// automatically updatable: DELETE FROM the view names no configured
// table, so Tombstone passes it, and Postgres would delete for good.
func TestViewIsNotAutoUpdatable(t *testing.T) {
	c, send := softDB(t)
	if _, err := send("CREATE VIEW every_contact AS SELECT * FROM contacts"); err != nil {
		t.Fatal(err)
	}
	_, err := send("DELETE FROM every_contact WHERE id = 1")
	if err == nil || !strings.Contains(err.Error(), "cannot delete from view") {
		t.Fatalf("DELETE FROM view: got %v, want \"cannot delete from view\"", err)
	}
	_, err = send("UPDATE every_contact SET deleted_at = NULL")
	if err == nil || !strings.Contains(err.Error(), "cannot update view") {
		t.Fatalf("UPDATE view: got %v, want \"cannot update view\"", err)
	}
	if got := queryRows(t, c, "SELECT count(*) FROM contacts"); !slices.Equal(got, []string{"9"}) {
		t.Errorf("contacts holds %v rows after the refused deletes, want 9", got)
	}
	got := queryRows(t, c, "SELECT id FROM every_contact ORDER BY id")
	if want := []string{"1", "2", "4", "6", "7", "12"}; !slices.Equal(got, want) {
		t.Errorf("view shows %v, want the live contacts %v", got, want)
	}
}

// ON CONFLICT DO UPDATE must neither change nor undelete nor return a
// soft-deleted row that holds the conflicting key.
func TestOnConflictLeavesDeletedRowsAlone(t *testing.T) {
	c, send := softDB(t)
	res, err := send("INSERT INTO contacts VALUES (3, 'cid2', 2) ON CONFLICT (id) DO UPDATE SET name = excluded.name, deleted_at = NULL RETURNING *")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res[0].Rows); n != 0 || res[0].CommandTag.RowsAffected() != 0 {
		t.Errorf("upsert onto a deleted row returned %d rows (%s), want none", n, res[0].CommandTag)
	}
	if got := queryRows(t, c, "SELECT name, deleted_at IS NOT NULL FROM contacts WHERE id = 3"); !slices.Equal(got, []string{"cid|t"}) {
		t.Errorf("deleted row 3 is now %v, want it unchanged and still deleted (cid|t)", got)
	}
	res, err = send("INSERT INTO contacts VALUES (1, 'ann2', 1) ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING name")
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != "ann2" {
		t.Errorf("upsert onto a live row returned %v, want the updated row", res[0].Rows)
	}
}
