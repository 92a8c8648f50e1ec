package proxy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/proxy"
)

// The allow-list's OIDs are those of the functions libpq's large-object
// API looks up (fe-lobj.c, lo_initialize: these names in pg_catalog).
func TestLargeObjectFunctionOIDs(t *testing.T) {
	pg := pgtest.Shared(t)
	c := connect(t, pg.DSN(""))
	rows, err := c.Query(testCtx(t), `SELECT oid, proname FROM pg_catalog.pg_proc
		WHERE pronamespace = 'pg_catalog'::regnamespace AND proname IN ('lo_open', 'lo_close', 'lo_creat', 'lo_create',
			'lo_unlink', 'lo_lseek', 'lo_lseek64', 'lo_tell', 'lo_tell64', 'lo_truncate', 'lo_truncate64', 'loread', 'lowrite')`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint32]string{}
	for rows.Next() {
		var oid uint32
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			t.Fatal(err)
		}
		got[oid] = name
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, proxy.LargeObjectFunctions) {
		t.Fatalf("pg_proc has %v, the allow-list %v", got, proxy.LargeObjectFunctions)
	}
}

// callFunction sends one FunctionCall and returns its result or error.
func callFunction(t *testing.T, c *pgx.Conn, oid uint32, args ...string) (string, *pgconn.PgError) {
	t.Helper()
	fe := c.PgConn().Frontend()
	call := &pgproto3.FunctionCall{Function: oid}
	for _, a := range args {
		call.ArgFormatCodes = append(call.ArgFormatCodes, 0)
		call.Arguments = append(call.Arguments, []byte(a))
	}
	fe.Send(call)
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var result string
	var perr *pgconn.PgError
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.FunctionCallResponse:
			result = string(m.Result)
		case *pgproto3.ErrorResponse:
			perr = pgconn.ErrorResponseToPgError(m)
		case *pgproto3.ReadyForQuery:
			return result, perr
		}
	}
}

// A FunctionCall runs a function without any statement the rewriter sees:
// query_to_xml would run any query on the soft-delete table, deleted rows
// and all. It is refused, the session goes on, and a transaction it
// arrives in is aborted as by any error. Privileged logins pass untouched.
func TestFunctionCallRefused(t *testing.T) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	ctx := testCtx(t)
	app := connect(t, p.DSN("app_user", "app", db))
	if _, err := app.Exec(ctx, "DELETE FROM contacts WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	var oid uint32
	if err := app.QueryRow(ctx, "SELECT 'pg_catalog.query_to_xml'::regproc::oid").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	leak := "SELECT id FROM contacts WHERE deleted_at IS NOT NULL"
	out, perr := callFunction(t, app, oid, leak, "false", "false", "")
	if perr == nil || perr.Code != "42501" || !strings.Contains(perr.Message, fmt.Sprintf("tombstone: FunctionCall of function OID %d refused", oid)) {
		t.Fatalf("FunctionCall of query_to_xml: result %q, error %v; want the Tombstone refusal (42501)", out, perr)
	}
	var live int
	if err := app.QueryRow(ctx, "SELECT count(*) FROM contacts").Scan(&live); err != nil || live != 19 {
		t.Fatalf("after the refusal: %d live rows, %v", live, err)
	}
	if _, err := app.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, perr := callFunction(t, app, oid, leak, "false", "false", ""); perr == nil || perr.Code != "42501" {
		t.Fatalf("FunctionCall in a transaction: %v", perr)
	}
	if _, err := app.Exec(ctx, "SELECT 1"); pgCode(err) != "25P02" {
		t.Fatalf("after a refused FunctionCall in a transaction: want 25P02, got %v", err)
	}
	if _, err := app.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if got := p.Metric(t, "tombstone_refusals_total", "reason", "protocol"); got != 2 {
		t.Fatalf("tombstone_refusals_total{reason=protocol} = %v, want 2", got)
	}
	if got := p.Metric(t, "tombstone_statements_total", "action", "refused"); got != 2 {
		t.Fatalf("tombstone_statements_total{action=refused} = %v, want 2", got)
	}
	// What the refusal prevents: the same call by a privileged login.
	admin := connect(t, p.DSN(pg.User, pg.Password, db))
	if out, perr := callFunction(t, admin, oid, leak, "false", "false", ""); perr != nil || !strings.Contains(out, "<id>1</id>") {
		t.Fatalf("privileged FunctionCall: %q %v", out, perr)
	}
}

// Large objects through pgx (SQL functions) and through libpq (psql's
// \lo_import and \lo_export use the FunctionCall message), as the
// application role.
func TestLargeObjectsThroughProxy(t *testing.T) {
	_, p, db := softDeleteDB(t, softDeleteYAML)
	ctx := testCtx(t)
	dsn := p.DSN("app_user", "app", db)
	c := connect(t, dsn)
	data := bytes.Repeat([]byte("large object \x00\xff "), 10000)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	los := tx.LargeObjects()
	oid, err := los.Create(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := los.Open(ctx, oid, pgx.LargeObjectModeRead|pgx.LargeObjectModeWrite)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := lo.Write(data); err != nil || n != len(data) {
		t.Fatalf("write: %d %v", n, err)
	}
	if _, err := lo.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(data)+10)
	n, err := lo.Read(back)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if !bytes.Equal(back[:n], data) {
		t.Fatalf("read back %d bytes, not what was written (%d bytes)", n, len(data))
	}
	if err := lo.Close(); err != nil {
		t.Fatal(err)
	}
	if err := los.Unlink(ctx, oid); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, libpqEnv(t, dsn), dir, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", `\lo_import in.bin`,
		"-c", `\lo_export :LASTOID out.bin`, "-c", `\lo_unlink :LASTOID`)
	got, err := os.ReadFile(filepath.Join(dir, "out.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("psql large-object round trip: %v\n%s", err, out)
	}
	if got := p.Metric(t, "tombstone_refusals_total", "reason", "protocol"); got != 0 {
		t.Fatalf("large-object calls refused: %v", got)
	}
}

// In shadow mode a FunctionCall that would be refused is counted and
// logged, and runs.
func TestFunctionCallInShadowMode(t *testing.T) {
	_, p, db := softDeleteDB(t, "mode: shadow\n"+softDeleteYAML)
	ctx := testCtx(t)
	app := connect(t, p.DSN("app_user", "app", db))
	var oid uint32
	if err := app.QueryRow(ctx, "SELECT 'pg_catalog.query_to_xml'::regproc::oid").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	if out, perr := callFunction(t, app, oid, "SELECT 42 AS answer", "false", "false", ""); perr != nil || !strings.Contains(out, "<answer>42</answer>") {
		t.Fatalf("shadow-mode FunctionCall: %q %v", out, perr)
	}
	if got := p.Metric(t, "tombstone_refusals_total", "reason", "protocol"); got != 1 {
		t.Fatalf("tombstone_refusals_total{reason=protocol} = %v, want 1", got)
	}
	if !strings.Contains(p.Logs(), "shadow mode: statement would have been refused") {
		t.Fatalf("shadow-mode refusal not logged:\n%s", p.Logs())
	}
}
