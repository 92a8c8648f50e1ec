package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tombstone-proxy/tombstone/metrics"
	"github.com/tombstone-proxy/tombstone/policy"
	"github.com/tombstone-proxy/tombstone/rewrite"
)

// MaxBody is the largest request body the console reads; a larger one
// gets 413.
const MaxBody = 64 << 10

// Realm is the basic-auth realm the console asks browsers to log in to.
const Realm = "Tombstone console"

// User is one console login.
type User struct {
	Name string
	// PasswordHash is bcrypt ($2a$, $2b$ or $2y$).
	PasswordHash string
	CanRestore   bool
	CanPurge     bool
}

// Options are what a console is built from.
type Options struct {
	Users []User
	// DB is a pool on a privileged role, connected directly to
	// PostgreSQL: the console reads deleted rows and restores and erases
	// them.
	DB *pgxpool.Pool
	// Policy is the configuration's policy resolved in DB's catalog
	// (catalog.Resolve): the tables, their keys and cascades.
	Policy  *policy.Policy
	Metrics *metrics.Console
	Logger  *slog.Logger
	// Now is the clock of the login rate limit; time.Now when nil.
	Now func() time.Time
	// FailuresPerMinute is how many failed logins a client IP may make
	// before it gets 429 (the allowance refills at that rate); 5 when 0.
	FailuresPerMinute int
}

// Console is the console's http.Handler.
type Console struct {
	opts    Options
	log     *slog.Logger
	rw      *rewrite.Rewriter
	users   *users
	limit   *limiter
	secret  []byte // per process: CSRF tokens and flash cookies
	tables  []*policy.Table
	pages   *template.Template
	mux     *http.ServeMux
	metrics *metrics.Console
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New builds a console. Its error names an unusable option.
func New(opts Options) (*Console, error) {
	switch {
	case opts.DB == nil:
		return nil, errors.New("console: no database pool")
	case opts.Policy == nil || !opts.Policy.HasCatalog():
		return nil, errors.New("console: the policy must be resolved in the database's catalog (catalog.Resolve)")
	case opts.Metrics == nil:
		return nil, errors.New("console: no metrics")
	case len(opts.Users) == 0:
		return nil, errors.New("console: no users")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FailuresPerMinute == 0 {
		opts.FailuresPerMinute = 5
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	us, err := newUsers(opts.Users)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	pages, err := template.New("").Funcs(template.FuncMap{"deref": deref, "dict": dict, "pagePath": pagePath}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	c := &Console{
		opts: opts, log: log, rw: rewrite.New(opts.Policy, 0), users: us,
		limit:  newLimiter(opts.FailuresPerMinute, opts.Now),
		secret: secret, pages: pages, metrics: opts.Metrics,
	}
	for _, t := range opts.Policy.Tables() {
		// Configured tables that exist; their partitions and children
		// are read and restored through them.
		if t.Root == t && t.OID != 0 {
			c.tables = append(c.tables, t)
		}
	}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("/{$}", c.pageIndex)
	m.HandleFunc("/tables/{table}", c.pageTable)
	m.HandleFunc("/tables/{table}/restore", c.pageRestore)
	m.HandleFunc("/tables/{table}/purge", c.pagePurge)
	m.HandleFunc("/api/v1/tables", c.apiTables)
	m.HandleFunc("/api/v1/tables/{table}/deleted", c.apiDeleted)
	m.HandleFunc("/api/v1/tables/{table}/restore", c.apiRestore)
	m.HandleFunc("/api/v1/tables/{table}/purge", c.apiPurge)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: see docs/console.md")
	})
	c.mux = m
}

// securityHeaders are sent with every response, errors included.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "same-origin",
	"Cache-Control":           "no-store",
	"X-Frame-Options":         "DENY",
}

// ServeHTTP sets the security headers, authenticates, checks a POST's
// origin and token and caps its body, then routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	user, ok := c.authenticate(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodPost {
		if r.ContentLength > MaxBody {
			c.fail(w, r, http.StatusRequestEntityTooLarge, "the request body is larger than 64 KiB")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		if !isAPI(r) {
			if err := r.ParseForm(); err != nil {
				status, msg := http.StatusBadRequest, "the form cannot be read: "+err.Error()
				if _, big := errors.AsType[*http.MaxBytesError](err); big {
					status, msg = http.StatusRequestEntityTooLarge, "the request body is larger than 64 KiB"
				}
				c.fail(w, r, status, msg)
				return
			}
		}
		if msg := c.crossSite(r, user); msg != "" {
			c.fail(w, r, http.StatusForbidden, msg)
			return
		}
	}
	c.mux.ServeHTTP(w, r.WithContext(withUser(r.Context(), user)))
}

// isAPI reports whether r is a JSON API request, answered in JSON.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// fail answers an error in JSON for the API and as a page otherwise.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if isAPI(r) {
		writeError(w, status, msg)
		return
	}
	c.render(w, status, "error.html", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg, "User": userOf(r.Context())})
}

// mac is the HMAC of parts under the process's secret, hex-encoded.
func (c *Console) mac(parts ...string) string {
	h := hmac.New(sha256.New, c.secret)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// table finds a console table by its schema-qualified name, the only
// names the console accepts.
func (c *Console) table(name string) (*policy.Table, bool) {
	for _, t := range c.tables {
		if t.QualifiedName() == name {
			return t, true
		}
	}
	return nil, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// dict builds a template's data from key, value pairs.
func dict(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}
