package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Publisher sends messages in one delivery mode. [Core] and [Durable]
// implement it.
type Publisher interface {
	// Publish sends data with header (nil for none) on subject and returns
	// the publish's [Ack]. An error means nothing was sent (a closed
	// connection, [ErrBackpressure], ctx already done); otherwise the Ack
	// tells the outcome. Publish does not block on the network; ctx is
	// checked before sending and is not kept.
	Publish(ctx context.Context, subject string, header nats.Header, data []byte) (Ack, error)
}

// Core publishes on core NATS. Its [Ack] is resolved on return: the message
// was appended to the connection's buffer, which a background flusher
// writes to the server. That is all a core publish promises: no server
// acknowledges it, and it is lost if no subscriber listens, if the
// connection drops before the flush, or if the subscriber dies holding it.
type Core struct {
	nc *nats.Conn
}

var _ Publisher = (*Core)(nil)

// NewCore returns a core publisher on nc.
func NewCore(nc *nats.Conn) *Core { return &Core{nc: nc} }

// Publish hands the message to the client and returns the zero (resolved)
// [Ack]. It does not allocate beyond what nats.go's PublishMsg does; data
// and header may be reused as soon as it returns.
func (c *Core) Publish(ctx context.Context, subject string, header nats.Header, data []byte) (Ack, error) {
	if err := ctx.Err(); err != nil {
		return Ack{}, fmt.Errorf("publishing to %s: %w", subject, err)
	}
	var err error
	if header == nil {
		err = c.nc.Publish(subject, data)
	} else {
		m := nats.Msg{Subject: subject, Header: header, Data: data}
		err = c.nc.PublishMsg(&m)
	}
	if err != nil {
		return Ack{}, fmt.Errorf("publishing to %s: %w", subject, err)
	}
	return Ack{}, nil
}
