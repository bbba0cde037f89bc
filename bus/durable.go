package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderMsgID is the header by which a stream deduplicates messages within
// its duplicate window: set it on every durable publish, from an identity
// that a retry repeats (for a batch, the gateway's id and the batch's
// sequence; for an enriched event, its CloudEvents source and id).
const HeaderMsgID = jetstream.MsgIDHeader

// Defaults of [DurableOptions].
const (
	DefaultMaxPending = 4000
	DefaultAckTimeout = 5 * time.Second
)

// DurableOptions sets a [Durable] publisher. The zero value means the
// defaults.
type DurableOptions struct {
	// MaxPending bounds the publishes sent and not yet acknowledged
	// (default 4,000). It is the publisher's bound on unacknowledged data
	// (MaxPending times the largest message) and its backpressure signal:
	// past it, Publish waits up to 200 ms for an ack, then fails with
	// [ErrBackpressure].
	MaxPending int
	// AckTimeout is how long an [Ack] waits for the stream before failing
	// with [ErrAckTimeout] (default 5 s).
	AckTimeout time.Duration
}

// Durable publishes to JetStream with asynchronous publishes: Publish
// returns as soon as the message is handed to the client, and its [Ack]
// resolves when the stream has stored it (on a replicated stream, when a
// quorum has) or the publish failed. It is safe for concurrent use.
type Durable struct {
	js  jetstream.JetStream
	max int
}

var _ Publisher = (*Durable)(nil)

// NewDurable returns a durable publisher on nc with its own JetStream
// context, so that its pending bound is its own.
func NewDurable(nc *nats.Conn, o DurableOptions) (*Durable, error) {
	if o.MaxPending < 0 || o.AckTimeout < 0 {
		return nil, fmt.Errorf("durable publisher: max pending %d and ack timeout %v must not be negative", o.MaxPending, o.AckTimeout)
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(o.MaxPending),
		jetstream.WithPublishAsyncTimeout(o.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("durable publisher: %w", err)
	}
	return &Durable{js: js, max: o.MaxPending}, nil
}

// Publish sends the message to the stream that holds subject and returns
// its [Ack]; set [HeaderMsgID] in header so that a retry is stored once.
// The client keeps header and data until the Ack resolves (it sends them
// again by itself when no stream answered yet): do not modify or reuse
// them before. An error means nothing was sent: [ErrBackpressure] when
// MaxPending publishes wait for their acks, or a closed connection.
func (d *Durable) Publish(ctx context.Context, subject string, header nats.Header, data []byte) (Ack, error) {
	if err := ctx.Err(); err != nil {
		return Ack{}, fmt.Errorf("publishing to %s: %w", subject, err)
	}
	paf, err := d.js.PublishMsgAsync(&nats.Msg{Subject: subject, Header: header, Data: data})
	if err != nil {
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return Ack{}, fmt.Errorf("publishing to %s: %w (%d waiting): %w", subject, ErrBackpressure, d.max, err)
		}
		return Ack{}, fmt.Errorf("publishing to %s: %w", subject, err)
	}
	return Ack{f: &future{paf: paf, done: make(chan struct{})}}, nil
}

// Pending returns the number of publishes sent and not yet acknowledged,
// at most DurableOptions.MaxPending.
func (d *Durable) Pending() int { return d.js.PublishAsyncPending() }
