package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
)

func TestCorePublishIsResolvedAndDelivered(t *testing.T) {
	e := newEnv(t)
	sub, err := e.nc.SubscribeSync("t1.ingest.quote")
	if err != nil {
		t.Fatal(err)
	}
	p := bus.NewCore(e.nc)
	hdr := nats.Header{"Sluice-Count": []string{"1"}}
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", hdr, []byte("x"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ack.Durable() {
		t.Fatal("core ack is durable")
	}
	if rc, err := ack.Wait(context.Background()); err != nil || rc != (bus.Receipt{}) {
		t.Fatalf("wait = %+v, %v; want the zero receipt", rc, err)
	}
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil || string(m.Data) != "x" || m.Header.Get("Sluice-Count") != "1" {
		t.Fatalf("received %+v, %v", m, err)
	}
	e.nc.Close()
	if _, err := p.Publish(context.Background(), "t1.ingest.quote", nil, nil); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("publish on a closed connection = %v", err)
	}
}

func TestDurablePublishStoresOnceByMsgID(t *testing.T) {
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	p, err := bus.NewDurable(e.nc, bus.DurableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	publish := func(id string) bus.Receipt {
		t.Helper()
		ack, err := p.Publish(ctx, "t1.enriched.quote.AAPL", nats.Header{bus.HeaderMsgID: []string{id}}, []byte(id))
		if err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
		rc, err := ack.Wait(ctx)
		if err != nil {
			t.Fatalf("ack of %s: %v", id, err)
		}
		return rc
	}
	first := publish("src/1")
	if first.Stream != "t1-enriched" || first.Sequence != 1 || first.Duplicate {
		t.Fatalf("first receipt = %+v, want t1-enriched seq 1", first)
	}
	again := publish("src/1")
	if !again.Duplicate || again.Sequence != 1 {
		t.Fatalf("same id again = %+v, want a duplicate of seq 1", again)
	}
	if other := publish("src/2"); other.Sequence != 2 || other.Duplicate {
		t.Fatalf("another id = %+v, want seq 2", other)
	}
	if n := e.streamInfo(t, "t1-enriched").State.Msgs; n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
	if p.Pending() != 0 {
		t.Fatalf("pending = %d after every ack", p.Pending())
	}
}

func TestDurablePublishWithoutStream(t *testing.T) {
	e := newEnv(t)
	p, err := bus.NewDurable(e.nc, bus.DurableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", nil, []byte("a"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if _, err = ack.Wait(context.Background()); !errors.Is(err, bus.ErrNoStream) || !bus.Retryable(err) {
		t.Fatalf("ack without a stream = %v, want retryable ErrNoStream", err)
	}
}

// silent subscribes to subject and never answers: a stream that takes
// messages and never acks them.
func silent(t *testing.T, e env, subject string) {
	t.Helper()
	if _, err := e.nc.Subscribe(subject, func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestDurableBackpressurePastMaxPending(t *testing.T) {
	e := newEnv(t)
	silent(t, e, "t1.ingest.quote")
	p, err := bus.NewDurable(e.nc, bus.DurableOptions{MaxPending: 2, AckTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := p.Publish(context.Background(), "t1.ingest.quote", nil, []byte("a")); err != nil {
			t.Fatalf("publish %d within max pending: %v", i, err)
		}
	}
	if p.Pending() != 2 {
		t.Fatalf("pending = %d, want 2", p.Pending())
	}
	if _, err := p.Publish(context.Background(), "t1.ingest.quote", nil, []byte("b")); !errors.Is(err, bus.ErrBackpressure) {
		t.Fatalf("publish past max pending = %v, want ErrBackpressure", err)
	}
}

func TestDurableAckTimeout(t *testing.T) {
	e := newEnv(t)
	silent(t, e, "t1.ingest.quote")
	p, err := bus.NewDurable(e.nc, bus.DurableOptions{AckTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", nil, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ack.Wait(context.Background()); !errors.Is(err, bus.ErrAckTimeout) || !bus.Retryable(err) {
		t.Fatalf("unanswered publish = %v, want retryable ErrAckTimeout", err)
	}
	if p.Pending() != 0 {
		t.Fatalf("pending = %d after the timeout", p.Pending())
	}
}

func TestAckWaitHonoursContext(t *testing.T) {
	e := newEnv(t)
	p, err := bus.NewDurable(e.nc, bus.DurableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ack.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context = %v", err)
	}
	if _, err := p.Publish(ctx, "t1.ingest.quote", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("publish with a cancelled context = %v", err)
	}
}

func TestBudgetRefusesPastItsFraction(t *testing.T) {
	b, err := bus.NewBudget(0.1, 10)
	if err != nil {
		t.Fatal(err)
	}
	withdraw := func(n int, when string) {
		t.Helper()
		for i := range n {
			if !b.Withdraw() {
				t.Fatalf("%s: retry %d of %d refused", when, i+1, n)
			}
		}
		if b.Withdraw() {
			t.Fatalf("%s: retry %d granted", when, n+1)
		}
	}
	withdraw(10, "a fresh budget of 10")
	for range 100 {
		b.Success()
	}
	withdraw(10, "after 100 successes")
	for range 9 {
		b.Success()
	}
	if b.Withdraw() {
		t.Fatal("9 successes bought a retry at ratio 0.1")
	}
	if b.Granted() != 20 || b.Refused() != 3 {
		t.Fatalf("granted %d, refused %d; want 20 and 3", b.Granted(), b.Refused())
	}
}

func TestBudgetCapsItsCredit(t *testing.T) {
	b, _ := bus.NewBudget(0.5, 3)
	for range 1000 {
		b.Success()
	}
	n := 0
	for b.Withdraw() {
		n++
	}
	if n != 3 {
		t.Fatalf("%d retries granted after 1000 successes, want the burst of 3", n)
	}
	if _, err := bus.NewBudget(0, 1); err == nil {
		t.Fatal("ratio 0 accepted")
	}
}

func TestRetrierRefusedByBudget(t *testing.T) {
	e := newEnv(t)
	p, _ := bus.NewDurable(e.nc, bus.DurableOptions{})
	b, _ := bus.NewBudget(0.1, 0)
	r := bus.NewRetrier(p, b, bus.RetryOptions{})
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Await(context.Background(), ack)
	if !errors.Is(err, bus.ErrRetryBudget) || !errors.Is(err, bus.ErrNoStream) {
		t.Fatalf("await = %v, want ErrRetryBudget wrapping ErrNoStream", err)
	}
	if b.Refused() != 1 {
		t.Fatalf("refused = %d, want 1", b.Refused())
	}
}

func TestRetrierRetriesUntilStored(t *testing.T) {
	e := newEnv(t)
	p, _ := bus.NewDurable(e.nc, bus.DurableOptions{})
	b, _ := bus.NewBudget(0.1, 100)
	r := bus.NewRetrier(p, b, bus.RetryOptions{Attempts: 100, Backoff: time.Millisecond})
	hdr := nats.Header{bus.HeaderMsgID: []string{"gw1/1"}}
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", hdr, []byte("batch"))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rc  bus.Receipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		rc, err := r.Await(context.Background(), ack)
		done <- result{rc, err}
	}()
	// The stream appears only after a first retry was needed.
	opstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if b.Granted() == 0 {
			return errors.New("no retry yet")
		}
		return nil
	})
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	res := <-done
	if res.err != nil || res.rc.Stream != "t1-ingest" || res.rc.Sequence != 1 {
		t.Fatalf("await = %+v, %v; want stored at t1-ingest 1", res.rc, res.err)
	}
	if n := e.streamInfo(t, "t1-ingest").State.Msgs; n != 1 {
		t.Fatalf("ingest holds %d messages, want 1", n)
	}
}

func TestAckWaitersShareTheOutcome(t *testing.T) {
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	p, _ := bus.NewDurable(e.nc, bus.DurableOptions{})
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", nil, []byte("batch"))
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan bus.Receipt, 4)
	for range 4 {
		go func() {
			rc, err := ack.Wait(context.Background())
			if err != nil {
				t.Errorf("wait: %v", err)
			}
			results <- rc
		}()
	}
	for range 4 {
		if rc := <-results; rc.Sequence != 1 {
			t.Fatalf("a waiter got %+v, want seq 1", rc)
		}
	}
	if rc, err := ack.Wait(context.Background()); err != nil || rc.Sequence != 1 {
		t.Fatalf("waiting again = %+v, %v", rc, err)
	}
}
