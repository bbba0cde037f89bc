package ops

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// NewLogger returns a logger writing to w (os.Stderr when nil) at the given
// level, one of debug, info, warn or error, in the given format, text or
// json. Case is ignored; an empty level means info and an empty format means
// text. A bad level wraps [ErrInvalidLogLevel] and a bad format wraps
// [ErrInvalidLogFormat]; the logger is then nil.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	if w == nil {
		w = os.Stderr
	}
	ho := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	default:
		return nil, fmt.Errorf("%w %q: want text or json", ErrInvalidLogFormat, format)
	}
}

// parseLevel maps a level name of [NewLogger] to its slog level.
func parseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("%w %q: want debug, info, warn or error", ErrInvalidLogLevel, level)
	}
}
