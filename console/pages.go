package console

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/tombstone-proxy/tombstone/policy"
)

// render executes a page template into a buffer first, so that a
// template error is a 500 and not half a page.
func (c *Console) render(w http.ResponseWriter, status int, name string, data map[string]any) {
	var b bytes.Buffer
	if err := c.pages.ExecuteTemplate(&b, name, data); err != nil {
		c.log.Error("console page", "template", name, "error", err)
		http.Error(w, "the page could not be rendered; see the log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// pageFail renders an action's or listing's error as a page.
func (c *Console) pageFail(w http.ResponseWriter, r *http.Request, err error) {
	if ie, ok := errors.AsType[*inputError](err); ok {
		c.fail(w, r, ie.Status, ie.Msg)
		return
	}
	c.log.Error("console request failed", "path", r.URL.Path, "user", userOf(r.Context()).Name, "error", err)
	c.fail(w, r, http.StatusInternalServerError, err.Error())
}

func (c *Console) pageIndex(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	u := userOf(r.Context())
	tables, err := c.listTables(r.Context(), u)
	if err != nil {
		c.pageFail(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "index.html", map[string]any{"User": u, "Tables": tables})
}

// pageRow is a deletedRow as the table page shows it.
type pageRow struct {
	deletedRow
	KeyText string
}

func (c *Console) pageTable(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	t, ok := c.table(r.PathValue("table"))
	if !ok {
		c.fail(w, r, http.StatusNotFound, noTable(r))
		return
	}
	u := userOf(r.Context())
	f, err := parseFilter(r.URL.Query())
	var rows []deletedRow
	var next string
	if err == nil {
		rows, next, err = c.listDeleted(r.Context(), t, f)
	}
	if err != nil {
		c.pageFail(w, r, err)
		return
	}
	page := make([]pageRow, len(rows))
	for i, row := range rows {
		page[i] = pageRow{deletedRow: row, KeyText: string(row.Key)}
	}
	data := map[string]any{
		"User": u, "Table": t.QualifiedName(), "Path": tablePath(t), "Rows": page, "Filter": f,
		"CSRF": c.csrfToken(u), "HasActor": t.DeletedBy != "", "HasReason": t.DeletedReason != "",
		"Flash": c.takeFlash(w, r, u),
	}
	if next != "" {
		q := r.URL.Query()
		q.Set("after", next)
		data["Next"] = tablePath(t) + "?" + q.Encode()
	}
	c.render(w, http.StatusOK, "table.html", data)
}

// tablePath is the table page's path.
func tablePath(t *policy.Table) string { return pagePath(t.QualifiedName()) }

// pagePath is the path of the page of the table named name (schema-
// qualified), escaped: a name may hold any character, / ? and # included.
func pagePath(name string) string { return "/tables/" + url.PathEscape(name) }

// formAction reads the table and key of a form POST; it has answered
// when ok is false.
func (c *Console) formAction(w http.ResponseWriter, r *http.Request) (t *policy.Table, key json.RawMessage, ok bool) {
	if !allow(w, r, http.MethodPost) {
		return nil, nil, false
	}
	if t, ok = c.table(r.PathValue("table")); !ok {
		c.fail(w, r, http.StatusNotFound, noTable(r))
		return nil, nil, false
	}
	key = json.RawMessage(r.PostFormValue("key"))
	if len(key) == 0 {
		c.fail(w, r, http.StatusBadRequest, "the form has no key")
		return nil, nil, false
	}
	return t, key, true
}

func (c *Console) pageRestore(w http.ResponseWriter, r *http.Request) {
	t, key, ok := c.formAction(w, r)
	if !ok {
		return
	}
	u := userOf(r.Context())
	counts, err := c.restore(r.Context(), u, t, key)
	if err != nil {
		c.actionFailed(w, r, u, t, err)
		return
	}
	var total int64
	parts := make([]string, len(counts))
	for i, n := range counts {
		total += n.Rows
		parts[i] = fmt.Sprintf("%s %d", n.Table, n.Rows)
	}
	c.setFlash(w, r, u, "ok", fmt.Sprintf("Restored %s: %s", rowCount(total), strings.Join(parts, ", ")))
	http.Redirect(w, r, tablePath(t), http.StatusSeeOther)
}

func (c *Console) pagePurge(w http.ResponseWriter, r *http.Request) {
	t, key, ok := c.formAction(w, r)
	if !ok {
		return
	}
	u := userOf(r.Context())
	if !u.CanPurge {
		c.fail(w, r, http.StatusForbidden, "user "+u.Name+" may not purge (console.users[].can lacks purge)")
		return
	}
	confirmed := r.PostFormValue("confirm") == "yes"
	report, err := c.erase(r.Context(), u, t, key, !confirmed)
	if err != nil {
		c.actionFailed(w, r, u, t, err)
		return
	}
	parts := make([]string, len(report.Removed))
	for i, n := range report.Removed {
		parts[i] = fmt.Sprintf("%s %d", n.Table, n.Rows)
	}
	if !confirmed {
		c.render(w, http.StatusOK, "confirm.html", map[string]any{"User": u, "Table": t.QualifiedName(), "Path": tablePath(t), "Key": string(key), "CSRF": c.csrfToken(u),
			"Removes": rowCount(report.Rows()) + ": " + strings.Join(parts, ", ")})
		return
	}
	c.setFlash(w, r, u, "ok", fmt.Sprintf("Purged %s for good: %s", rowCount(report.Rows()), strings.Join(parts, ", ")))
	http.Redirect(w, r, tablePath(t), http.StatusSeeOther)
}

// actionFailed shows why an action changed nothing: a conflict or a bad
// key goes back to the table page as an error flash, anything else is an
// error page.
func (c *Console) actionFailed(w http.ResponseWriter, r *http.Request, u *User, t *policy.Table, err error) {
	msg := ""
	if cf := conflict(err); cf != nil {
		msg = cf.Msg
		if cf.Detail != "" {
			msg += ": " + cf.Detail
		}
	} else if ie, ok := errors.AsType[*inputError](err); ok && ie.Status != http.StatusForbidden {
		msg = "Nothing was changed: " + ie.Msg
	}
	if msg == "" {
		c.pageFail(w, r, err)
		return
	}
	c.setFlash(w, r, u, "error", strings.ToUpper(msg[:1])+msg[1:])
	http.Redirect(w, r, tablePath(t), http.StatusSeeOther)
}

func rowCount(n int64) string {
	if n == 1 {
		return "1 row"
	}
	return fmt.Sprintf("%d rows", n)
}

const flashCookie = "tombstone_flash"

// maxFlash is the longest flash text in bytes: base64 and the signature
// keep the cookie well under the 4096 bytes browsers store.
const maxFlash = 2000

// flash is the message the page after a redirect shows.
type flash struct {
	Kind string // ok or error
	Text string
}

// setFlash stores a message for the next page in a cookie signed for
// the user, so that nobody can make the console show text of theirs.
func (c *Console) setFlash(w http.ResponseWriter, r *http.Request, u *User, kind, text string) {
	if len(text) > maxFlash {
		// A conflict's DETAIL quotes the application's values, as long
		// as it made them; browsers drop a cookie over 4096 bytes.
		cut := maxFlash
		for !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	payload := base64.RawURLEncoding.EncodeToString([]byte(kind + "\n" + text))
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: payload + "." + c.mac("flash", u.Name, payload),
		Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// takeFlash reads and clears the flash cookie.
func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request, u *User) *flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	payload, sig, _ := strings.Cut(ck.Value, ".")
	if !hmacEqual(sig, c.mac("flash", u.Name, payload)) {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	kind, text, _ := strings.Cut(string(b), "\n")
	if kind != "ok" {
		kind = "error"
	}
	return &flash{Kind: kind, Text: text}
}
