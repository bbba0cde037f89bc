package ops

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
)

// routes builds the server's own mux; the server never serves
// http.DefaultServeMux. Importing net/http/pprof does register its handlers
// there too (in its init), so no sluice listener may serve DefaultServeMux.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeChecks(w, s.opts.Live, false)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		writeChecks(w, s.readyChecks(), true)
	})
	if s.dash != nil {
		mux.HandleFunc("GET /{$}", s.dash.handlePage)
		mux.HandleFunc("GET /dashboard/events", s.dash.handleEvents)
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// handleMetrics writes the readiness checks as sluice_ready, the
// configured sets, then the process metrics (see exposition.go).
func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writeExposition(w, s.writeReady, true, s.opts.Metrics)
}

// writeReady writes one sluice_ready sample per readiness check, in name
// order: 1 when it passes, 0 when it fails.
func (s *Server) writeReady(w io.Writer) {
	checks := s.readyChecks()
	for _, name := range slices.Sorted(maps.Keys(checks)) {
		v := 1
		if checks[name]() != nil {
			v = 0
		}
		fmt.Fprintf(w, "sluice_ready{check=%q} %d\n", name, v)
	}
}

// writeChecks runs checks in name order and answers 200 when all pass, else
// 503. With all set it writes one "name: ok" or "name: <error>" line per
// check; without, "ok" on success and only the failing lines otherwise.
func writeChecks(w http.ResponseWriter, checks map[string]Check, all bool) {
	var b strings.Builder
	failed := false
	for _, name := range slices.Sorted(maps.Keys(checks)) {
		if err := checks[name](); err != nil {
			failed = true
			msg := strings.ReplaceAll(err.Error(), "\n", "; ")
			fmt.Fprintf(&b, "%s: %s\n", name, msg)
		} else if all {
			fmt.Fprintf(&b, "%s: ok\n", name)
		}
	}
	if b.Len() == 0 {
		b.WriteString("ok\n")
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	io.WriteString(w, b.String())
}
