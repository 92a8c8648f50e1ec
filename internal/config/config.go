package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// Defaults for keys the file may leave out.
const (
	DefaultListen          = "127.0.0.1:6432"
	DefaultUpstream        = "127.0.0.1:5432"
	DefaultMetricsListen   = "127.0.0.1:9187"
	DefaultShutdownTimeout = 30 * time.Second
	DefaultMaxMessageSize  = 256 << 20 // bytes; Postgres itself caps most messages at 1 GiB
	DefaultRewriteCache    = 64 << 20  // bytes of cached rewrites
	DefaultDeletedAt       = "deleted_at"
)

// Mode says whether Tombstone enforces soft deletes or only reports what it
// would have done.
type Mode string

const (
	ModeEnforce Mode = "enforce"
	ModeShadow  Mode = "shadow"
)

// File is a validated configuration file.
type File struct {
	Listen             string        `yaml:"listen"`
	Upstream           string        `yaml:"upstream"`
	Mode               Mode          `yaml:"mode"`
	ShutdownTimeout    time.Duration `yaml:"shutdown_timeout"`
	MaxMessageSize     ByteSize      `yaml:"max_message_size"`
	RewriteCacheSize   ByteSize      `yaml:"rewrite_cache_size"`
	TLS                TLS           `yaml:"tls"`
	UpstreamTLS        UpstreamTLS   `yaml:"upstream_tls"`
	PrivilegedRoles    []string      `yaml:"privileged_roles"`
	PrivilegedMemberOf []string      `yaml:"privileged_member_of"`
	Defaults           TableDefaults `yaml:"defaults"`
	Tables             []Table       `yaml:"tables"`
	Audit              Audit         `yaml:"audit"`
	Metrics            Metrics       `yaml:"metrics"`
	Log                Log           `yaml:"log"`
	Console            Console       `yaml:"console"`

	// Path is the file this configuration was read from, if any.
	Path string `yaml:"-"`
}

// TLS configures TLS between clients and Tombstone. Both files set: clients
// that send SSLRequest get TLS; neither set: they are told 'N'.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether client TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// UpstreamTLSMode is how Tombstone secures its connection to PostgreSQL,
// with libpq's sslmode meanings.
type UpstreamTLSMode string

const (
	UpstreamTLSDisable    UpstreamTLSMode = "disable"
	UpstreamTLSPrefer     UpstreamTLSMode = "prefer"
	UpstreamTLSRequire    UpstreamTLSMode = "require"
	UpstreamTLSVerifyFull UpstreamTLSMode = "verify-full"
)

// UpstreamTLS configures TLS between Tombstone and PostgreSQL.
type UpstreamTLS struct {
	Mode   UpstreamTLSMode `yaml:"mode"`
	CAFile string          `yaml:"ca_file"`
}

// TableDefaults apply to every table that does not override them.
type TableDefaults struct {
	DeletedAt     string    `yaml:"deleted_at"`
	DeletedBy     string    `yaml:"deleted_by"`
	DeletedReason string    `yaml:"deleted_reason"`
	AllowRestore  bool      `yaml:"allow_restore"`
	Retention     Retention `yaml:"retention"`
}

// Table is one soft-delete table. Names are written as in SQL: unquoted
// ones are folded to lower case as PostgreSQL folds them, double-quoted
// ones ("Mixed Case") are kept exactly. After validation DeletedAt,
// DeletedBy and the cascade columns hold the names as the catalog stores
// them, and Schema and Relation hold Name's parts.
type Table struct {
	// Name is "table" (matches that table in any schema) or "schema.table".
	Name      string `yaml:"name"`
	DeletedAt string `yaml:"deleted_at"`
	// DeletedBy, when set, names the column (text, integer, bigint or
	// uuid) a soft delete fills with its actor: a sqlcommenter actor tag,
	// else the tombstone.actor setting, else the login role.
	DeletedBy string `yaml:"deleted_by"`
	// DeletedReason, when set, names a text column a soft delete fills
	// with its reason (sqlcommenter reason tag, else tombstone.reason).
	DeletedReason string `yaml:"deleted_reason"`
	// AllowRestore lets a non-privileged login restore rows through the
	// proxy with UPDATE ... SET deleted_at = NULL.
	AllowRestore bool `yaml:"allow_restore"`
	// Retention is how long a soft-deleted row is kept before tombstone
	// purge removes it; zero is never.
	Retention Retention `yaml:"retention"`
	// Cascade declares relationships without a foreign-key constraint:
	// deleting a row of this table soft-deletes the rows of Table whose
	// Column holds its primary key, as ON DELETE CASCADE would.
	Cascade []Cascade `yaml:"cascade"`

	Schema   string `yaml:"-"` // Name's schema, folded; "" for any schema
	Relation string `yaml:"-"` // Name's table, folded
}

// Cascade is one declared relationship of a Table.
type Cascade struct {
	// Table is "table" or "schema.table", the child holding the reference.
	Table  string `yaml:"table"`
	Column string `yaml:"column"`

	Schema   string `yaml:"-"` // Table's schema, folded; "" for any schema
	Relation string `yaml:"-"` // Table's table, folded
}

// Audit configures the audit log.
type Audit struct {
	// Table is "schema.table", the audit log every soft delete, restore
	// and purge writes one row per affected row to; "" turns it off.
	Table string `yaml:"table"`

	Schema   string `yaml:"-"` // Table's schema, folded
	Relation string `yaml:"-"` // Table's table, folded
}

// Retention is a duration that also accepts days and weeks (90d, 2w), as
// retention periods are written; "never" or 0 means keep forever.
type Retention time.Duration

// UnmarshalYAML reads 90d, 2w, 36h, 1h30m or never.
func (r *Retention) UnmarshalYAML(n *yaml.Node) error {
	d, err := ParseRetention(n.Value)
	if err != nil {
		return err
	}
	*r = Retention(d)
	return nil
}

// ParseRetention reads a retention period: a whole number of days (90d)
// or weeks (2w), any Go duration (36h, 1h30m), or never (also 0).
func ParseRetention(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "never" || v == "0" || v == "" {
		return 0, nil
	}
	bad := fmt.Errorf("%q is not a retention period: write days (90d), weeks (2w), hours (36h) or never", v)
	for unit, size := range map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour} {
		if v[len(v)-1] != unit {
			continue
		}
		k, err := strconv.Atoi(v[:len(v)-1])
		if err != nil || k < 0 || k > 100000 {
			return 0, bad
		}
		return time.Duration(k) * size, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, bad
	}
	return d, nil
}

// QualifiedName is the folded schema.table (or table), quoted where SQL
// needs quotes, for messages.
func (t Table) QualifiedName() string { return qualified(t.Schema, t.Relation) }

// QualifiedName is the folded schema.table (or table) of the child.
func (c Cascade) QualifiedName() string { return qualified(c.Schema, c.Relation) }

func qualified(schema, name string) string {
	if schema == "" {
		return QuoteIdent(name)
	}
	return QuoteIdent(schema) + "." + QuoteIdent(name)
}

// Metrics configures the HTTP listener for /metrics, /healthz, /readyz and
// /-/reload. An empty Listen disables it.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Console configures the trash console, the web pages and JSON API with
// which support staff find deleted rows and restore or purge them. It is
// off unless Listen is set.
type Console struct {
	Listen string `yaml:"listen"`
	// DSN reaches PostgreSQL directly as a privileged role: the console
	// reads deleted rows and restores and erases them, as tombstone
	// restore and purge do. ${VAR} expansion applies, as everywhere.
	DSN   string        `yaml:"dsn"`
	Users []ConsoleUser `yaml:"users"`
	// TLS, when both files are set, serves the console over HTTPS.
	TLS TLS `yaml:"tls"`
}

// Enabled reports whether the console is configured.
func (c Console) Enabled() bool { return c.Listen != "" }

// ConsoleUser is one login of the console.
type ConsoleUser struct {
	Name string `yaml:"name"`
	// PasswordHash is a bcrypt hash ($2a$, $2b$ or $2y$), as htpasswd -nbB
	// or tombstone hash-password print it.
	PasswordHash string `yaml:"password_hash"`
	// Can lists what the user may do besides browsing: restore, purge.
	Can []string `yaml:"can"`
}

// Console permissions, the values of console.users[].can.
const (
	CanRestore = "restore"
	CanPurge   = "purge"
)

// Log configures log/slog output.
type Log struct {
	Format string `yaml:"format"` // json or text
	Level  string `yaml:"level"`  // debug, info, warn or error
}

// SlogLevel is Level as a log/slog level; Level has been validated.
func (l Log) SlogLevel() slog.Level {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(l.Level))
	return lv
}

// ByteSize is a size in bytes, written as an integer or with a unit
// (KiB, MiB, GiB, KB, MB, GB).
type ByteSize int64

var sizeRe = regexp.MustCompile(`^\s*(\d+)\s*([KMG]i?B|B)?\s*$`)

// UnmarshalYAML accepts 1048576, "1MiB", "64 MB".
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	m := sizeRe.FindStringSubmatch(n.Value)
	if n.Kind != yaml.ScalarNode || m == nil {
		return fmt.Errorf("%q is not a size: write bytes as a number or with a unit such as 64MiB", n.Value)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return fmt.Errorf("%q is too large", n.Value)
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1000, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
	*b = ByteSize(v * mult)
	return nil
}

// Error is a configuration error at a place in the file.
type Error struct {
	Path string // file, may be empty
	Line int    // 1-based, 0 when unknown
	Key  string // dotted key, e.g. tables[2].name
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, expands and validates the file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	f, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	return f, nil
}

var varRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expand replaces ${VAR} and ${VAR:-default} in one value from the
// environment. It runs on parsed values, not on the file's text, so a
// variable's value is never read as YAML (a "#" in it does not start a
// comment) and a comment may mention ${VAR} freely. A variable that is
// unset and has no default is an error: silently using an empty value
// hides mistakes.
func expand(value string) (string, error) {
	var missing []string
	out := varRe.ReplaceAllStringFunc(value, func(m string) string {
		sm := varRe.FindStringSubmatch(m)
		if v, ok := os.LookupEnv(sm[1]); ok {
			return v
		}
		if sm[2] != "" {
			return sm[3]
		}
		missing = append(missing, sm[1])
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to allow that)", missing[0], missing[0])
	}
	return out, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse validates configuration bytes; path is used in error messages only.
// It reports every problem it finds, each naming its key and line.
func Parse(data []byte, path string) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(err, path)
	}
	f := &File{Path: path}
	d := decoder{path: path, lines: map[string]int{}}
	if len(root.Content) > 0 {
		d.decode(root.Content[0], reflect.ValueOf(f).Elem(), "")
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	f.applyDefaults(d.lines)
	if err := f.validate(d.lines); err != nil {
		return nil, err
	}
	return f, nil
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into an *Error.
func syntaxError(err error, path string) error {
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Path: path, Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return &Error{Path: path, Msg: "YAML syntax: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

// decoder fills a File from the YAML tree itself rather than through
// yaml.Node.Decode on the whole document, so that every error names the
// dotted key (tables[2].deleted_at) and line, not a Go type, and so that all
// problems are reported at once instead of the first.
type decoder struct {
	path  string
	lines map[string]int // dotted key -> line, for every key present in the file
	errs  []error
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{Path: d.path, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" with no value keeps the default
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		v, err := expand(n.Value)
		if err != nil {
			d.fail(n, key, "%v", err)
			return
		}
		expanded := *n // the tree is not ours to change
		expanded.Value = v
		n = &expanded
	}
	switch {
	case reflect.PointerTo(v.Type()).Implements(unmarshalerType):
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n, key, "%v", err)
		}
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, key)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, key, "want a list (one \"- item\" per line, or [a, b]), got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			k := fmt.Sprintf("%s[%d]", key, i)
			d.lines[k] = c.Line
			d.decode(c, s.Index(i), k)
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, key, "want a single value, got %s", describe(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			switch {
			case v.Type() == durationType:
				d.fail(n, key, "%q is not a duration: write it with a unit, such as 30s or 2m", n.Value)
			default:
				d.fail(n, key, "%q is not a valid %s", n.Value, v.Kind())
			}
		}
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "want a mapping of keys to values, got %s", describe(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := 0; i < v.NumField(); i++ {
		tag := v.Type().Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		names = append(names, tag)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		k := kn.Value
		if key != "" {
			k = key + "." + k
		}
		fi, ok := fields[kn.Value]
		switch {
		case !ok:
			d.fail(kn, k, "unknown key; valid keys here are %s (see config.example.yaml)", strings.Join(names, ", "))
			continue
		case d.lines[k] != 0:
			d.fail(kn, k, "set twice (first on line %d)", d.lines[k])
			continue
		}
		d.lines[k] = kn.Line
		d.decode(vn, v.Field(fi), k)
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// applyDefaults fills keys the file leaves out; present lists the keys the
// file sets. A key that is present keeps its value even when it is zero
// where zero means something (shutdown_timeout: 0s closes sessions at once;
// metrics.listen: "" turns the listener off).
func (f *File) applyDefaults(present map[string]int) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&f.Listen, DefaultListen)
	def(&f.Upstream, DefaultUpstream)
	if f.Mode == "" {
		f.Mode = ModeEnforce
	}
	if present["shutdown_timeout"] == 0 {
		f.ShutdownTimeout = DefaultShutdownTimeout
	}
	if present["metrics.listen"] == 0 {
		f.Metrics.Listen = DefaultMetricsListen
	}
	if f.MaxMessageSize == 0 {
		f.MaxMessageSize = DefaultMaxMessageSize
	}
	if f.RewriteCacheSize == 0 {
		f.RewriteCacheSize = DefaultRewriteCache
	}
	if f.UpstreamTLS.Mode == "" {
		f.UpstreamTLS.Mode = UpstreamTLSDisable
	}
	def(&f.Defaults.DeletedAt, DefaultDeletedAt)
	for i := range f.Tables {
		t := &f.Tables[i]
		def(&t.DeletedAt, f.Defaults.DeletedAt)
		def(&t.DeletedBy, f.Defaults.DeletedBy)
		def(&t.DeletedReason, f.Defaults.DeletedReason)
		key := fmt.Sprintf("tables[%d].", i)
		if present[key+"allow_restore"] == 0 {
			t.AllowRestore = f.Defaults.AllowRestore
		}
		if present[key+"retention"] == 0 {
			t.Retention = f.Defaults.Retention
		}
	}
	def(&f.Log.Format, "text")
	def(&f.Log.Level, "info")
}

// lineOf finds the line of key, or of its nearest enclosing key when the
// file leaves it out (a table without a name is reported at the table).
func lineOf(lines map[string]int, key string) int {
	for key != "" {
		if l, ok := lines[key]; ok {
			return l
		}
		key = key[:max(strings.LastIndexAny(key, ".["), 0)]
	}
	return 0
}

// isUnixSocket reports whether an address names a Unix-domain socket: an
// absolute path, or an abstract socket (@name).
func isUnixSocket(addr string) bool {
	return strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@")
}

func (f *File) validate(lines map[string]int) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Path: f.Path, Line: lineOf(lines, key), Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	checkHostPort := func(key, v, what string) {
		_, port, err := net.SplitHostPort(v)
		if err != nil {
			bad(key, "%q is %s", v, what)
			return
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad(key, "port %q in %q is not a number from 0 to 65535", port, v)
		}
	}
	checkAddr := func(key, v string) {
		if isUnixSocket(v) {
			if _, err := os.Stat(filepath.Dir(v)); err != nil && !strings.HasPrefix(v, "@") {
				bad(key, "directory of Unix socket %q does not exist", v)
			}
			return
		}
		checkHostPort(key, v, "neither host:port nor the absolute path of a Unix-domain socket")
	}
	checkAddr("listen", f.Listen)
	checkAddr("upstream", f.Upstream)
	if f.Metrics.Listen != "" {
		checkHostPort("metrics.listen", f.Metrics.Listen, `not host:port (write "" to turn the listener off)`)
	}
	switch f.Mode {
	case ModeEnforce, ModeShadow:
	default:
		bad("mode", "%q is not enforce or shadow", f.Mode)
	}
	if f.ShutdownTimeout < 0 {
		bad("shutdown_timeout", "must not be negative")
	}
	if f.MaxMessageSize < 1024 {
		bad("max_message_size", "%d bytes is too small (at least 1KiB)", f.MaxMessageSize)
	}
	if (f.TLS.CertFile == "") != (f.TLS.KeyFile == "") {
		bad("tls", "set both cert_file and key_file, or neither")
	}
	for _, k := range []struct{ key, path string }{{"tls.cert_file", f.TLS.CertFile}, {"tls.key_file", f.TLS.KeyFile}, {"upstream_tls.ca_file", f.UpstreamTLS.CAFile}} {
		if k.path != "" {
			if _, err := os.Stat(k.path); err != nil {
				bad(k.key, "cannot read %q: %v", k.path, err)
			}
		}
	}
	switch f.UpstreamTLS.Mode {
	case UpstreamTLSDisable, UpstreamTLSPrefer, UpstreamTLSRequire, UpstreamTLSVerifyFull:
	default:
		bad("upstream_tls.mode", "%q is not one of disable, prefer, require, verify-full", f.UpstreamTLS.Mode)
	}
	if f.UpstreamTLS.Mode == UpstreamTLSVerifyFull {
		// The proxy checks these again when it starts; reporting them
		// here makes check-config and serve agree.
		if isUnixSocket(f.Upstream) {
			bad("upstream_tls.mode", "verify-full needs a host:port upstream, and upstream %q is a Unix-domain socket (PostgreSQL has no TLS on Unix sockets): set mode to disable, or upstream to host:port", f.Upstream)
		}
		switch ca := f.UpstreamTLS.CAFile; {
		case ca == "":
			bad("upstream_tls.ca_file", "verify-full needs ca_file: the PEM file of the CA that signed the server's certificate")
		default:
			if pem, err := os.ReadFile(ca); err == nil && !x509.NewCertPool().AppendCertsFromPEM(pem) {
				bad("upstream_tls.ca_file", "%q holds no PEM certificate (want one or more -----BEGIN CERTIFICATE----- blocks)", ca)
			}
		}
	}
	for i, r := range f.PrivilegedRoles {
		if r == "" {
			bad(fmt.Sprintf("privileged_roles[%d]", i), "role name is empty")
		}
	}
	for i, r := range f.PrivilegedMemberOf {
		if r == "" {
			bad(fmt.Sprintf("privileged_member_of[%d]", i), "role name is empty")
		}
	}
	// column folds a column name in place, reporting it at key.
	column := func(key string, v *string) {
		if *v == "" {
			return
		}
		parts, err := foldName(*v)
		switch {
		case err != nil:
			bad(key, "%v", err)
		case len(parts) != 1:
			bad(key, "%q is not a column name: write the column alone, without its table or schema (quote a name with a dot in it: '\"a.b\"')", *v)
		default:
			*v = parts[0]
		}
	}
	// relation folds "table" or "schema.table".
	relation := func(key, v string) (schema, name string, ok bool) {
		parts, err := foldName(v)
		switch {
		case err != nil:
			bad(key, "%v", err)
		case len(parts) > 2:
			bad(key, "%q is not table or schema.table: it has %d dot-separated parts (quote a name with a dot in it: '\"a.b\"')", v, len(parts))
		case len(parts) == 2:
			return parts[0], parts[1], true
		default:
			return "", parts[0], true
		}
		return "", "", false
	}
	column("defaults.deleted_at", &f.Defaults.DeletedAt)
	column("defaults.deleted_by", &f.Defaults.DeletedBy)
	column("defaults.deleted_reason", &f.Defaults.DeletedReason)
	if f.Audit.Table != "" {
		if schema, name, ok := relation("audit.table", f.Audit.Table); ok {
			if schema == "" {
				// An unqualified name would resolve through each
				// session's search_path, which the client chooses.
				bad("audit.table", "%q has no schema: write schema.table, such as tombstone.audit_log", f.Audit.Table)
			}
			f.Audit.Schema, f.Audit.Relation = schema, name
		}
	}
	seen := map[[2]string]int{}
	for i := range f.Tables {
		t := &f.Tables[i]
		key := fmt.Sprintf("tables[%d]", i)
		// A column taken from defaults was reported there; fold it
		// quietly.
		tableColumn := func(k string, v *string) {
			if lines[k] != 0 {
				column(k, v)
			} else if parts, err := foldName(*v); err == nil && len(parts) == 1 {
				*v = parts[0]
			}
		}
		tableColumn(key+".deleted_at", &t.DeletedAt)
		tableColumn(key+".deleted_by", &t.DeletedBy)
		tableColumn(key+".deleted_reason", &t.DeletedReason)
		for _, c := range []struct{ k, v string }{{"deleted_by", t.DeletedBy}, {"deleted_reason", t.DeletedReason}} {
			if c.v != "" && c.v == t.DeletedAt {
				bad(key+"."+c.k, "%q is also the deleted_at column: give it a column of its own", c.v)
			}
		}
		if t.DeletedBy != "" && t.DeletedBy == t.DeletedReason {
			bad(key+".deleted_reason", "%q is also the deleted_by column: give it a column of its own", t.DeletedReason)
		}
		if t.Name == "" {
			bad(key+".name", "table name is required")
		} else if schema, name, ok := relation(key+".name", t.Name); ok {
			t.Schema, t.Relation = schema, name
			if prev, dup := seen[[2]string{schema, name}]; dup {
				bad(key+".name", "%q is listed twice (first at tables[%d] as %q; unquoted names are folded to lower case)", t.Name, prev, f.Tables[prev].Name)
			} else {
				seen[[2]string{schema, name}] = i
			}
		}
		children := map[[3]string]int{}
		for j := range t.Cascade {
			c := &t.Cascade[j]
			ck := fmt.Sprintf("%s.cascade[%d]", key, j)
			if c.Table == "" {
				bad(ck+".table", "the child table is required: the table whose rows reference this one")
			} else if schema, name, ok := relation(ck+".table", c.Table); ok {
				c.Schema, c.Relation = schema, name
			}
			if c.Column == "" {
				bad(ck+".column", "the column is required: the child's column that holds this table's primary key")
			} else {
				column(ck+".column", &c.Column)
			}
			if c.Relation == "" || c.Column == "" {
				continue
			}
			k := [3]string{c.Schema, c.Relation, c.Column}
			if prev, dup := children[k]; dup {
				bad(ck, "%s.%s is declared twice (first at %s.cascade[%d])", c.QualifiedName(), QuoteIdent(c.Column), key, prev)
			} else {
				children[k] = j
			}
		}
	}
	f.validateConsole(bad)
	switch f.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not json or text", f.Log.Format)
	}
	switch strings.ToLower(f.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", f.Log.Level)
	}
	return errors.Join(errs...)
}

// validateConsole checks the console section; bad reports at a key.
func (f *File) validateConsole(bad func(key, format string, args ...any)) {
	c := &f.Console
	if !c.Enabled() {
		if c.DSN != "" || len(c.Users) > 0 || c.TLS.Enabled() {
			bad("console.listen", "the console is off without listen, yet dsn, users or tls is set: set listen (such as 127.0.0.1:9188) or remove the console section")
		}
		return
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("console.listen", "%q is not host:port", c.Listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("console.listen", "port %q in %q is not a number from 0 to 65535", port, c.Listen)
	}
	if c.DSN == "" {
		bad("console.dsn", "the console needs dsn: a privileged role's connection string, direct to PostgreSQL")
	}
	if len(c.Users) == 0 {
		bad("console.users", "the console needs at least one user (name, password_hash, can)")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("console.tls", "set both cert_file and key_file, or neither")
	}
	for _, k := range []struct{ key, path string }{{"console.tls.cert_file", c.TLS.CertFile}, {"console.tls.key_file", c.TLS.KeyFile}} {
		if k.path != "" {
			if _, err := os.Stat(k.path); err != nil {
				bad(k.key, "cannot read %q: %v", k.path, err)
			}
		}
	}
	names := map[string]int{}
	for i, u := range c.Users {
		key := fmt.Sprintf("console.users[%d]", i)
		switch prev, dup := names[u.Name]; {
		case u.Name == "":
			bad(key+".name", "user name is required")
		case strings.ContainsAny(u.Name, ":\x00") || !utf8.ValidString(u.Name):
			bad(key+".name", "%q cannot be a basic-auth user name: it holds a colon, a NUL or invalid UTF-8", u.Name)
		case dup:
			bad(key+".name", "user %q is listed twice (first at console.users[%d])", u.Name, prev)
		default:
			names[u.Name] = i
		}
		if err := checkBcrypt(u.PasswordHash); err != nil {
			bad(key+".password_hash", "%v", err)
		}
		for j, can := range u.Can {
			switch can {
			case CanRestore, CanPurge:
			default:
				bad(fmt.Sprintf("%s.can[%d]", key, j), "%q is not restore or purge", can)
			}
		}
	}
}

// checkBcrypt accepts a bcrypt hash as htpasswd -B and tombstone
// hash-password write it.
func checkBcrypt(hash string) error {
	if hash == "" {
		return errors.New("password_hash is required: a bcrypt hash, as tombstone hash-password prints it")
	}
	if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
		return errors.New("not a bcrypt hash (want $2a$, $2b$ or $2y$...; tombstone hash-password prints one)")
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("not a valid bcrypt hash: %v (tombstone hash-password prints one)", err)
	}
	return nil
}
