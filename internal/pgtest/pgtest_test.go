package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestSharedServerAnswersAndIsolatesDatabases(t *testing.T) {
	s := Shared(t)
	db := CreateDB(t, s)
	Exec(t, s, db, "CREATE TABLE x (id int); INSERT INTO x VALUES (1), (2)")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	var user string
	if err := conn.QueryRow(ctx, "SELECT count(*), current_user FROM x").Scan(&n, &user); err != nil {
		t.Fatal(err)
	}
	if n != 2 || user != s.User {
		t.Fatalf("got count %d as %q, want 2 as %q", n, user, s.User)
	}
}
