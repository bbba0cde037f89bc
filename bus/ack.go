package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Ack is the future outcome of one publish. The zero Ack, which [Core]
// returns, is resolved already: the message was handed to the client. An
// Ack from [Durable] resolves when the stream stores the message or the
// publish fails. An Ack is a small value: copy it freely and wait on it
// from any number of goroutines (every request whose events share a
// batch, say).
type Ack struct {
	f *future // nil: resolved when handed to the client
}

// future is a durable publish: its message, kept for a retry until the
// ack, and its outcome. Whoever takes it from the [Durable]'s ring sets rc
// or err, then closes done.
type future struct {
	subject  string
	header   nats.Header
	data     []byte
	n        uint64    // its reply subject's last token
	deadline time.Time // when it fails with ErrAckTimeout
	retries  int       // sends again after no stream answered
	reply    [64]byte  // its reply subject, when it fits
	done     chan struct{}
	rc       Receipt
	err      error
}

// replySubject returns prefix and f.n as a subject, in f.reply when it
// fits: the client copies the subject as it publishes, so the string need
// not outlive the publish, and f outlives it.
func (f *future) replySubject(prefix string) string {
	b := strconv.AppendUint(append(f.reply[:0], prefix...), f.n, 10)
	if &b[0] != &f.reply[0] {
		return string(b)
	}
	return unsafe.String(&b[0], len(b))
}

// fail resolves f with the client's error err.
func (f *future) fail(err error) {
	f.err = fmt.Errorf("publish to %s: %w", f.subject, ackError(err))
	close(f.done)
}

// Receipt is what a resolved [Ack] says about a stored message. For a core
// publish it is the zero Receipt: nothing was stored.
type Receipt struct {
	// Stream is the name of the stream that stored the message.
	Stream string
	// Sequence is the message's sequence in Stream (the first copy's, for
	// a duplicate).
	Sequence uint64
	// Duplicate is true when the stream had already stored a message with
	// the same Nats-Msg-Id within its duplicate window and did not store
	// this one again. The message is stored either way.
	Duplicate bool
}

// Durable reports whether the Ack resolves on storage (true) or was
// resolved when the message was handed to the client (false).
func (a Ack) Durable() bool { return a.f != nil }

// Wait blocks until the outcome is known or ctx is done. A nil error means
// the message is stored (durable) or was handed to the client (core), and
// the [Receipt] says where. Otherwise the error wraps [ErrAckTimeout] (the
// message may or may not be stored), [ErrNoStream] (not stored), a lost
// connection (may or may not be stored), [ErrStreamFull] or another
// refusal by the stream (a JetStream API error: not stored), or ctx's error
// (the outcome is not known yet). [Retryable] tells which are worth a
// second publish. Every call, from any goroutine, returns the same outcome.
func (a Ack) Wait(ctx context.Context) (Receipt, error) {
	f := a.f
	if f == nil {
		return Receipt{}, nil
	}
	select {
	case <-f.done:
		return f.rc, f.err
	case <-ctx.Done():
		return Receipt{}, fmt.Errorf("waiting for the ack of a publish to %s: %w", f.subject, ctx.Err())
	}
}

// ackError maps the publish errors of jetstream's vocabulary to the
// package's.
func ackError(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fmt.Errorf("%w: %w", ErrAckTimeout, err)
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		return fmt.Errorf("%w: %w", ErrNoStream, err)
	}
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil && isFull(jsErr.APIError()) {
		return fmt.Errorf("%w: %w", ErrStreamFull, err)
	}
	return err
}

// isFull reports whether e is a store refusal by a discard-new limit. The
// server reports every store failure with one code (10077, "stream store
// failed") and the store's error as the description: the limits' are
// "maximum messages exceeded", "maximum bytes exceeded" and "maximum
// messages per subject exceeded".
func isFull(e *jetstream.APIError) bool {
	const storeFailed = 10077
	return e.ErrorCode == storeFailed && strings.HasPrefix(e.Description, "maximum ") &&
		strings.HasSuffix(e.Description, " exceeded")
}
