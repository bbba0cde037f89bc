package bus

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-dev/sluice/schemas"
)

// Delivery is one message handed to a consumer's handler, in either mode.
// In durable mode ([Pull]) the handler, or whoever it passes the Delivery
// to, must settle it exactly once with Ack, Nak or Term (InProgress any
// number of times before); an unsettled delivery is delivered again after
// AckWait. In core mode ([Queue]) they do nothing and return nil, so a
// worker is written once. A Delivery is a small value; copy it freely.
type Delivery struct {
	msg       *nats.Msg     // core
	jm        jetstream.Msg // durable
	delivered uint64
	seq       uint64
}

// Subject returns the subject the message was published on.
func (d Delivery) Subject() string {
	if d.jm != nil {
		return d.jm.Subject()
	}
	return d.msg.Subject
}

// Header returns the message's headers (nil when it has none).
func (d Delivery) Header() nats.Header {
	if d.jm != nil {
		return d.jm.Headers()
	}
	return d.msg.Header
}

// Data returns the message's body. It is the delivery's own: keep it as
// long as needed.
func (d Delivery) Data() []byte {
	if d.jm != nil {
		return d.jm.Data()
	}
	return d.msg.Data
}

// ReplyTo returns the reply inbox of a batch frame ([schemas.HeaderReply]),
// "" when no event in it waits for a result. It is never the message's
// reply subject, which JetStream uses for acks.
func (d Delivery) ReplyTo() string { return d.Header().Get(schemas.HeaderReply) }

// Durable reports whether the delivery came from a durable consumer, so
// that Ack, Nak and Term mean something.
func (d Delivery) Durable() bool { return d.jm != nil }

// NumDelivered returns how many times this message has been delivered,
// this time included: 1 the first time, and always 1 in core mode.
func (d Delivery) NumDelivered() uint64 { return d.delivered }

// StreamSeq returns the message's sequence in its stream (0 in core mode).
func (d Delivery) StreamSeq() uint64 { return d.seq }

// Ack tells the stream the message is processed: it is not delivered
// again, and a work-queue stream removes it. The ack itself is not
// confirmed: if it is lost, the message comes again after AckWait, so
// processing must be idempotent (the enriched stream deduplicates).
func (d Delivery) Ack() error {
	if d.jm == nil {
		return nil
	}
	return d.jm.Ack()
}

// Nak asks for the message to be delivered again after delay (0: at once),
// counting towards MaxDeliver.
func (d Delivery) Nak(delay time.Duration) error {
	switch {
	case d.jm == nil:
		return nil
	case delay > 0:
		return d.jm.NakWithDelay(delay)
	}
	return d.jm.Nak()
}

// Term tells the stream never to deliver the message again, with reason
// for the server's advisory. The message stays in the stream only if its
// retention keeps it: a work-queue stream removes it. Dead-letter it first
// if it must be kept.
func (d Delivery) Term(reason string) error {
	if d.jm == nil {
		return nil
	}
	if reason == "" {
		return d.jm.Term()
	}
	return d.jm.TermWithReason(reason)
}

// InProgress tells the stream the message is still being processed,
// restarting its AckWait.
func (d Delivery) InProgress() error {
	if d.jm == nil {
		return nil
	}
	return d.jm.InProgress()
}
