package ops

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats-server/v2/server"
)

// LevelTrace is the slog level of nats-server's trace statements, below
// [slog.LevelDebug].
const LevelTrace = slog.LevelDebug - 4

var _ server.Logger = (*NATSLogger)(nil)

// NATSLogger adapts a *slog.Logger to nats-server's server.Logger, so an
// embedded server logs through slog: notices at info, warnings at warn,
// errors and fatal errors at error (fatal ones with fatal=true), debug at
// debug and traces at [LevelTrace]. Unlike nats-server's own logger, Fatalf
// does not exit the process. It remembers the first fatal message; see
// [NATSLogger.Fatal].
type NATSLogger struct {
	l           *slog.Logger
	noticeLevel atomic.Int64 // a slog.Level; 0 is info

	mu    sync.Mutex // guards fatal
	fatal string
}

// NewNATSLogger returns an adapter writing to l; a nil l discards everything
// but still records fatal messages.
func NewNATSLogger(l *slog.Logger) *NATSLogger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &NATSLogger{l: l}
}

// Fatal returns the first message given to Fatalf, or "" if none was.
func (n *NATSLogger) Fatal() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fatal
}

// SetNoticeLevel sets the level of the server's notices (info until set);
// it may be called while the server logs.
func (n *NATSLogger) SetNoticeLevel(l slog.Level) { n.noticeLevel.Store(int64(l)) }

// Noticef logs at the notice level (info unless set).
func (n *NATSLogger) Noticef(format string, v ...any) {
	n.log(slog.Level(n.noticeLevel.Load()), format, v)
}

// Warnf logs at warn.
func (n *NATSLogger) Warnf(format string, v ...any) { n.log(slog.LevelWarn, format, v) }

// Errorf logs at error.
func (n *NATSLogger) Errorf(format string, v ...any) { n.log(slog.LevelError, format, v) }

// Debugf logs at debug.
func (n *NATSLogger) Debugf(format string, v ...any) { n.log(slog.LevelDebug, format, v) }

// Tracef logs at [LevelTrace].
func (n *NATSLogger) Tracef(format string, v ...any) { n.log(LevelTrace, format, v) }

// Fatalf logs at error with fatal=true and records the message; it does not
// exit.
func (n *NATSLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	n.mu.Lock()
	if n.fatal == "" {
		n.fatal = msg
	}
	n.mu.Unlock()
	n.l.Error(msg, "fatal", true)
}

// log formats only when the level is enabled.
func (n *NATSLogger) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if n.l.Enabled(ctx, level) {
		n.l.Log(ctx, level, fmt.Sprintf(format, v...))
	}
}
