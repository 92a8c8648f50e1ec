package rewrite

import (
	"strings"
	"testing"
)

func TestFingerprint(t *testing.T) {
	same := [][]string{
		{"SELECT * FROM contacts WHERE id = 1", "select *  from contacts /* x */ where id = 42 -- y\n", "SELECT * FROM Contacts WHERE id = 'a'", "SELECT * FROM contacts WHERE id = $1"},
		{"DELETE FROM t WHERE name = 'secret'", "DELETE FROM t WHERE name = $$other$$"},
	}
	differ := []string{`SELECT * FROM "Contacts" WHERE id = 1`, "SELECT * FROM contacts WHERE id > 1"}
	for _, group := range same {
		for _, sql := range group[1:] {
			if Fingerprint(sql) != Fingerprint(group[0]) {
				t.Errorf("%q and %q differ only in literals or parameters, case, spacing or comments: fingerprints %s, %s", sql, group[0], Fingerprint(sql), Fingerprint(group[0]))
			}
		}
	}
	base := Fingerprint(same[0][0])
	for _, sql := range differ {
		if Fingerprint(sql) == base {
			t.Errorf("%q is another statement but shares the fingerprint of %q", sql, same[0][0])
		}
	}
	if fp := Fingerprint(same[1][0]); len(fp) != 16 || strings.Contains(fp, "secret") {
		t.Errorf("fingerprint %q: want 16 hex digits", fp)
	}
	// Deep and long texts are fingerprinted without a parse, in time
	// linear in their length.
	deep := "SELECT " + strings.Repeat("(", 200000) + "1" + strings.Repeat(")", 200000)
	if fp := Fingerprint(deep); len(fp) != 16 {
		t.Errorf("deep text: %q", fp)
	}
	if Fingerprint("SELECT 'unterminated secret") == Fingerprint("SELECT 'unterminated longer secret") {
		t.Error("unsure tails of different lengths share a fingerprint")
	}
}
