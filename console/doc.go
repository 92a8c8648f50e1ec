// Package console is the trash console: server-rendered pages and a JSON
// API (under /api/v1/) where support staff list the soft-deleted rows of
// the configured tables, see who deleted them, when and why, and restore
// them (with what their deletion took with it) or erase them for good.
//
// It is an http.Handler built from Options: users with bcrypt hashes and
// permissions, a pool on a privileged, direct connection, and the policy
// resolved in that database's catalog. Restores are maint.Restore (the
// statement tombstone restore --cascade runs), erasures purge.Erase;
// both write the audit log with the actor console:<user>.
//
// Security: HTTP basic auth, bcrypt-checked, with user names compared in
// constant time and failures counted and rate-limited per client IP;
// CSRF checks on every POST (same origin, plus a token for forms); a
// strict Content-Security-Policy and no inline script or style;
// html/template escaping; request bodies capped at 64 KiB; table names
// accepted only from the policy, key values only as JSON of the primary
// key's columns and quoted with internal/sqlquote.
//
// It imports maint, purge, rewrite, policy, metrics, internal/sqlquote and
// pgx; never internal/config (internal/server translates the
// configuration, and reads the catalog with package catalog).
package console
