package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tombstone-proxy/tombstone/schematool"
)

// doctor checks each configured table of one database and prints what it
// found; it fails when something Tombstone relies on is wrong.
func doctor(std stdio, args []string) error {
	fs := newFlags("doctor", `doctor --config FILE --dsn DSN [--app-role ROLE]... [--strict]

Connects directly (not through the proxy) as a privileged role and checks,
for each configured table and its partitions and inheritance children:

  columns       the table exists; deleted_at is timestamptz or timestamp;
                deleted_by (text, varchar, integer, bigint or uuid) and
                deleted_reason (text), when configured, exist
  grants        the roles that may DELETE from it (granted directly, less
                privileged ones, plus each --app-role) can UPDATE the
                soft-delete columns, and those of the children a cascade
                reaches, and read the children a check reads
  indexes       indexes that are not partial (WHERE deleted_at IS NULL)
  unique        unique constraints and indexes that still hold deleted rows
                (re-inserting a deleted key fails), with the partial unique
                index that replaces each
  exclusion     exclusion constraints that still hold deleted rows, with
                their partial form
  foreign keys  each key in and out, and what a DELETE through the proxy
                does with it
  deleted rows  how many, the oldest, how many are past retention
  interference  DELETE triggers that no longer fire, UPDATE rules, and
                row-level security policies that would refuse the
                soft-delete UPDATE
  views, rls    the optional active_<table> views and policies
                (tombstone migrate --views, --rls)

and for the database: Tombstone's helpers and triggers (tombstone
migrate), and the audit table (audit.table). Each finding is ok, note,
warn or FAIL, with what tombstone migrate does about it. It exits 1 when
there is a FAIL (with --strict, a warn too), 0 otherwise. Counting
deleted rows reads each table once.`, std)
	path := configFlag(fs)
	dsn := fs.String("dsn", "", "PostgreSQL connection string `DSN` of the database to check (a privileged role, not through the proxy)")
	var appRoles roleList
	fs.Var(&appRoles, "app-role", "also check application `ROLE` (repeatable): roles that DELETE through a group, say")
	strict := fs.Bool("strict", false, "exit 1 on warnings too")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	db, facts, err := inspect(ctx, *path, *dsn, appRoles)
	if err != nil {
		return err
	}
	defer db.conn.Close(context.Background())
	report := schematool.Check(facts)
	report.Write(std.out)
	problems := report.Count(schematool.Fail)
	if *strict {
		problems += report.Count(schematool.Warn)
	}
	if problems > 0 {
		return fmt.Errorf("%d finding(s) need attention; tombstone migrate --config %s --dsn DSN prints the DDL that fixes those it can", problems, *path)
	}
	return nil
}

// inspect opens the database and reads what doctor and migrate need.
// The caller closes db.conn.
func inspect(ctx context.Context, path, dsn string, appRoles []string) (*database, *schematool.Facts, error) {
	db, err := openDatabase(ctx, path, dsn)
	if err != nil {
		return nil, nil, err
	}
	// pg_get_indexdef and pg_get_constraintdef qualify every name the
	// search_path does not make visible: with pg_catalog alone, the
	// definitions migrate rebuilds name each table with its schema, and
	// run the same in any session.
	if _, err := db.conn.Exec(ctx, "SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)"); err != nil {
		db.conn.Close(context.Background())
		return nil, nil, fmt.Errorf("set search_path: %w", err)
	}
	facts, err := schematool.Inspect(ctx, db.conn, db.spec, db.schema, db.policy, appRoles)
	if err != nil {
		db.conn.Close(context.Background())
		return nil, nil, err
	}
	return db, facts, nil
}

// roleList is a repeatable flag of role names, as PostgreSQL stores them.
type roleList []string

func (l *roleList) String() string { return strings.Join(*l, ",") }

func (l *roleList) Set(v string) error {
	if v == "" {
		return errors.New("empty role name")
	}
	*l = append(*l, v)
	return nil
}
