package bus

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// Queue is a worker group's core consumer: one queue subscription per
// subject, so each message goes to one member of the group. Its deliveries'
// Ack, Nak and Term do nothing: a message is gone once delivered, and
// lost if the member dies holding it or drops it as a slow consumer.
type Queue struct {
	nc *nats.Conn
	o  ConsumerOptions

	mu   sync.Mutex
	subs []*nats.Subscription // of the last Consume
}

var _ Consumer = (*Queue)(nil)

// NewQueue returns the group's core consumer on nc. It does not subscribe
// until [Queue.Consume].
func NewQueue(nc *nats.Conn, o ConsumerOptions) (*Queue, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Queue{nc: nc, o: o}, nil
}

// Consume subscribes to every subject in the group's queue and calls
// handle with each message; past ConsumerOptions.Buffer messages waiting
// for handle, the client drops messages (a slow consumer). See [Consumer].
func (q *Queue) Consume(handle func(Delivery)) (*Subscription, error) {
	cb := func(m *nats.Msg) { handle(Delivery{msg: m, delivered: 1}) }
	subs := make([]*nats.Subscription, 0, len(q.o.Subjects))
	var closedChs []<-chan nats.SubStatus
	unsubscribe := func() {
		for _, s := range subs {
			_ = s.Unsubscribe() // an already closed subscription is fine
		}
	}
	for _, subject := range q.o.Subjects {
		s, err := q.nc.QueueSubscribe(subject, q.o.Group, cb)
		if err == nil {
			err = s.SetPendingLimits(q.o.Buffer, -1)
		}
		if err != nil {
			unsubscribe()
			return nil, fmt.Errorf("subscribing %q to %s: %w", q.o.Group, subject, err)
		}
		subs = append(subs, s)
		closedChs = append(closedChs, s.StatusChanged(nats.SubscriptionClosed))
	}
	q.mu.Lock()
	q.subs = subs
	q.mu.Unlock()

	closed := make(chan struct{})
	go func() {
		for _, ch := range closedChs {
			<-ch
		}
		close(closed)
	}()
	drain := func() {
		for _, s := range subs {
			_ = s.Drain() // an already closed subscription is fine
		}
	}
	return &Subscription{stop: unsubscribe, drain: drain, closed: closed}, nil
}

// Pending returns the messages this member's subscriptions hold and have
// not yet handed to the handler.
func (q *Queue) Pending(context.Context) (Pending, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var p Pending
	for _, s := range q.subs {
		n, _, err := s.Pending()
		if err != nil {
			continue // closed: nothing pending
		}
		p.Msgs += uint64(n)
	}
	return p, nil
}
