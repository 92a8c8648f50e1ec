package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/policy"
	// Aliased: the command's function is purge, as main's table names it.
	purgejob "github.com/tombstone-proxy/tombstone/purge"
)

// purge removes soft-deleted rows past retention, or erases chosen rows;
// package purge does the work.
func purge(std stdio, args []string) error {
	fs := newFlags("purge", `purge --config FILE --dsn DSN [--older-than 90d] [--table T] [--batch 1000] [--dry-run]
       purge --config FILE --dsn DSN --table T --where SQL [--cascade] [--dry-run]

The first form removes for good the rows soft-deleted longer ago than each
table's retention (or --older-than), in batches of one short transaction
each, children before parents. A row other rows still reference (a live
child, or one within its own retention) is kept, so PostgreSQL never
cascades a removal onto rows nobody chose; the summary says how many were
kept and why. Stopping it (SIGINT, SIGTERM) loses at most the batch under
way; run it again to go on.

The second form (erasure) removes the rows of T that --where chooses, live
or deleted, in one transaction; with --cascade also the rows that cascade
from them (ON DELETE CASCADE keys and declared cascades, recursively).
Rows referencing them otherwise make it refuse, removing nothing.

Both write one audit row per removed row when audit.table is configured,
in the transaction that removes it. Connect as a privileged role, directly
(not through the proxy).`, std)
	path := configFlag(fs)
	dsn := fs.String("dsn", "", "PostgreSQL connection string `DSN` of the database to purge")
	olderThan := fs.String("older-than", "", "remove rows deleted longer ago than `PERIOD` (90d, 2w, 36h) instead of each table's retention")
	table := fs.String("table", "", "purge only table `T` (table or schema.table) and its partitions and inheritance children; the table to erase from with --where")
	size := fs.Int("batch", 1000, "most rows one transaction removes from one table")
	dryRun := fs.Bool("dry-run", false, "count what would be removed, in a transaction that is rolled back; remove nothing")
	where := fs.String("where", "", "erase the rows of --table that SQL condition `SQL` chooses, live or deleted, at once")
	cascade := fs.Bool("cascade", false, "with --where: also erase the rows that cascade from them")
	actor := fs.String("actor", "", "who purges, for the audit log (default: the operating-system user)")
	reason := fs.String("reason", "", "why, for the audit log")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	var names []policy.RelName
	if *table != "" {
		schema, name, err := config.ParseRelation(*table)
		if err != nil {
			return usagef("--table: %v", err)
		}
		names = append(names, policy.RelName{Schema: schema, Name: name})
	}
	var period time.Duration
	if *olderThan != "" {
		var err error
		if period, err = config.ParseRetention(*olderThan); err != nil {
			return usagef("--older-than: %v", err)
		}
		if period == 0 {
			return usagef("--older-than %s keeps every row; give a period such as 90d, or leave it out to use each table's retention", *olderThan)
		}
	}
	if *size < 1 {
		return usagef("--batch %d: a batch must hold at least one row", *size)
	}
	erasing := *where != ""
	switch {
	case erasing && *table == "":
		return usagef("--where needs --table: the table whose rows it chooses")
	case erasing && (*olderThan != "" || isSet(fs, "batch")):
		return usagef("--older-than and --batch are for retention purges; an erasure (--where) removes its rows in one transaction")
	case *cascade && !erasing:
		return usagef("--cascade goes with --where (an erasure); a retention purge never cascades")
	}
	if *actor == "" {
		*actor = osUser()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	db, err := openDatabase(ctx, *path, *dsn)
	if err != nil {
		return err
	}
	defer db.conn.Close(context.Background())

	if erasing {
		report, err := purgejob.Erase(ctx, db.conn, db.policy, purgejob.Erasure{
			Table: names[0], Where: *where, Cascade: *cascade, DryRun: *dryRun, Actor: *actor, Reason: *reason,
		})
		if err != nil {
			return err
		}
		report.WriteSummary(std.out)
		return nil
	}
	level := new(slog.LevelVar)
	level.Set(db.cfg.Log.SlogLevel())
	opts := purgejob.Options{
		OlderThan: period, Tables: names, Batch: *size, DryRun: *dryRun, Actor: *actor, Reason: *reason,
		Log: newLogger(std.errOut, db.cfg.Log, level).With("component", "purge"),
	}
	if isTerminal(std.errOut) {
		opts.Progress = func(p purgejob.Progress) {
			fmt.Fprintf(std.errOut, "\r\033[K%s: %d rows removed in %d batches", p.Table, p.Removed, p.Batches)
		}
	}
	report, err := purgejob.Run(ctx, db.conn, db.policy, opts)
	if opts.Progress != nil {
		fmt.Fprint(std.errOut, "\r\033[K")
	}
	if report != nil {
		report.WriteSummary(std.out)
	}
	return err
}

// isSet reports whether the command line gave flag name.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// isTerminal reports whether w is a terminal: progress is drawn there
// only, never into a log file or a pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// osUser is the operating-system user, the audit log's default actor. A
// container's user often has no name (no /etc/passwd entry): then its uid.
func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	return "uid " + strconv.Itoa(os.Getuid())
}
