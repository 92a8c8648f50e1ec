package maint

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/rewrite"
)

// Restoration chooses soft-deleted rows to bring back.
type Restoration struct {
	// Table is the soft-delete table, as the configuration names it or
	// schema-qualified (quoted where SQL needs quotes).
	Table string
	// Where is an SQL condition on Table's rows. It is run as SQL: the
	// caller either trusts its author (tombstone restore's operator) or
	// builds it from quoted values (the console).
	Where string
	// Cascade also restores what the rows' deletion took with them.
	Cascade bool
	// DryRun does everything and then rolls back.
	DryRun bool
	// Actor and Reason go to the audit log, through the tombstone.actor
	// and tombstone.reason settings a restore through the proxy reads
	// from the client.
	Actor, Reason string
}

// Count is the number of rows restored in one table.
type Count struct {
	Table string // schema-qualified, as format('%I.%I') spells it
	Rows  int64
}

// Beginner starts a transaction: a *pgx.Conn, or a *pgxpool.Pool.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Restore runs r's restore (rewrite.RestoreSQL) in one transaction on db
// and returns the rows restored per table; none when no deleted row
// matches. A statement the database refuses restores nothing and comes
// back as a *RefusedError.
func Restore(ctx context.Context, db Beginner, rw *rewrite.Rewriter, r Restoration) ([]Count, error) {
	sql, err := rw.RestoreSQL(r.Table, r.Where, r.Cascade)
	if err != nil {
		return nil, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("nothing was restored: begin: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit it does nothing
	counts, err := restoreIn(ctx, tx, sql, r)
	if err == nil && !r.DryRun {
		err = tx.Commit(ctx)
	}
	if err != nil {
		return nil, refused(err)
	}
	return counts, nil
}

func restoreIn(ctx context.Context, tx pgx.Tx, sql string, r Restoration) ([]Count, error) {
	// The statement takes its actor and reason from these settings, as
	// a restore through the proxy does from the client's.
	if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('tombstone.actor', $1, true), pg_catalog.set_config('tombstone.reason', $2, true)", r.Actor, r.Reason); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Count, error) {
		var c Count
		err := row.Scan(&c.Table, &c.Rows)
		return c, err
	})
}

// RefusedError is a restore the database refused; nothing was restored.
type RefusedError struct{ PG *pgconn.PgError }

// Error says that nothing was restored, with the server's detail (the key
// a unique index or foreign key names) and hint.
func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("nothing was restored: %s (SQLSTATE %s)", e.PG.Message, e.PG.Code)
	if e.PG.Detail != "" {
		msg += "\nDETAIL: " + e.PG.Detail
	}
	if e.PG.Hint != "" {
		msg += "\nHINT: " + e.PG.Hint
	}
	return msg
}

func (e *RefusedError) Unwrap() error { return e.PG }

// Conflict reports whether the rows cannot come back as the data stands:
// a live row has taken a unique key of theirs (23505), or a parent they
// reference stays deleted (23503). The server's Detail names the key or
// the parent.
func (e *RefusedError) Conflict() bool {
	return e.PG.Code == "23505" || e.PG.Code == "23503"
}

func refused(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return &RefusedError{PG: pe}
	}
	return fmt.Errorf("nothing was restored: %w", err)
}
