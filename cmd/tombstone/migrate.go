package main

import (
	"context"
	"fmt"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
)

// migrate prints, or with --apply runs, the DDL that installs Tombstone's
// database objects (schema tombstone, its helper functions, the triggers
// that keep rows from referencing soft-deleted parents) in one database.
func migrate(std stdio, args []string) error {
	fs := newFlags("migrate", `migrate --config FILE --dsn DSN [--apply]

Reads the database's catalog and prints the statements that install what
Tombstone needs there: schema tombstone with its helper functions, and a
constraint trigger on the child of every foreign key whose parent is a
soft-delete table, refusing rows that reference a soft-deleted parent
(SQLSTATE 23503, as PostgreSQL refuses a missing one). --apply runs them
in one transaction; running it again changes nothing. Run it as a
superuser or a privileged role: the application role must not own the
functions.`, std)
	path := configFlag(fs)
	dsn := fs.String("dsn", "", "PostgreSQL connection string `DSN` of the database to migrate")
	apply := fs.Bool("apply", false, "run the statements in one transaction instead of printing them")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	db, err := openDatabase(ctx, *path, *dsn)
	if err != nil {
		return err
	}
	defer db.conn.Close(context.Background())
	conn, spec, schema := db.conn, db.spec, db.schema
	plan := catalog.Plan(spec, schema)
	if !*apply {
		for _, stmt := range plan {
			fmt.Fprintf(std.out, "%s;\n\n", stmt)
		}
		fmt.Fprintf(std.out, "-- %d statements; run with --apply to execute them in one transaction\n", len(plan))
		return nil
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, stmt := range plan {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%w\nin statement:\n%s", err, stmt)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply (nothing was changed): %w", err)
	}
	for _, stmt := range plan {
		fmt.Fprintf(std.out, "applied: %s\n", summary(stmt))
	}
	fmt.Fprintf(std.out, "%d statements applied in one transaction\n", len(plan))
	return nil
}

// summary is a statement's first line, shortened for the --apply report.
func summary(stmt string) string {
	line, _, _ := strings.Cut(stmt, "\n")
	if i := strings.Index(line, " EXECUTE FUNCTION "); i >= 0 {
		line = line[:i]
	}
	return line
}
