package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

// A target is one way to reach a database of its own: straight to
// Postgres or through Tombstone. Tests run the same client work on each
// and compare the results.
type target struct {
	name string
	dsn  string
}

// targets makes two fresh databases set up by setupSQL, one reached
// directly and one through a proxy.
func targets(t *testing.T, pg *pgtest.Server, setupSQL string) []target {
	p := proxytest.Start(t, pg, "")
	direct, proxied := pgtest.CreateDB(t, pg), pgtest.CreateDB(t, pg)
	if setupSQL != "" {
		pgtest.Exec(t, pg, direct, setupSQL)
		pgtest.Exec(t, pg, proxied, setupSQL)
	}
	return []target{
		{"direct", pg.DSN(direct)},
		{"proxied", p.DSN(pg.User, pg.Password, proxied)},
	}
}

// compare runs fn against each target and fails unless all results are
// deeply equal.
func compare[T any](t *testing.T, ts []target, fn func(t *testing.T, dsn string) T) T {
	t.Helper()
	var first T
	for i, tg := range ts {
		got := fn(t, tg.dsn)
		if i == 0 {
			first = got
			continue
		}
		if !reflect.DeepEqual(first, got) {
			t.Fatalf("%s and %s differ:\n%s: %#v\n%s: %#v", ts[0].name, tg.name, ts[0].name, first, tg.name, got)
		}
	}
	return first
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err != nil {
		return "non-pg error: " + err.Error()
	}
	return ""
}

func TestPgxQueriesMatchDirect(t *testing.T) {
	pg := pgtest.Shared(t)
	ts := targets(t, pg, `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, tags text[], doc jsonb);
		INSERT INTO items SELECT g, 'item ' || g, g * 1.5, ARRAY['a','b'], jsonb_build_object('g', g) FROM generate_series(1, 500) g`)
	type outcome struct {
		Rows      [][]any
		Tags      []string
		Errs      []string
		Notices   []string
		AppName   string
		AfterFail int
	}
	got := compare(t, ts, func(t *testing.T, dsn string) outcome {
		ctx := testCtx(t)
		var o outcome
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { o.Notices = append(o.Notices, n.Severity+" "+n.Message) }
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		rows, err := c.Query(ctx, "SELECT id, name, price::text, tags, doc FROM items WHERE id <= $1 ORDER BY id", 20)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			o.Rows = append(o.Rows, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"UPDATE items SET price = price + 1 WHERE id < 10", "DELETE FROM items WHERE id > 490", "INSERT INTO items (id) VALUES (1000), (1001)", "SELECT 1 FROM items LIMIT 7"} {
			tag, err := c.Exec(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			o.Tags = append(o.Tags, tag.String())
		}
		_, err = c.Exec(ctx, "SELEC 1")
		o.Errs = append(o.Errs, pgCode(err))
		_, err = c.Exec(ctx, "INSERT INTO items (id) VALUES (1)")
		o.Errs = append(o.Errs, pgCode(err))
		_, err = c.Exec(ctx, "DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful'; END $$")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "SET application_name = 'tombstone-test'"); err != nil {
			t.Fatal(err)
		}
		o.AppName = c.PgConn().ParameterStatus("application_name")
		if err := c.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&o.AfterFail); err != nil {
			t.Fatal(err)
		}
		return o
	})
	if len(got.Rows) != 20 || got.AppName != "tombstone-test" || len(got.Notices) != 2 ||
		!reflect.DeepEqual(got.Tags, []string{"UPDATE 9", "DELETE 10", "INSERT 0 2", "SELECT 7"}) ||
		!reflect.DeepEqual(got.Errs, []string{"42601", "23505"}) {
		t.Fatalf("unexpected outcome (same on both paths): %+v", got)
	}
}

func TestPgxBatchPipelineMatchesDirect(t *testing.T) {
	pg := pgtest.Shared(t)
	ts := targets(t, pg, "CREATE TABLE b (id int PRIMARY KEY, v text)")
	type outcome struct {
		Results []string
		Final   []string
	}
	got := compare(t, ts, func(t *testing.T, dsn string) outcome {
		ctx := testCtx(t)
		c := connect(t, dsn)
		var o outcome
		// One round trip of many Parse/Bind/Execute and a single Sync; an
		// error in the middle must skip the rest exactly as Postgres does.
		for _, failing := range []bool{false, true} {
			batch := &pgx.Batch{}
			for i := 0; i < 50; i++ {
				batch.Queue("INSERT INTO b VALUES ($1, $2)", i+boolInt(failing)*1000, fmt.Sprint("v", i))
			}
			if failing {
				batch.Queue("INSERT INTO b VALUES (1000, 'dup')")
			}
			batch.Queue("SELECT count(*) FROM b")
			batch.Queue("DELETE FROM b WHERE id % 2 = 0")
			o.Results = append(o.Results, batchResults(ctx, c, batch)...)
		}
		rows, _ := c.Query(ctx, "SELECT id::text || v FROM b ORDER BY id")
		o.Final, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		return o
	})
	if len(got.Final) != 25 {
		t.Fatalf("want 25 rows left (the failing batch rolled back), got %d: %v", len(got.Final), got.Final)
	}
}

// batchResults sends a batch as one pipeline and returns "tag|SQLSTATE"
// for each statement.
func batchResults(ctx context.Context, c *pgx.Conn, batch *pgx.Batch) []string {
	br := c.SendBatch(ctx, batch)
	defer br.Close()
	got := make([]string, batch.Len())
	for i := range got {
		tag, err := br.Exec()
		got[i] = tag.String() + "|" + pgCode(err)
	}
	return got
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPgxCopyMatchesDirect(t *testing.T) {
	pg := pgtest.Shared(t)
	ts := targets(t, pg, "CREATE TABLE c (id int, payload text)")
	rowsIn := make([][]any, 20000)
	for i := range rowsIn {
		rowsIn[i] = []any{i, strings.Repeat("x", i%97) + "\t\\\n,\"'"}
	}
	type outcome struct {
		Copied int64
		Out    string
		BadErr string
	}
	got := compare(t, ts, func(t *testing.T, dsn string) outcome {
		ctx := testCtx(t)
		c := connect(t, dsn)
		n, err := c.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"id", "payload"}, pgx.CopyFromRows(rowsIn))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := c.PgConn().CopyTo(ctx, &out, "COPY (SELECT * FROM c ORDER BY id) TO STDOUT WITH (FORMAT csv)"); err != nil {
			t.Fatal(err)
		}
		// A failing COPY FROM (bad data) must leave the session usable.
		_, err = c.PgConn().CopyFrom(ctx, strings.NewReader("1\tok\nnot-a-number\tbad\n"), "COPY c FROM STDIN")
		o := outcome{Copied: n, Out: out.String(), BadErr: pgCode(err)}
		var cnt int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM c").Scan(&cnt); err != nil || cnt != n {
			t.Fatalf("after failed COPY: count %d, %v", cnt, err)
		}
		return o
	})
	if got.Copied != 20000 || strings.Count(got.Out, "\n") < 20000 || got.BadErr != "22P02" {
		t.Fatalf("copied %d, %d output lines, bad copy error %q", got.Copied, strings.Count(got.Out, "\n"), got.BadErr)
	}
}

func TestListenNotifyThroughProxy(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "")
	ctx := testCtx(t)
	listener := connect(t, p.DSN(pg.User, pg.Password, ""))
	notifier := connect(t, p.DSN(pg.User, pg.Password, ""))
	if _, err := listener.Exec(ctx, "LISTEN tomb_events"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := notifier.Exec(ctx, "SELECT pg_notify('tomb_events', $1)", fmt.Sprint("payload ", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		n, err := listener.WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n.Channel != "tomb_events" || n.Payload != fmt.Sprint("payload ", i) {
			t.Fatalf("notification %d: %+v", i, n)
		}
	}
}

func TestContextCancelCancelsQueryThroughProxy(t *testing.T) {
	pg := pgtest.Shared(t)
	p := proxytest.Start(t, pg, "")
	cfg, err := pgx.ParseConfig(p.DSN(pg.User, pg.Password, ""))
	if err != nil {
		t.Fatal(err)
	}
	// Send a CancelRequest on context cancellation (pgx's default closes
	// the socket instead) and keep the connection: it must stay usable.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: time.Minute}
	}
	c, err := pgx.ConnectConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	watchCtx := testCtx(t)
	go func() {
		// Cancel once the query is running on the server.
		watcher, err := pgx.Connect(watchCtx, pg.DSN(""))
		if err != nil {
			return
		}
		defer watcher.Close(context.Background())
		for {
			var n int
			if err := watcher.QueryRow(watchCtx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND state = 'active'").Scan(&n); err != nil {
				return
			}
			if n > 0 {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_, err = c.Exec(ctx, "SELECT pg_sleep(60) /* cancel me */")
	if code := pgCode(err); code != "57014" {
		t.Fatalf("want query_canceled (57014), got %v", err)
	}
	var one int
	if err := c.QueryRow(testCtx(t), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("connection not usable after cancel: %v", err)
	}
}

// pgxSimple as the first query argument makes pgx use the simple protocol.
var pgxSimple = pgx.QueryExecModeSimpleProtocol
