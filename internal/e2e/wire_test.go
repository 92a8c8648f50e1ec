package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// wire sends a raw protocol script on a fresh connection, in one write,
// and returns the server's answers, one line per message, up to the
// ReadyForQuery that ends each Sync or Query.
func wire(t *testing.T, dsn string, script ...pgproto3.FrontendMessage) []string {
	t.Helper()
	ctx := testCtx(t)
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Conn.Close()
	if err := hc.Conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	waits := 0
	for _, m := range script {
		hc.Frontend.Send(m)
		switch m.(type) {
		case *pgproto3.Sync, *pgproto3.Query:
			waits++
		}
	}
	if err := hc.Frontend.Flush(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for waits > 0 {
		m, err := hc.Frontend.Receive()
		if err != nil {
			t.Fatalf("after %v: %v", out, err)
		}
		var line string
		switch m := m.(type) {
		case *pgproto3.ReadyForQuery:
			waits--
			line = "ReadyForQuery " + string(m.TxStatus)
		case *pgproto3.CommandComplete:
			line = "CommandComplete " + string(m.CommandTag)
		case *pgproto3.ErrorResponse:
			line = "ErrorResponse " + m.Code
		case *pgproto3.DataRow:
			cells := make([]string, len(m.Values))
			for i, v := range m.Values {
				cells[i] = string(v)
			}
			line = "DataRow " + strings.Join(cells, ",")
		case *pgproto3.RowDescription:
			names := make([]string, len(m.Fields))
			for i, f := range m.Fields {
				names[i] = string(f.Name)
			}
			line = "RowDescription " + strings.Join(names, ",")
		default:
			line = strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3.")
		}
		out = append(out, line)
	}
	return out
}

// Protocol scripts sent through Tombstone to soft-delete tables and
// directly to real-delete tables must be answered message for message the
// same: tags, row counts, portal suspension, errors in a pipeline and the
// skip to Sync after them.
func TestWireScriptsMatchPostgres(t *testing.T) {
	scripts := map[string][]pgproto3.FrontendMessage{
		// Execute with a row limit on DELETE ... RETURNING: Postgres runs
		// the whole statement on the first Execute, hands out the rows in
		// pieces (PortalSuspended) and sends the tag with the last piece.
		"row limit, unnamed portal": {
			&pgproto3.Parse{Query: "DELETE FROM orders WHERE user_id = $1 RETURNING order_id, qty"},
			&pgproto3.Bind{Parameters: [][]byte{[]byte("14")}},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{MaxRows: 1},
			&pgproto3.Execute{MaxRows: 1},
			&pgproto3.Execute{}, // the rest, and the tag
			&pgproto3.Sync{},
			&pgproto3.Query{String: "SELECT count(*) FROM orders WHERE user_id = 14"},
		},
		"row limit, named statement and portal": {
			&pgproto3.Parse{Name: "del", Query: "DELETE FROM users WHERE team_id = $1 RETURNING user_id"},
			&pgproto3.Bind{DestinationPortal: "p1", PreparedStatement: "del", Parameters: [][]byte{[]byte("3")}},
			&pgproto3.Execute{Portal: "p1", MaxRows: 3},
			&pgproto3.Execute{Portal: "p1", MaxRows: 3},
			&pgproto3.Close{ObjectType: 'P', Name: "p1"},
			&pgproto3.Bind{DestinationPortal: "p2", PreparedStatement: "del", Parameters: [][]byte{[]byte("3")}},
			&pgproto3.Execute{Portal: "p2"},
			&pgproto3.Sync{},
		},
		// Several Executes before one Sync, an error in the middle: the
		// server skips to Sync, so the DELETE after the error never runs
		// and must not consume a tag.
		"pipeline with an error": {
			&pgproto3.Parse{Name: "d", Query: "DELETE FROM orders WHERE order_id = $1"},
			&pgproto3.Bind{PreparedStatement: "d", Parameters: [][]byte{[]byte("1")}},
			&pgproto3.Execute{},
			&pgproto3.Bind{PreparedStatement: "d", Parameters: [][]byte{[]byte("2")}},
			&pgproto3.Execute{},
			&pgproto3.Parse{Query: "SELECT 1 / 0"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Bind{PreparedStatement: "d", Parameters: [][]byte{[]byte("3")}},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Bind{PreparedStatement: "d", Parameters: [][]byte{[]byte("4")}},
			&pgproto3.Execute{},
			&pgproto3.Bind{PreparedStatement: "d", Parameters: [][]byte{[]byte("3")}},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Query{String: "SELECT count(*) FROM orders WHERE order_id <= 4"},
		},
		"pipeline with flushes and a transaction": {
			&pgproto3.Query{String: "BEGIN"},
			&pgproto3.Parse{Query: "DELETE FROM users WHERE user_id < $1"},
			&pgproto3.Bind{Parameters: [][]byte{[]byte("6")}},
			&pgproto3.Execute{},
			&pgproto3.Flush{},
			&pgproto3.Parse{Query: "SELECT count(*) FROM users"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Query{String: "DELETE FROM users WHERE user_id < 8; ROLLBACK"},
			&pgproto3.Query{String: "SELECT count(*) FROM users"},
		},
		// A statement or portal name that stood for a DELETE and now
		// stands for an UPDATE must get UPDATE's tag, and interleaved
		// portals each keep their own.
		"names reused and portals interleaved": {
			&pgproto3.Parse{Name: "s", Query: "DELETE FROM orders WHERE order_id = $1"},
			&pgproto3.Parse{Name: "u", Query: "UPDATE orders SET qty = 1 WHERE order_id = $1"},
			&pgproto3.Bind{DestinationPortal: "pd", PreparedStatement: "s", Parameters: [][]byte{[]byte("70")}},
			&pgproto3.Bind{DestinationPortal: "pu", PreparedStatement: "u", Parameters: [][]byte{[]byte("71")}},
			&pgproto3.Execute{Portal: "pu"},
			&pgproto3.Execute{Portal: "pd"},
			&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("72")}},
			&pgproto3.Bind{PreparedStatement: "u", Parameters: [][]byte{[]byte("73")}},
			&pgproto3.Execute{},
			&pgproto3.Close{ObjectType: 'S', Name: "s"},
			&pgproto3.Parse{Name: "s", Query: "UPDATE orders SET qty = 2 WHERE order_id = $1"},
			&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("74")}},
			&pgproto3.Execute{},
			&pgproto3.Parse{Query: "DELETE FROM orders WHERE order_id = 75"},
			&pgproto3.Parse{Query: "UPDATE orders SET qty = 3 WHERE order_id = 76"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Query{String: "PREPARE x AS DELETE FROM orders WHERE order_id = 77; EXECUTE x; DEALLOCATE x; PREPARE x AS UPDATE orders SET qty = 4 WHERE order_id = 78; EXECUTE x"},
			&pgproto3.Query{String: "DISCARD ALL"},
			&pgproto3.Query{String: "SELECT count(*) FROM orders WHERE order_id BETWEEN 70 AND 78"},
		},
		"several statements in one Query": {
			&pgproto3.Query{String: "DELETE FROM orders WHERE order_id = 50; SELECT count(*) FROM orders; DELETE FROM orders WHERE order_id IN (50, 51, 52)"},
			&pgproto3.Query{String: "DELETE FROM orders WHERE order_id = 60; SELECT 1 / 0; DELETE FROM orders WHERE order_id = 61"},
			&pgproto3.Query{String: "SELECT count(*) FROM orders WHERE order_id IN (60, 61)"},
			&pgproto3.Query{String: ""},
		},
	}
	p := newPair(t, proxyConfig)
	names := make([]string, 0, len(scripts))
	for name := range scripts {
		names = append(names, name)
	}
	slices.Sort(names) // the scripts change the data: run them in a fixed order
	for _, name := range names {
		soft := wire(t, p.softDSN(appUser, appPassword), scripts[name]...)
		direct := wire(t, p.realDSN(), scripts[name]...)
		if !slices.Equal(soft, direct) {
			t.Errorf("%s:\nthrough Tombstone:\n  %s\ndirect:\n  %s", name, strings.Join(soft, "\n  "), strings.Join(direct, "\n  "))
		}
		if !slices.ContainsFunc(direct, func(l string) bool {
			return strings.HasPrefix(l, "CommandComplete DELETE ") && l != "CommandComplete DELETE 0"
		}) {
			t.Errorf("%s: the script deleted nothing, so it proves nothing:\n  %s", name, strings.Join(direct, "\n  "))
		}
	}
}
