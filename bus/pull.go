package bus

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
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

// Pulls are several consumers of one worker group read as one: the
// consumers of its partitions ([NewPartitions]), and the group's
// unpartitioned consumer while the stream still holds batches on the
// subjects of before. Consume starts them all; Pending sums their
// backlogs.
type Pulls []*Pull

var _ Consumer = Pulls(nil)

// PartitionConsumer names the durable consumer of group for partition
// part: "<group>-p<part>".
func PartitionConsumer(group string, part int) string {
	return group + "-p" + strconv.Itoa(part)
}

// NewPartitions creates (or updates) the group's consumers of a
// partitioned ingest stream, one per partition: [PartitionConsumer]
// filtered on each of o.Subjects (the types' <prefix>.ingest.<type>)
// followed by ".<partition>", with MaxAckPending 1. The server then hands
// out one batch of a partition at a time, to whichever member of the
// group pulls, and the next only once that one is acknowledged or
// terminated (or its AckWait has passed: a member that died holding it
// stalls its partition that long): batches of one partition are
// processed one after another, in stream order. o.MaxAckPending is
// ignored; o.Buffer applies to each consumer.
func NewPartitions(ctx context.Context, js jetstream.JetStream, stream string, o ConsumerOptions, partitions int) (Pulls, error) {
	if partitions < 2 || partitions > MaxPartitions {
		return nil, fmt.Errorf("consumer group %q: %d partitions, want 2 to %d", o.Group, partitions, MaxPartitions)
	}
	out := make(Pulls, 0, partitions)
	for part := range partitions {
		po := o
		po.Group, po.MaxAckPending = PartitionConsumer(o.Group, part), 1
		po.Subjects = make([]string, len(o.Subjects))
		for i, s := range o.Subjects {
			po.Subjects[i] = s + "." + strconv.Itoa(part)
		}
		p, err := NewPull(ctx, js, stream, po)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Consume starts every consumer with handle (called from one goroutine
// per consumer: handle must be safe for concurrent use). The
// [Subscription] stops, drains and closes them all; on an error the ones
// started are stopped.
func (ps Pulls) Consume(handle func(Delivery)) (*Subscription, error) {
	subs := make([]*Subscription, 0, len(ps))
	for _, p := range ps {
		s, err := p.Consume(handle)
		if err != nil {
			for _, s := range subs {
				s.Stop()
			}
			return nil, err
		}
		subs = append(subs, s)
	}
	closed := make(chan struct{})
	go func() {
		for _, s := range subs {
			<-s.Closed()
		}
		close(closed)
	}()
	return &Subscription{
		stop: func() {
			for _, s := range subs {
				s.Stop()
			}
		},
		drain: func() {
			for _, s := range subs {
				s.drain()
			}
		},
		closed: closed,
	}, nil
}

// Pending sums the consumers' backlogs: one request each, sent together;
// the first failure is returned.
func (ps Pulls) Pending(ctx context.Context) (Pending, error) {
	if len(ps) == 1 {
		return ps[0].Pending(ctx)
	}
	type answer struct {
		p   Pending
		err error
	}
	answers := make(chan answer, len(ps))
	for _, p := range ps {
		go func() {
			pe, err := p.Pending(ctx)
			answers <- answer{pe, err}
		}()
	}
	var sum Pending
	var first error
	for range ps {
		a := <-answers
		first = cmp.Or(first, a.err)
		sum.Msgs += a.p.Msgs
		sum.AckPending += a.p.AckPending
	}
	if first != nil {
		return Pending{}, first
	}
	return sum, nil
}
