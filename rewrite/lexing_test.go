package rewrite

import (
	"strings"
	"testing"
)

func TestLexStateFromParameterStatus(t *testing.T) {
	var s LexState
	if s = s.Set("standard_conforming_strings", "off"); !s.EscapeStrings {
		t.Fatal("standard_conforming_strings off not followed")
	}
	if s = s.Set("TimeZone", "UTC"); !s.EscapeStrings || s.Encoding != "" {
		t.Fatalf("an unrelated setting changed the state: %+v", s)
	}
	if s = s.Set("standard_conforming_strings", "on"); s != (LexState{}) {
		t.Fatalf("back to on: %+v", s)
	}
	// The names are those the server reports (pg_encoding_to_char).
	for _, enc := range []string{"SJIS", "SHIFT_JIS_2004", "BIG5", "GBK", "GB18030", "UHC", "JOHAB"} {
		if got := s.Set("client_encoding", enc); got.Encoding != enc {
			t.Errorf("client_encoding %s: state %+v, want it followed as not ASCII-safe", enc, got)
		}
	}
	for _, enc := range []string{"UTF8", "SQL_ASCII", "LATIN1", "EUC_JP", "EUC_JIS_2004", "WIN1252", "KOI8R", "MULE_INTERNAL"} {
		if got := s.Set("client_encoding", "SJIS").Set("client_encoding", enc); got != (LexState{}) {
			t.Errorf("client_encoding %s: state %+v, want the zero state", enc, got)
		}
	}
}

func TestCheckLexing(t *testing.T) {
	offStrings := LexState{EscapeStrings: true}
	sjis := LexState{Encoding: "SJIS"}
	for _, c := range []struct {
		sql     string
		state   LexState
		refused bool
	}{
		{`SELECT 'a\'`, LexState{}, false},
		{`SELECT 'a'`, offStrings, false},
		{`SELECT 'a\'; DELETE FROM t; --'`, offStrings, true},
		{`SELECT E'\\'`, offStrings, true}, // scanned alike, but any backslash is refused
		{`SELECT 'plain ascii', "x\y"`, sjis, false},
		{"SELECT '\x83\x5c'", sjis, true}, // SJIS "ソ": its second byte is a backslash
		{"SELECT 'é'", sjis, true},
		{"SELECT 'é'", offStrings, false},
		{"SELECT 'é\\'", LexState{EscapeStrings: true, Encoding: "BIG5"}, true},
	} {
		r := CheckLexing(c.sql, c.state)
		if (r != nil) != c.refused {
			t.Errorf("CheckLexing(%q, %+v) = %v, want refused %v", c.sql, c.state, r, c.refused)
			continue
		}
		if r != nil && (r.Reason != ReasonLexing || r.Code != "0A000") {
			t.Errorf("CheckLexing(%q): reason %s code %s, want %s 0A000", c.sql, r.Reason, r.Code, ReasonLexing)
		}
	}
	if r := CheckLexing(`SELECT '\'`, offStrings); r == nil || !strings.Contains(r.Message, "standard_conforming_strings") {
		t.Errorf("the refusal must name the setting: %v", r)
	}
	if r := CheckLexing("SELECT 'é'", sjis); r == nil || !strings.Contains(r.Message, "client_encoding is SJIS") {
		t.Errorf("the refusal must name the setting and its value: %v", r)
	}
}
