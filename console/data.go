package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tombstone-proxy/tombstone/internal/sqlquote"
	"github.com/tombstone-proxy/tombstone/maint"
	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/purge"
)

// tableInfo is one soft-delete table on the index page and in
// GET /api/v1/tables.
type tableInfo struct {
	Name       string `json:"name"`
	Deleted    int64  `json:"deleted"`
	CanRestore bool   `json:"can_restore"`
	CanPurge   bool   `json:"can_purge"`
}

// listTables counts the deleted rows of every console table.
func (c *Console) listTables(ctx context.Context, u *User) ([]tableInfo, error) {
	out := make([]tableInfo, 0, len(c.tables))
	for _, t := range c.tables {
		var n int64
		if err := c.opts.DB.QueryRow(ctx, fmt.Sprintf("SELECT pg_catalog.count(*) FROM %s AS t WHERE t.%s IS NOT NULL", relation(t), sqlquote.Ident(t.DeletedAt))).Scan(&n); err != nil {
			return nil, fmt.Errorf("count the deleted rows of %s: %w", t.QualifiedName(), err)
		}
		out = append(out, tableInfo{Name: t.QualifiedName(), Deleted: n, CanRestore: u.CanRestore, CanPurge: u.CanPurge})
	}
	return out, nil
}

// relation is t's name in SQL. Without ONLY: a table's partitions and
// inheritance children hold its rows too.
func relation(t *policy.Table) string {
	return sqlquote.Ident(t.Schema) + "." + sqlquote.Ident(t.Name)
}

// deletedRow is one deleted row of a table page and of
// GET /api/v1/tables/{table}/deleted.
type deletedRow struct {
	Key           json.RawMessage `json:"key"`
	DeletedAt     deletionTime    `json:"deleted_at"`
	DeletedBy     *string         `json:"deleted_by"`
	DeletedReason *string         `json:"deleted_reason"`
	// Cascaded is the number of other rows the same deletion took with
	// this one: what a restore brings back beside it.
	Cascaded int64           `json:"cascaded"`
	Row      json.RawMessage `json:"row"`
}

// deletionTime is a deleted_at value. An INSERT through the proxy writes
// its values untouched, so a "deleted" row may carry any stamp the column
// holds: 'infinity', '-infinity' or a year past 9999, which neither
// pgx's time.Time nor its JSON can take. One such row must not take the
// listing down: finite stamps print at any year, the others as the
// server spells them.
type deletionTime struct {
	t    *time.Time // nil when the stamp is not finite
	text string     // the server's spelling
}

// RFC3339 is the stamp for machines: the API and the datetime attribute.
func (d deletionTime) RFC3339() string {
	if d.t == nil {
		return d.text
	}
	return d.t.UTC().Format(time.RFC3339Nano)
}

// String is the stamp for people.
func (d deletionTime) String() string {
	if d.t == nil {
		return d.text
	}
	return d.t.UTC().Format("2006-01-02 15:04:05.000000 UTC")
}

func (d deletionTime) MarshalJSON() ([]byte, error) { return json.Marshal(d.RFC3339()) }

// filter chooses deleted rows, from a query string.
type filter struct {
	Actor, Key   string
	Since, Until string // as given, for the form
	since, until time.Time
	After        string // the opaque cursor
	Limit        int
}

const (
	defaultLimit = 50
	maxLimit     = 500
)

// inputError is a request the console cannot act on: 400, or Status.
type inputError struct {
	Status int
	Msg    string
}

func (e *inputError) Error() string { return e.Msg }

func badInput(format string, args ...any) error {
	return &inputError{Status: 400, Msg: fmt.Sprintf(format, args...)}
}

func parseFilter(q url.Values) (filter, error) {
	f := filter{Actor: q.Get("actor"), Key: q.Get("key"), Since: q.Get("since"), Until: q.Get("until"), After: q.Get("after"), Limit: defaultLimit}
	for _, p := range []struct {
		name, v string
		t       *time.Time
	}{{"since", f.Since, &f.since}, {"until", f.Until, &f.until}} {
		if p.v == "" {
			continue
		}
		t, err := parseTime(p.v)
		if err != nil {
			return f, badInput("%s=%q is not a time: write RFC 3339 (2026-03-02T10:00:00Z) or 2026-03-02T10:00 (UTC)", p.name, p.v)
		}
		*p.t = t
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			return f, badInput("limit=%q is not a number from 1 to %d", l, maxLimit)
		}
		f.Limit = n
	}
	return f, nil
}

// parseTime reads RFC 3339, or the forms a datetime-local input sends
// (taken as UTC), or a date.
func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a time")
}

// order is the columns deleted rows are paged by, after deleted_at: the
// primary key, or for a table without one the row's place (ctid).
func order(t *policy.Table) (cols, types []string) {
	if len(t.PrimaryKey) == 0 {
		return []string{"ctid"}, []string{"tid"}
	}
	return t.PrimaryKey, t.KeyTypes
}

// listDeleted returns a page of t's deleted rows, newest first (by
// deleted_at, then key, both descending), and the cursor of the next page
// ("" on the last).
func (c *Console) listDeleted(ctx context.Context, t *policy.Table, f filter) ([]deletedRow, string, error) {
	at := "t." + sqlquote.Ident(t.DeletedAt)
	textOf := func(col string) string {
		if col == "" {
			return "NULL::pg_catalog.text"
		}
		return "t." + sqlquote.Ident(col) + "::pg_catalog.text"
	}
	cols, types := order(t)
	sel := []string{"CASE WHEN pg_catalog.isfinite(" + at + ") THEN " + at + " END", at + "::pg_catalog.text", textOf(t.DeletedBy), textOf(t.DeletedReason),
		"pg_catalog.to_jsonb(t)::pg_catalog.text", c.rw.CascadedSQL(t, "t")}
	for _, k := range cols {
		sel = append(sel, textOf(k))
	}
	for _, k := range t.PrimaryKey {
		sel = append(sel, "pg_catalog.to_jsonb(t."+sqlquote.Ident(k)+")::pg_catalog.text")
	}
	where := []string{at + " IS NOT NULL"}
	var args []any
	arg := func(v any, typ string) string {
		args = append(args, v)
		return fmt.Sprintf("CAST($%d AS %s)", len(args), typ)
	}
	if f.Actor != "" {
		if t.DeletedBy == "" {
			return nil, "", badInput("%s records no actor (it has no deleted_by column): leave the actor filter empty", t.QualifiedName())
		}
		where = append(where, textOf(t.DeletedBy)+" OPERATOR(pg_catalog.=) "+arg(f.Actor, "pg_catalog.text"))
	}
	if !f.since.IsZero() {
		where = append(where, at+" OPERATOR(pg_catalog.>=) "+arg(f.since, "pg_catalog.timestamptz"))
	}
	if !f.until.IsZero() {
		where = append(where, at+" OPERATOR(pg_catalog.<=) "+arg(f.until, "pg_catalog.timestamptz"))
	}
	if f.Key != "" {
		switch {
		case strings.HasPrefix(strings.TrimSpace(f.Key), "{"):
			cond, err := keyCondition(t, json.RawMessage(f.Key), "t.")
			if err != nil {
				return nil, "", err
			}
			where = append(where, cond)
		case len(t.PrimaryKey) == 1:
			where = append(where, textOf(t.PrimaryKey[0])+" OPERATOR(pg_catalog.=) "+arg(f.Key, "pg_catalog.text"))
		default:
			return nil, "", badInput("%s has a key of %d columns: write the key as JSON, such as %s", t.QualifiedName(), len(t.PrimaryKey), exampleKey(t))
		}
	}
	if f.After != "" {
		vals, err := decodeCursor(f.After, len(cols)+1)
		if err != nil {
			return nil, "", err
		}
		left, right := []string{at}, []string{arg(vals[0], t.DeletedAtType)}
		for i, k := range cols {
			left = append(left, "t."+sqlquote.Ident(k))
			right = append(right, arg(vals[i+1], types[i]))
		}
		where = append(where, "("+strings.Join(left, ", ")+") OPERATOR(pg_catalog.<) ("+strings.Join(right, ", ")+")")
	}
	orderBy := []string{at + " DESC"}
	for _, k := range cols {
		orderBy = append(orderBy, "t."+sqlquote.Ident(k)+" DESC")
	}
	sql := fmt.Sprintf("SELECT %s FROM %s AS t WHERE %s ORDER BY %s LIMIT %d",
		strings.Join(sel, ", "), relation(t), strings.Join(where, " AND "), strings.Join(orderBy, ", "), f.Limit+1)
	rows, err := c.opts.DB.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", dataError(err)
	}
	var out []deletedRow
	var cursors [][]string
	for rows.Next() {
		var r deletedRow
		var atText, row string
		page := make([]string, len(cols))
		keys := make([]string, len(t.PrimaryKey))
		dest := []any{&r.DeletedAt.t, &atText, &r.DeletedBy, &r.DeletedReason, &row, &r.Cascaded}
		for i := range page {
			dest = append(dest, &page[i])
		}
		for i := range keys {
			dest = append(dest, &keys[i])
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, "", err
		}
		r.Row, r.DeletedAt.text = json.RawMessage(row), atText
		if r.Key, err = keyJSON(t.PrimaryKey, keys); err != nil {
			rows.Close()
			return nil, "", err
		}
		out = append(out, r)
		cursors = append(cursors, append([]string{atText}, page...))
	}
	if err := rows.Err(); err != nil {
		return nil, "", dataError(err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = encodeCursor(cursors[f.Limit-1])
	}
	return out, next, nil
}

// dataError makes a value the server cannot read (a forged cursor, a
// key that is no uuid) a 400.
func dataError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22") {
		return badInput("the database cannot read a value of the request: %s", pe.Message)
	}
	return err
}

// keyJSON is a key as canonical JSON, columns in key order: the form's
// and the data-key attribute's value, and what restore and purge take.
func keyJSON(cols, values []string) (json.RawMessage, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(c)
		b.Write(name)
		b.WriteByte(':')
		if err := json.Compact(&b, []byte(values[i])); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func encodeCursor(vals []string) string {
	b, _ := json.Marshal(vals)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, n int) ([]string, error) {
	var vals []string
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &vals)
	}
	if err != nil || len(vals) != n {
		return nil, badInput("after=%q is not a cursor of this table: use the next link or the \"next\" value of the previous page", s)
	}
	return vals, nil
}

// keyCondition reads raw, a JSON object holding exactly the primary key's
// columns with values of their types, and returns the SQL condition that
// chooses that row: each value a quoted literal cast to its column's
// type, qual prefixed to the column names ("" or "t.").
func keyCondition(t *policy.Table, raw json.RawMessage, qual string) (string, error) {
	if len(t.PrimaryKey) == 0 {
		return "", badInput("%s has no primary key, so the console cannot name one of its rows: use tombstone restore or purge with --where", t.QualifiedName())
	}
	obj, err := keyObject(raw)
	if err != nil {
		return "", badInput("the key is not a JSON object of the primary key's columns, such as %s: %v", exampleKey(t), err)
	}
	for name := range obj {
		if !slices.Contains(t.PrimaryKey, name) {
			return "", badInput("the key has the column %q, which is not in the primary key of %s (%s)", name, t.QualifiedName(), strings.Join(t.PrimaryKey, ", "))
		}
	}
	conds := make([]string, len(t.PrimaryKey))
	for i, col := range t.PrimaryKey {
		v, ok := obj[col]
		if !ok {
			return "", badInput("the key lacks the column %q of the primary key of %s: write %s", col, t.QualifiedName(), exampleKey(t))
		}
		text, err := keyValue(v, t.KeyTypes[i])
		if err != nil {
			return "", badInput("the key's column %q: %v", col, err)
		}
		conds[i] = fmt.Sprintf("%s%s OPERATOR(pg_catalog.=) CAST(%s AS %s)", qual, sqlquote.Ident(col), sqlquote.Literal(text), t.KeyTypes[i])
	}
	return strings.Join(conds, " AND "), nil
}

// keyObject reads a JSON object's members. A member named twice is an
// error, not the last one winning: {"id":1,"id":2} names no one row, and
// whatever logged or checked the request may have read the first.
func keyObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	obj := map[string]json.RawMessage{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("not an object")
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		if _, twice := obj[name]; twice {
			return nil, fmt.Errorf("it names %q twice", name)
		}
		obj[name] = v
	}
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return obj, nil
}

// keyValue checks v against a column type and returns its text: integers
// and other numbers are JSON numbers, booleans JSON booleans, anything
// else (text, uuid, dates) a JSON string the server casts.
func keyValue(v json.RawMessage, typ string) (string, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return "", err
	}
	bits := map[string]int{"smallint": 16, "integer": 32, "bigint": 64}
	switch x := x.(type) {
	case json.Number:
		if b, ok := bits[typ]; ok {
			if _, err := strconv.ParseInt(x.String(), 10, b); err != nil {
				return "", fmt.Errorf("%s is not a whole number that fits %s", x, typ)
			}
			return x.String(), nil
		}
		if typ == "real" || typ == "double precision" || strings.HasPrefix(typ, "numeric") {
			return x.String(), nil
		}
	case bool:
		if typ == "boolean" {
			return strconv.FormatBool(x), nil
		}
	case string:
		if _, number := bits[typ]; !number && typ != "boolean" && typ != "real" && typ != "double precision" && !strings.HasPrefix(typ, "numeric") {
			if strings.IndexByte(x, 0) >= 0 {
				return "", errors.New("a NUL byte cannot be in a key")
			}
			return x, nil
		}
	}
	want := "a JSON string"
	switch _, number := bits[typ]; {
	case number, typ == "real", typ == "double precision", strings.HasPrefix(typ, "numeric"):
		want = "a JSON number"
	case typ == "boolean":
		want = "true or false"
	}
	return "", fmt.Errorf("%s is not of type %s: write %s", string(v), typ, want)
}

// exampleKey shows the shape of t's key, for messages.
func exampleKey(t *policy.Table) string {
	parts := make([]string, len(t.PrimaryKey))
	for i, c := range t.PrimaryKey {
		name, _ := json.Marshal(c)
		parts[i] = fmt.Sprintf("%s: <%s>", name, t.KeyTypes[i])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// errNotFound is a key no deleted row of the table has.
func errNotFound(t *policy.Table) error {
	return &inputError{Status: 404, Msg: "no deleted row of " + t.QualifiedName() + " has that key (restored or erased already?)"}
}

// restore brings back the deleted row of t with key, and what its
// deletion took with it, as tombstone restore --cascade does, audited
// with the actor console:<user>.
func (c *Console) restore(ctx context.Context, u *User, t *policy.Table, key json.RawMessage) ([]maint.Count, error) {
	if !u.CanRestore {
		return nil, &inputError{Status: 403, Msg: "user " + u.Name + " may not restore (console.users[].can lacks restore)"}
	}
	cond, err := keyCondition(t, key, "")
	if err != nil {
		return nil, err
	}
	counts, err := maint.Restore(ctx, c.opts.DB, c.rw, maint.Restoration{
		Table: relation(t), Where: cond, Cascade: true, Actor: "console:" + u.Name, Reason: "console restore",
	})
	switch {
	case err == nil && len(counts) == 0:
		err = errNotFound(t)
	case err != nil:
		if re, ok := errors.AsType[*maint.RefusedError](err); ok && strings.HasPrefix(re.PG.Code, "22") {
			err = badInput("the database cannot read the key: %s", re.PG.Message)
		}
	}
	c.count(u, t, "restore", err)
	return counts, err
}

// erase removes the deleted row of t with key for good, with the rows
// that cascade from it, audited with the actor console:<user>. With
// dryRun it removes nothing and reports what it would remove: the
// confirmation page shows it, since the cascade takes every row
// referencing this one, not only the rows its deletion took (rows
// deleted on their own before, and live rows of a declared cascade,
// which no constraint keeps from referencing a deleted row).
func (c *Console) erase(ctx context.Context, u *User, t *policy.Table, key json.RawMessage, dryRun bool) (*purge.ErasureReport, error) {
	if !u.CanPurge {
		return nil, &inputError{Status: 403, Msg: "user " + u.Name + " may not purge (console.users[].can lacks purge)"}
	}
	cond, err := keyCondition(t, key, "")
	if err != nil {
		return nil, err
	}
	conn, err := c.opts.DB.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	// Only a deleted row: the console is the trash, not the table.
	report, err := purge.Erase(ctx, conn.Conn(), c.opts.Policy, purge.Erasure{
		Table: policy.RelName{Schema: t.Schema, Name: t.Name}, Where: cond + " AND " + sqlquote.Ident(t.DeletedAt) + " IS NOT NULL",
		Cascade: true, DeletedOnly: true, DryRun: dryRun, Actor: "console:" + u.Name, Reason: "console purge",
	})
	switch {
	case err == nil && report.Rows() == 0:
		err = errNotFound(t)
	case err != nil:
		err = dataError(err)
	}
	if !dryRun {
		c.count(u, t, "purge", err)
	}
	return report, err
}

// count records an action's result in the metrics and the log (the key
// is in the audit log, not here).
func (c *Console) count(u *User, t *policy.Table, action string, err error) {
	result := metrics.ResultOK
	if err != nil {
		result = metrics.ResultError
		if conflict(err) != nil {
			result = metrics.ResultConflict
		}
	}
	c.metrics.Action(action, result)
	if err != nil {
		c.log.Info("console "+action+" changed nothing", "user", u.Name, "table", t.QualifiedName(), "result", result, "error", err)
		return
	}
	c.log.Info("console "+action, "user", u.Name, "table", t.QualifiedName())
}

// conflictInfo is why a restore or purge changed nothing as the data
// stands: 409.
type conflictInfo struct {
	Msg, Detail string
}

func conflict(err error) *conflictInfo {
	if re, ok := errors.AsType[*maint.RefusedError](err); ok && re.Conflict() {
		msg := re.PG.Message
		if !strings.Contains(msg, "nothing was restored") {
			msg = "nothing was restored: " + msg
		}
		return &conflictInfo{Msg: msg, Detail: re.PG.Detail}
	}
	if errors.Is(err, purge.ErrRefused) {
		return &conflictInfo{Msg: err.Error()}
	}
	return nil
}
