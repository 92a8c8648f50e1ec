package e2e

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tombstone-proxy/tombstone/rewrite"
)

func pgErr(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// TRUNCATE of a soft-delete table is refused with 42501, and the refusal
// is a real error to the server too: it aborts the transaction it is in
// (the next statement gets 25P02), and in a pipeline the server skips to
// Sync. TRUNCATE of another table goes through.
func TestTruncateRefused(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	conn := connect(t, p.softDSN(appUser, appPassword))
	refused := 0
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		for _, stmt := range []string{"TRUNCATE users", "TRUNCATE TABLE items, public.orders", "truncate only Teams cascade"} {
			if _, err := conn.Exec(ctx, "BEGIN", mode); err != nil {
				t.Fatal(err)
			}
			_, err := conn.Exec(ctx, stmt, mode)
			if pe := pgErr(err); pe == nil || pe.Code != "42501" || !strings.Contains(strings.ToLower(pe.Message), "tombstone") {
				t.Errorf("%s (%v): got %v, want SQLSTATE 42501 saying Tombstone refused it", stmt, mode, err)
			} else {
				refused++
			}
			_, err = conn.Exec(ctx, "SELECT 1", mode)
			if pe := pgErr(err); pe == nil || pe.Code != "25P02" {
				t.Errorf("after a refused %s in a transaction (%v): SELECT 1 gave %v, want 25P02 (transaction aborted)", stmt, mode, err)
			}
			if tag, err := conn.Exec(ctx, "ROLLBACK", mode); err != nil || tag.String() != "ROLLBACK" {
				t.Errorf("ROLLBACK: %q, %v", tag, err)
			}
		}
	}
	got := wire(t, p.softDSN(appUser, appPassword),
		&pgproto3.Parse{Query: "TRUNCATE orders"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Parse{Query: "DELETE FROM items"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Query{String: "SELECT count(*) FROM items"})
	want := []string{"ErrorResponse 42501", "ReadyForQuery I", "RowDescription count", "DataRow 10", "CommandComplete SELECT 1", "ReadyForQuery I"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("pipelined TRUNCATE then DELETE:\n got  %q\n want %q", got, want)
	}
	refused++

	if tag, err := conn.Exec(ctx, "TRUNCATE items"); err != nil || tag.String() != "TRUNCATE TABLE" {
		t.Errorf("TRUNCATE of a table that is not a soft-delete table: %q, %v; want TRUNCATE TABLE", tag, err)
	}
	super := p.super(t)
	if n := scalar[int](t, super, "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM teams)"); n != 40+120+8 {
		t.Errorf("after refused TRUNCATEs %d rows are left, want all %d", n, 40+120+8)
	}
	if got := p.proxy.Metric(t, "tombstone_refusals_total", "reason", "truncate"); got != float64(refused) {
		t.Errorf("tombstone_refusals_total{reason=truncate} = %v, want %d", got, refused)
	}
}

// A statement that names a soft-delete table but does not parse is
// refused by Tombstone (it cannot know what the statement would touch); one
// that cannot name any table reaches Postgres, whose own syntax error the
// client gets, exactly as without Tombstone.
func TestUnparseableStatements(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	soft, direct := connect(t, p.softDSN(appUser, appPassword)), connect(t, p.realDSN())
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		for _, stmt := range []string{"DELETE FROM users WHERE", "SELECT * FORM orders", "UPDATE teams SET region = WHERE team_id = 1"} {
			_, err := soft.Exec(ctx, stmt, mode)
			_, directErr := direct.Exec(ctx, stmt, mode)
			pe, de := pgErr(err), pgErr(directErr)
			if pe == nil || de == nil || pe.Code != "42601" || !strings.Contains(strings.ToLower(pe.Message), "tombstone") || pe.Message == de.Message {
				t.Errorf("%q (%v): through Tombstone %v, direct %v; want Tombstone's own 42601 refusal", stmt, mode, err, directErr)
			}
		}
		for _, stmt := range []string{"SELEC 1", "SELECT (1", "CREATE TABEL x (a int)"} {
			_, err := soft.Exec(ctx, stmt, mode)
			_, directErr := direct.Exec(ctx, stmt, mode)
			pe, de := pgErr(err), pgErr(directErr)
			if pe == nil || de == nil || pe.Code != de.Code || pe.Message != de.Message || pe.Position != de.Position {
				t.Errorf("%q (%v): through Tombstone %+v, direct %+v; want Postgres' own error", stmt, mode, pe, de)
			}
		}
	}
	if got := p.proxy.Metric(t, "tombstone_refusals_total", "reason", "unparseable"); got != 6 {
		t.Errorf("tombstone_refusals_total{reason=unparseable} = %v, want 6", got)
	}
	// The session is still usable after refusals.
	if n := scalar[int](t, soft, "SELECT count(*) FROM users"); n != 40 {
		t.Errorf("after refusals the session sees %d users, want 40", n)
	}
}

// A refusal inside a simple Query holding several statements must behave
// like an error raised by Postgres at that statement: the statements before
// it run (BEGIN opens the transaction, the DELETE deletes), the refusal
// aborts the transaction, and the client's next statements get 25P02 until
// it rolls back. Refusing the whole message instead would leave the session
// outside any transaction, so the client's next statements would commit one
// by one where Postgres would have refused them.
func TestRefusalInMultiStatementQuery(t *testing.T) {
	p := newPair(t, proxyConfig)
	got := wire(t, p.softDSN(appUser, appPassword),
		&pgproto3.Query{String: "BEGIN; DELETE FROM orders WHERE order_id = 81; TRUNCATE users; DELETE FROM orders WHERE order_id = 82"},
		&pgproto3.Query{String: "DELETE FROM orders WHERE order_id = 83"},
		&pgproto3.Query{String: "ROLLBACK"})
	// What Postgres answers when the third statement fails; the direct
	// side shows the same shape with a division by zero there.
	want := []string{"CommandComplete BEGIN", "CommandComplete DELETE 1", "ErrorResponse 42501", "ReadyForQuery E",
		"ErrorResponse 25P02", "ReadyForQuery E",
		"CommandComplete ROLLBACK", "ReadyForQuery I"}
	direct := wire(t, p.realDSN(),
		&pgproto3.Query{String: "BEGIN; DELETE FROM orders WHERE order_id = 81; SELECT 1 / 0; DELETE FROM orders WHERE order_id = 82"},
		&pgproto3.Query{String: "DELETE FROM orders WHERE order_id = 83"},
		&pgproto3.Query{String: "ROLLBACK"})
	if strings.Join(direct, "|") != strings.Replace(strings.Join(want, "|"), "42501", "22012", 1) {
		t.Fatalf("Postgres itself answers %q; the expectation below is wrong", direct)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("refused TRUNCATE inside a multi-statement Query:\n got  %q\n want %q", got, want)
	}
	if n := scalar[int](t, p.super(t), "SELECT count(*) FROM orders WHERE order_id IN (81, 82, 83) AND gone_at IS NULL"); n != 3 {
		t.Errorf("%d of orders 81-83 are live after the rolled-back transaction, want 3", n)
	}
}

// A statement that names a soft-delete table but is too long or too deeply
// nested to parse safely is refused (54000, 54001); the same sizes without
// a soft-delete table reach Postgres. Length alone is not dangerous: a
// 1.2 MB IN list of 400,000 values and a 1,000-branch UNION ALL are
// rewritten and answer as on the hard-delete twin.
func TestOversizedStatementsRefused(t *testing.T) {
	p := newPair(t, proxyConfig)
	ctx := testCtx(t)
	conn := connect(t, p.softDSN(appUser, appPassword))
	real := connect(t, p.realDSN())
	for _, sql := range []string{"DELETE FROM users WHERE user_id % 3 = 0"} {
		for _, c := range []*pgx.Conn{conn, real} {
			if _, err := c.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
	}
	inList := "SELECT count(*) FROM users WHERE user_id IN (" + strings.Repeat("1, 2, 3, ", 133_333) + "4)"
	unions := "SELECT count(*) FROM (" + strings.Repeat("SELECT user_id FROM users UNION ALL ", 999) + "SELECT user_id FROM users) u"
	for name, sql := range map[string]string{"400,000-value IN list": inList, "1000 UNION ALL branches": unions} {
		got, want := scalar[int](t, conn, sql), scalar[int](t, real, sql)
		if got != want {
			t.Errorf("%s (%d bytes): %d through Tombstone, %d on the hard-delete twin", name, len(sql), got, want)
		}
	}
	// One long literal: as long as the bound, cheap for the server to run.
	long := "SELECT count(*) FROM users WHERE uname <> '" + strings.Repeat("x", rewrite.MaxStatementBytes) + "'"
	deep := "SELECT count(*) FROM users WHERE user_id = " + strings.Repeat("(", 1000) + "1" + strings.Repeat(")", 1000)
	for _, c := range []struct{ name, sql, code string }{{"too long", long, "54000"}, {"too deep", deep, "54001"}} {
		_, err := conn.Exec(ctx, c.sql, pgx.QueryExecModeSimpleProtocol)
		if pe := pgErr(err); pe == nil || pe.Code != c.code {
			t.Errorf("%s (%d bytes): got %v, want SQLSTATE %s", c.name, len(c.sql), err, c.code)
		}
		other := strings.Replace(strings.Replace(c.sql, "FROM users WHERE user_id", "FROM items WHERE item_id", 1), "FROM users WHERE uname", "FROM items WHERE iname", 1)
		if _, err := conn.Exec(ctx, other, pgx.QueryExecModeSimpleProtocol); pgErr(err) != nil && pgErr(err).Code == c.code {
			t.Errorf("%s without a soft-delete table was refused too: %v", c.name, err)
		}
	}
}
