package rewrite

import "strings"

// pg_query scans every text as PostgreSQL does with
// standard_conforming_strings on and in UTF-8. The server scans under the
// session's settings, which the proxy follows from the ParameterStatus
// messages the server sends at login and after every change (settings.go
// refuses the statements that would make such a change). Under other
// settings a text is scanned the same only if it holds none of the bytes
// the settings give another meaning; any other text is refused, since what
// Tombstone reads as a string literal could end elsewhere for the server
// and hide a statement.

// LexState is what a session's settings change in how the server scans
// SQL. The zero value is how pg_query scans.
type LexState struct {
	// EscapeStrings: standard_conforming_strings is off, so a backslash
	// in a plain '...' literal escapes the next character (\' does not
	// end the string).
	EscapeStrings bool
	// Encoding is client_encoding when it is not ASCII-safe (in SJIS,
	// BIG5, GBK, GB18030, UHC and JOHAB the second byte of a character can
	// be a backslash), else "". The server converts such text to its own
	// encoding before scanning it; Tombstone sees the raw bytes.
	Encoding string
}

// Set returns the state after the server reported a setting's value
// (ParameterStatus: name, value); settings other than the two that
// matter leave it unchanged.
func (s LexState) Set(name, value string) LexState {
	switch name {
	case "standard_conforming_strings":
		// The server reports on or off; anything else is not known to be
		// on.
		s.EscapeStrings = value != "on"
	case "client_encoding":
		s.Encoding = ""
		if unsafeEncoding(value) {
			s.Encoding = value
		}
	}
	return s
}

// CheckLexing refuses sql when the server, scanning it under s, might
// read it differently from Tombstone. A text without backslashes is
// scanned alike whatever standard_conforming_strings says, and a pure
// ASCII text alike in every client encoding, so those pass.
func CheckLexing(sql string, s LexState) *Refusal {
	if s.EscapeStrings && strings.IndexByte(sql, '\\') >= 0 {
		return RefuseLexing("standard_conforming_strings is off and the statement contains a backslash")
	}
	if s.Encoding != "" && !isASCII(sql) {
		return RefuseLexing("client_encoding is " + s.Encoding + ", which is not ASCII-safe, and the statement contains non-ASCII bytes")
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
