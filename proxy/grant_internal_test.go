package proxy

import "testing"

// The hint's GRANT must run as printed: names that the server would fold
// or read as a keyword are quoted, the rest left bare for reading.
func TestHintIdent(t *testing.T) {
	for in, want := range map[string]string{
		"deleted_at": "deleted_at",
		"app$1":      "app$1",
		"name":       "name", // an unreserved keyword is a valid name
		"user":       `"user"`,
		"order":      `"order"`,
		"Contacts":   `"Contacts"`,
		"two words":  `"two words"`,
		"1st":        `"1st"`,
		`a"b`:        `"a""b"`,
	} {
		if got := hintIdent(in); got != want {
			t.Errorf("hintIdent(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestErrorFields(t *testing.T) {
	body := (&pgError{Severity: "ERROR", Code: "42501", Message: "permission denied for table t"}).encode()[5:]
	if code, msg, hint := errorFields(body); code != "42501" || msg != "permission denied for table t" || hint {
		t.Errorf("errorFields = %q, %q, %v", code, msg, hint)
	}
	body = (&pgError{Severity: "ERROR", Code: "42501", Message: "m", Hint: "h"}).encode()[5:]
	if _, _, hint := errorFields(body); !hint {
		t.Error("errorFields missed the hint")
	}
	if code, _, _ := errorFields(nil); code != "" {
		t.Errorf("errorFields(nil) code = %q", code)
	}
}
