package workers

import "errors"

var (
	// ErrInvalidOptions is returned, wrapped with the reason, by
	// [Options.Validate] and [New] for options that cannot work.
	ErrInvalidOptions = errors.New("invalid worker options")
	// ErrStarted is returned by [Worker.Start] when the worker was already
	// started.
	ErrStarted = errors.New("worker already started")
	// ErrShutdown is returned by [Worker.Start] once [Worker.Shutdown] has
	// been called: a worker does not restart; build a new one.
	ErrShutdown = errors.New("worker shut down")
)
