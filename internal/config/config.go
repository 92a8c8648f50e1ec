package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

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
	Metrics            Metrics       `yaml:"metrics"`
	Log                Log           `yaml:"log"`

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
	DeletedAt string `yaml:"deleted_at"`
	DeletedBy string `yaml:"deleted_by"`
}

// Table is one soft-delete table.
type Table struct {
	// Name is "table" (matches that table in any schema) or "schema.table".
	Name      string `yaml:"name"`
	DeletedAt string `yaml:"deleted_at"`
	// DeletedBy, when set, names a text column that a soft delete fills
	// with the login role (session_user).
	DeletedBy string `yaml:"deleted_by"`
}

// Metrics configures the HTTP listener for /metrics, /healthz, /readyz and
// /-/reload. An empty Listen disables it.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Log configures log/slog output.
type Log struct {
	Format string `yaml:"format"` // json or text
	Level  string `yaml:"level"`  // debug, info, warn or error
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

// expand replaces ${VAR} and ${VAR:-default} from the environment. A
// variable that is unset and has no default is an error: silently using an
// empty upstream or password hides mistakes.
func expand(data []byte, path string) ([]byte, error) {
	var errs []error
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '#' {
			continue
		}
		lines[i] = varRe.ReplaceAllFunc(line, func(m []byte) []byte {
			sm := varRe.FindSubmatch(m)
			if v, ok := os.LookupEnv(string(sm[1])); ok {
				return []byte(v)
			}
			if sm[2] != nil {
				return sm[3]
			}
			errs = append(errs, &Error{Path: path, Line: i + 1, Msg: fmt.Sprintf("environment variable %s is not set (write ${%s:-default} to allow that)", sm[1], sm[1])})
			return m
		})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return bytes.Join(lines, []byte("\n")), nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): (.*)$`)

// Parse validates configuration bytes; path is used in error messages only.
func Parse(data []byte, path string) (*File, error) {
	data, err := expand(data, path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(err, path)
	}
	f := &File{Path: path}
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(f); err != nil {
			return nil, yamlError(err, path)
		}
	}
	f.Path = path
	f.applyDefaults()
	if err := f.validate(lineIndex(&root)); err != nil {
		return nil, err
	}
	return f, nil
}

// yamlError turns yaml.v3's "yaml: line N: msg" into an *Error.
func yamlError(err error, path string) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, e := range te.Errors {
			errs = append(errs, parseYAMLMsg("yaml: "+e, path))
		}
		return errors.Join(errs...)
	}
	return parseYAMLMsg(err.Error(), path)
}

func parseYAMLMsg(msg, path string) error {
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		inner := strings.Replace(m[2], "field ", "unknown key ", 1)
		inner = strings.Replace(inner, " not found in type config.", " (not a key of ", 1)
		if strings.Contains(inner, "(not a key of ") {
			inner += "): check the spelling against config.example.yaml"
		}
		return &Error{Path: path, Line: line, Msg: inner}
	}
	return &Error{Path: path, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// lineIndex maps dotted keys (tables[0].name) to their line in the file.
func lineIndex(root *yaml.Node) map[string]int {
	idx := map[string]int{}
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, key)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if key != "" {
					k = key + "." + k
				}
				idx[k] = n.Content[i].Line
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				k := fmt.Sprintf("%s[%d]", key, i)
				idx[k] = c.Line
				walk(c, k)
			}
		}
	}
	walk(root, "")
	return idx
}

func (f *File) applyDefaults() {
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
	if f.ShutdownTimeout == 0 {
		f.ShutdownTimeout = DefaultShutdownTimeout
	}
	if f.MaxMessageSize == 0 {
		f.MaxMessageSize = DefaultMaxMessageSize
	}
	if f.RewriteCacheSize == 0 {
		f.RewriteCacheSize = DefaultRewriteCache
	}
	def(string2(&f.UpstreamTLS.Mode), string(UpstreamTLSDisable))
	def(&f.Defaults.DeletedAt, DefaultDeletedAt)
	for i := range f.Tables {
		def(&f.Tables[i].DeletedAt, f.Defaults.DeletedAt)
		def(&f.Tables[i].DeletedBy, f.Defaults.DeletedBy)
	}
	def(&f.Log.Format, "text")
	def(&f.Log.Level, "info")
}

func string2(m *UpstreamTLSMode) *string { return (*string)(m) }

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

func (f *File) validate(lines map[string]int) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Path: f.Path, Line: lines[key], Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	checkAddr := func(key, v string) {
		if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "@") {
			if _, err := os.Stat(filepath.Dir(v)); err != nil && !strings.HasPrefix(v, "@") {
				bad(key, "directory of Unix socket %q does not exist", v)
			}
			return
		}
		host, port, err := net.SplitHostPort(v)
		if err != nil {
			bad(key, "%q is neither host:port nor the absolute path of a Unix-domain socket", v)
			return
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad(key, "port %q in %q is not a number from 0 to 65535", port, v)
		}
		_ = host
	}
	checkAddr("listen", f.Listen)
	checkAddr("upstream", f.Upstream)
	if f.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(f.Metrics.Listen); err != nil {
			bad("metrics.listen", "%q is not host:port", f.Metrics.Listen)
		}
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
	if f.Defaults.DeletedAt != "" && !identRe.MatchString(f.Defaults.DeletedAt) {
		bad("defaults.deleted_at", "%q is not a plain column name", f.Defaults.DeletedAt)
	}
	seen := map[string]int{}
	for i, t := range f.Tables {
		key := fmt.Sprintf("tables[%d]", i)
		parts := strings.Split(t.Name, ".")
		switch {
		case t.Name == "":
			bad(key+".name", "table name is required")
		case len(parts) > 2 || !identRe.MatchString(parts[0]) || (len(parts) == 2 && !identRe.MatchString(parts[1])):
			bad(key+".name", "%q is not table or schema.table with plain identifiers", t.Name)
		}
		if prev, dup := seen[strings.ToLower(t.Name)]; dup {
			bad(key+".name", "%q is listed twice (first at tables[%d])", t.Name, prev)
		}
		seen[strings.ToLower(t.Name)] = i
		if !identRe.MatchString(t.DeletedAt) {
			bad(key+".deleted_at", "%q is not a plain column name", t.DeletedAt)
		}
		if t.DeletedBy != "" && !identRe.MatchString(t.DeletedBy) {
			bad(key+".deleted_by", "%q is not a plain column name", t.DeletedBy)
		}
	}
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
