package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/server"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// dryRun prints what the proxy would send upstream for one SQL text under
// the configuration's policy. With --dsn it reads that database's catalog
// first, as the proxy does at a session's start (children, foreign keys,
// declared cascades, problems); with --check it also runs what the proxy
// would send in a transaction that is rolled back.
func dryRun(std stdio, args []string) error {
	fs := newFlags("rewrite", `rewrite --config FILE [--role ROLE] [--dsn DSN [--check]] SQL

Shows what the proxy does with SQL: the rewritten text, "unchanged", or
the refusal with its SQLSTATE. SQL "-" reads the statement from standard
input. Without --dsn nothing is contacted and only the configured names
are known. With --dsn the database's catalog is read as the proxy reads
it, so partitions, inheritance children, foreign keys and declared
cascades apply, and configuration problems are listed. --check then runs
the statement the proxy would send, as the DSN's user, in a transaction
that is always rolled back, and prints its command tags or its error
(a RESTRICT foreign key's 23503, a missing grant's 42501). Sequences it
advances stay advanced.`, std)
	path := configFlag(fs)
	role := fs.String("role", "", "login `ROLE` of the session (privileged roles are bypassed)")
	dsn := fs.String("dsn", "", "read the catalog of the database at `DSN` first, as the proxy does")
	check := fs.Bool("check", false, "with --dsn: run the result in a transaction that is rolled back, and report what the server says")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if *check && *dsn == "" {
		return usagef("--check needs --dsn DSN: the database to run the statement in")
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	sql := fs.Arg(0)
	if sql == "-" {
		b, err := io.ReadAll(std.in)
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		sql = string(b)
	}
	p, err := server.NewPolicy(cfg)
	if err != nil {
		return &configError{err}
	}
	if *role != "" && p.PrivilegedByName(*role) {
		fmt.Fprintf(std.out, "bypassed: role %q is in privileged_roles; the statement is sent unchanged\n", *role)
		return nil
	}
	var conn *pgx.Conn
	if *dsn != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if conn, err = pgx.Connect(ctx, *dsn); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		defer conn.Close(context.Background())
		if p, _, err = catalog.Resolve(ctx, conn, p); err != nil {
			return err
		}
		for _, pr := range p.Problems() {
			fmt.Fprintf(std.out, "-- problem: %s: %s\n", pr.Table, pr.Message)
		}
	}
	res, _, refusal := rewrite.New(p, int64(cfg.RewriteCacheSize)).Rewrite(sql)
	switch {
	case refusal != nil:
		fmt.Fprintf(std.out, "refused: SQLSTATE %s: %s\n", refusal.Code, refusal.Message)
		for _, l := range []struct{ label, text string }{{"DETAIL", refusal.Detail}, {"HINT", refusal.Hint}} {
			if l.text != "" {
				fmt.Fprintf(std.out, "%s: %s\n", l.label, l.text)
			}
		}
	case res == nil:
		fmt.Fprintln(std.out, "unchanged: the statement names no soft-delete table")
	case !res.Changed:
		fmt.Fprintln(std.out, "unchanged")
	default:
		fmt.Fprintln(std.out, res.SQL)
		for _, a := range res.Applied {
			fmt.Fprintf(std.out, "-- applied: %s on %s\n", a.Kind, a.Table.QualifiedName())
		}
		for _, st := range res.Statements {
			if st.DeleteTag {
				fmt.Fprintln(std.out, "-- the client sees the command tag DELETE n, not UPDATE n")
				break
			}
		}
		lifecycle(std.out, res.Applied)
	}
	notes(std.out, p, *role, refusal != nil || (res != nil && res.Changed))
	if *check && refusal == nil {
		send := sql
		if res != nil {
			send = res.SQL
		}
		return checkRun(std.out, conn, send, res)
	}
	return nil
}

// checkRun runs text in a transaction that it always rolls back and
// prints each statement's command tag, as the client would see it, or the
// server's error. A text that ends or starts a transaction itself could
// escape the rollback, so it is not run.
func checkRun(w io.Writer, conn *pgx.Conn, text string, res *rewrite.Result) error {
	tree, err := pg.Parse(text)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	for _, st := range tree.GetStmts() {
		if st.GetStmt().GetTransactionStmt() != nil {
			fmt.Fprintln(w, "check: not run: the text holds transaction control (BEGIN, COMMIT, ROLLBACK, ...), which could escape the rollback")
			return nil
		}
	}
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the rollback is the point; its error changes nothing
	results, err := conn.PgConn().Exec(ctx, text).ReadAll()
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		fmt.Fprintf(w, "check: fails: SQLSTATE %s: %s\n", pe.Code, pe.Message)
		for _, l := range []struct{ label, text string }{{"DETAIL", pe.Detail}, {"HINT", pe.Hint}} {
			if l.text != "" {
				fmt.Fprintf(w, "%s: %s\n", l.label, l.text)
			}
		}
		return nil
	case err != nil:
		return fmt.Errorf("check: %w", err)
	}
	for i, r := range results {
		tag := r.CommandTag.String()
		if res != nil && i < len(res.Statements) && res.Statements[i].DeleteTag && r.CommandTag.Update() {
			tag = "DELETE " + strconv.FormatInt(r.CommandTag.RowsAffected(), 10)
		}
		fmt.Fprintf(w, "check: runs: %s (rolled back)\n", tag)
	}
	return nil
}

// lifecycle says what a soft delete takes with it and how it comes back,
// or what a restore brings back.
func lifecycle(w io.Writer, applied []rewrite.Applied) {
	var deleted, cascaded, restored []string
	for _, a := range applied {
		name := a.Table.QualifiedName()
		switch a.Kind {
		case rewrite.KindDelete:
			deleted = appendNew(deleted, name)
		case rewrite.KindCascade:
			cascaded = appendNew(cascaded, name)
		case rewrite.KindRestore:
			restored = appendNew(restored, name)
		}
	}
	if len(deleted) > 0 {
		fmt.Fprintf(w, "-- deletes: the matching live rows of %s, all with one deleted_at stamp", strings.Join(deleted, ", "))
		if len(cascaded) > 0 {
			fmt.Fprintf(w, ", and with them (ON DELETE CASCADE, same stamp) the live rows of %s that reference them", strings.Join(cascaded, ", "))
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "-- to restore: tombstone restore --config FILE --dsn DSN --table %s --where CONDITION --cascade brings back the rows and what their deletion took with it\n", deleted[0])
	}
	if len(restored) > 0 {
		fmt.Fprintf(w, "-- restores: the matching deleted rows of %s and the rows their deletion took with it\n", strings.Join(restored, ", "))
	}
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// notes says where the dry run differs from what the proxy would do with
// a statement it would rewrite or refuse.
func notes(w io.Writer, p *policy.Policy, role string, affected bool) {
	if !affected {
		return
	}
	if p.Mode() == policy.ModeShadow {
		fmt.Fprintln(w, "-- note: mode is shadow: the proxy sends the statement unchanged and only logs and counts the above")
	}
	if m := p.PrivilegedMemberOf(); len(m) > 0 && role != "" {
		fmt.Fprintf(w, "-- note: role %q is privileged if it is a member of %s; that is resolved at login and not checked here\n", role, strings.Join(m, ", "))
	}
}
