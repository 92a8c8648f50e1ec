package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd calls run in-process and returns exit code, stdout and stderr.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tombstone.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantLines checks that text has exactly len(want) lines and that line i
// contains want[i].
func wantLines(t *testing.T, what, text string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%s has %d lines, want %d:\n%s", what, len(lines), len(want), text)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("%s line %d:\n got %s\nwant %s", what, i+1, lines[i], w)
		}
	}
}

// Every error is one line per problem on stderr, starting with the
// command's name, and exit codes follow the documented contract.
func TestExitCodesAndMessages(t *testing.T) {
	good := writeConfig(t, "tables:\n  - name: contacts\n")
	bad := writeConfig(t, "tables:\n  - name: contacts\n    delted_at: x\nmode: sometimes\nlisten: nowhere\n")
	invalid := writeConfig(t, "mode: sometimes\nlisten: nowhere\n")
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	cycle := writeConfig(t, "tables:\n  - name: contacts\n    cascade: [{table: Orders, column: contact_id}]\n  - name: orders\n    cascade: [{table: contacts, column: order_id}]\n")
	verify := writeConfig(t, "upstream: /tmp/.s.PGSQL.5432\nupstream_tls: {mode: verify-full}\n")
	quoted := writeConfig(t, "tables:\n  - name: 'app.\"Mixed Case\"'\n  - name: Contacts\n")
	withConsole := writeConfig(t, "console:\n  listen: 127.0.0.1:9188\n  dsn: postgres://x\n  users: [{name: a, password_hash: '$2a$04$xFl/tE828ePTRAyByf8CWOa2DgMYcskkQJTmg0rPIAZeuFfQ3laG6'}]\n")
	badConsole := writeConfig(t, "console:\n  listen: 127.0.0.1:9188\n  dsn: postgres://x\n  users: [{name: a, password_hash: 'plain', can: [erase]}]\n")
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string   // substring of stdout
		stderr []string // each line of stderr, as substrings, in order
	}{
		{"no command", nil, exitUsage, "", nil},
		{"help", []string{"--help"}, exitOK, "tombstone serve --config FILE", nil},
		{"unknown command", []string{"start"}, exitUsage, "", []string{`tombstone: unknown command "start"`}},
		{"config ok", []string{"check-config", "--config", good}, exitOK, "ok (mode enforce, 1 soft-delete tables", nil},
		{"config without --config", []string{"check-config"}, exitUsage, "",
			[]string{"tombstone check-config: --config FILE is required (see tombstone check-config --help)"}},
		{"unknown flag", []string{"check-config", "--confg", good}, exitUsage, "",
			[]string{"tombstone check-config: flag provided but not defined: -confg"}},
		{"stray argument", []string{"check-config", "--config", good, "extra"}, exitUsage, "",
			[]string{`tombstone check-config: unexpected argument "extra"`}},
		{"missing file", []string{"check-config", "--config", missing}, exitUsage, "",
			[]string{"tombstone check-config: read config: open " + missing + ": no such file or directory"}},
		{"unknown key", []string{"check-config", "--config", bad}, exitUsage, "",
			[]string{"tombstone check-config: " + bad + ":3: tables[0].delted_at: unknown key"}},
		{"every bad value, one line each", []string{"check-config", "--config", invalid}, exitUsage, "", []string{
			"tombstone check-config: " + invalid + `:2: listen: "nowhere" is neither host:port`,
			"tombstone check-config: " + invalid + `:1: mode: "sometimes" is not enforce or shadow`}},
		{"serve with a bad file", []string{"serve", "--config", invalid}, exitUsage, "",
			[]string{"tombstone serve: " + invalid + ":2: listen:", "tombstone serve: " + invalid + ":1: mode:"}},
		{"declared cascade cycle", []string{"check-config", "--config", cycle}, exitUsage, "",
			[]string{"tombstone check-config: " + cycle + ": tables: declared cascades form a cycle: contacts -> orders -> contacts"}},
		{"serve with a cascade cycle", []string{"serve", "--config", cycle}, exitUsage, "",
			[]string{"tombstone serve: " + cycle + ": tables: declared cascades form a cycle"}},
		{"verify-full checked by check-config", []string{"check-config", "--config", verify}, exitUsage, "", []string{
			"tombstone check-config: " + verify + ":2: upstream_tls.mode: verify-full needs a host:port upstream",
			"tombstone check-config: " + verify + ":2: upstream_tls.ca_file: verify-full needs ca_file"}},
		{"quoted and folded names", []string{"check-config", "--config", quoted}, exitOK, "ok (mode enforce, 2 soft-delete tables", nil},
		{"folding is shown", []string{"check-config", "--config", quoted}, exitOK,
			`note: tables[1].name "Contacts" is the table contacts as PostgreSQL folds it; double-quote a name to keep its case`, nil},
		{"console shown", []string{"check-config", "--config", withConsole}, exitOK, "console: http://127.0.0.1:9188, 1 user(s)", nil},
		{"console checked", []string{"check-config", "--config", badConsole}, exitUsage, "", []string{
			"tombstone check-config: " + badConsole + ":4: console.users[0].password_hash: not a bcrypt hash",
			"tombstone check-config: " + badConsole + `:4: console.users[0].can[0]: "erase" is not restore or purge`}},
		{"rewrite without SQL", []string{"rewrite", "--config", good}, exitUsage, "",
			[]string{"tombstone rewrite: want 1 argument(s) after the flags, got 0"}},
		{"version", []string{"version"}, exitOK, "tombstone dev (revision unknown, go", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errOut)
			}
			if !strings.Contains(out, c.stdout) {
				t.Errorf("stdout %q does not contain %q", out, c.stdout)
			}
			if c.stderr == nil {
				if code == exitOK && errOut != "" {
					t.Errorf("stderr %q, want nothing", errOut)
				}
				return
			}
			wantLines(t, "stderr", errOut, c.stderr)
		})
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, cmd := range []string{"serve", "rewrite", "check-config", "doctor", "migrate", "restore", "purge", "hash-password", "version"} {
		code, out, errOut := runCmd(t, "", cmd, "--help")
		if code != exitOK || !strings.HasPrefix(out, "Usage: tombstone "+cmd) || !strings.Contains(out, "Exit codes: 0 success, 1 runtime error, 2 usage or configuration error.") || errOut != "" {
			t.Errorf("tombstone %s --help: exit %d\nstdout: %s\nstderr: %s", cmd, code, out, errOut)
		}
	}
}

func TestRewriteDryRun(t *testing.T) {
	enforce := writeConfig(t, "privileged_roles: [admin]\nprivileged_member_of: [bypass]\ntables:\n  - name: contacts\n")
	shadow := writeConfig(t, "mode: shadow\ntables:\n  - name: contacts\n")
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  []string // what each line of stdout contains, in order
	}{
		{"delete becomes a soft delete", "", []string{"--config", enforce, "DELETE FROM contacts WHERE id = 1"}, []string{
			`UPDATE contacts SET "deleted_at" = (SELECT pg_catalog.clock_timestamp()) WHERE (id = 1) AND "contacts"."deleted_at" IS NULL`,
			"-- applied: delete on contacts",
			"-- the client sees the command tag DELETE n, not UPDATE n",
			"-- deletes: the matching live rows of contacts, all with one deleted_at stamp",
			"-- to restore: tombstone restore --config FILE --dsn DSN --table contacts --where CONDITION --cascade"}},
		{"a restore says what it brings back", "", []string{"--config", writeConfig(t, "tables:\n  - name: contacts\n    allow_restore: true\n"), "UPDATE contacts SET deleted_at = NULL WHERE id = 1"}, []string{
			"WITH tombstone_target AS MATERIALIZED (SELECT contacts.tableoid AS tombstone_oid",
			"-- applied: restore on contacts",
			"-- restores: the matching deleted rows of contacts and the rows their deletion took with it"}},
		{"statement read from stdin", "SELECT name FROM contacts", []string{"--config", enforce, "-"}, []string{
			`SELECT name FROM contacts WHERE "contacts"."deleted_at" IS NULL`,
			"-- applied: select on contacts"}},
		{"no configured table", "", []string{"--config", enforce, "SELECT 1"}, []string{
			"unchanged: the statement names no soft-delete table"}},
		{"refusal with SQLSTATE", "", []string{"--config", enforce, "TRUNCATE contacts"}, []string{
			"refused: SQLSTATE 42501: tombstone: TRUNCATE of soft-delete table contacts refused",
			"DETAIL: ", "HINT: "}},
		{"privileged role bypassed", "", []string{"--config", enforce, "--role", "admin", "TRUNCATE contacts"}, []string{
			`bypassed: role "admin" is in privileged_roles; the statement is sent unchanged`}},
		{"membership is not checked offline", "", []string{"--config", enforce, "--role", "bob", "DELETE FROM contacts"}, []string{
			`UPDATE contacts SET "deleted_at" = (SELECT pg_catalog.clock_timestamp()) WHERE "contacts"."deleted_at" IS NULL`,
			"-- applied: delete on contacts",
			"-- the client sees the command tag DELETE n, not UPDATE n",
			"-- deletes: the matching live rows of contacts, all with one deleted_at stamp",
			"-- to restore: tombstone restore",
			`-- note: role "bob" is privileged if it is a member of bypass; that is resolved at login and not checked here`}},
		{"a configured name is folded as SQL folds it", "", []string{"--config", writeConfig(t, "tables:\n  - name: Contacts\n"), "DELETE FROM CONTACTS WHERE id = 1"}, []string{
			`UPDATE CONTACTS SET "deleted_at" = (SELECT pg_catalog.clock_timestamp()) WHERE (id = 1) AND "contacts"."deleted_at" IS NULL`,
			"-- applied: delete on contacts",
			"-- the client sees the command tag DELETE n, not UPDATE n",
			"-- deletes: the matching live rows of contacts, all with one deleted_at stamp",
			"-- to restore: tombstone restore --config FILE --dsn DSN --table contacts --where CONDITION --cascade"}},
		{"shadow mode says what it would do", "", []string{"--config", shadow, "DELETE FROM contacts"}, []string{
			`UPDATE contacts SET "deleted_at" = (SELECT pg_catalog.clock_timestamp()) WHERE "contacts"."deleted_at" IS NULL`,
			"-- applied: delete on contacts",
			"-- the client sees the command tag DELETE n, not UPDATE n",
			"-- deletes: the matching live rows of contacts, all with one deleted_at stamp",
			"-- to restore: tombstone restore",
			"-- note: mode is shadow: the proxy sends the statement unchanged and only logs and counts the above"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, c.stdin, append([]string{"rewrite"}, c.args...)...)
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			wantLines(t, "stdout", out, c.want)
		})
	}
}
