package proxy_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/tombstone-proxy/tombstone/internal/pgtest"
)

// tagScript is a client's work whose answers (command tags, or "error"
// and the SQLSTATE) are compared between a soft-delete table reached
// through the proxy and a real-delete table reached directly.
type tagScript func(ctx context.Context, c *pgconn.PgConn) []string

// compareTags runs each script on a fresh connection to both databases
// and fails unless the answers are the same and those given.
func compareTags(t *testing.T, scripts map[string]struct {
	run  tagScript
	want string
}) {
	pg, p, db := softDeleteDB(t, softDeleteYAML)
	plain := pgtest.CreateDB(t, pg)
	pgtest.Exec(t, pg, plain, "CREATE TABLE contacts AS SELECT g AS id, 'c' || g AS name FROM generate_series(1, 20) g")
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range scripts {
			if !yield(k) {
				return
			}
		}
	}) {
		sc := scripts[name]
		ctx := testCtx(t)
		proxied := strings.Join(sc.run(ctx, connect(t, p.DSN("app_user", "app", db)).PgConn()), ",")
		direct := strings.Join(sc.run(ctx, connect(t, pg.DSN(plain)).PgConn()), ",")
		if proxied != direct || proxied != sc.want {
			t.Errorf("%s:\nproxied %s\ndirect  %s\nwant    %s", name, proxied, direct, sc.want)
		}
	}
}

// simple runs simple-protocol Queries and lists their answers.
func simple(queries ...string) tagScript {
	return func(ctx context.Context, c *pgconn.PgConn) []string {
		var out []string
		for _, q := range queries {
			res, err := c.Exec(ctx, q).ReadAll()
			out = append(out, tags(res)...)
			if err != nil { // an error ends the Query
				out = append(out, "error "+pgCode(err))
			}
		}
		return out
	}
}

// then runs scripts one after the other.
func then(scripts ...tagScript) tagScript {
	return func(ctx context.Context, c *pgconn.PgConn) []string {
		var out []string
		for _, s := range scripts {
			out = append(out, s(ctx, c)...)
		}
		return out
	}
}

// parse sends Parse (and Sync) of a named statement.
func parse(name, sql string) tagScript {
	return func(ctx context.Context, c *pgconn.PgConn) []string {
		if _, err := c.Prepare(ctx, name, sql, nil); err != nil {
			return []string{"error " + pgCode(err)}
		}
		return []string{"parsed"}
	}
}

// execute sends Bind and Execute (and Sync) of a named statement.
func execute(name string, params ...string) tagScript {
	return func(ctx context.Context, c *pgconn.PgConn) []string {
		var ps [][]byte
		for _, p := range params {
			ps = append(ps, []byte(p))
		}
		r := c.ExecPrepared(ctx, name, ps, nil, nil).Read()
		if r.Err != nil {
			return []string{"error " + pgCode(r.Err)}
		}
		return []string{r.CommandTag.String()}
	}
}

// pipeline sends messages in one write, then reads every answer up to
// the ReadyForQuery of each Sync.
func pipeline(msgs ...pgproto3.FrontendMessage) tagScript {
	return func(ctx context.Context, c *pgconn.PgConn) []string {
		fe := c.Frontend()
		syncs := 0
		for _, m := range msgs {
			fe.Send(m)
			if _, ok := m.(*pgproto3.Sync); ok {
				syncs++
			}
		}
		if err := fe.Flush(); err != nil {
			return []string{"flush: " + err.Error()}
		}
		var out []string
		for syncs > 0 {
			msg, err := fe.Receive()
			if err != nil {
				return append(out, "receive: "+err.Error())
			}
			switch m := msg.(type) {
			case *pgproto3.ParseComplete:
				out = append(out, "parsed")
			case *pgproto3.CommandComplete:
				out = append(out, string(m.CommandTag))
			case *pgproto3.ErrorResponse:
				out = append(out, "error "+m.Code)
			case *pgproto3.ReadyForQuery:
				syncs--
			}
		}
		return out
	}
}

const (
	prepareUpdate = "PREPARE x(int) AS UPDATE contacts SET name = 'u' WHERE id = $1"
	prepareDelete = "PREPARE x(int) AS DELETE FROM contacts WHERE id = $1"
)

// PREPARE, DEALLOCATE, DISCARD ALL and Parse change the prepared
// statements only when they succeed; the tag of a later EXECUTE (or
// Bind/Execute) is that of the statement the server really holds.
func TestDeleteTagAfterFailedPrepareDeallocateDiscard(t *testing.T) {
	compareTags(t, map[string]struct {
		run  tagScript
		want string
	}{
		"PREPARE under a taken name": {
			simple(prepareUpdate, prepareDelete, "EXECUTE x(1)"),
			"PREPARE,error 42P05,UPDATE 1",
		},
		"PREPARE under a taken name, in one Query": {
			then(simple(prepareUpdate+"; "+prepareDelete+"; EXECUTE x(1)"), simple("EXECUTE x(2)")),
			"PREPARE,error 42P05,UPDATE 1",
		},
		"DEALLOCATE in an aborted transaction": {
			simple(prepareDelete, "BEGIN", "SELECT 1/0", "DEALLOCATE x", "DEALLOCATE ALL", "ROLLBACK", "EXECUTE x(3)"),
			"PREPARE,BEGIN,error 22012,error 25P02,error 25P02,ROLLBACK,DELETE 1",
		},
		"DISCARD ALL in a transaction block": {
			simple(prepareDelete, "BEGIN", "DISCARD ALL", "ROLLBACK", "EXECUTE x(4)"),
			"PREPARE,BEGIN,error 25001,ROLLBACK,DELETE 1",
		},
		"DISCARD ALL in a transaction block, in one Query": {
			then(simple(prepareDelete), simple("BEGIN; DISCARD ALL; COMMIT"), simple("ROLLBACK", "EXECUTE x(5)")),
			"PREPARE,BEGIN,error 25001,ROLLBACK,DELETE 1",
		},
		"Parse under a name taken by an UPDATE": {
			then(parse("x", "UPDATE contacts SET name = 'u' WHERE id = $1"), parse("x", "DELETE FROM contacts WHERE id = $1"),
				execute("x", "6"), simple("EXECUTE x(7)")),
			"parsed,error 42P05,UPDATE 1,UPDATE 1",
		},
		"Parse under a name taken by a DELETE": {
			then(simple(prepareDelete), parse("x", "UPDATE contacts SET name = 'u' WHERE id = $1"), execute("x", "8")),
			"PREPARE,error 42P05,DELETE 1",
		},
		// Within one Query each statement sees the effects of those
		// before it.
		"DEALLOCATE, PREPARE and EXECUTE in one Query": {
			simple(prepareDelete, "DEALLOCATE x; "+prepareUpdate+"; EXECUTE x(9); DEALLOCATE x; "+prepareDelete+"; EXECUTE x(10)"),
			"PREPARE,DEALLOCATE,PREPARE,UPDATE 1,DEALLOCATE,PREPARE,DELETE 1",
		},
		// An SQL statement with an effect may itself be Parsed: its effect
		// happens when its portal runs.
		"DEALLOCATE ALL through the extended protocol": {
			then(simple(prepareDelete), pipeline(
				&pgproto3.Parse{Query: "DEALLOCATE ALL"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}),
				simple(prepareUpdate, "EXECUTE x(11)")),
			"PREPARE,parsed,DEALLOCATE ALL,PREPARE,UPDATE 1",
		},
		// A Parse and the Bind that uses it travel together.
		"Close, Parse, Bind and Execute in one pipeline": {
			then(parse("x", "UPDATE contacts SET name = 'u' WHERE id = $1"), pipeline(
				&pgproto3.Close{ObjectType: 'S', Name: "x"},
				&pgproto3.Parse{Name: "x", Query: "DELETE FROM contacts WHERE id = $1", ParameterOIDs: []uint32{23}},
				&pgproto3.Bind{PreparedStatement: "x", Parameters: [][]byte{[]byte("12")}}, &pgproto3.Execute{},
				&pgproto3.Sync{})),
			"parsed,parsed,DELETE 1",
		},
		// After an error the server skips to Sync: the skipped Close has no
		// effect.
		"Close skipped after an error": {
			then(simple(prepareDelete), pipeline(
				&pgproto3.Parse{Query: "SELECT 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{},
				&pgproto3.Close{ObjectType: 'S', Name: "x"}, &pgproto3.Sync{}),
				simple("EXECUTE x(13)")),
			"PREPARE,parsed,error 22012,DELETE 1",
		},
	})
}
