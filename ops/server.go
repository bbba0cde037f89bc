package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is the ops HTTP listener, separate from the data listener. It
// serves:
//
//   - /metrics: the metric sets of [ServerOptions] and the process metrics,
//     in the Prometheus text format;
//   - /healthz: 200 "ok" when every Live check passes, else 503 listing the
//     failures;
//   - /readyz: one "name: ok" or "name: <error>" line per Ready check, 200
//     when all pass, else 503;
//   - /debug/pprof/: the net/http/pprof handlers, on the server's own mux;
//   - / : the live dashboard, a self-contained HTML page that
//     /dashboard/events feeds once a second over server-sent events, with
//     what this process's metrics show (see [ServerOptions].DashboardClients).
//
// It speaks HTTP/1.1 and unencrypted HTTP/2 (prior knowledge). Create it with
// [NewServer].
type Server struct {
	opts ServerOptions
	http *http.Server
	dash *dashboard // nil when the dashboard is off

	mu      sync.Mutex // guards ready, ln and started
	ready   map[string]Check
	ln      net.Listener
	started bool
}

// NewServer validates opts, fills in defaults and returns a Server that is
// not yet listening. The check maps are copied; later changes to them are not
// seen, use [Server.AddReady] instead.
func NewServer(opts ServerOptions) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("ops server options: %w", err)
	}
	opts.setDefaults()
	opts.Live = maps.Clone(opts.Live)
	s := &Server{opts: opts, ready: maps.Clone(opts.Ready)}
	if s.ready == nil {
		s.ready = make(map[string]Check)
	}
	if opts.DashboardClients > 0 {
		s.dash = newDashboard(opts.DashboardClients, opts.Logger, s.writeReady, opts.Metrics)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		Protocols:         &protos,
	}
	if s.dash != nil {
		s.http.RegisterOnShutdown(s.dash.close)
	}
	return s, nil
}

// Start binds the listener and serves in a goroutine; it does not block. When
// it returns nil, [Server.Addr] is the bound address and requests are
// accepted. A Server starts once: a second call returns [ErrServerStarted].
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrServerStarted
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("ops server listening on %s: %w", s.opts.Addr, err)
	}
	s.ln, s.started = ln, true
	go s.serve(ln)
	return nil
}

// serve runs the HTTP server until Shutdown and logs why it stopped otherwise.
func (s *Server) serve(ln net.Listener) {
	s.opts.Logger.Info("ops server listening", "addr", ln.Addr().String())
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.opts.Logger.Error("ops server stopped", "err", err)
	}
}

// Addr returns the bound address, host:port, or "" before [Server.Start].
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown closes the listener, ends the dashboard's feeds, then waits for
// in-flight requests to finish or for ctx to end, whichever comes first, as
// [http.Server.Shutdown] does.
// It returns ctx's error when requests were still running. After Shutdown
// the Server cannot start again. Shutdown before Start returns nil.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.started = true // a shut down http.Server cannot serve again
	s.mu.Unlock()
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("ops server shutdown: %w", err)
	}
	return nil
}

// AddReady adds, or replaces, the readiness check called name; a nil c
// removes it. It is safe to call while the server is serving; the next
// /readyz request sees the change.
func (s *Server) AddReady(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c == nil {
		delete(s.ready, name)
		return
	}
	s.ready[name] = c
}

// readyChecks returns a snapshot of the readiness checks, so they run
// without holding the lock.
func (s *Server) readyChecks() map[string]Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.ready)
}
