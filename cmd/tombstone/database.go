package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/config"
	"github.com/tombstone-proxy/tombstone/internal/server"
	"github.com/tombstone-proxy/tombstone/policy"
)

// database is one database the schema commands (migrate, doctor, restore,
// purge) work on: a direct connection (never through the proxy: these
// commands see and change deleted rows), the configuration's spec, and
// the policy resolved in the database's catalog.
type database struct {
	conn   *pgx.Conn
	cfg    *config.File
	spec   policy.Spec
	schema *policy.Schema
	policy *policy.Policy
}

// openDatabase loads the configuration at path, connects to dsn and reads
// the catalog. The caller closes db.conn.
func openDatabase(ctx context.Context, path, dsn string) (*database, error) {
	if dsn == "" {
		return nil, usagef("--dsn DSN is required: the database to work on, reached directly as a privileged role (not through the proxy)")
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	// server.NewPolicy reports a declared cascade cycle as the other
	// commands do.
	named, err := server.NewPolicy(cfg)
	if err != nil {
		return nil, &configError{err}
	}
	spec := server.PolicySpec(cfg)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	p, schema, err := catalog.Resolve(ctx, conn, named)
	if err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return &database{conn: conn, cfg: cfg, spec: spec, schema: schema, policy: p}, nil
}
