package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// collect consumes c into a channel, without settling anything.
func collect(t *testing.T, c bus.Consumer) (<-chan bus.Delivery, *bus.Subscription) {
	t.Helper()
	ch := make(chan bus.Delivery, 100)
	sub, err := c.Consume(func(d bus.Delivery) { ch <- d })
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	t.Cleanup(sub.Stop)
	return ch, sub
}

func next(t *testing.T, ch <-chan bus.Delivery) bus.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30s")
	}
	return bus.Delivery{}
}

func (e env) pull(t *testing.T, o bus.ConsumerOptions) *bus.Pull {
	t.Helper()
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	p, err := bus.NewPull(context.Background(), e.js, bus.IngestStream(e.subj), o)
	if err != nil {
		t.Fatalf("pull consumer: %v", err)
	}
	return p
}

func (e env) store(t *testing.T, subject string, hdr nats.Header, data string) uint64 {
	t.Helper()
	p, _ := bus.NewDurable(e.nc, bus.DurableOptions{})
	ack, err := p.Publish(context.Background(), subject, hdr, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ack.Wait(context.Background())
	if err != nil {
		t.Fatalf("storing %s: %v", data, err)
	}
	return rc.Sequence
}

func TestPullRedeliversUnackedAfterAckWait(t *testing.T) {
	e := newEnv(t)
	c := e.pull(t, bus.ConsumerOptions{Group: "quotes", Subjects: []string{e.subj.Ingest(schemas.KindQuote)}, AckWait: 300 * time.Millisecond})
	hdr := nats.Header{schemas.HeaderReply: []string{"_INBOX.gw1"}}
	seq := e.store(t, e.subj.Ingest(schemas.KindQuote), hdr, "batch")
	ch, _ := collect(t, c)

	first := next(t, ch)
	if !first.Durable() || first.NumDelivered() != 1 || first.StreamSeq() != seq ||
		string(first.Data()) != "batch" || first.ReplyTo() != "_INBOX.gw1" || first.Subject() != "t1.ingest.quote" {
		t.Fatalf("first delivery: durable %v, delivered %d, seq %d (want %d), data %q, reply %q, subject %q",
			first.Durable(), first.NumDelivered(), first.StreamSeq(), seq, first.Data(), first.ReplyTo(), first.Subject())
	}
	// Not acked: it comes again after AckWait, counted.
	second := next(t, ch)
	if second.NumDelivered() != 2 || second.StreamSeq() != seq {
		t.Fatalf("redelivery: delivered %d, seq %d; want 2, %d", second.NumDelivered(), second.StreamSeq(), seq)
	}
	if err := second.Ack(); err != nil {
		t.Fatalf("ack: %v", err)
	}
	opstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if n := e.streamInfo(t, "t1-ingest").State.Msgs; n != 0 {
			return fmt.Errorf("ingest holds %d messages after the ack", n)
		}
		return nil
	})
}

func TestPullTermStopsRedelivery(t *testing.T) {
	e := newEnv(t)
	// Long enough that the Term reaches the server before a redelivery,
	// even on a loaded machine under -race.
	const ackWait = time.Second
	subject := e.subj.Ingest(schemas.KindTrade)
	c := e.pull(t, bus.ConsumerOptions{Group: "trades", Subjects: []string{subject}, AckWait: ackWait})
	ch, _ := collect(t, c)
	e.store(t, subject, nil, "poison")
	d := next(t, ch)
	if err := d.Term("always fails"); err != nil {
		t.Fatalf("term: %v", err)
	}
	// Past a few AckWaits, the next delivery is a later message, never
	// the termed one again.
	time.Sleep(3 * ackWait)
	e.store(t, subject, nil, "marker")
	if got := next(t, ch); string(got.Data()) != "marker" {
		t.Fatalf("after term, delivered %q (delivery %d), want the marker", got.Data(), got.NumDelivered())
	}
}

func TestPullNakRedeliversAndInProgressHolds(t *testing.T) {
	e := newEnv(t)
	subject := e.subj.Ingest(schemas.KindQuote)
	c := e.pull(t, bus.ConsumerOptions{Group: "quotes", Subjects: []string{subject}, AckWait: time.Minute})
	ch, _ := collect(t, c)
	e.store(t, subject, nil, "slow")
	d := next(t, ch)
	if err := d.InProgress(); err != nil {
		t.Fatalf("in progress: %v", err)
	}
	if err := d.Nak(0); err != nil {
		t.Fatalf("nak: %v", err)
	}
	if again := next(t, ch); again.NumDelivered() != 2 {
		t.Fatalf("after nak, delivery %d, want 2", again.NumDelivered())
	}
}

func TestPullPending(t *testing.T) {
	e := newEnv(t)
	subject := e.subj.Ingest(schemas.KindQuote)
	c := e.pull(t, bus.ConsumerOptions{Group: "quotes", Subjects: []string{subject}})
	for i := range 3 {
		e.store(t, subject, nil, fmt.Sprint(i))
	}
	// The consumer's count may trail the stream's stores by a moment.
	opstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		p, err := c.Pending(context.Background())
		if err != nil || p != (bus.Pending{Msgs: 3}) {
			return fmt.Errorf("pending before consuming = %+v, %v; want 3 msgs", p, err)
		}
		return nil
	})
	ch, sub := collect(t, c)
	for range 3 {
		next(t, ch)
	}
	opstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		p, err := c.Pending(context.Background())
		if err != nil || p != (bus.Pending{AckPending: 3}) {
			return fmt.Errorf("pending while held = %+v, %v; want 3 ack pending", p, err)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
}

func TestPullRefusesOverlappingGroups(t *testing.T) {
	e := newEnv(t)
	e.pull(t, bus.ConsumerOptions{Group: "a", Subjects: []string{"t1.ingest.>"}})
	_, err := bus.NewPull(context.Background(), e.js, "t1-ingest", bus.ConsumerOptions{Group: "b", Subjects: []string{"t1.ingest.quote"}})
	if err == nil {
		t.Fatal("a second group overlapping the first on the work-queue stream was accepted")
	}
	if _, err := bus.NewPull(context.Background(), e.js, "t1-ingest", bus.ConsumerOptions{Group: "a.b", Subjects: []string{"x"}}); err == nil {
		t.Fatal("a group name with a dot was accepted")
	}
}

func TestQueueDeliversWithNoOpSettles(t *testing.T) {
	e := newEnv(t)
	subject := e.subj.Ingest(schemas.KindQuote)
	q, err := bus.NewQueue(e.nc, bus.ConsumerOptions{Group: "quotes", Subjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	ch, sub := collect(t, q)
	hdr := nats.Header{schemas.HeaderReply: []string{"_INBOX.gw1"}}
	if _, err := bus.NewCore(e.nc).Publish(context.Background(), subject, hdr, []byte("b")); err != nil {
		t.Fatal(err)
	}
	d := next(t, ch)
	if d.Durable() || d.NumDelivered() != 1 || d.StreamSeq() != 0 || d.ReplyTo() != "_INBOX.gw1" || string(d.Data()) != "b" {
		t.Fatalf("core delivery: durable %v, delivered %d, seq %d, reply %q, data %q",
			d.Durable(), d.NumDelivered(), d.StreamSeq(), d.ReplyTo(), d.Data())
	}
	if err := errors.Join(d.Ack(), d.Nak(time.Second), d.Term("x"), d.InProgress()); err != nil {
		t.Fatalf("core settles: %v", err)
	}
	if p, err := q.Pending(context.Background()); err != nil || p.AckPending != 0 {
		t.Fatalf("core pending = %+v, %v", p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	select {
	case <-sub.Closed():
	default:
		t.Fatal("drained subscription not closed")
	}
}

func TestPullStopsAtMaxDeliver(t *testing.T) {
	e := newEnv(t)
	const ackWait = 200 * time.Millisecond
	subject := e.subj.Ingest(schemas.KindQuote)
	c := e.pull(t, bus.ConsumerOptions{Group: "quotes", Subjects: []string{subject}, AckWait: ackWait, MaxDeliver: 2})
	ch, _ := collect(t, c)
	e.store(t, subject, nil, "never acked")
	for want := uint64(1); want <= 2; want++ {
		if d := next(t, ch); d.NumDelivered() != want {
			t.Fatalf("delivery %d, want %d", d.NumDelivered(), want)
		}
	}
	time.Sleep(5 * ackWait)
	e.store(t, subject, nil, "marker")
	if got := next(t, ch); string(got.Data()) != "marker" {
		t.Fatalf("past MaxDeliver, delivered %q (delivery %d), want the marker", got.Data(), got.NumDelivered())
	}
}

func TestStopClosesSubscriptions(t *testing.T) {
	e := newEnv(t)
	o := bus.ConsumerOptions{Group: "quotes", Subjects: []string{e.subj.Ingest(schemas.KindQuote), e.subj.Ingest(schemas.KindTrade)}}
	q, err := bus.NewQueue(e.nc, o)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]bus.Consumer{"queue": q, "pull": e.pull(t, o)} {
		_, sub := collect(t, c)
		sub.Stop()
		select {
		case <-sub.Closed():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: stopped subscription not closed", name)
		}
	}
}

func TestPullReportsADeletedConsumer(t *testing.T) {
	e := newEnv(t)
	errs := make(chan error, 16)
	o := bus.ConsumerOptions{Group: "quotes", Subjects: []string{e.subj.Ingest(schemas.KindQuote)},
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		}}
	ch, _ := collect(t, e.pull(t, o))
	// A first delivery shows the client's pull request is at the server,
	// which answers it when the consumer goes.
	e.store(t, o.Subjects[0], nil, "first")
	next(t, ch)
	if err := e.js.DeleteConsumer(context.Background(), "t1-ingest", "quotes"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Logf("reported: %v", err)
	case <-time.After(90 * time.Second): // past the client's missed heartbeats too
		t.Fatal("a deleted consumer was not reported")
	}
}
