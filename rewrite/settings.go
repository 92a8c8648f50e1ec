package rewrite

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// Settings that change how the server scans SQL. pg_query always scans
// as PostgreSQL does with standard_conforming_strings on and an
// ASCII-safe encoding; under other settings a string can hide a statement
// from Tombstone. The proxy follows the values the server reports
// (ParameterStatus) and refuses what it cannot scan under them; it cannot
// see a change before the server has made it, so a statement that would
// make the change is refused here instead. Changes back to the safe
// values, RESET and SET ... TO DEFAULT (the session's starting value,
// which the proxy was told at login) pass.

// lexingSetting refuses SET (or a function's SET clause) of
// standard_conforming_strings to anything but on, and of client_encoding
// to an encoding that is not ASCII-safe.
func lexingSetting(v *pg.VariableSetStmt) error {
	if v.Kind != pg.VariableSetKind_VAR_SET_VALUE {
		return nil
	}
	var value string
	if len(v.Args) == 1 {
		value = constText(v.Args[0])
	}
	return settingValue(strings.ToLower(v.Name), value, len(v.Args) == 1 && value != "")
}

// setConfigCall judges set_config(name, value, is_local) like SET. A name
// or value that is not a constant cannot be judged, so set_config with a
// non-constant name is refused, and so is a non-constant value for one of
// the two settings.
func setConfigCall(f *pg.FuncCall) error {
	if len(f.Funcname) == 0 || !strings.EqualFold(f.Funcname[len(f.Funcname)-1].GetString_().GetSval(), "set_config") {
		return nil
	}
	if len(f.Args) < 1 {
		return nil
	}
	name := constText(f.Args[0])
	if name == "" {
		return refuseSetting("set_config() with a setting name that is not a constant may",
			"Tombstone cannot tell whether it changes standard_conforming_strings or client_encoding.")
	}
	value, known := "", false
	if len(f.Args) > 1 {
		value = constText(f.Args[1])
		known = value != ""
	}
	return settingValue(strings.ToLower(name), value, known)
}

// setConfigBound refuses set_config bound by name as the function of an
// operator, aggregate, cast or transform: its arguments are then values
// at run time, which no statement text shows.
func setConfigBound(names []*pg.Node) error {
	if len(names) == 0 || !strings.EqualFold(names[len(names)-1].GetString_().GetSval(), "set_config") {
		return nil
	}
	return refuseSetting("set_config() bound by name may", "Its setting name and value are known only when it runs.")
}

// settingsUpdate refuses UPDATE of pg_settings, whose rule calls
// set_config for each row it updates: which settings change depends on
// the rows the WHERE selects.
func settingsUpdate(rv *pg.RangeVar) error {
	if !isSettings(rv) {
		return nil
	}
	return refuseSetting("UPDATE pg_settings may", "Use SET for the settings you need; standard_conforming_strings and client_encoding must keep safe values.")
}

func isSettings(rv *pg.RangeVar) bool {
	return rv != nil && rv.Relname == "pg_settings" && (rv.Schemaname == "" || rv.Schemaname == "pg_catalog")
}

// viewOfSettings refuses a view (or _RETURN rule) whose query reads
// pg_settings: UPDATE of such a view reaches pg_settings' rule.
func viewOfSettings(query *pg.Node) error {
	return rangeVars(query.ProtoReflect(), func(rv *pg.RangeVar) error {
		if !isSettings(rv) {
			return nil
		}
		return refuseSetting("a view over pg_settings (an UPDATE of it changes settings) may",
			"Read pg_settings in the query itself, or create the view as a privileged role.")
	})
}

// settingValue refuses setting name to value (known is false when the
// value is not a constant Tombstone can read).
func settingValue(name, value string, known bool) error {
	switch name {
	case "standard_conforming_strings":
		if known && parseBoolOn(value) {
			return nil
		}
		return refuseSetting("setting standard_conforming_strings to "+quoteValue(value, known)+" would",
			"With it off, backslashes in '...' strings are escapes, which changes where a string ends.")
	case "client_encoding":
		if known && !unsafeEncoding(value) {
			return nil
		}
		return refuseSetting("setting client_encoding to "+quoteValue(value, known)+" would",
			"In SJIS, BIG5, GBK, GB18030, UHC and JOHAB the second byte of a character can be a quote or a backslash.")
	}
	return nil
}

func quoteValue(v string, known bool) string {
	if !known {
		return "(not a constant)"
	}
	return "'" + v + "'"
}

// constText is the text of a string, identifier-like or boolean constant,
// or "" when n is anything else.
func constText(n *pg.Node) string {
	c := n.GetAConst()
	if c == nil {
		return ""
	}
	switch v := c.Val.(type) {
	case *pg.A_Const_Sval:
		return v.Sval.Sval
	case *pg.A_Const_Boolval:
		if v.Boolval.Boolval {
			return "true"
		}
		return "false"
	case *pg.A_Const_Ival:
		if v.Ival.Ival == 1 {
			return "1"
		}
		return "0"
	}
	return ""
}

// parseBoolOn reports whether PostgreSQL's parse_bool reads v as true: on,
// true, yes, 1, or a unique prefix of true or yes, any letter case.
func parseBoolOn(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	switch {
	case v == "":
		return false
	case v == "on", v == "1":
		return true
	case strings.HasPrefix("true", v), strings.HasPrefix("yes", v):
		return true
	}
	return false
}

// unsafeEncoding reports whether an encoding name (in any spelling
// PostgreSQL accepts: letter case and punctuation are ignored, as in its
// clean_encoding_name) is one whose multibyte characters can contain
// ASCII bytes.
func unsafeEncoding(name string) bool {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	switch b.String() {
	case "sjis", "shiftjis", "mskanji", "win932", "windows932", "shiftjis2004",
		"big5", "win950", "windows950",
		"gbk", "win936", "windows936", "cp936",
		"gb18030", "uhc", "win949", "windows949", "johab":
		return true
	}
	return false
}

// refuseSetting: what ends in "would" or "may".
func refuseSetting(what, detail string) *Refusal {
	r := RefuseLexing(what + " make the server scan SQL differently from Tombstone")
	r.Detail = detail
	return r
}
