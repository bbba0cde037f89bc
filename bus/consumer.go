package bus

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Consumer delivers the messages of one worker group. [Pull] and [Queue]
// implement it.
type Consumer interface {
	// Consume starts calling handle with each delivery, on goroutines of
	// the client's, until the returned [Subscription] is stopped or
	// drained. [Pull] calls it from one goroutine; [Queue] from one per
	// subject, so handle must be safe for concurrent use. handle must not
	// block for long: hand the delivery to a pool and settle it there.
	Consume(handle func(Delivery)) (*Subscription, error)
	// Pending returns the group's backlog, for load reports.
	Pending(ctx context.Context) (Pending, error)
}

// Pending is a consumer's backlog. In durable mode it is the server's,
// exact and shared by every member of the group: Msgs are stored and not
// yet delivered, AckPending delivered and not yet settled. In core mode it
// is this member's alone: Msgs are received by the client and not yet
// handed to the handler, and AckPending is 0.
type Pending struct {
	Msgs       uint64
	AckPending int
}

// Subscription is a running [Consumer.Consume].
type Subscription struct {
	stop   func()
	drain  func()
	closed <-chan struct{}
}

// Stop stops delivering at once; messages the client had buffered are
// dropped (in durable mode, delivered again after AckWait).
func (s *Subscription) Stop() { s.stop() }

// Drain stops receiving, delivers what the client had buffered, and
// returns when the last handler call has returned or ctx is done.
func (s *Subscription) Drain(ctx context.Context) error {
	s.drain()
	select {
	case <-s.closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("draining consumer: %w", ctx.Err())
	}
}

// Closed returns a channel closed once the subscription delivers no more.
func (s *Subscription) Closed() <-chan struct{} { return s.closed }

// ConsumerOptions sets a consumer. Group and Subjects are required; the
// rest have defaults.
type ConsumerOptions struct {
	// Group names the worker group: the durable consumer's name, the queue
	// group's name. It must be a valid stream name (no '.', '*', '>',
	// spaces or path separators).
	Group string
	// Subjects are the ingest subjects the group takes (for example
	// schemas.Subjects.Ingest of each kind it handles). On a work-queue
	// stream no two groups may take overlapping subjects.
	Subjects []string
	// AckWait is how long a durable delivery may stay unsettled before it
	// is delivered again (default 30 s); InProgress restarts it.
	AckWait time.Duration
	// MaxDeliver is how many times a durable message is delivered before
	// the server gives up on it and raises its max-deliveries advisory
	// (default 5).
	MaxDeliver int
	// MaxAckPending bounds the durable deliveries unsettled at once across
	// the group (default 1,000).
	MaxAckPending int
	// OnError, when set, receives the errors a durable consumer meets while
	// consuming (missed heartbeats, the consumer or its stream deleted, a
	// lost connection); the client keeps trying where it can. It runs on
	// the client's goroutine: count or log, do not block. Core mode never
	// calls it (slow consumers go to the connection's error handler).
	OnError func(error)
	// Buffer is how many messages the client fetches ahead (durable) or
	// holds before dropping as a slow consumer (core); default 1,000.
	Buffer int
}

func (o *ConsumerOptions) validate() error {
	if o.Group == "" || strings.ContainsAny(o.Group, " \t\r\n\f.*>/\\") {
		return fmt.Errorf("consumer group %q: want a non-empty name without '.', '*', '>', spaces or slashes", o.Group)
	}
	if len(o.Subjects) == 0 {
		return fmt.Errorf("consumer group %q: no subjects", o.Group)
	}
	if o.AckWait < 0 || o.MaxDeliver < 0 || o.MaxAckPending < 0 || o.Buffer < 0 {
		return fmt.Errorf("consumer group %q: negative limits", o.Group)
	}
	if o.AckWait == 0 {
		o.AckWait = DefaultAckWait
	}
	if o.MaxDeliver == 0 {
		o.MaxDeliver = DefaultMaxDeliver
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = DefaultMaxAckPending
	}
	if o.Buffer == 0 {
		o.Buffer = DefaultBuffer
	}
	return nil
}

// Defaults of [ConsumerOptions].
const (
	DefaultAckWait       = 30 * time.Second
	DefaultMaxDeliver    = 5
	DefaultMaxAckPending = 1000
	DefaultBuffer        = 1000
)
