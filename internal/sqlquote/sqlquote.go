// Package sqlquote spells values and names into SQL text that Tombstone
// builds itself, so that no byte of a value can reach the server's lexer
// as anything but that value, whatever the session's
// standard_conforming_strings and client_encoding say.
package sqlquote

import (
	"encoding/hex"
	"strings"
)

// Literal returns an SQL expression of type text whose value is s.
// Printable ASCII without a backslash is a plain quoted literal (read the
// same way in every client encoding PostgreSQL supports); anything else
// is spelt in hexadecimal digits and decoded by the server (Hex). s must
// not contain a NUL byte, which no PostgreSQL text can hold; the server
// rejects such a value.
func Literal(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '\\' {
			return Hex(s)
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Hex is an SQL expression of type text whose value is s (UTF-8), spelt in
// hexadecimal digits only: safe inside a dollar-quoted body too.
func Hex(s string) string {
	return "pg_catalog.convert_from(pg_catalog.decode('" + hex.EncodeToString([]byte(s)) + "', 'hex'), 'UTF8')"
}

// Ident quotes s as an SQL identifier, always in double quotes, so that
// case and keywords are kept as written.
func Ident(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
