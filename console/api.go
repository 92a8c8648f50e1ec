package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/tombstone-proxy/tombstone/policy"
)

// keyRequest is the body of the restore and purge endpoints.
type keyRequest struct {
	Key json.RawMessage `json:"key"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// allow answers 405 unless r's method is method.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	if isAPI(r) {
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here: use "+method)
	} else {
		http.Error(w, r.Method+" is not allowed here: use "+method, http.StatusMethodNotAllowed)
	}
	return false
}

// apiFail answers an action's or a listing's error.
func (c *Console) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	if ie, ok := errors.AsType[*inputError](err); ok {
		writeError(w, ie.Status, ie.Msg)
		return
	}
	if cf := conflict(err); cf != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": cf.Msg, "detail": cf.Detail})
		return
	}
	c.log.Error("console request failed", "path", r.URL.Path, "user", userOf(r.Context()).Name, "error", err)
	writeError(w, http.StatusInternalServerError, err.Error())
}

func (c *Console) apiTables(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	tables, err := c.listTables(r.Context(), userOf(r.Context()))
	if err != nil {
		c.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tables": tables})
}

func (c *Console) apiDeleted(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	t, ok := c.table(r.PathValue("table"))
	if !ok {
		writeError(w, http.StatusNotFound, noTable(r))
		return
	}
	f, err := parseFilter(r.URL.Query())
	if err == nil {
		var rows []deletedRow
		var next string
		if rows, next, err = c.listDeleted(r.Context(), t, f); err == nil {
			if rows == nil {
				rows = []deletedRow{}
			}
			writeJSON(w, http.StatusOK, map[string]any{"rows": rows, "next": next})
			return
		}
	}
	c.apiFail(w, r, err)
}

// apiAction finds the table in the path and reads a POST's
// {"key": ...}.
func (c *Console) apiAction(w http.ResponseWriter, r *http.Request) (*policy.Table, *keyRequest, bool) {
	if !allow(w, r, http.MethodPost) {
		return nil, nil, false
	}
	t, ok := c.table(r.PathValue("table"))
	if !ok {
		writeError(w, http.StatusNotFound, noTable(r))
		return nil, nil, false
	}
	var req keyRequest
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	err := d.Decode(&req)
	if err == nil && d.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	switch _, big := errors.AsType[*http.MaxBytesError](err); {
	case big:
		writeError(w, http.StatusRequestEntityTooLarge, "the request body is larger than 64 KiB")
		return nil, nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, `the body is not {"key": {...}}: `+err.Error())
		return nil, nil, false
	case len(req.Key) == 0:
		writeError(w, http.StatusBadRequest, `the body has no key: send {"key": {...the primary key's columns...}}`)
		return nil, nil, false
	}
	return t, &req, true
}

func (c *Console) apiRestore(w http.ResponseWriter, r *http.Request) {
	t, req, ok := c.apiAction(w, r)
	if !ok {
		return
	}
	counts, err := c.restore(r.Context(), userOf(r.Context()), t, req.Key)
	if err != nil {
		c.apiFail(w, r, err)
		return
	}
	out := make([]map[string]any, len(counts))
	for i, n := range counts {
		out[i] = map[string]any{"table": n.Table, "rows": n.Rows}
	}
	writeJSON(w, http.StatusOK, map[string]any{"restored": out})
}

func (c *Console) apiPurge(w http.ResponseWriter, r *http.Request) {
	t, req, ok := c.apiAction(w, r)
	if !ok {
		return
	}
	report, err := c.erase(r.Context(), userOf(r.Context()), t, req.Key, false)
	if err != nil {
		c.apiFail(w, r, err)
		return
	}
	out := make([]map[string]any, len(report.Removed))
	for i, n := range report.Removed {
		out[i] = map[string]any{"table": n.Table.String(), "rows": n.Rows}
	}
	writeJSON(w, http.StatusOK, map[string]any{"purged": out})
}

// noTable says that the path names no console table.
func noTable(r *http.Request) string {
	return "no soft-delete table " + r.PathValue("table") + " in the configuration (write it schema-qualified, as GET /api/v1/tables lists it)"
}
