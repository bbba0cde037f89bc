package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// Defaults of [DurableOptions].
const (
	DefaultRetryBudget = 0.1
	DefaultRetryBurst  = 10
)

// DurableOptions configure the publishing of the event types whose
// delivery is durable ([Options].Delivery). The zero value means defaults.
type DurableOptions struct {
	// MaxPending bounds the batches published and not yet acknowledged by
	// the stream (default [bus.DefaultMaxPending]): past it, requests of a
	// durable type get 503 before their body is read (backpressure).
	MaxPending int
	// AckTimeout is how long one publish waits for the stream's ack
	// before it counts as failed (default [bus.DefaultAckTimeout]).
	AckTimeout time.Duration
	// RetryBudget is the fraction of recent successful publishes that may
	// be retried (default 0.1); RetryBurst the retries allowed before any
	// success (default 10). A failed publish past the budget is a 503.
	RetryBudget float64
	RetryBurst  int
	// Streams configures the ingest stream, created or updated at Start
	// ([bus.ApplyIngest]) when a type is durable; Options.Delivery
	// replaces Streams.Delivery. A limit left zero keeps an existing
	// stream's value (bus's default for a new one).
	Streams bus.StreamOptions
}

func (o *DurableOptions) setDefaults() {
	if o.MaxPending == 0 {
		o.MaxPending = bus.DefaultMaxPending
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = bus.DefaultAckTimeout
	}
	if o.RetryBudget == 0 {
		o.RetryBudget = DefaultRetryBudget
	}
	if o.RetryBurst == 0 {
		o.RetryBurst = DefaultRetryBurst
	}
}

func (o *DurableOptions) validate() error {
	switch {
	case o.MaxPending < 0 || o.AckTimeout < 0 || o.RetryBurst < 0:
		return errors.New("gateway: durable bounds must not be negative")
	case !(o.RetryBudget > 0 && o.RetryBudget <= 1):
		return fmt.Errorf("gateway: retry budget %v must be in (0, 1]", o.RetryBudget)
	}
	return o.Streams.Validate()
}

// durablePub is the gateway's JetStream publisher, shared by the batchers
// of the durable types: a batch is published asynchronously with a
// Nats-Msg-Id unique to this gateway process, and its requests are woken
// once the stream has stored it (or a retry within the budget has).
type durablePub struct {
	nc     *nats.Conn
	pub    *bus.Durable
	retry  *bus.Retrier
	budget *bus.Budget
	id     string // this process' publisher id, the Nats-Msg-Id prefix
	max    int64
	// inflight counts the batches published and not yet acknowledged
	// (retries included): the admission signal of backpressure.
	inflight atomic.Int64

	acks         *metrics.Counter
	ackSeconds   *metrics.Histogram
	backpressure *metrics.Counter
	failed       *metrics.Counter
}

func newDurablePub(nc *nats.Conn, o DurableOptions, set *metrics.Set) (*durablePub, error) {
	pub, err := bus.NewDurable(nc, bus.DurableOptions{MaxPending: o.MaxPending, AckTimeout: o.AckTimeout})
	if err != nil {
		return nil, err
	}
	budget, err := bus.NewBudget(o.RetryBudget, o.RetryBurst)
	if err != nil {
		return nil, err
	}
	d := &durablePub{nc: nc, pub: pub, budget: budget, retry: bus.NewRetrier(pub, budget, bus.RetryOptions{}),
		id: nuid.Next(), max: int64(o.MaxPending),
		acks:         set.NewCounter(`sluice_gateway_publish_acks_total`),
		ackSeconds:   set.NewHistogram(`sluice_gateway_publish_ack_seconds`),
		backpressure: set.NewCounter(`sluice_gateway_publish_refused_total{reason="backpressure"}`),
		failed:       set.NewCounter(`sluice_gateway_publish_refused_total{reason="failed"}`),
	}
	set.NewGauge(`sluice_gateway_publish_retries_total`, func() float64 { return float64(budget.Granted()) })
	set.NewGauge(`sluice_gateway_publish_refused_total{reason="retry_budget"}`, func() float64 { return float64(budget.Refused()) })
	set.NewGauge(`sluice_gateway_publish_unacked_batches`, func() float64 { return float64(d.inflight.Load()) })
	return d, nil
}

// full reports whether the batches awaiting their ack are at the bound:
// a new request of a durable type would only wait to be refused.
func (d *durablePub) full() bool { return d.inflight.Load() >= d.max }

// publish hands batch f of b to JetStream and wakes its requests once the
// stream has stored it. The frame carries Nats-Msg-Id
// <publisher id>.<type>.<batch sequence>, so that a retried publish is
// stored once, and Sluice-Reply when an event in it waits for a result
// (msg.Reply is JetStream's). Its events move in the group's depth from
// held to unacknowledged, then, acknowledged, to the stream's backlog that
// the workers report (depth.go).
func (d *durablePub) publish(b *batcher, f *batch) {
	start := time.Now()
	f.sent = start.UnixNano()
	// The header's values share one array: one allocation, not one each.
	// The client holds the header until the ack (a retry resends it).
	vals := [...]string{schemas.FrameBatchV1, eventCount(f.n), strconv.FormatUint(f.gen, 10), "",
		strconv.FormatInt(f.sent, 10), b.inbox}
	vals[3] = b.msgID + vals[2]
	vs := vals[:]
	hdr := nats.Header{
		schemas.HeaderFrame: vs[0:1:1],
		schemas.HeaderCount: vs[1:2:2],
		schemas.HeaderBatch: vs[2:3:3],
		bus.HeaderMsgID:     vs[3:4:4],
		schemas.HeaderSent:  vs[4:5:5],
	}
	if f.wait {
		hdr[schemas.HeaderReply] = vs[5:6:6]
	}
	if f.tr != nil && b.tracer != nil {
		hdr[headerTraceParent] = []string{b.startBatchSpan(f)}
	}
	b.sentDurable(f)
	d.inflight.Add(1)
	ack, err := d.pub.Publish(context.Background(), b.subject, hdr, f.buf)
	if err != nil {
		d.acked(b, f, start, err)
		return
	}
	go func() {
		_, err := d.retry.Await(context.Background(), ack)
		d.acked(b, f, start, err)
	}()
}

func (d *durablePub) maxPayload() int { return int(d.nc.MaxPayload()) }

// acked finishes durable batch f of b: stored (err nil) or refused.
func (d *durablePub) acked(b *batcher, f *batch, start time.Time, err error) {
	d.inflight.Add(-1)
	b.ackedDurable(f, err == nil)
	switch {
	case err == nil:
		d.acks.Inc()
		d.ackSeconds.UpdateDuration(start)
	case errors.Is(err, bus.ErrBackpressure):
		d.backpressure.Inc()
	case errors.Is(err, bus.ErrRetryBudget):
	default:
		d.failed.Inc()
	}
	f.err = err
	b.finish(f)
}

// wait waits until no batch awaits its ack (shutdown), up to ctx.
func (d *durablePub) wait(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for d.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the acks of %d batches: %w", d.inflight.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
