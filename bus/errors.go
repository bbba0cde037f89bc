package bus

import (
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrIncompatibleStream is wrapped by the [*FieldError] that [Apply]
	// returns when a stream exists with a configuration it must not change
	// (subjects, retention, storage, discard policy, a mirror or sources,
	// sealed). The stream is left as it was.
	ErrIncompatibleStream = errors.New("incompatible stream")

	// ErrBackpressure is returned by [Durable.Publish] when
	// DurableOptions.MaxPending publishes wait for their acks and none was
	// acked within the client's stall wait (200 ms): the stream is slower
	// than the publisher. Nothing was sent; shed load or retry later.
	ErrBackpressure = errors.New("too many unacknowledged publishes")

	// ErrAckTimeout is returned by [Ack.Wait] when the stream did not answer
	// a durable publish within DurableOptions.AckTimeout. The message may or
	// may not have been stored: publish it again with the same Nats-Msg-Id
	// (see [Retrier]) and the stream stores it once.
	ErrAckTimeout = errors.New("publish ack timed out")

	// ErrNoStream is returned by [Ack.Wait] when no stream answered a
	// durable publish (no stream listens on the subject, or its leader is
	// being elected). Nothing was stored.
	ErrNoStream = errors.New("no stream answered the publish")

	// ErrStreamFull is returned by [Ack.Wait] when the stream refused the
	// message because it holds its maximum (messages or bytes) and discards
	// new messages, as the ingest stream does: the workers are behind. It
	// is backpressure, not a fault: a retry at once would meet the same
	// limit, so [Retryable] is false.
	ErrStreamFull = errors.New("stream full")

	// ErrRetryBudget is returned by [Retrier.Await] when a publish failed
	// and the [Budget] had no retry left: the failure is the caller's to
	// report (for the gateway, a 503 with Retry-After).
	ErrRetryBudget = errors.New("retry budget exhausted")
)

// Retryable reports whether a failed publish may succeed if sent again:
// an ack timeout, no stream answering, a lost connection, or a JetStream
// API error with code 503 (the stream or its cluster temporarily
// unavailable) other than [ErrStreamFull]. Other failures (a message too
// large, a wrong expected sequence) are not.
func Retryable(err error) bool {
	switch {
	case err == nil, errors.Is(err, ErrStreamFull):
		return false
	case errors.Is(err, ErrAckTimeout), errors.Is(err, ErrNoStream),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting):
		return true
	}
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil {
		return jsErr.APIError().Code == 503
	}
	return false
}
