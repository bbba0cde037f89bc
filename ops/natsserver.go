package ops

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSReadyTimeout bounds how long [RunNATS] waits for the server to accept
// connections.
const NATSReadyTimeout = 10 * time.Second

// RunNATS validates opts, starts an embedded NATS server and returns it once
// it accepts client connections (and, with JetStream on, once JetStream is
// enabled). Its client URL is s.ClientURL(). The caller stops it with
// s.Shutdown() followed by s.WaitForShutdown().
//
// On error the server, if one was created, is already shut down and the
// returned server is nil. A server that does not come up in
// [NATSReadyTimeout], or that fails while starting, gives an error wrapping
// [ErrNATSNotReady] with the reason it logged.
func RunNATS(opts NATSOptions) (*server.Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("nats options: %w", err)
	}
	so := opts.serverOptions()
	s, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("creating nats server: %w", err)
	}
	logger := opts.Logger
	if logger != nil {
		logger = logger.With("component", "nats-server")
	}
	nl := NewNATSLogger(logger)
	if opts.QuietNotices {
		nl.SetNoticeLevel(slog.LevelDebug)
	}
	s.SetLogger(nl, false, false)

	s.Start() // returns once the accept loop runs, or after a fatal error
	if err := startErr(s, nl, opts.JetStream); err != nil {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, err
	}
	// Quiet only the startup banner: later notices (a slow consumer, lame
	// duck mode, shutdown) are news.
	nl.SetNoticeLevel(slog.LevelInfo)
	return s, nil
}

// startErr reports why a started server is not usable, or nil.
func startErr(s *server.Server, nl *NATSLogger, jetStream bool) error {
	if msg := nl.Fatal(); msg != "" {
		return fmt.Errorf("%w: %s", ErrNATSNotReady, msg)
	}
	if !s.ReadyForConnections(NATSReadyTimeout) {
		return fmt.Errorf("%w: no client connections after %v", ErrNATSNotReady, NATSReadyTimeout)
	}
	if jetStream && !s.JetStreamEnabled() {
		return fmt.Errorf("%w: jetstream not enabled", ErrNATSNotReady)
	}
	return nil
}
