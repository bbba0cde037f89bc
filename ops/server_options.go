package ops

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/VictoriaMetrics/metrics"
)

// DefaultOpsAddr is where the ops listener binds when [ServerOptions].Addr is
// empty: loopback only, since pprof and metrics are not for the public.
const DefaultOpsAddr = "127.0.0.1:9090"

// Check reports whether one dependency is healthy: nil means healthy, an
// error says what is wrong. Checks run on the HTTP request goroutine, one
// after another, so a Check must return quickly and be safe to call
// concurrently with itself.
type Check func() error

// ServerOptions configures a [Server]. The zero value is valid: it binds
// [DefaultOpsAddr], logs nothing, and serves process metrics and always
// healthy, always ready probes.
type ServerOptions struct {
	// Addr is the host:port to listen on; "" means [DefaultOpsAddr] and
	// port 0 picks a free port (see [Server.Addr]).
	Addr string
	// Logger receives serving errors; nil discards them.
	Logger *slog.Logger
	// Metrics are written in /metrics, in order, before the process metrics.
	Metrics []*metrics.Set
	// Ready checks are run by /readyz; more can be added with
	// [Server.AddReady].
	Ready map[string]Check
	// Live checks are run by /healthz.
	Live map[string]Check
	// DashboardClients bounds the live dashboard pages (GET /) open at
	// once, each one a server-sent events feed; past it the feed answers
	// 503. 0 means [DefaultDashboardClients]; negative turns the dashboard
	// off (GET / and /dashboard/events answer 404).
	DashboardClients int
}

// Validate reports whether the options can build a [Server]: Addr must be
// empty or a host:port, and no check may be nil.
func (o ServerOptions) Validate() error {
	if o.Addr != "" {
		if _, _, err := net.SplitHostPort(o.Addr); err != nil {
			return fmt.Errorf("ops addr %q: %w", o.Addr, err)
		}
	}
	for kind, checks := range map[string]map[string]Check{"ready": o.Ready, "live": o.Live} {
		for name, c := range checks {
			if c == nil {
				return fmt.Errorf("%s check %q is nil", kind, name)
			}
		}
	}
	return nil
}

// setDefaults fills in every default of the options in one place.
func (o *ServerOptions) setDefaults() {
	if o.Addr == "" {
		o.Addr = DefaultOpsAddr
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DashboardClients == 0 {
		o.DashboardClients = DefaultDashboardClients
	}
}
