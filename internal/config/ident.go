package config

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxIdentLen is PostgreSQL's NAMEDATALEN-1: the server truncates a longer
// name, so a configured name past it would never match the catalog.
const maxIdentLen = 63

// foldName splits a table or column name as written in the file into its
// dot-separated parts and returns each part as PostgreSQL stores it. An
// unquoted part is folded the way the server folds an unquoted identifier:
// ASCII A-Z to lower case, every other byte kept (with a UTF8 database the
// server folds only ASCII). A double-quoted part ("Mixed Case") is kept
// exactly, with "" standing for one quote. Anything else is an error that
// says what to write instead.
func foldName(s string) ([]string, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%q is not valid UTF-8", s)
	}
	var parts []string
	for i := 0; ; {
		var part string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			j := i + 1
			for {
				k := strings.IndexByte(s[j:], '"')
				if k < 0 {
					return nil, fmt.Errorf("%q has a double quote that is not closed; write \"\" for a quote inside a quoted name", s)
				}
				b.WriteString(s[j : j+k])
				j += k + 1
				if j < len(s) && s[j] == '"' {
					b.WriteByte('"')
					j++
					continue
				}
				break
			}
			part = b.String()
			if part == "" {
				return nil, fmt.Errorf("%q has an empty quoted name (\"\"); PostgreSQL has no empty identifiers", s)
			}
			if strings.IndexByte(part, 0) >= 0 {
				return nil, fmt.Errorf("%q contains a NUL byte, which no PostgreSQL name can hold", s)
			}
			i = j
		} else {
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '"' {
				j++
			}
			raw := s[i:j]
			if err := checkUnquoted(s, raw); err != nil {
				return nil, err
			}
			part = foldASCII(raw)
			i = j
		}
		if len(part) > maxIdentLen {
			return nil, fmt.Errorf("%q has a name of %d bytes; PostgreSQL truncates names to %d bytes, so write the name as the catalog stores it", s, len(part), maxIdentLen)
		}
		parts = append(parts, part)
		switch {
		case i == len(s):
			return parts, nil
		case s[i] == '.':
			i++
			if i == len(s) {
				return nil, fmt.Errorf("%q ends with a dot; write table or schema.table", s)
			}
		default:
			return nil, fmt.Errorf("%q has %q right after a quoted name; a quoted name must be followed by a dot or end the value (quote the whole name, such as '\"%s\"')", s, s[i:i+1], strings.ReplaceAll(s, `"`, `""`))
		}
	}
}

// checkUnquoted reports why raw (a part of whole) is not an unquoted
// identifier, as PostgreSQL's lexer reads one: a letter, underscore or
// non-ASCII character first, then those, digits or dollar signs.
func checkUnquoted(whole, raw string) error {
	quoted := `'"` + strings.ReplaceAll(raw, `"`, `""`) + `"'`
	if raw == "" {
		return fmt.Errorf("%q has an empty name part; write table or schema.table", whole)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		letter := c == '_' || c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		switch {
		case letter:
		case i > 0 && (('0' <= c && c <= '9') || c == '$'):
		case i == 0 && (('0' <= c && c <= '9') || c == '$'):
			return fmt.Errorf("%q is not a valid name: an unquoted name cannot start with %q; if the table really is named so, write it double-quoted: %s", whole, string(c), quoted)
		default:
			return fmt.Errorf("%q is not a valid name: %q is not allowed in an unquoted name; if the name really holds it, write it double-quoted: %s", whole, string(c), quoted)
		}
	}
	return nil
}

// foldASCII lower-cases ASCII letters only, as PostgreSQL's
// downcase_identifier does for a multibyte (UTF8) database.
func foldASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// QuoteIdent writes name as a SQL identifier: bare when PostgreSQL would
// read it back unchanged, double-quoted otherwise. For messages and logs.
func QuoteIdent(name string) string {
	if name != "" && checkUnquoted(name, name) == nil && foldASCII(name) == name {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
