package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/ops"
)

// drainTimeout bounds a graceful shutdown.
const drainTimeout = 10 * time.Second

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Pings and writes on every NATS connection: a server that has answered
// none of natsMaxPingsOut pings sent natsPingInterval apart, or that has not
// taken a write within natsWriteTimeout (a node cut off the network, which
// closes nothing; a busy publisher fills its socket buffers and its pings
// wait behind the blocked write), is left for another within seconds,
// instead of the client's defaults of 2 minutes × 2 and 1 minute.
const (
	natsPingInterval = 2 * time.Second
	natsMaxPingsOut  = 3
	natsWriteTimeout = 5 * time.Second
)

// connectNATS connects with settings meant for a long-running service:
// reconnect forever, buffer publishes while reconnecting, leave a silent
// server within seconds, log connection changes and asynchronous errors
// (slow consumers and permissions violations included). extra are the
// credentials and TLS options ([natsAuth]). A first connection that fails
// for good (a certificate not trusted, credentials refused) is an error at
// once, saying what to change; one that fails because no server answers
// yet is retried in the background, and the connection returned.
func connectNATS(url, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.PingInterval(natsPingInterval),
		nats.MaxPingsOutstanding(natsMaxPingsOut),
		nats.FlusherTimeout(natsWriteTimeout),
		nats.ReconnectBufSize(64 << 20),
		nats.ConnectHandler(func(c *nats.Conn) { log.Info("nats connected", "url", c.ConnectedUrlRedacted()) }),
		nats.DisconnectErrHandler(natsDisconnected(log)),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "subject", subj, "err", err)
		}),
	}, extra...)
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		return nc, nil
	}
	if perr, ok := permanentConnectError(err); ok {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", url, perr)
	}
	nc, err = nats.Connect(url, append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	return nc, nil
}

// natsDisconnected logs a lost connection at warn, with its cause. The
// client calls it with a nil error both when the program closes or drains
// the connection itself, part of a clean shutdown and worth one debug line,
// and when the client gives up on its own (no server left, an error from the
// server), whose cause it keeps as the connection's last error.
func natsDisconnected(log *slog.Logger) nats.ConnErrHandler {
	return func(c *nats.Conn, err error) {
		if err == nil {
			err = c.LastError()
		}
		if err == nil {
			log.Debug("nats connection closed", "name", c.Opts.Name)
			return
		}
		log.Warn("nats disconnected", "err", err)
	}
}

// natsReady is the /readyz check of a NATS connection.
func natsReady(nc *nats.Conn) ops.Check {
	return func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (status %s)", nc.Status())
		}
		return nil
	}
}

// startOps starts the ops listener with the given metric sets; at most
// dashboardClients dashboard pages may be open at once (see
// [ops.ServerOptions]).
func startOps(addr string, dashboardClients int, log *slog.Logger, nc *nats.Conn, sets ...*metrics.Set) (*ops.Server, error) {
	srv, err := ops.NewServer(ops.ServerOptions{Addr: addr, Logger: log, Metrics: sets, DashboardClients: dashboardClients,
		Ready: map[string]ops.Check{"nats": natsReady(nc)}})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("starting the ops listener: %w", err)
	}
	return srv, nil
}

// fatal logs err and returns exit code 1.
func fatal(log *slog.Logger, msg string, err error) int {
	log.Error(msg, "err", err)
	return 1
}

// addGroupChecks adds one /readyz line per worker group of the gateway,
// saying how many live workers it has; a group without workers fails.
func addGroupChecks(srv *ops.Server, gw *gateway.Server) {
	for name := range gw.GroupWorkers() {
		srv.AddReady("workers:"+name, func() error {
			if n := gw.GroupWorkers()[name]; n == 0 {
				return fmt.Errorf("no live workers in group %s", name)
			}
			return nil
		})
	}
}

// registerDashboardFlag registers --ops-dashboard-clients into v.
func registerDashboardFlag(fs *flag.FlagSet, v *int) {
	fs.IntVar(v, "ops-dashboard-clients", ops.DefaultDashboardClients,
		"live dashboard pages (GET / on the ops listener) open at once; each costs one frame a second, and past the bound the page's feed answers 503. -1 turns the dashboard off")
}
