package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tombstone-proxy/tombstone/policy"
)

// document is the JSON Query returns.
type document struct {
	Relations   *[]relation   `json:"relations"`
	ForeignKeys *[]foreignKey `json:"foreign_keys"`
	Helpers     *bool         `json:"helpers"`
}

type relation struct {
	OID         uint32   `json:"oid"`
	Schema      string   `json:"schema"`
	Name        string   `json:"name"`
	Partitioned bool     `json:"partitioned"`
	Parent      uint32   `json:"parent"`
	Columns     []column `json:"columns"`
	PrimaryKey  []string `json:"primary_key"`
}

type column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type foreignKey struct {
	Name          string   `json:"name"`
	ChildSchema   string   `json:"child_schema"`
	ChildTable    string   `json:"child_table"`
	ChildColumns  []string `json:"child_columns"`
	ParentSchema  string   `json:"parent_schema"`
	ParentTable   string   `json:"parent_table"`
	ParentColumns []string `json:"parent_columns"`
	OnDelete      string   `json:"on_delete"`
	Deferrable    bool     `json:"deferrable"`
}

// Decode parses the value Query's statement returns into a Schema. Its
// errors say what is wrong with the document, for a log line.
func Decode(value string) (*policy.Schema, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(value)))
	dec.DisallowUnknownFields()
	var doc document
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("catalog: decode the catalog query's answer: %w", err)
	}
	if dec.More() {
		return nil, errors.New("catalog: decode the catalog query's answer: more than one JSON value")
	}
	switch {
	case doc.Relations == nil:
		return nil, errors.New(`catalog: the catalog query's answer has no "relations"`)
	case doc.ForeignKeys == nil:
		return nil, errors.New(`catalog: the catalog query's answer has no "foreign_keys"`)
	case doc.Helpers == nil:
		return nil, errors.New(`catalog: the catalog query's answer has no "helpers"`)
	}
	s := &policy.Schema{Helpers: *doc.Helpers}
	seen := make(map[uint32]bool, len(*doc.Relations))
	for i, r := range *doc.Relations {
		if r.OID == 0 || r.Schema == "" || r.Name == "" {
			return nil, fmt.Errorf("catalog: relation %d (%q.%q, oid %d) lacks its oid, schema or name", i, r.Schema, r.Name, r.OID)
		}
		if seen[r.OID] {
			return nil, fmt.Errorf("catalog: relation %s.%s (oid %d) is listed twice", r.Schema, r.Name, r.OID)
		}
		seen[r.OID] = true
		rel := policy.Relation{OID: r.OID, Schema: r.Schema, Name: r.Name, Partitioned: r.Partitioned, Parent: r.Parent, PrimaryKey: r.PrimaryKey}
		for _, c := range r.Columns {
			if c.Name == "" || c.Type == "" {
				return nil, fmt.Errorf("catalog: relation %s.%s has a column without a name or type", r.Schema, r.Name)
			}
			// format_type qualifies a type its session's search_path
			// hides; a built-in type is named the same in every session.
			rel.Columns = append(rel.Columns, policy.Column{Name: c.Name, Type: strings.TrimPrefix(c.Type, "pg_catalog.")})
		}
		s.Relations = append(s.Relations, rel)
	}
	for _, r := range s.Relations {
		if r.Parent != 0 && !seen[r.Parent] {
			return nil, fmt.Errorf("catalog: relation %s.%s names parent oid %d, which is not listed", r.Schema, r.Name, r.Parent)
		}
	}
	for _, f := range *doc.ForeignKeys {
		if f.Name == "" || f.ChildSchema == "" || f.ChildTable == "" || f.ParentSchema == "" || f.ParentTable == "" {
			return nil, fmt.Errorf("catalog: foreign key %q (%s.%s -> %s.%s) lacks a name or table", f.Name, f.ChildSchema, f.ChildTable, f.ParentSchema, f.ParentTable)
		}
		if len(f.ChildColumns) == 0 || len(f.ChildColumns) != len(f.ParentColumns) {
			return nil, fmt.Errorf("catalog: foreign key %q on %s.%s has %d referencing and %d referenced columns", f.Name, f.ChildSchema, f.ChildTable, len(f.ChildColumns), len(f.ParentColumns))
		}
		if len(f.OnDelete) != 1 {
			return nil, fmt.Errorf("catalog: foreign key %q on %s.%s has ON DELETE action %q, want one letter", f.Name, f.ChildSchema, f.ChildTable, f.OnDelete)
		}
		a := policy.Action(f.OnDelete[0])
		switch a {
		case policy.NoAction, policy.Restrict, policy.Cascade, policy.SetNull, policy.SetDefault:
		default:
			return nil, fmt.Errorf("catalog: foreign key %q on %s.%s has unknown ON DELETE action %q", f.Name, f.ChildSchema, f.ChildTable, f.OnDelete)
		}
		s.ForeignKeys = append(s.ForeignKeys, policy.ForeignKey{
			Name:       f.Name,
			Child:      policy.RelName{Schema: f.ChildSchema, Name: f.ChildTable},
			ChildCols:  f.ChildColumns,
			Parent:     policy.RelName{Schema: f.ParentSchema, Name: f.ParentTable},
			ParentCols: f.ParentColumns,
			OnDelete:   a,
			Deferrable: f.Deferrable,
		})
	}
	return s, nil
}

// Read runs Query on conn and decodes its answer: the catalog read for
// command-line tools.
func Read(ctx context.Context, conn *pgx.Conn, spec policy.Spec) (*policy.Schema, error) {
	var value string
	if err := conn.QueryRow(ctx, Query(spec)).Scan(&value); err != nil {
		return nil, fmt.Errorf("catalog: read the catalog: %w", err)
	}
	return Decode(value)
}

// Resolve reads the catalog of conn's database and resolves p, a policy
// built from the configuration alone, in it: the policy the commands and
// the console work with on a direct, privileged connection.
func Resolve(ctx context.Context, conn *pgx.Conn, p *policy.Policy) (*policy.Policy, *policy.Schema, error) {
	schema, err := Read(ctx, conn, p.Spec())
	if err != nil {
		return nil, nil, err
	}
	resolved, err := p.WithSchema(schema)
	if err != nil {
		return nil, nil, err
	}
	return resolved, schema, nil
}
