package proxy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

// lexingTwin is a database like softDeleteDB's where deletes are real,
// reached directly: what Postgres itself answers.
func lexingTwin(t *testing.T, pg *pgtest.Server) string {
	db := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, db, `CREATE TABLE contacts AS SELECT g AS id, 'c' || g AS name FROM generate_series(1, 20) g;
		GRANT SELECT, DELETE ON contacts TO PUBLIC`)
	return db
}

// connectWith connects with startup parameters added to the DSN's.
func connectWith(t *testing.T, dsn string, params map[string]string) *pgconn.PgConn {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	c, err := pgconn.ConnectConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(testCtx(t)) })
	return c
}

// simpleRows runs a simple-protocol Query and returns its rows as text,
// or the error.
func simpleRows(t *testing.T, c *pgconn.PgConn, sql string) ([][]string, error) {
	t.Helper()
	res, err := c.Exec(testCtx(t), sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, r := range res {
		for _, row := range r.Rows {
			var vals []string
			for _, v := range row {
				vals = append(vals, string(v))
			}
			out = append(out, vals)
		}
	}
	return out, nil
}

// wantLexingRefusal fails unless err is Tombstone's refusal naming want.
func wantLexingRefusal(t *testing.T, sql string, err error, want string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.HasPrefix(pe.Message, "tombstone: ") || !strings.Contains(pe.Message, want) {
		t.Fatalf("%q: want Tombstone's refusal naming %q, got %v", sql, want, err)
	}
}

// hidden is a text that pg_query, scanning with standard_conforming_strings
// on, reads as one string literal: its backslash is an ordinary character
// and the two quotes after it stand for one quote, so the literal goes on
// to the last quote. With the setting off the server reads backslash-quote
// as the quote, the next quote as the end of the literal, and then runs
// the subquery, which counts the soft-deleted rows.
const hidden = `SELECT 'a\'' , (SELECT count(*) FROM contacts WHERE deleted_at IS NOT NULL) --'`

// With standard_conforming_strings off (here from the startup packet's
// options), a text with a backslash is refused; others pass and answer as
// they do directly. A change back to on is followed.
func TestStandardConformingStringsOffAtStartup(t *testing.T) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	twin := lexingTwin(t, pg)
	off := map[string]string{"options": "-c standard_conforming_strings=off"}
	app := connectWith(t, p.DSN("app_user", "app", db), off)
	direct := connectWith(t, pgcluster.URL(pg.Addr(), "app_user", "app", twin), off)
	if got := app.ParameterStatus("standard_conforming_strings"); got != "off" {
		t.Fatalf("standard_conforming_strings through the proxy: %q, want off", got)
	}
	for _, c := range []*pgconn.PgConn{app, direct} {
		if _, err := c.Exec(testCtx(t), "DELETE FROM contacts WHERE id = 1").ReadAll(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := simpleRows(t, app, hidden)
	wantLexingRefusal(t, hidden, err, "standard_conforming_strings is off")
	// The extended protocol is checked too.
	if _, err := app.Prepare(testCtx(t), "", `SELECT 'x\'`, nil); err == nil {
		t.Fatal("Parse of a text with a backslash passed")
	} else {
		wantLexingRefusal(t, "Parse", err, "standard_conforming_strings is off")
	}
	if got := p.Metric(t, "tombstone_refusals_total", "reason", "lexing"); got != 2 {
		t.Fatalf("tombstone_refusals_total{reason=lexing} = %v, want 2", got)
	}
	// Without a backslash the text is scanned alike: it passes, and the
	// soft-delete table shows what the real-delete one does.
	for _, sql := range []string{
		"SELECT 'it''s', current_setting('standard_conforming_strings')",
		"SELECT count(*), min(id) FROM contacts",
	} {
		sameAsDirect(t, app, direct, sql)
	}
	// Turned back on, the server reports it and backslashes pass again.
	if _, err := simpleRows(t, app, "SET standard_conforming_strings = on"); err != nil {
		t.Fatal(err)
	}
	if got, err := simpleRows(t, app, `SELECT 'a\b'`); err != nil || len(got) != 1 || got[0][0] != `a\b` {
		t.Fatalf(`SELECT 'a\b' after SET standard_conforming_strings = on: %v %v`, got, err)
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") {
			return false
		}
	}
	return true
}

// sameAsDirect runs sql through the proxy and directly on the twin and
// fails unless both give the same rows.
func sameAsDirect(t *testing.T, proxied, direct *pgconn.PgConn, sql string) {
	t.Helper()
	got, err := simpleRows(t, proxied, sql)
	if err != nil {
		t.Fatalf("%q through the proxy: %v", sql, err)
	}
	want, err := simpleRows(t, direct, sql)
	if err != nil {
		t.Fatal(err)
	}
	if !equalRows(got, want) {
		t.Fatalf("%q: proxied %v, direct %v", sql, got, want)
	}
}

// A role's default (ALTER ROLE ... SET) applies at login, and the server
// reports it then.
func TestStandardConformingStringsOffByRoleDefault(t *testing.T) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	pgtest.Exec(t, pg, "", `DO $$ BEGIN CREATE ROLE app_escapes LOGIN PASSWORD 'app'; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
		ALTER ROLE app_escapes SET standard_conforming_strings = off`)
	pgtest.Exec(t, pg, db, "GRANT SELECT, UPDATE, DELETE ON contacts TO app_escapes")
	ctx := testCtx(t)
	app := connect(t, p.DSN("app_escapes", "app", db))
	if _, err := app.Exec(ctx, "DELETE FROM contacts WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	_, err := simpleRows(t, app.PgConn(), hidden)
	wantLexingRefusal(t, hidden, err, "standard_conforming_strings is off")
	// Directly, the same text counts the deleted row: the refusal stops a
	// real leak.
	direct := connect(t, pgcluster.URL(pg.Addr(), "app_escapes", "app", db))
	if got, err := simpleRows(t, direct.PgConn(), hidden); err != nil || !equalRows(got, [][]string{{"a'", "1"}}) {
		t.Fatalf("directly: %v %v, want the deleted row counted", got, err)
	}
	var live int
	if err := app.QueryRow(ctx, "SELECT count(*) FROM contacts").Scan(&live); err != nil || live != 19 {
		t.Fatalf("a text without backslash: %d %v, want 19", live, err)
	}
}

// In SJIS the second byte of a character can be a backslash: only pure
// ASCII texts pass.
func TestClientEncodingSJISAtStartup(t *testing.T) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	twin := lexingTwin(t, pg)
	sjis := map[string]string{"client_encoding": "SJIS"}
	app := connectWith(t, p.DSN("app_user", "app", db), sjis)
	direct := connectWith(t, pgcluster.URL(pg.Addr(), "app_user", "app", twin), sjis)
	for _, c := range []*pgconn.PgConn{app, direct} {
		if _, err := c.Exec(testCtx(t), "DELETE FROM contacts WHERE id = 1").ReadAll(); err != nil {
			t.Fatal(err)
		}
	}
	for _, sql := range []string{"SELECT 'plain', count(*) FROM contacts", `SELECT E'a\\b', current_setting('client_encoding')`} {
		sameAsDirect(t, app, direct, sql)
	}
	// The bytes E3 81 81 5C are valid UTF-8 (a hiragana and a backslash,
	// which escapes the quote after it: the string goes on to the end),
	// and two characters in SJIS, the second ending in 5C: the server
	// ends the string there and runs the subquery.
	hiddenSJIS := "SELECT E'\xe3\x81\x81\x5c', (SELECT count(*) FROM contacts WHERE deleted_at IS NOT NULL) --'"
	_, err := simpleRows(t, app, hiddenSJIS)
	wantLexingRefusal(t, "a text with SJIS bytes", err, "client_encoding is SJIS")
	leak := connectWith(t, pgcluster.URL(pg.Addr(), "app_user", "app", db), sjis)
	if got, err := simpleRows(t, leak, hiddenSJIS); err != nil || !equalRows(got, [][]string{{"\xe3\x81\x81\x5c", "1"}}) {
		t.Fatalf("directly: %q %v, want the deleted row counted", got, err)
	}
}
