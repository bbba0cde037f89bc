package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pull is a worker group's durable pull consumer on the ingest stream:
// explicit acks, AckWait, MaxDeliver, filtered to the group's subjects.
// Every member of the group builds one with the same options and shares
// the consumer: each message goes to one member.
type Pull struct {
	cons jetstream.Consumer
	o    ConsumerOptions
}

var _ Consumer = (*Pull)(nil)

// NewPull creates the group's durable consumer on stream (see
// [IngestStream]), or updates it to o (the server refuses changes it
// cannot make, such as another deliver policy, and its error is
// returned).
func NewPull(ctx context.Context, js jetstream.JetStream, stream string, o ConsumerOptions) (*Pull, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       o.Group,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    o.MaxDeliver,
		MaxAckPending: o.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if len(o.Subjects) == 1 {
		cfg.FilterSubject = o.Subjects[0]
	} else {
		cfg.FilterSubjects = o.Subjects
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %q on stream %q: %w", o.Group, stream, err)
	}
	return &Pull{cons: cons, o: o}, nil
}

// Consume starts pulling, up to ConsumerOptions.Buffer messages ahead,
// and calls handle with each; see [Consumer].
func (p *Pull) Consume(handle func(Delivery)) (*Subscription, error) {
	cc, err := p.cons.Consume(func(m jetstream.Msg) {
		d := Delivery{jm: m, delivered: 1}
		if md, err := m.Metadata(); err == nil {
			d.delivered, d.seq = md.NumDelivered, md.Sequence.Stream
		}
		handle(d)
	}, p.consumeOpts()...)
	if err != nil {
		return nil, fmt.Errorf("consuming %q: %w", p.o.Group, err)
	}
	return &Subscription{stop: cc.Stop, drain: cc.Drain, closed: cc.Closed()}, nil
}

func (p *Pull) consumeOpts() []jetstream.PullConsumeOpt {
	opts := []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(p.o.Buffer),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat)}
	if onError := p.o.OnError; onError != nil {
		opts = append(opts, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { onError(err) }))
	}
	return opts
}

// A pull request lives on the consumer's leader for pullExpiry, which
// sends a heartbeat every pullHeartbeat while it has nothing to deliver.
// A worker whose request sits on a leader it no longer hears from (a node
// cut off, a leadership change it was not told of) notices after two
// missed heartbeats and pulls again, from the new leader: within 4 s,
// where nats.go's defaults (30 s requests, 5 s heartbeats) left a worker
// idle for 10-20 s with batches waiting (cmd/sluice TestFaults/partition).
const (
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 2 * time.Second
)

// Pending asks the server for the consumer's backlog (one request).
func (p *Pull) Pending(ctx context.Context) (Pending, error) {
	info, err := p.cons.Info(ctx)
	if err != nil {
		return Pending{}, fmt.Errorf("consumer %q info: %w", p.o.Group, err)
	}
	return Pending{Msgs: info.NumPending, AckPending: info.NumAckPending}, nil
}
