package ops

import (
	"fmt"
	"log/slog"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultNATSHost is where the embedded NATS server binds when
// [NATSOptions].Host is empty.
const DefaultNATSHost = "127.0.0.1"

// DefaultNATSPort is the client port used when [NATSOptions].Port is 0.
const DefaultNATSPort = 4222

// NATSOptions configures the embedded NATS server of [RunNATS]. The zero
// value runs a core NATS server, without JetStream, on 127.0.0.1:4222.
type NATSOptions struct {
	// Host is the client listen host; "" means [DefaultNATSHost].
	Host string
	// Port is the client port: 0 means [DefaultNATSPort], -1 picks a free
	// port (read it back from the server's ClientURL).
	Port int
	// JetStream turns JetStream on; StoreDir is then required.
	JetStream bool
	// StoreDir holds JetStream's files. The caller owns it: RunNATS neither
	// creates a temporary one nor removes it.
	StoreDir string
	// ServerName names the server; "" lets nats-server derive one.
	ServerName string
	// Logger, when set, receives the server's notices, warnings and errors;
	// nil discards them.
	Logger *slog.Logger
	// QuietNotices logs the server's startup notices, its 30-line banner,
	// at debug rather than info: for a server embedded in something that
	// prints its own banner. Notices after startup stay at info.
	QuietNotices bool
}

// Validate reports whether the options can run a server: Port must be -1 or
// within 0..65535 and JetStream needs a StoreDir ([ErrStoreDirRequired]).
func (o NATSOptions) Validate() error {
	if o.Port < server.RANDOM_PORT || o.Port > 65535 {
		return fmt.Errorf("nats port %d: want -1 (free port), 0 (default) or 1..65535", o.Port)
	}
	if o.JetStream && o.StoreDir == "" {
		return ErrStoreDirRequired
	}
	return nil
}

// serverOptions fills in the defaults and maps the options onto
// nats-server's. Signal handlers are never installed: the process owns them.
func (o NATSOptions) serverOptions() *server.Options {
	so := &server.Options{
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  o.JetStream,
		StoreDir:   o.StoreDir,
		ServerName: o.ServerName,
		NoSigs:     true,
	}
	if so.Host == "" {
		so.Host = DefaultNATSHost
	}
	if so.Port == 0 {
		so.Port = DefaultNATSPort
	}
	return so
}
