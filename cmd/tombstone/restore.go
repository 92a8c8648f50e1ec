package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"syscall"

	"github.com/tombstone-proxy/tombstone/maint"
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
	counts, err := maint.Restore(ctx, db.conn, rewrite.New(db.policy, 0), maint.Restoration{
		Table: *table, Where: *where, Cascade: *cascade, DryRun: *dryRun, Actor: *actor, Reason: *reason,
	})
	if err != nil {
		return err
	}
	verb := "restored"
	if *dryRun {
		verb = "would restore"
	}
	if len(counts) == 0 {
		fmt.Fprintf(std.out, "%s nothing: no deleted row of %s matches\n", verb, *table)
	}
	for _, c := range counts {
		rows := "rows"
		if c.Rows == 1 {
			rows = "row"
		}
		fmt.Fprintf(std.out, "%s %d %s in %s\n", verb, c.Rows, rows, c.Table)
	}
	return nil
}

// defaultActor is the OS user running the command.
func defaultActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}
