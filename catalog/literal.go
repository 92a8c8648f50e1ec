package catalog

import "strings"

// Literal returns an SQL expression of type text whose value is s. It is
// safe whatever the session's standard_conforming_strings and
// client_encoding say: printable ASCII without a backslash is a plain
// quoted literal (read the same way in every client encoding PostgreSQL
// supports), and anything else is spelt in hexadecimal digits and decoded
// by the server, so no byte of s reaches the server's lexer. s must not
// contain a NUL byte, which no PostgreSQL text can hold; the server
// rejects such a value.
func Literal(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '\\' {
			return hexText(s)
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// QuoteIdent quotes s as an SQL identifier, always in double quotes, so
// that case and keywords are kept as written.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
