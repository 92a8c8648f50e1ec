package e2e

import (
	"bytes"
	"context"
	"database/sql/driver"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

var (
	seedFlag       = flag.Uint64("seed", 0, "seed of TestDifferential's workload (0: $TOMBSTONE_DIFF_SEED, else random)")
	statementsFlag = flag.Int("statements", 2200, "statements in TestDifferential's workload")
)

func diffSeed(t *testing.T) uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	if s := os.Getenv("TOMBSTONE_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TOMBSTONE_DIFF_SEED=%q is not an unsigned integer", s)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

// TestDifferential runs one randomized workload twice, statement by
// statement: (a) through Tombstone as a non-privileged role against a
// database whose tables are soft-delete tables, and (b) directly against a
// database with the identical schema where deletes are real. Every answer
// must be the same: rows (as multisets unless the query orders by a unique
// key), command tags (so every DELETE reports the same count), errors (there
// must be none). Replay a failure with -seed N or TOMBSTONE_DIFF_SEED=N.
func TestDifferential(t *testing.T) {
	seed := diffSeed(t)
	t.Logf("seed %d (replay: go test ./internal/e2e -run 'TestDifferential$' -seed %d)", seed, seed)
	pg, dbSoft := newDB(t)
	_, dbReal := newDB(t)
	// The run takes 10-40 s on a loaded 2-core machine; leave room.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	soft := connect(t, proxytest.Start(t, pg, proxyConfig).DSN(appUser, appPassword, dbSoft))
	direct := connect(t, directDSN(pg, appUser, appPassword, dbReal))

	stats, failure := compareRun(ctx, soft, direct, newWorkload(seed), *statementsFlag)
	if failure != "" {
		t.Fatalf("seed %d, %s\nreplay: go test ./internal/e2e -run 'TestDifferential$' -seed %d -statements %d",
			seed, failure, seed, stats["statements"])
	}
	t.Logf("statements by kind: %v", stats)

	// The run must have exercised what it claims to compare; a generator
	// whose deletes never match or whose queries see empty tables would
	// compare nothing.
	if n := *statementsFlag; n >= 1000 {
		if stats["delete removing rows"] < stats["delete"]/4 || stats["query returning rows"] < stats["query"]/2 ||
			stats["simple protocol"] < n/4 || stats["extended protocol"] < n/4 {
			t.Errorf("workload too weak to prove anything: %v", stats)
		}
	}

	// Final state: the live rows Tombstone shows equal the rows left
	// after real deletes.
	for _, table := range []string{"teams", "users", "orders", "items"} {
		st := statement{SQL: "TABLE " + table, Mode: pgx.QueryExecModeSimpleProtocol}
		if d := execute(ctx, soft, st).diff(execute(ctx, direct, st), false); d != "" {
			t.Errorf("seed %d: final contents of %s differ:\n%s", seed, table, d)
		}
	}
	// And the deletes were soft: the rows are still on disk, marked, with
	// the login role recorded where the table asks for it.
	super := connect(t, directDSN(pg, pg.User, pg.Password, dbSoft))
	var marked, wrongBy int
	if err := super.QueryRow(ctx, `SELECT (SELECT count(*) FROM teams WHERE deleted_at IS NOT NULL)
	  + (SELECT count(*) FROM users WHERE removed_at IS NOT NULL) + (SELECT count(*) FROM orders WHERE gone_at IS NOT NULL),
	  (SELECT count(*) FROM users WHERE removed_at IS NOT NULL AND removed_by IS DISTINCT FROM $1)`, appUser).Scan(&marked, &wrongBy); err != nil {
		t.Fatal(err)
	}
	t.Logf("soft-deleted rows kept on disk: %d", marked)
	if marked == 0 || wrongBy != 0 {
		t.Errorf("after the workload, %d rows are marked deleted (want > 0) and %d users lack removed_by = %s (want 0)", marked, wrongBy, appUser)
	}
}

// compareRun runs n statements of w on both connections, statement by
// statement, and stops at the first difference, which failure describes.
// stats counts what the run exercised; stats["statements"] is how many
// statements ran, the failing one included.
func compareRun(ctx context.Context, soft, direct *pgx.Conn, w *workload, n int) (stats map[string]int, failure string) {
	stats = map[string]int{}
	for i := range n {
		st := w.next()
		stats["statements"]++
		a, b := execute(ctx, soft, st), execute(ctx, direct, st)
		if d := a.diff(b, st.Ordered); d != "" {
			return stats, fmt.Sprintf("statement %d (%s, mode %v) differs:\n  %s\n  args %v\n%s", i, st.Class, st.Mode, st.SQL, st.Args, d)
		}
		stats[st.Class]++
		switch {
		case strings.HasPrefix(b.tag, "DELETE ") && b.tag != "DELETE 0":
			stats["delete removing rows"]++
		case st.Class == "query" && len(b.rows) > 0:
			stats["query returning rows"]++
		}
		if st.Mode == pgx.QueryExecModeSimpleProtocol {
			stats["simple protocol"]++
		} else {
			stats["extended protocol"]++
		}
	}
	return stats, ""
}

// Several sessions share one proxy, and so its rewrite cache: two pairs run
// the same seed, so identical texts are rewritten and looked up
// concurrently. Each session must still see exactly what Postgres shows it.
func TestDifferentialConcurrentSessions(t *testing.T) {
	pg, _ := newDB(t)
	proxy := proxytest.Start(t, pg, proxyConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	seed := diffSeed(t)
	var wg sync.WaitGroup
	for g := range 4 {
		_, dbSoft := newDB(t)
		_, dbReal := newDB(t)
		soft := connect(t, proxy.DSN(appUser, appPassword, dbSoft))
		direct := connect(t, directDSN(pg, appUser, appPassword, dbReal))
		wg.Go(func() {
			if _, failure := compareRun(ctx, soft, direct, newWorkload(seed+uint64(g%2)), 400); failure != "" {
				t.Errorf("session %d, seed %d, %s", g, seed+uint64(g%2), failure)
			}
		})
	}
	wg.Wait()
}

// outcome is what one side answered to one statement.
type outcome struct {
	tag  string
	cols []string
	rows []string
	err  error
}

// execute runs st and collects everything the client can observe. For a
// DELETE ... RETURNING the soft-delete columns are left out (see
// statement.SoftReturning).
func execute(ctx context.Context, conn *pgx.Conn, st statement) outcome {
	if st.Class == "copy" {
		return copyOut(ctx, conn, st.SQL)
	}
	rows, err := conn.Query(ctx, st.SQL, append([]any{st.Mode}, st.Args...)...)
	if err != nil {
		return outcome{err: err}
	}
	defer rows.Close()
	var o outcome
	var keep []int
	for i, fd := range rows.FieldDescriptions() {
		if st.SoftReturning && softColumns[fd.Name] {
			continue
		}
		keep = append(keep, i)
		o.cols = append(o.cols, fd.Name)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return outcome{err: err}
		}
		cells := make([]string, len(keep))
		for j, i := range keep {
			cells[j] = formatValue(vals[i])
		}
		o.rows = append(o.rows, "("+strings.Join(cells, ", ")+")")
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return outcome{err: err}
	}
	o.tag = rows.CommandTag().String()
	return o
}

// copyOut runs a COPY ... TO STDOUT; each line is a row.
func copyOut(ctx context.Context, conn *pgx.Conn, sql string) outcome {
	var buf bytes.Buffer
	tag, err := conn.PgConn().CopyTo(ctx, &buf, sql)
	if err != nil {
		return outcome{err: err}
	}
	return outcome{tag: tag.String(), rows: strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")}
}

func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return strconv.Quote(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case driver.Valuer: // pgtype.Numeric and friends
		dv, err := v.Value()
		if err != nil {
			return fmt.Sprintf("<%T: %v>", v, err)
		}
		return formatValue(dv)
	default:
		return fmt.Sprint(v)
	}
}

// diff describes how o (through Tombstone) differs from want (direct), or
// returns "" when a client could not tell them apart.
func (o outcome) diff(want outcome, ordered bool) string {
	if o.err != nil || want.err != nil {
		return fmt.Sprintf("  error through Tombstone: %v\n  error direct:           %v", o.err, want.err)
	}
	var b strings.Builder
	if o.tag != want.tag {
		fmt.Fprintf(&b, "  command tag: Tombstone %q, direct %q\n", o.tag, want.tag)
	}
	if !slices.Equal(o.cols, want.cols) {
		fmt.Fprintf(&b, "  columns: Tombstone %v, direct %v\n", o.cols, want.cols)
	}
	if ordered && !slices.Equal(o.rows, want.rows) {
		fmt.Fprintf(&b, "  rows in order: Tombstone %v\n                 direct    %v\n", o.rows, want.rows)
	}
	extra, missing := multisetDiff(o.rows, want.rows)
	if len(extra) > 0 || len(missing) > 0 {
		fmt.Fprintf(&b, "  rows only through Tombstone (%d): %v\n  rows only direct (%d): %v\n", len(extra), head(extra), len(missing), head(missing))
	}
	return b.String()
}

// multisetDiff returns the rows of a not in b and of b not in a, counting
// duplicates.
func multisetDiff(a, b []string) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, r := range a {
		count[r]++
	}
	for _, r := range b {
		count[r]--
	}
	for _, r := range a {
		if count[r] > 0 {
			onlyA = append(onlyA, r)
			count[r]--
		}
	}
	for _, r := range b {
		if count[r] < 0 {
			onlyB = append(onlyB, r)
			count[r]++
		}
	}
	return onlyA, onlyB
}

func head(rows []string) []string {
	if len(rows) > 10 {
		return append(rows[:10:10], fmt.Sprintf("... %d more", len(rows)-10))
	}
	return rows
}

// The generator must be deterministic, or a printed seed would not replay.
func TestWorkloadReplays(t *testing.T) {
	a, b := newWorkload(42), newWorkload(42)
	for i := range 500 {
		x, y := a.next(), b.next()
		if x.SQL != y.SQL || fmt.Sprint(x.Args) != fmt.Sprint(y.Args) || x.Mode != y.Mode {
			t.Fatalf("statement %d differs for the same seed:\n%s %v\n%s %v", i, x.SQL, x.Args, y.SQL, y.Args)
		}
	}
}
