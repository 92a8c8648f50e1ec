package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestParseErrorsNameKeyAndLine checks that every kind of mistake an
// operator makes is reported with the file, the line and the dotted key.
func TestParseErrorsNameKeyAndLine(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // each must appear in the error text
	}{
		{"unknown top-level key", "listen: 127.0.0.1:6432\nupstrem: 127.0.0.1:5432\n",
			[]string{"c.yaml:2: upstrem: unknown key; valid keys here are listen, upstream,"}},
		{"unknown nested key", "tables:\n  - name: contacts\n    delted_at: gone_at\n",
			[]string{"c.yaml:3: tables[0].delted_at: unknown key; valid keys here are name, deleted_at, deleted_by"}},
		{"key set twice", "mode: enforce\nmode: shadow\n",
			[]string{"c.yaml:2: mode: set twice (first on line 1)"}},
		{"bad mode", "mode: strict\n", []string{`c.yaml:1: mode: "strict" is not enforce or shadow`}},
		{"duration without unit", "shutdown_timeout: 30\n",
			[]string{`c.yaml:1: shutdown_timeout: "30" is not a duration: write it with a unit, such as 30s or 2m`}},
		{"negative duration", "shutdown_timeout: -1s\n", []string{"c.yaml:1: shutdown_timeout: must not be negative"}},
		{"bad size", "\nmax_message_size: big\n", []string{`c.yaml:2: max_message_size: "big" is not a size`}},
		{"size too small", "max_message_size: 10\n", []string{"c.yaml:1: max_message_size: 10 bytes is too small"}},
		{"scalar where list wanted", "privileged_roles: postgres\n",
			[]string{`c.yaml:1: privileged_roles: want a list (one "- item" per line, or [a, b]), got "postgres"`}},
		{"list where mapping wanted", "log: [json]\n", []string{"c.yaml:1: log: want a mapping of keys to values, got a list"}},
		{"mapping where value wanted", "listen:\n  host: x\n", []string{"c.yaml:2: listen: want a single value, got a mapping"}},
		{"bad listen", "listen: localhost\n",
			[]string{`c.yaml:1: listen: "localhost" is neither host:port nor the absolute path of a Unix-domain socket`}},
		{"bad port", "upstream: db:99999\n", []string{`c.yaml:1: upstream: port "99999" in "db:99999" is not a number from 0 to 65535`}},
		{"socket dir missing", "upstream: /nonexistent-dir/.s.PGSQL.5432\n",
			[]string{`c.yaml:1: upstream: directory of Unix socket "/nonexistent-dir/.s.PGSQL.5432" does not exist`}},
		{"bad metrics listen", "metrics:\n  listen: 9187\n", []string{`c.yaml:2: metrics.listen: "9187" is not host:port`}},
		{"tls half set", "tls:\n  cert_file: /etc/hostname\n", []string{"c.yaml:1: tls: set both cert_file and key_file, or neither"}},
		{"tls file missing", "tls:\n  cert_file: /nonexistent.crt\n  key_file: /etc/hostname\n",
			[]string{`c.yaml:2: tls.cert_file: cannot read "/nonexistent.crt"`}},
		{"bad upstream tls mode", "upstream_tls:\n  mode: verify-ca\n",
			[]string{`c.yaml:2: upstream_tls.mode: "verify-ca" is not one of disable, prefer, require, verify-full`}},
		{"empty role", "privileged_roles: [admin, \"\"]\n", []string{"c.yaml:1: privileged_roles[1]: role name is empty"}},
		{"table without name", "tables:\n  - deleted_at: gone\n", []string{"c.yaml:2: tables[0].name: table name is required"}},
		{"table name not an identifier", "tables:\n  - name: a.b.c\n",
			[]string{`c.yaml:2: tables[0].name: "a.b.c" is not table or schema.table: it has 3 dot-separated parts`}},
		{"table listed twice", "tables:\n  - name: contacts\n  - name: Contacts\n",
			[]string{`c.yaml:3: tables[1].name: "Contacts" is listed twice (first at tables[0] as "contacts"; unquoted names are folded to lower case)`}},
		{"quoted and folded name listed twice", "tables:\n  - name: app.contacts\n  - name: '\"app\".\"contacts\"'\n",
			[]string{`c.yaml:3: tables[1].name: "\"app\".\"contacts\"" is listed twice`}},
		{"table name with a space", "tables:\n  - name: my table\n",
			[]string{`c.yaml:2: tables[0].name: "my table" is not a valid name: " " is not allowed in an unquoted name; if the name really holds it, write it double-quoted: '"my table"'`}},
		{"table name starting with a digit", "tables:\n  - name: 1st\n",
			[]string{`c.yaml:2: tables[0].name: "1st" is not a valid name: an unquoted name cannot start with "1"`}},
		{"unclosed quote", "tables:\n  - name: '\"Contacts'\n",
			[]string{`c.yaml:2: tables[0].name: "\"Contacts" has a double quote that is not closed`}},
		{"empty quoted name", "tables:\n  - name: 'app.\"\"'\n",
			[]string{`tables[0].name: "app.\"\"" has an empty quoted name`}},
		{"text after a quoted name", "tables:\n  - name: '\"Con\"tacts'\n",
			[]string{`tables[0].name: "\"Con\"tacts" has "t" right after a quoted name`}},
		{"trailing dot", "tables:\n  - name: app.\n", []string{`tables[0].name: "app." ends with a dot`}},
		{"leading dot", "tables:\n  - name: .contacts\n", []string{`tables[0].name: ".contacts" has an empty name part`}},
		{"name longer than PostgreSQL keeps", "tables:\n  - name: " + strings.Repeat("a", 64) + "\n",
			[]string{"tables[0].name: ", "has a name of 64 bytes; PostgreSQL truncates names to 63 bytes"}},
		{"qualified column", "tables:\n  - name: contacts\n    deleted_at: contacts.gone\n",
			[]string{`c.yaml:3: tables[0].deleted_at: "contacts.gone" is not a column name`}},
		{"cascade without table and column", "tables:\n  - name: contacts\n    cascade:\n      - {}\n",
			[]string{"c.yaml:4: tables[0].cascade[0].table: the child table is required", "c.yaml:4: tables[0].cascade[0].column: the column is required"}},
		{"cascade bad names", "tables:\n  - name: contacts\n    cascade:\n      - table: a.b.c\n        column: \"x y\"\n",
			[]string{"c.yaml:4: tables[0].cascade[0].table: \"a.b.c\" is not table or schema.table", `c.yaml:5: tables[0].cascade[0].column: "x y" is not a valid name`}},
		{"cascade declared twice", "tables:\n  - name: contacts\n    cascade:\n      - {table: Orders, column: contact_id}\n      - {table: orders, column: CONTACT_ID}\n",
			[]string{"c.yaml:5: tables[0].cascade[1]: orders.contact_id is declared twice (first at tables[0].cascade[0])"}},
		{"cascade unknown key", "tables:\n  - name: contacts\n    cascade:\n      - {table: orders, col: contact_id}\n",
			[]string{"c.yaml:4: tables[0].cascade[0].col: unknown key; valid keys here are table, column"}},
		{"verify-full without ca_file", "upstream_tls:\n  mode: verify-full\n",
			[]string{"c.yaml:1: upstream_tls.ca_file: verify-full needs ca_file"}},
		{"verify-full over a Unix socket", "upstream: /tmp/.s.PGSQL.5432\nupstream_tls:\n  mode: verify-full\n  ca_file: /etc/hostname\n",
			[]string{`c.yaml:3: upstream_tls.mode: verify-full needs a host:port upstream, and upstream "/tmp/.s.PGSQL.5432" is a Unix-domain socket`,
				`c.yaml:4: upstream_tls.ca_file: "/etc/hostname" holds no PEM certificate`}},
		{"bad column", "tables:\n  - name: contacts\n    deleted_at: \"gone at\"\n",
			[]string{`c.yaml:3: tables[0].deleted_at: "gone at" is not a valid name: " " is not allowed in an unquoted name`}},
		{"bad default column", "defaults:\n  deleted_by: \"a-b\"\n",
			[]string{`c.yaml:2: defaults.deleted_by: "a-b" is not a valid name: "-" is not allowed in an unquoted name`}},
		{"bad default reported once", "defaults:\n  deleted_at: \"a-b\"\ntables:\n  - name: contacts\n",
			[]string{`c.yaml:2: defaults.deleted_at: "a-b"`}},
		{"bad log format", "log:\n  format: xml\n", []string{`c.yaml:2: log.format: "xml" is not json or text`}},
		{"bad log level", "log:\n  level: loud\n", []string{`c.yaml:2: log.level: "loud" is not debug, info, warn or error`}},
		{"yaml syntax", "listen: [\n", []string{"c.yaml:1: YAML syntax:"}},
		{"unset variable", "listen: 127.0.0.1:6432\nupstream: ${TOMBSTONE_TEST_UNSET_VAR}\n",
			[]string{"c.yaml:2: upstream: environment variable TOMBSTONE_TEST_UNSET_VAR is not set (write ${TOMBSTONE_TEST_UNSET_VAR:-default} to allow that)"}},
		{"every problem reported at once", "mode: x\nlog:\n  level: loud\nfoo: 1\n",
			[]string{"c.yaml:4: foo: unknown key"}},
		{"every validation problem reported at once", "mode: x\nlog:\n  level: loud\n",
			[]string{`c.yaml:1: mode: "x"`, `c.yaml:3: log.level: "loud"`}},
		{"console without dsn or users", "console:\n  listen: 127.0.0.1:9188\n",
			[]string{"c.yaml:1: console.dsn: the console needs dsn", "c.yaml:1: console.users: the console needs at least one user"}},
		{"console settings without listen", "console:\n  dsn: postgres://x\n",
			[]string{"c.yaml:1: console.listen: the console is off without listen, yet dsn, users or tls is set"}},
		{"console listen not host:port", "console:\n  listen: 9188\n  dsn: x\n  users: [{name: a, password_hash: '" + testHash + "'}]\n",
			[]string{`c.yaml:2: console.listen: "9188" is not host:port`}},
		{"console bad hash", "console:\n  listen: 127.0.0.1:9188\n  dsn: x\n  users:\n    - name: support\n      password_hash: secret\n",
			[]string{"c.yaml:6: console.users[0].password_hash: not a bcrypt hash"}},
		{"console truncated hash", "console:\n  listen: 127.0.0.1:9188\n  dsn: x\n  users:\n    - name: support\n      password_hash: '$2y$10$abc'\n",
			[]string{"c.yaml:6: console.users[0].password_hash: not a valid bcrypt hash"}},
		{"console unknown permission", "console:\n  listen: 127.0.0.1:9188\n  dsn: x\n  users:\n    - name: support\n      password_hash: '" + testHash + "'\n      can: [restore, delete]\n",
			[]string{`c.yaml:7: console.users[0].can[1]: "delete" is not restore or purge`}},
		{"console duplicate user", "console:\n  listen: 127.0.0.1:9188\n  dsn: x\n  users:\n    - {name: a, password_hash: '" + testHash + "'}\n    - {name: a, password_hash: '" + testHash + "'}\n",
			[]string{`c.yaml:6: console.users[1].name: user "a" is listed twice (first at console.users[0])`}},
		{"console user with colon", "console:\n  listen: 127.0.0.1:9188\n  dsn: x\n  users:\n    - {name: 'a:b', password_hash: '" + testHash + "'}\n",
			[]string{`c.yaml:5: console.users[0].name: "a:b" cannot be a basic-auth user name`}},
		{"console tls half set", "console:\n  listen: 127.0.0.1:9188\n  dsn: x\n  users: [{name: a, password_hash: '" + testHash + "'}]\n  tls:\n    key_file: /etc/hostname\n",
			[]string{"c.yaml:5: console.tls: set both cert_file and key_file, or neither"}},
		{"console unknown key", "console:\n  listen: 127.0.0.1:9188\n  password: x\n",
			[]string{"c.yaml:3: console.password: unknown key; valid keys here are listen, dsn, users, tls"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse([]byte(c.yaml), "c.yaml")
			if err == nil {
				t.Fatalf("Parse accepted %q: %+v", c.yaml, f)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %v is not a *config.Error", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "c.yaml:") {
					t.Errorf("error line %q does not start with file and line", line)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(%s) = %v, want a not-exist error naming the file", path, err)
	}
}

func TestDefaults(t *testing.T) {
	f, err := Parse(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want := File{
		Listen: DefaultListen, Upstream: DefaultUpstream, Mode: ModeEnforce,
		ShutdownTimeout: DefaultShutdownTimeout, MaxMessageSize: DefaultMaxMessageSize,
		RewriteCacheSize: DefaultRewriteCache, UpstreamTLS: UpstreamTLS{Mode: UpstreamTLSDisable},
		Defaults: TableDefaults{DeletedAt: DefaultDeletedAt}, Metrics: Metrics{Listen: DefaultMetricsListen},
		Log: Log{Format: "text", Level: "info"},
	}
	if f.Listen != want.Listen || f.Upstream != want.Upstream || f.Mode != want.Mode ||
		f.ShutdownTimeout != want.ShutdownTimeout || f.MaxMessageSize != want.MaxMessageSize ||
		f.RewriteCacheSize != want.RewriteCacheSize || f.UpstreamTLS != want.UpstreamTLS ||
		f.Defaults != want.Defaults || f.Metrics != want.Metrics || f.Log != want.Log {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *f, want)
	}
}

// A key that is present keeps a zero value where zero means something.
func TestExplicitZeroIsKept(t *testing.T) {
	f, err := Parse([]byte("shutdown_timeout: 0s\nmetrics:\n  listen: \"\"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if f.ShutdownTimeout != 0 || f.Metrics.Listen != "" {
		t.Fatalf("shutdown_timeout %v, metrics.listen %q; want 0 and \"\"", f.ShutdownTimeout, f.Metrics.Listen)
	}
}

func TestTableSettingsOverrideDefaults(t *testing.T) {
	f, err := Parse([]byte(`
defaults:
  deleted_at: removed_at
  deleted_by: removed_by
tables:
  - name: contacts
  - name: crm.deals
    deleted_at: archived_at
  - name: notes
    deleted_by: author_gone
`), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Table{
		{Name: "contacts", DeletedAt: "removed_at", DeletedBy: "removed_by", Relation: "contacts"},
		{Name: "crm.deals", DeletedAt: "archived_at", DeletedBy: "removed_by", Schema: "crm", Relation: "deals"},
		{Name: "notes", DeletedAt: "removed_at", DeletedBy: "author_gone", Relation: "notes"},
	}
	if len(f.Tables) != len(want) {
		t.Fatalf("got %d tables, want %d", len(f.Tables), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(f.Tables[i], want[i]) {
			t.Errorf("tables[%d] = %+v, want %+v", i, f.Tables[i], want[i])
		}
	}
}

func TestEnvironmentExpansion(t *testing.T) {
	t.Setenv("TOMBSTONE_TEST_UPSTREAM", "db.internal:5433")
	// A value with YAML syntax in it stays a value: expansion happens
	// after parsing.
	t.Setenv("TOMBSTONE_TEST_ROLE", "ops # team: a")
	f, err := Parse([]byte(`
# a comment may mention ${TOMBSTONE_TEST_NOT_SET} without failing
upstream: ${TOMBSTONE_TEST_UPSTREAM}
listen: ${TOMBSTONE_TEST_NOT_SET:-0.0.0.0:7432}   # and so may ${TOMBSTONE_TEST_NOT_SET} here
privileged_roles: ["${TOMBSTONE_TEST_NOT_SET:-}admin", "${TOMBSTONE_TEST_ROLE}"]
shutdown_timeout: ${TOMBSTONE_TEST_NOT_SET:-5s}
max_message_size: ${TOMBSTONE_TEST_NOT_SET:-2MiB}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if f.Upstream != "db.internal:5433" || f.Listen != "0.0.0.0:7432" || len(f.PrivilegedRoles) != 2 ||
		f.PrivilegedRoles[0] != "admin" || f.PrivilegedRoles[1] != "ops # team: a" ||
		f.ShutdownTimeout != 5*time.Second || f.MaxMessageSize != 2<<20 {
		t.Fatalf("upstream %q, listen %q, privileged_roles %q, shutdown_timeout %v, max_message_size %d",
			f.Upstream, f.Listen, f.PrivilegedRoles, f.ShutdownTimeout, f.MaxMessageSize)
	}
}

func TestSizesAndDurations(t *testing.T) {
	f, err := Parse([]byte("max_message_size: 64MiB\nrewrite_cache_size: 1000000\nshutdown_timeout: 2m\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if f.MaxMessageSize != 64<<20 || f.RewriteCacheSize != 1e6 || f.ShutdownTimeout != 2*time.Minute {
		t.Fatalf("max_message_size %d, rewrite_cache_size %d, shutdown_timeout %v", f.MaxMessageSize, f.RewriteCacheSize, f.ShutdownTimeout)
	}
}

// The example file documents every key; loading it keeps it from rotting,
// and comparing its keys with File's keeps it complete.
func TestExampleFileLoadsAndCoversEveryKey(t *testing.T) {
	path := filepath.Join("..", "..", "config.example.yaml")
	f, err := Load(path)
	if err != nil {
		t.Fatalf("config.example.yaml does not load: %v", err)
	}
	if f.Mode != ModeEnforce {
		t.Errorf("the example's mode is %q; its safe default is enforce", f.Mode)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeFor[File]()) {
		if !regexp.MustCompile(`(?m)^[\s#-]*` + key + `:`).Match(data) {
			t.Errorf("config.example.yaml does not document the key %s", key)
		}
	}
}

// yamlKeys lists the yaml key names of t's fields and of the structs they
// hold, so a key added to File must be documented in the example.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		keys = append(keys, tag)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]() {
			keys = append(keys, yamlKeys(ft)...)
		}
	}
	return keys
}

// Names are folded as PostgreSQL folds unquoted identifiers (ASCII only);
// double-quoted ones keep their case, with "" for a quote.
func TestNamesAreFoldedLikePostgres(t *testing.T) {
	f, err := Parse([]byte(`
defaults:
  deleted_at: Deleted_At
tables:
  - name: Contacts
  - name: CRM.Deals
    deleted_by: '"RemovedBy"'
  - name: 'app."Mixed Case"'
    deleted_at: '"Gone ""At"""'
  - name: '"Sales".Ünïcode_Ä'
    cascade:
      - {table: Orders, column: Contact_ID}
      - {table: 'Billing."Line Items"', column: '"Contact"'}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Table{
		{Name: "Contacts", Schema: "", Relation: "contacts", DeletedAt: "deleted_at"},
		{Name: "CRM.Deals", Schema: "crm", Relation: "deals", DeletedAt: "deleted_at", DeletedBy: "RemovedBy"},
		{Name: `app."Mixed Case"`, Schema: "app", Relation: "Mixed Case", DeletedAt: `Gone "At"`},
		{Name: `"Sales".Ünïcode_Ä`, Schema: "Sales", Relation: "Ünïcode_Ä", DeletedAt: "deleted_at", Cascade: []Cascade{
			{Table: "Orders", Column: "contact_id", Relation: "orders"},
			{Table: `Billing."Line Items"`, Column: "Contact", Schema: "billing", Relation: "Line Items"},
		}},
	}
	if f.Defaults.DeletedAt != "deleted_at" {
		t.Errorf("defaults.deleted_at = %q, want it folded", f.Defaults.DeletedAt)
	}
	if !reflect.DeepEqual(f.Tables, want) {
		t.Fatalf("tables:\n got %+v\nwant %+v", f.Tables, want)
	}
	if got := f.Tables[2].QualifiedName(); got != `app."Mixed Case"` {
		t.Errorf("QualifiedName = %s", got)
	}
	if got := f.Tables[1].QualifiedName(); got != "crm.deals" {
		t.Errorf("QualifiedName = %s", got)
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{"contacts": "contacts", "Contacts": `"Contacts"`, "a b": `"a b"`, `a"b`: `"a""b"`, "1x": `"1x"`, "x$1": "x$1", "": `""`} {
		if got := QuoteIdent(in); got != want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
	// What QuoteIdent writes, foldName reads back.
	for _, name := range []string{"contacts", "Contacts", `a"b`, "a.b", "Ünï"} {
		parts, err := foldName(QuoteIdent(name))
		if err != nil || len(parts) != 1 || parts[0] != name {
			t.Errorf("foldName(QuoteIdent(%q)) = %q, %v", name, parts, err)
		}
	}
}

// testHash is bcrypt("secret") at cost 4.
const testHash = "$2a$04$xFl/tE828ePTRAyByf8CWOa2DgMYcskkQJTmg0rPIAZeuFfQ3laG6"

func TestConsole(t *testing.T) {
	t.Setenv("TOMBSTONE_CONSOLE_DSN", "postgres://console@db/app")
	// htpasswd -nbB writes $2y$; Go's bcrypt reads it as $2a$.
	y := "$2y$" + testHash[4:]
	f, err := Parse([]byte(`
console:
  listen: 127.0.0.1:9188
  dsn: ${TOMBSTONE_CONSOLE_DSN}
  users:
    - name: support
      password_hash: "`+y+`"
      can: [restore]
    - name: dpo
      password_hash: "`+testHash+`"
      can: [restore, purge]
`), "")
	if err != nil {
		t.Fatal(err)
	}
	c := f.Console
	if !c.Enabled() || c.DSN != "postgres://console@db/app" || len(c.Users) != 2 || c.Users[0].PasswordHash != y ||
		!reflect.DeepEqual(c.Users[1].Can, []string{"restore", "purge"}) {
		t.Fatalf("console = %+v", c)
	}
	off, err := Parse(nil, "")
	if err != nil || off.Console.Enabled() {
		t.Fatalf("an empty file: console %+v, err %v; want it off", off.Console, err)
	}
}
