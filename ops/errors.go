package ops

import "errors"

var (
	// ErrInvalidLogLevel is returned by [NewLogger] for a level other than
	// debug, info, warn or error.
	ErrInvalidLogLevel = errors.New("invalid log level")

	// ErrInvalidLogFormat is returned by [NewLogger] for a format other than
	// text or json.
	ErrInvalidLogFormat = errors.New("invalid log format")

	// ErrServerStarted is returned by [Server.Start] when the server was
	// already started (or shut down): a Server serves once.
	ErrServerStarted = errors.New("ops server already started")

	// ErrStoreDirRequired is returned by [NATSOptions.Validate] when
	// JetStream is on and no StoreDir is given.
	ErrStoreDirRequired = errors.New("jetstream needs a store dir")

	// ErrNATSNotReady is returned by [RunNATS] when the embedded server did
	// not accept connections in time or failed while starting.
	ErrNATSNotReady = errors.New("nats server not ready")
)
