package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tombstone-proxy/tombstone/proxy"
)

// readyTimeout bounds the upstream check of /readyz; probes usually time
// out after a few seconds themselves.
const readyTimeout = 2 * time.Second

// adminHandler serves /metrics, /healthz, /readyz and POST /-/reload, and
// with profiling Go's profiler under /debug/pprof/.
func (s *Server) adminHandler(reg *prometheus.Registry, profiling bool) http.Handler {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          errorLogger{s},
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Reload(); err != nil {
			http.Error(w, "reload failed, the running configuration stays in force:\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "reloaded")
	})
	return mux
}

// ready answers 200 while the proxy accepts connections and the upstream
// server answers, 503 otherwise, with the reason in the body. After "ok"
// it lists each database's catalog state: a configured table that is
// missing or lacks its columns is loud (listed here, logged, counted in
// tombstone_catalog_problems) but not fatal, since the table stays
// enforced by name and taking the proxy out of service would not fix it.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if !s.accepting.Load() {
		http.Error(w, "not accepting connections (shutting down)", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.proxy.PingUpstream(ctx); err != nil {
		http.Error(w, "upstream not answering: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, readyDetail(s.proxy.Databases()))
}

// readyDetail is /readyz's body: "ok", then one line per database a
// session has used, each problem indented below it.
func readyDetail(dbs []proxy.DatabaseStatus) string {
	var b strings.Builder
	problems := 0
	for _, db := range dbs {
		problems += len(db.Problems)
	}
	b.WriteString("ok")
	if problems > 0 {
		fmt.Fprintf(&b, " (%d configuration problems; see below)", problems)
	}
	b.WriteString("\n")
	for _, db := range dbs {
		fmt.Fprintf(&b, "database %q: ", db.Name)
		switch {
		case db.LoadedAt.IsZero() && db.Err == "":
			b.WriteString("catalog not read yet; soft-delete tables enforced by name")
		case db.LoadedAt.IsZero():
			b.WriteString("catalog never read; soft-delete tables enforced by name only")
		default:
			fmt.Fprintf(&b, "catalog read %s, %d problems", db.LoadedAt.UTC().Format(time.RFC3339), len(db.Problems))
		}
		if db.Err != "" {
			fmt.Fprintf(&b, "; the last read failed: %s", oneLine(db.Err))
		}
		b.WriteString("\n")
		for _, p := range db.Problems {
			fmt.Fprintf(&b, "  problem: %s: %s\n", p.Table, oneLine(p.Message))
		}
	}
	return b.String()
}

// oneLine keeps a message on its line of the body.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// errorLogger sends promhttp's gathering errors to the server's log.
type errorLogger struct{ s *Server }

func (l errorLogger) Println(v ...any) { l.s.log.Error("serving /metrics", "error", fmt.Sprint(v...)) }
