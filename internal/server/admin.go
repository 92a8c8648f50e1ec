package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
// server answers, 503 otherwise, with the reason in the body.
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
	fmt.Fprintln(w, "ok")
}

// errorLogger sends promhttp's gathering errors to the server's log.
type errorLogger struct{ s *Server }

func (l errorLogger) Println(v ...any) { l.s.log.Error("serving /metrics", "error", fmt.Sprint(v...)) }
