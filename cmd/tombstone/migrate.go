package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/schematool"
)

// migrate prints, or with --apply runs, the DDL that fixes what doctor
// finds in one database: missing columns, Tombstone's helpers and
// triggers, the audit table, grants, partial indexes and constraints, and
// optionally views and row-level security.
func migrate(std stdio, args []string) error {
	fs := newFlags("migrate", `migrate --config FILE --dsn DSN [--apply] [--views] [--rls] [--allow-blocking]

Reads the database's catalog (directly, as a superuser or privileged role:
the application role must not own what it creates) and prints the steps
that fix what tombstone doctor reports, or runs them with --apply:

  - adds missing deleted_at (timestamptz), deleted_by and deleted_reason
    (text) columns;
  - installs schema tombstone with its helper functions, and a constraint
    trigger on the child of every foreign key whose parent is a soft-delete
    table, refusing rows that reference a soft-deleted parent (23503);
  - creates the audit table (audit.table);
  - grants the application roles what the rewritten DELETE needs;
  - replaces indexes, unique indexes and unique constraints that hold
    deleted rows with partial ones (WHERE deleted_at IS NULL), built with
    CREATE INDEX CONCURRENTLY and then swapped in;
  - replaces exclusion constraints with their partial form, only with
    --allow-blocking (that needs an ACCESS EXCLUSIVE lock for the build);
  - with --views, active_<table> views of the live rows;
  - with --rls, row-level security policies for clients that bypass the
    proxy: SELECT sees live rows, the soft-delete UPDATE keeps working,
    privileged roles see everything, nobody but them deletes for good.

Each step is one short transaction (its statements wait at most
--lock-timeout for a lock), or statements run one by one where PostgreSQL
requires it (CONCURRENTLY cannot run in a transaction block). A step
that fails leaves the steps before it applied; run migrate again to
finish: an index whose concurrent build was interrupted (INVALID) is
dropped and built again. A second run after a complete one has nothing to
do. What migrate cannot do safely it lists, with why.`, std)
	path := configFlag(fs)
	dsn := fs.String("dsn", "", "PostgreSQL connection string `DSN` of the database to migrate (a privileged role, not through the proxy)")
	apply := fs.Bool("apply", false, "run the steps instead of printing them")
	views := fs.Bool("views", false, "also create an active_<table> view of the live rows of each configured table")
	rls := fs.Bool("rls", false, "also enable row-level security with Tombstone's policies (not on tables with allow_restore, or with policies of their own)")
	blocking := fs.Bool("allow-blocking", false, "also run the steps that block reads and writes of a table for a whole index build (exclusion constraints); for a maintenance window")
	lockTimeout := fs.Duration("lock-timeout", 5*time.Second, "longest wait for a table lock; a step that waits longer fails and changes nothing, rather than queueing the application's queries behind it")
	var appRoles roleList
	fs.Var(&appRoles, "app-role", "also grant application `ROLE` what it needs (repeatable), as tombstone doctor checks")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *lockTimeout < time.Millisecond {
		return usagef("--lock-timeout must be at least 1ms: with none, a step could queue every query of the table behind a long transaction")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	db, facts, err := inspect(ctx, *path, *dsn, appRoles)
	if err != nil {
		return err
	}
	defer db.conn.Close(context.Background())
	plan := schematool.NewPlan(facts, schematool.Options{Views: *views, RLS: *rls, AllowBlocking: *blocking})
	timeout := fmt.Sprintf("%dms", lockTimeout.Milliseconds())
	if !*apply {
		printPlan(std.out, plan, timeout)
		return nil
	}
	conn := db.conn
	// An index build takes as long as the table is big: a
	// statement_timeout of the role's would cancel it halfway, every
	// run. Waits for locks stay bounded by lock_timeout.
	if _, err := conn.Exec(ctx, "SELECT pg_catalog.set_config('lock_timeout', $1, false), pg_catalog.set_config('statement_timeout', '0', false)", timeout); err != nil {
		return fmt.Errorf("set lock_timeout and statement_timeout: %w", err)
	}
	for i, step := range plan.Steps {
		if err := applyStep(ctx, conn, step, timeout); err != nil {
			return fmt.Errorf("step %d of %d (%s): %w\n%s", i+1, len(plan.Steps), step.Title, err, appliedBefore(i))
		}
		fmt.Fprintf(std.out, "applied %d/%d: %s\n", i+1, len(plan.Steps), step.Title)
		if step.Note != "" {
			fmt.Fprintf(std.out, "  note: %s\n", step.Note)
		}
	}
	if len(plan.Steps) == 0 {
		fmt.Fprintln(std.out, "nothing to do")
	} else {
		fmt.Fprintf(std.out, "%d step(s) applied; tombstone doctor checks the result\n", len(plan.Steps))
	}
	printLeftOut(std.out, plan, "")
	return nil
}

// appliedBefore says what state a failed step leaves.
func appliedBefore(i int) string {
	msg := fmt.Sprintf("the %d step(s) before it were applied and stay; ", i)
	if i == 0 {
		msg = ""
	}
	return msg + "the step's transaction was rolled back, and where it runs statement by statement (CONCURRENTLY) those before the failure stay: an interrupted build leaves an INVALID index, which the next run drops and builds again. Fix the cause and run tombstone migrate again"
}

// applyStep runs one step: in one transaction, or statement by statement
// with CONCURRENTLY ones outside any transaction and without
// lock_timeout (their waits do not block writes).
func applyStep(ctx context.Context, conn *pgx.Conn, step schematool.Step, timeout string) error {
	if step.Transaction {
		return inTransaction(ctx, conn, step.Statements, timeout)
	}
	for _, s := range step.Statements {
		if s.Concurrently {
			if _, err := conn.Exec(ctx, "SET lock_timeout = 0"); err != nil {
				return err
			}
		}
		_, err := conn.Exec(ctx, s.SQL)
		if s.Concurrently {
			if _, rerr := conn.Exec(context.Background(), "SELECT pg_catalog.set_config('lock_timeout', $1, false)", timeout); rerr != nil && err == nil {
				err = rerr
			}
		}
		if err != nil {
			return statementError(err, s.SQL)
		}
	}
	if len(step.Then) > 0 {
		return inTransaction(ctx, conn, step.Then, timeout)
	}
	return nil
}

func inTransaction(ctx context.Context, conn *pgx.Conn, stmts []schematool.Statement, timeout string) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('lock_timeout', $1, true)", timeout); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s.SQL); err != nil {
				return statementError(err, s.SQL)
			}
		}
		return nil
	})
}

// statementError adds the statement, and what to do about a lock that
// was not granted in time.
func statementError(err error, sql string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55P03" {
		return fmt.Errorf("%w\nin statement:\n%s\nthe table's lock was not granted within --lock-timeout (a long transaction holds it): run again later, or with a longer --lock-timeout", err, sql)
	}
	return fmt.Errorf("%w\nin statement:\n%s", err, sql)
}

// printPlan writes the plan as a script psql can run
// (psql -v ON_ERROR_STOP=1 -f FILE).
func printPlan(w io.Writer, plan *schematool.Plan, timeout string) {
	if len(plan.Steps) == 0 {
		fmt.Fprintln(w, "-- nothing to do")
		printLeftOut(w, plan, "-- ")
		return
	}
	fmt.Fprintf(w, "-- tombstone migrate: %d step(s); run them with --apply, or with psql -v ON_ERROR_STOP=1.\n", len(plan.Steps))
	fmt.Fprintln(w, "-- Names are qualified as PostgreSQL prints them with search_path = pg_catalog.")
	fmt.Fprintln(w, "SET search_path = pg_catalog;")
	fmt.Fprintf(w, "SET lock_timeout = '%s';\nSET statement_timeout = 0;\n", timeout)
	for i, step := range plan.Steps {
		fmt.Fprintf(w, "\n-- %d/%d: %s\n", i+1, len(plan.Steps), step.Title)
		if step.Note != "" {
			fmt.Fprintf(w, "-- note: %s\n", step.Note)
		}
		writeStatements(w, step.Statements, step.Transaction, timeout)
		if len(step.Then) > 0 {
			writeStatements(w, step.Then, true, timeout)
		}
	}
	fmt.Fprintln(w)
	printLeftOut(w, plan, "-- ")
}

func writeStatements(w io.Writer, stmts []schematool.Statement, transaction bool, timeout string) {
	if transaction {
		fmt.Fprintln(w, "BEGIN;")
	}
	for _, s := range stmts {
		if s.Concurrently {
			fmt.Fprintf(w, "SET lock_timeout = 0;\n%s;\nSET lock_timeout = '%s';\n", s.SQL, timeout)
			continue
		}
		fmt.Fprintf(w, "%s;\n", s.SQL)
	}
	if transaction {
		fmt.Fprintln(w, "COMMIT;")
	}
}

// printLeftOut lists the steps left out for --allow-blocking and what
// migrate cannot do, each line prefixed with prefix.
func printLeftOut(w io.Writer, plan *schematool.Plan, prefix string) {
	for _, step := range plan.Blocked {
		fmt.Fprintf(w, "%snot done without --allow-blocking: %s\n%s  why: %s\n", prefix, step.Title, prefix, step.Blocking)
		for _, s := range step.Statements {
			fmt.Fprintf(w, "%s    %s;\n", prefix, s.SQL)
		}
	}
	for _, c := range plan.Cannot {
		fmt.Fprintf(w, "%scannot do safely: %s\n", prefix, strings.ReplaceAll(c, "\n", "\n"+prefix))
	}
}
