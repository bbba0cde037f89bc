package bus

import (
	"context"
	"fmt"
	"strconv"
	"sync"
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

// Internals of [Durable], the values of jetstream's PublishMsgAsync.
const (
	// stallWait is how long Publish waits for a slot past MaxPending.
	stallWait = 200 * time.Millisecond
	// noResponderRetries is how many times a publish no stream answered
	// is sent again, noResponderWait apart, before it fails with
	// [ErrNoStream] (a stream's leader may be being elected).
	noResponderRetries = 2
	noResponderWait    = 250 * time.Millisecond
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
//
// It speaks JetStream's publish protocol itself rather than through
// jetstream.PublishMsgAsync, to cost a few allocations per publish instead
// of dozens (README, "Dependencies"): each publish carries a reply subject
// <inbox prefix>.<token>.<n> under one wildcard subscription of the
// publisher (the connection's inbox prefix, so a user restricted to a
// custom one can publish), n a sequence never reused; the stream's answer
// is parsed by hand (parsePubAck). Publishes wait in a ring by n, oldest
// first, so that one timer serves every AckTimeout. When the connection
// is lost, every publish waiting for its ack fails with [ErrAckTimeout]
// at once (an ack may have been lost with the connection): a [Retrier]
// sends them again, and an answer that comes later for one of them is
// ignored, never taken as another's.
type Durable struct {
	nc      *nats.Conn
	max     int
	timeout time.Duration
	prefix  string // the reply subjects' prefix, ending in "."
	sub     *nats.Subscription

	mu      sync.Mutex
	ring    []*future // publishes by n, from n = head; nil when resolved
	head    uint64    // the oldest n in ring
	next    uint64    // the n of the next publish
	pending int       // unresolved futures in ring
	stall   chan struct{}
	timer   *time.Timer
	armed   bool
	streams []string // stream names seen, so that a receipt's is not allocated
}

var _ Publisher = (*Durable)(nil)

// NewDurable returns a durable publisher on nc, with its own reply
// subscription and its own pending bound.
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
	d := &Durable{nc: nc, max: o.MaxPending, timeout: o.AckTimeout, prefix: nc.NewInbox() + ".",
		ring: make([]*future, 64), next: 1, head: 1}
	d.timer = time.AfterFunc(time.Hour, d.expire)
	d.timer.Stop()
	status := nc.StatusChanged(nats.RECONNECTING, nats.CLOSED)
	sub, err := nc.Subscribe(d.prefix+"*", d.receive)
	if err != nil {
		nc.RemoveStatusListener(status)
		return nil, fmt.Errorf("durable publisher: subscribing to its acks: %w", err)
	}
	d.sub = sub
	go d.watch(status)
	return d, nil
}

// Publish sends the message to the stream that holds subject and returns
// its [Ack]; set [HeaderMsgID] in header so that a retry is stored once.
// The publisher keeps header and data until the Ack resolves (it sends
// them again by itself when no stream answered yet): do not modify or
// reuse them before. An error means nothing was sent: [ErrBackpressure]
// when MaxPending publishes wait for their acks, or a closed connection.
func (d *Durable) Publish(ctx context.Context, subject string, header nats.Header, data []byte) (Ack, error) {
	if err := ctx.Err(); err != nil {
		return Ack{}, fmt.Errorf("publishing to %s: %w", subject, err)
	}
	f := &future{subject: subject, header: header, data: data, done: make(chan struct{})}
	if err := d.register(f); err != nil {
		return Ack{}, fmt.Errorf("publishing to %s: %w", subject, err)
	}
	if err := d.send(f); err != nil {
		if d.take(f.n) != nil {
			return Ack{}, fmt.Errorf("publishing to %s: %w", subject, err)
		}
		// Already failed by a reconnect or a timeout: the Ack tells.
	}
	return Ack{f: f}, nil
}

// Pending returns the number of publishes sent and not yet acknowledged,
// at most DurableOptions.MaxPending.
func (d *Durable) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending
}

// send publishes f's message with its reply subject, built in f.reply so
// that it costs no allocation of its own.
func (d *Durable) send(f *future) error {
	m := nats.Msg{Subject: f.subject, Reply: f.replySubject(d.prefix), Header: f.header, Data: f.data}
	return d.nc.PublishMsg(&m)
}

// register gives f the next n and a deadline, waiting up to stallWait for
// a slot past MaxPending.
func (d *Durable) register(f *future) error {
	var t *time.Timer
	d.mu.Lock()
	for d.pending >= d.max {
		if d.stall == nil {
			d.stall = make(chan struct{})
		}
		stall := d.stall
		d.mu.Unlock()
		if t == nil {
			t = time.NewTimer(stallWait)
			defer t.Stop()
		}
		select {
		case <-stall:
		case <-t.C:
			return fmt.Errorf("%w (%d waiting)", ErrBackpressure, d.max)
		}
		d.mu.Lock()
	}
	if int(d.next-d.head) == len(d.ring) {
		d.grow()
	}
	f.n = d.next
	f.deadline = time.Now().Add(d.timeout)
	d.ring[f.n%uint64(len(d.ring))] = f
	d.next++
	d.pending++
	if !d.armed {
		d.armed = true
		d.timer.Reset(d.timeout)
	}
	d.mu.Unlock()
	return nil
}

// grow doubles the ring, keeping each future at its n. d.mu is held.
func (d *Durable) grow() {
	r := make([]*future, 2*len(d.ring))
	for n := d.head; n < d.next; n++ {
		r[n%uint64(len(r))] = d.ring[n%uint64(len(d.ring))]
	}
	d.ring = r
}

// take removes the pending future n and returns it, or nil when it is not
// pending (resolved, failed, or never sent by this publisher). Whoever
// takes a future resolves it.
func (d *Durable) take(n uint64) *future {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.takeLocked(n)
}

func (d *Durable) takeLocked(n uint64) *future {
	if n < d.head || n >= d.next {
		return nil
	}
	i := n % uint64(len(d.ring))
	f := d.ring[i]
	if f == nil {
		return nil
	}
	d.ring[i] = nil
	d.pending--
	for d.head < d.next && d.ring[d.head%uint64(len(d.ring))] == nil {
		d.head++
	}
	if d.stall != nil {
		close(d.stall)
		d.stall = nil
	}
	return f
}

// receive resolves the publish that a stream's answer m is for.
func (d *Durable) receive(m *nats.Msg) {
	n, err := strconv.ParseUint(m.Subject[min(len(d.prefix), len(m.Subject)):], 10, 64)
	if err != nil {
		return
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		d.noResponders(n)
		return
	}
	f := d.take(n)
	if f == nil {
		return // failed already: timed out, or lost with a connection
	}
	pa, ok := parsePubAck(m.Data, d.intern)
	switch {
	case !ok || pa.Error == nil && pa.Stream == "":
		f.fail(jetstream.ErrInvalidJSAck)
	case pa.Error != nil:
		f.fail(pa.Error)
	default:
		f.rc = Receipt{Stream: pa.Stream, Sequence: pa.Sequence, Duplicate: pa.Duplicate}
		close(f.done)
	}
}

// noResponders sends the publish n again a little later, up to
// noResponderRetries times, then fails it with [ErrNoStream]. Its
// deadline stays: the retries count against AckTimeout.
func (d *Durable) noResponders(n uint64) {
	d.mu.Lock()
	var f *future
	if n >= d.head && n < d.next {
		f = d.ring[n%uint64(len(d.ring))]
	}
	if f != nil && f.retries < noResponderRetries {
		f.retries++
		d.mu.Unlock()
		time.AfterFunc(noResponderWait, func() {
			// Checked and sent under the lock: a publish that expired or
			// failed meanwhile may have its buffer back with its owner.
			d.mu.Lock()
			if d.pendingLocked(n) != f {
				d.mu.Unlock()
				return
			}
			err := d.send(f)
			if err != nil {
				d.takeLocked(n)
			}
			d.mu.Unlock()
			if err != nil {
				f.fail(fmt.Errorf("%w (sending it again: %w)", jetstream.ErrNoStreamResponse, err))
			}
		})
		return
	}
	if f != nil {
		d.takeLocked(n)
	}
	d.mu.Unlock()
	if f != nil {
		f.fail(jetstream.ErrNoStreamResponse)
	}
}

// pendingLocked returns the future n while it is pending; d.mu is held.
func (d *Durable) pendingLocked(n uint64) *future {
	if n < d.head || n >= d.next {
		return nil
	}
	return d.ring[n%uint64(len(d.ring))]
}

// expire fails every publish past its deadline with [ErrAckTimeout], then
// sets the timer for the oldest one left. Deadlines follow n, so the
// oldest pending publish is the next to expire.
func (d *Durable) expire() {
	now := time.Now()
	var expired []*future
	d.mu.Lock()
	d.armed = false
	for d.head < d.next {
		f := d.ring[d.head%uint64(len(d.ring))]
		if f.deadline.After(now) {
			d.armed = true
			d.timer.Reset(f.deadline.Sub(now))
			break
		}
		expired = append(expired, d.takeLocked(f.n))
	}
	d.mu.Unlock()
	for _, f := range expired {
		f.fail(jetstream.ErrAsyncPublishTimeout)
	}
}

// watch fails every pending publish when the connection is lost (its
// acks may have been lost with it) and returns once it is closed.
func (d *Durable) watch(status chan nats.Status) {
	for {
		st, ok := <-status
		d.mu.Lock()
		var lost []*future
		for d.head < d.next {
			lost = append(lost, d.takeLocked(d.head))
		}
		d.mu.Unlock()
		for _, f := range lost {
			f.fail(fmt.Errorf("%w: the connection was lost before the ack came: %w", jetstream.ErrAsyncPublishTimeout, nats.ErrDisconnected))
		}
		if !ok || st == nats.CLOSED {
			d.nc.RemoveStatusListener(status)
			return
		}
	}
}

// intern returns the stream name b as a string, allocated once per name.
func (d *Durable) intern(b []byte) string {
	for _, s := range d.streams { // the ack handler runs on one goroutine
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	if len(d.streams) < 8 {
		d.streams = append(d.streams, s)
	}
	return s
}
