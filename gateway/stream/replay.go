package stream

import (
	"context"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// Replayer is the seam through which durable mode will serve snapshots and
// resumes from the enriched JetStream stream (issue #11); no implementation
// exists yet, and a [Hub] without one runs in core mode, where resumes are
// refused (409) or answered by a snapshot when asked (fallback=snapshot).
//
// The contract a durable implementation must keep: Stream names the stream
// in the tokens it hands out (a token naming another is answered 400);
// Replay sends the events of kind for symbols (all when symbols is nil)
// after From (a token's Pos, since_seq) or from Since, in stream order, each
// with its stream sequence as Pos, and returns the last sequence it sent, so
// that the hub can register for live events and drop those at or below it:
// no gap, no duplicate. Last returns the last event of each subject (the
// snapshot), with its stream sequence.
type Replayer interface {
	Stream(k schemas.Kind) string
	Replay(ctx context.Context, r Replay, emit func(ev ReplayedEvent) error) (last uint64, err error)
	Last(ctx context.Context, k schemas.Kind, symbols []string, emit func(ev ReplayedEvent) error) (last uint64, err error)
}

// Replay asks a [Replayer] for events after a position or from a time.
type Replay struct {
	Kind    schemas.Kind
	Symbols []string // nil: every symbol
	From    uint64   // events after this stream sequence; 0 with Since
	Since   time.Time
}

// ReplayedEvent is one stored enriched event.
type ReplayedEvent struct {
	Symbol string
	Data   []byte // the MessagePack CloudEvent
	Pos    uint64 // its stream sequence
}
