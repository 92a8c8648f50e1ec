package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/rewrite"
)

// restore brings soft-deleted rows back, with what their deletion took
// with it when asked, in one audited transaction. The statement is the
// one a restore through the proxy runs (rewrite.RestoreSQL), so the two
// cannot disagree on what a deletion is.
func restore(std stdio, args []string) error {
	fs := newFlags("restore", `restore --config FILE --dsn DSN --table T --where SQL [--cascade] [--dry-run]

Restores the soft-deleted rows of table T that match the condition SQL.
With --cascade it also restores what their deletion took with it: the rows
that reference them through ON DELETE CASCADE keys (or declared cascades)
and carry the same deleted_at stamp, at any depth; a row deleted on its
own, before or after, stays deleted. Everything happens in one
transaction, written to the audit log with --actor as the actor. It prints
the rows restored per table.

It refuses, restoring nothing, to make a row live whose parent stays
deleted (restore the parent too), and to restore a row whose unique key a
live row has taken since. Connect as a privileged role, directly to
PostgreSQL: the foreign-key checks need tombstone migrate's helpers.`, std)
	path := configFlag(fs)
	dsn := fs.String("dsn", "", "PostgreSQL connection string `DSN`, direct and privileged")
	table := fs.String("table", "", "the soft-delete `table` to restore rows of, as the configuration names it or schema-qualified")
	where := fs.String("where", "", "the `condition` the rows to restore match, in SQL (id = 42)")
	cascade := fs.Bool("cascade", false, "also restore the rows the deletion took with them")
	dryRun := fs.Bool("dry-run", false, "print what would be restored, then roll back")
	actor := fs.String("actor", defaultActor(), "who restores, for the audit log")
	reason := fs.String("reason", "", "why, for the audit log")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	switch {
	case *table == "":
		return usagef("--table T is required: the soft-delete table to restore rows of")
	case *where == "":
		return usagef(`--where SQL is required: the condition the rows match, such as "id = 42"`)
	case *path == "":
		return usagef("--config FILE is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	db, err := openDatabase(ctx, *path, *dsn)
	if err != nil {
		return err
	}
	defer db.conn.Close(context.Background())
	sql, err := rewrite.New(db.policy, 0).RestoreSQL(*table, *where, *cascade)
	if err != nil {
		return err
	}
	type count struct {
		table string
		n     int64
	}
	var counts []count
	run := func(tx pgx.Tx) error {
		// The statement takes its actor and reason from these settings,
		// as a restore through the proxy does from the client's.
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('tombstone.actor', $1, true), pg_catalog.set_config('tombstone.reason', $2, true)", *actor, *reason); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sql)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c count
			if err := rows.Scan(&c.table, &c.n); err != nil {
				return err
			}
			counts = append(counts, c)
		}
		return rows.Err()
	}
	tx, err := db.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit it does nothing
	if err := run(tx); err != nil {
		return restoreError(err)
	}
	verb := "would restore"
	if !*dryRun {
		if err := tx.Commit(ctx); err != nil {
			return restoreError(err)
		}
		verb = "restored"
	}
	if len(counts) == 0 {
		fmt.Fprintf(std.out, "%s nothing: no deleted row of %s matches\n", verb, *table)
	}
	for _, c := range counts {
		rows := "rows"
		if c.n == 1 {
			rows = "row"
		}
		fmt.Fprintf(std.out, "%s %d %s in %s\n", verb, c.n, rows, c.table)
	}
	return nil
}

// restoreError says that nothing was restored, with the server's detail
// (the key a unique index or foreign key names) and hint.
func restoreError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("nothing was restored: %w", err)
	}
	msg := fmt.Sprintf("nothing was restored: %s (SQLSTATE %s)", pe.Message, pe.Code)
	if pe.Detail != "" {
		msg += "\nDETAIL: " + pe.Detail
	}
	if pe.Hint != "" {
		msg += "\nHINT: " + pe.Hint
	}
	return errors.New(msg)
}

// defaultActor is the OS user running the command.
func defaultActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}
