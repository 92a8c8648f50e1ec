package catalog

import "github.com/tombstone-proxy/tombstone/internal/sqlquote"

// Literal returns an SQL expression of type text whose value is s, safe
// whatever the session's settings (sqlquote.Literal).
func Literal(s string) string { return sqlquote.Literal(s) }

// QuoteIdent quotes s as an SQL identifier (sqlquote.Ident).
func QuoteIdent(s string) string { return sqlquote.Ident(s) }

// hexText is s spelt in hexadecimal digits only (sqlquote.Hex).
func hexText(s string) string { return sqlquote.Hex(s) }
