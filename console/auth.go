package console

import (
	"context"
	"crypto/subtle"
	"fmt"
	"math"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// users checks basic-auth credentials.
type users struct {
	list []User
	// dummy is a hash an unknown user name is checked against, so that
	// it costs what a known one does.
	dummy []byte

	mu sync.Mutex
	// verified holds, per user, the HMAC of the last password bcrypt
	// accepted: a browser sends the credentials with every request, and
	// bcrypt's cost on each one would make every page (and its
	// stylesheet) slow. A wrong password never gets here.
	verified map[string]string
}

func newUsers(list []User) (*users, error) {
	cost := bcrypt.MinCost
	for _, u := range list {
		c, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return nil, fmt.Errorf("console: user %q: password hash: %v", u.Name, err)
		}
		cost = max(cost, c)
	}
	// As costly as the dearest real hash.
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such user"), cost)
	if err != nil {
		return nil, err
	}
	return &users{list: list, dummy: dummy, verified: map[string]string{}}, nil
}

// check returns the user whose name and password these are, or how long
// the client (its limiter key) must wait before its password may be
// checked. Every user name is compared, in constant time, and one bcrypt
// comparison is made whether or not the name is known. A bcrypt check
// spends one of the client's tokens before it runs, and a success gives
// it back: guesses sent in parallel cannot all pass a bucket that holds
// fewer tokens than they are, as they would if failures were counted
// only once bcrypt had answered.
func (c *Console) check(name, password, client string) (*User, time.Duration) {
	us := c.users
	var found *User
	for i := range us.list {
		if subtle.ConstantTimeCompare([]byte(us.list[i].Name), []byte(name)) == 1 && found == nil {
			found = &us.list[i]
		}
	}
	var digest string
	if found != nil {
		digest = c.mac("login", found.Name, password)
		us.mu.Lock()
		known := us.verified[found.Name]
		us.mu.Unlock()
		if hmacEqual(known, digest) {
			return found, 0
		}
	}
	if wait := c.limit.take(client); wait > 0 {
		return nil, wait
	}
	if found == nil {
		_ = bcrypt.CompareHashAndPassword(us.dummy, []byte(password))
		return nil, 0
	}
	if bcrypt.CompareHashAndPassword([]byte(found.PasswordHash), []byte(password)) != nil {
		return nil, 0
	}
	c.limit.refund(client)
	us.mu.Lock()
	us.verified[found.Name] = digest
	us.mu.Unlock()
	return found, 0
}

// authenticate answers 401 (no or wrong credentials) or 429 (too many
// failures from this client) and returns false, or returns the user.
// A client over its allowance gets 429 without its password being
// checked, so guessing stops there.
func (c *Console) authenticate(w http.ResponseWriter, r *http.Request) (*User, bool) {
	ip := clientIP(r)
	client := limitKey(ip)
	tooMany := func(wait time.Duration) (*User, bool) {
		c.metrics.LoginFailed()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		c.fail(w, r, http.StatusTooManyRequests, "too many failed logins from your address; try again later")
		return nil, false
	}
	if wait := c.limit.blocked(client); wait > 0 {
		return tooMany(wait)
	}
	name, password, ok := r.BasicAuth()
	if !ok {
		// A browser's first request carries no credentials; that is
		// not a failed login.
		c.unauthorized(w, r, "log in with your console user name and password")
		return nil, false
	}
	u, wait := c.check(name, password, client)
	switch {
	case wait > 0:
		return tooMany(wait)
	case u == nil:
		c.metrics.LoginFailed()
		c.log.Warn("console login failed", "user", name, "client", ip)
		c.unauthorized(w, r, "wrong user name or password")
		return nil, false
	}
	return u, true
}

func (c *Console) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
	c.fail(w, r, http.StatusUnauthorized, msg)
}

// clientIP is the peer's address. Headers such as X-Forwarded-For are not
// read: any client can write them.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limitKey is the client a failed login is counted against: its IPv4
// address, or the /64 of its IPv6 address, since whoever has one address
// of a /64 (one home or one virtual machine) usually has them all.
func limitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}

// limiter is a token bucket of failed logins per client (limitKey):
// perMinute failures, refilled at that rate.
type limiter struct {
	perMinute int
	now       func() time.Time
	mu        sync.Mutex
	buckets   map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the limiter's memory; full buckets are dropped when
// it is reached.
const maxBuckets = 10000

func newLimiter(perMinute int, now func() time.Time) *limiter {
	return &limiter{perMinute: perMinute, now: now, buckets: map[string]*bucket{}}
}

// refill brings b up to now and reports whether it is full.
func (l *limiter) refill(b *bucket, now time.Time) bool {
	b.tokens = min(float64(l.perMinute), b.tokens+now.Sub(b.at).Minutes()*float64(l.perMinute))
	b.at = now
	return b.tokens >= float64(l.perMinute)
}

// wait is how long b needs until it holds a token; 0 when it holds one.
func (l *limiter) wait(b *bucket) time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / float64(l.perMinute) * float64(time.Minute))
}

// blocked returns how long client must wait before it may try again; 0
// when it may now.
func (l *limiter) blocked(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[client]
	if b == nil {
		return 0
	}
	l.refill(b, l.now())
	return l.wait(b)
}

// take spends one token of client's bucket, or returns how long it must
// wait for one (and spends nothing).
func (l *limiter) take(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.buckets) >= maxBuckets {
		for k, b := range l.buckets {
			if l.refill(b, now) {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[client]
	if b == nil {
		b = &bucket{tokens: float64(l.perMinute), at: now}
		l.buckets[client] = b
	}
	l.refill(b, now)
	if w := l.wait(b); w > 0 {
		return w
	}
	b.tokens--
	return 0
}

// refund gives back the token a successful login spent.
func (l *limiter) refund(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[client]; b != nil {
		b.tokens = min(float64(l.perMinute), b.tokens+1)
	}
}

// crossSite returns why a POST is refused as a possible cross-site
// request forgery, or "". An API POST must be JSON (a form on another
// site cannot send that without the console's consent) and, when it says
// where it comes from, come from the console itself. A form POST must
// come from the console (Origin or Referer, one of them present) and carry
// the user's CSRF token.
func (c *Console) crossSite(r *http.Request, u *User) string {
	origin, known := requestOrigin(r)
	if known && origin != selfOrigin(r) {
		return fmt.Sprintf("cross-site request refused: it comes from %s, not from the console (%s)", origin, selfOrigin(r))
	}
	if isAPI(r) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			return "an API POST must have Content-Type: application/json"
		}
		return ""
	}
	if !known {
		return "cross-site request refused: the form POST says neither Origin nor Referer (allow your browser to send them to the console)"
	}
	if !hmacEqual(r.PostFormValue("csrf_token"), c.csrfToken(u)) {
		return "the form's CSRF token is missing or wrong: reload the page and try again"
	}
	return ""
}

// csrfToken is u's form token: valid for as long as the process runs.
func (c *Console) csrfToken(u *User) string { return c.mac("csrf", u.Name) }

// requestOrigin is the origin a request says it comes from (Origin, else
// Referer's scheme and host); known is false when it says neither.
func requestOrigin(r *http.Request) (origin string, known bool) {
	if o := r.Header.Get("Origin"); o != "" {
		return o, true
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" {
			return "invalid Referer", true
		}
		return u.Scheme + "://" + u.Host, true
	}
	return "", false
}

// selfOrigin is the console's origin as the browser reached it.
func selfOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type userKey struct{}

func withUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

func userOf(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}

// hmacEqual compares two MACs in constant time.
func hmacEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
