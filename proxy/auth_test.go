package proxy_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/lib/pq"

	"github.com/tombstone-proxy/tombstone/internal/pgcluster"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/internal/proxytest"
)

// authHBA exercises every password method the proxy must relay: trust,
// cleartext password, md5, and SCRAM (md5 lines use SCRAM for roles whose
// password is stored as SCRAM).
const authHBA = `local all all trust
host all trust_user 127.0.0.1/32 trust
host all clear_user 127.0.0.1/32 password
host all all 127.0.0.1/32 md5
`

func TestAuthenticationMethodsPassThrough(t *testing.T) {
	pg := pgtest.Start(t, pgcluster.Options{HBA: authHBA})
	pgtest.Exec(t, pg, "", `
		SET password_encryption = 'scram-sha-256';
		CREATE ROLE scram_user LOGIN PASSWORD 'scram pw';
		CREATE ROLE clear_user LOGIN PASSWORD 'clear pw';
		CREATE ROLE trust_user LOGIN;
		SET password_encryption = 'md5';
		CREATE ROLE md5_user LOGIN PASSWORD 'md5 pw';`)
	p := proxytest.Start(t, pg, "")
	users := []struct{ user, password, storedPrefix string }{
		{"scram_user", "scram pw", "SCRAM-SHA-256$"},
		{"md5_user", "md5 pw", "md5"},
		{"clear_user", "clear pw", "SCRAM-SHA-256$"},
		{"trust_user", "", ""},
	}
	for _, u := range users {
		t.Run(u.user, func(t *testing.T) {
			if u.storedPrefix != "" {
				var stored string
				c := connect(t, pg.DSN(""))
				if err := c.QueryRow(testCtx(t), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", u.user).Scan(&stored); err != nil || !strings.HasPrefix(stored, u.storedPrefix) {
					t.Fatalf("role %s stored password %.16q (%v), want prefix %q", u.user, stored, err, u.storedPrefix)
				}
			}
			for _, dsn := range []string{pgcluster.URL(pg.Addr(), u.user, u.password, ""), p.DSN(u.user, u.password, "")} {
				c := connect(t, dsn)
				var who string
				if err := c.QueryRow(testCtx(t), "SELECT session_user").Scan(&who); err != nil || who != u.user {
					t.Fatalf("%s: session_user %q, %v", dsn, who, err)
				}
				// lib/pq implements md5 and SCRAM on its own; it must work too.
				db, err := sql.Open("postgres", dsn)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.QueryRowContext(testCtx(t), "SELECT current_user").Scan(&who); err != nil || who != u.user {
					t.Fatalf("lib/pq %s: current_user %q, %v", dsn, who, err)
				}
				db.Close()
			}
			if u.password == "" {
				return
			}
			// A wrong password gets the server's own error through the proxy.
			for _, dsn := range []string{pgcluster.URL(pg.Addr(), u.user, "wrong", ""), p.DSN(u.user, "wrong", "")} {
				_, err := pgx.Connect(testCtx(t), dsn)
				if code := pgCode(err); code != "28P01" {
					t.Fatalf("%s with a wrong password: want 28P01, got %v", dsn, err)
				}
			}
		})
	}
}

func TestLibPQMatchesDirect(t *testing.T) {
	pg := pgtest.Shared(t)
	ts := targets(t, pg, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g`)
	compare(t, ts, func(t *testing.T, dsn string) []string {
		ctx := testCtx(t)
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var out []string
		res, err := db.ExecContext(ctx, "DELETE FROM t WHERE id > $1", 90)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := res.RowsAffected()
		out = append(out, fmt.Sprint("deleted ", n))
		// Without arguments lib/pq uses the simple protocol.
		res, err = db.ExecContext(ctx, "UPDATE t SET v = 'x' WHERE id <= 5; DELETE FROM t WHERE id = 50")
		if err != nil {
			t.Fatal(err)
		}
		n, _ = res.RowsAffected()
		out = append(out, fmt.Sprint("multi ", n))
		stmt, err := db.PrepareContext(ctx, "SELECT v FROM t WHERE id = $1")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []int{1, 6, 50} {
			var v string
			err := stmt.QueryRowContext(ctx, id).Scan(&v)
			out = append(out, fmt.Sprintf("%d=%q %v", id, v, err))
		}
		stmt.Close()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.ExecContext(ctx, "SELECT 1/0")
		out = append(out, fmt.Sprint("in tx: ", err))
		_, err = tx.ExecContext(ctx, "SELECT 1")
		out = append(out, fmt.Sprint("after error in tx: ", err))
		tx.Rollback()
		return out
	})
}

func TestPrivilegedByNameAndMembership(t *testing.T) {
	pg := pgtest.Shared(t)
	pgtest.Exec(t, pg, "", `
		DROP ROLE IF EXISTS tomb_alice, tomb_bob, tomb_ops, tomb_admins;
		CREATE ROLE tomb_admins NOLOGIN;
		CREATE ROLE tomb_ops NOLOGIN IN ROLE tomb_admins;
		CREATE ROLE tomb_alice LOGIN PASSWORD 'a' IN ROLE tomb_ops;
		CREATE ROLE tomb_bob LOGIN PASSWORD 'b';
		-- A count(*) that always says 1 and an = that always holds, ahead
		-- of pg_catalog's on a search_path the login role may choose.
		DROP SCHEMA IF EXISTS tomb_evil CASCADE;
		CREATE SCHEMA tomb_evil;
		CREATE FUNCTION tomb_evil.one(bigint) RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint';
		CREATE AGGREGATE tomb_evil.count(*) (sfunc = tomb_evil.one, stype = bigint, initcond = '1');
		CREATE FUNCTION tomb_evil.yes(name, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
		CREATE OPERATOR tomb_evil.= (leftarg = name, rightarg = text, function = tomb_evil.yes);
		GRANT USAGE ON SCHEMA tomb_evil TO PUBLIC;`)
	t.Cleanup(func() {
		pgtest.Exec(t, pg, "", "DROP SCHEMA IF EXISTS tomb_evil CASCADE; DROP ROLE IF EXISTS tomb_alice, tomb_bob, tomb_ops, tomb_admins")
	})
	p := proxytest.Start(t, pg, `
privileged_roles: [postgres]
privileged_member_of: [tomb_admins, "it's"]
`)
	cases := []struct {
		user, password string
		options        string // extra connection parameters
		privileged     bool
	}{
		{"tomb_alice", "a", "", true}, // inherited membership, two levels up
		{"tomb_bob", "b", "", false},
		{"tomb_bob", "b", "&options=-c%20search_path%3Dtomb_evil,pg_catalog", false}, // the lookup must not use these
		{pg.User, pg.Password, "", true},                                             // by name
	}
	for _, c := range cases {
		before := p.Metric(t, "tombstone_statements_total", "action", "bypassed")
		conn := connect(t, p.DSN(c.user, c.password, "")+c.options)
		// The membership query must be invisible: the first statement's
		// answers are the client's own.
		var user string
		var n int
		if err := conn.QueryRow(testCtx(t), "SELECT current_user, 42").Scan(&user, &n); err != nil || user != c.user || n != 42 {
			t.Fatalf("%s: got %q %d %v", c.user, user, n, err)
		}
		conn.Close(context.Background())
		got := p.Metric(t, "tombstone_statements_total", "action", "bypassed") - before
		if want := float64(boolInt(c.privileged)); got != want {
			t.Fatalf("%s: bypassed statements %v, want %v\n%s", c.user, got, want, p.Logs())
		}
	}
}
