package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// An ack lost with the connection fails its publish with ErrAckTimeout,
// long before AckTimeout, and is never reported stored: an answer that
// comes later on its reply subject is ignored, and the Retrier's publish
// again is stored once, at the stream's own sequence.
func TestDurableAckLostInAReconnect(t *testing.T) {
	s, _ := opstest.RunNATS(t)
	e := connect(t, s.ClientURL())
	proxy := opstest.NewProxy(t, strings.TrimPrefix(s.ClientURL(), "nats://"))
	nc, err := nats.Connect("nats://"+proxy.Addr(), nats.ReconnectWait(10*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p, err := bus.NewDurable(nc, bus.DurableOptions{AckTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// No stream yet: a subscriber takes the publish and never answers, as
	// a stream whose answer is lost.
	held, err := e.nc.SubscribeSync("t1.ingest.quote")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	hdr := nats.Header{bus.HeaderMsgID: []string{"gw1/7"}}
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", hdr, []byte("batch"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := held.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("the publish did not arrive: %v", err)
	}
	proxy.CloseAll()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = ack.Wait(ctx)
	if !errors.Is(err, bus.ErrAckTimeout) || !errors.Is(err, nats.ErrDisconnected) || !bus.Retryable(err) {
		t.Fatalf("ack lost in a reconnect = %v, want a retryable ErrAckTimeout", err)
	}
	if p.Pending() != 0 {
		t.Fatalf("pending = %d after the reconnect", p.Pending())
	}
	if err := held.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	opstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if !nc.IsConnected() {
			return errors.New("not reconnected yet")
		}
		return nil
	})
	// The lost answer comes late, claiming a place the stream never gave.
	if err := e.nc.Publish(m.Reply, []byte(`{"stream":"t1-ingest","seq":99}`)); err != nil {
		t.Fatal(err)
	}
	b, _ := bus.NewBudget(0.1, 10)
	r := bus.NewRetrier(p, b, bus.RetryOptions{Backoff: time.Millisecond})
	rc, err := r.Await(ctx, ack)
	if err != nil || rc.Stream != "t1-ingest" || rc.Sequence != 1 {
		t.Fatalf("retried = %+v, %v; want stored at t1-ingest 1", rc, err)
	}
	if n := e.streamInfo(t, "t1-ingest").State.Msgs; n != 1 {
		t.Fatalf("ingest holds %d messages, want 1", n)
	}
}

// Closing the connection fails the publishes waiting for their acks at
// once, and later publishes fail before anything is sent.
func TestDurableConnectionClosed(t *testing.T) {
	e := newEnv(t)
	silent(t, e, "t1.ingest.quote")
	nc, err := nats.Connect(e.nc.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	p, err := bus.NewDurable(nc, bus.DurableOptions{AckTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", nil, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ack.Wait(ctx); !errors.Is(err, bus.ErrAckTimeout) {
		t.Fatalf("pending publish on a closed connection = %v, want ErrAckTimeout", err)
	}
	if _, err := p.Publish(ctx, "t1.ingest.quote", nil, []byte("b")); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("publish on a closed connection = %v, want ErrConnectionClosed", err)
	}
	if p.Pending() != 0 {
		t.Fatalf("pending = %d", p.Pending())
	}
}

// An answer on the reply subject of a publish that failed never resolves
// a later publish of the same publisher.
func TestDurableLateAnswerIsNotAnother(t *testing.T) {
	e := newEnv(t)
	replies := make(chan string, 4)
	if _, err := e.nc.Subscribe("t1.ingest.quote", func(m *nats.Msg) { replies <- m.Reply }); err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	p, err := bus.NewDurable(e.nc, bus.DurableOptions{AckTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	first, err := p.Publish(context.Background(), "t1.ingest.quote", nil, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Wait(context.Background()); !errors.Is(err, bus.ErrAckTimeout) {
		t.Fatalf("first = %v, want ErrAckTimeout", err)
	}
	second, err := p.Publish(context.Background(), "t1.ingest.quote", nil, []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	firstReply, secondReply := <-replies, <-replies
	if firstReply == secondReply {
		t.Fatalf("two publishes share the reply subject %q", firstReply)
	}
	if err := e.nc.Publish(firstReply, []byte(`{"stream":"X","seq":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Publish(secondReply, []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum bytes exceeded"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Wait(context.Background()); !errors.Is(err, bus.ErrStreamFull) {
		t.Fatalf("second = %v, want its own answer, ErrStreamFull", err)
	}
}

// A publish that is never answered times out on its own deadline while
// the many sent after it are acked: the oldest pending publish holds no
// other back, and Pending counts only the unresolved.
func TestDurableTimeoutAmongAcks(t *testing.T) {
	e := newEnv(t)
	e.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	silent(t, e, "t1.silent")
	p, err := bus.NewDurable(e.nc, bus.DurableOptions{AckTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lost, err := p.Publish(ctx, "t1.silent", nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	acks := make([]bus.Ack, 0, 500)
	for range cap(acks) {
		a, err := p.Publish(ctx, "t1.enriched.quote.AAPL", nil, make([]byte, 100))
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, a)
	}
	for i, a := range acks {
		if rc, err := a.Wait(ctx); err != nil || rc.Sequence != uint64(i+1) || rc.Stream != "t1-enriched" {
			t.Fatalf("ack %d = %+v, %v", i, rc, err)
		}
	}
	if n := p.Pending(); n != 1 {
		t.Fatalf("pending = %d with one publish unanswered, want 1", n)
	}
	if _, err := lost.Wait(ctx); !errors.Is(err, bus.ErrAckTimeout) {
		t.Fatalf("unanswered = %v, want ErrAckTimeout", err)
	}
	if n := p.Pending(); n != 0 {
		t.Fatalf("pending = %d after the timeout", n)
	}
}

// A user allowed to subscribe under its own inbox prefix alone publishes
// durably on a connection with that prefix.
func TestDurableCustomInboxPrefix(t *testing.T) {
	o := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "gw", Password: "g", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"t1.ingest.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_SLUICE.gw1.>"}},
			}},
		}}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	admin := connect(t, strings.Replace(s.ClientURL(), "nats://", "nats://admin:a@", 1))
	admin.apply(t, bus.StreamOptions{Delivery: bus.AllModes(bus.ModeDurable)})
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("gw", "g"), nats.CustomInboxPrefix("_SLUICE.gw1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p, err := bus.NewDurable(nc, bus.DurableOptions{AckTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Publish(context.Background(), "t1.ingest.quote", nil, []byte("batch"))
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := ack.Wait(context.Background()); err != nil || rc.Stream != "t1-ingest" || rc.Sequence != 1 {
		t.Fatalf("ack = %+v, %v; want stored at t1-ingest 1", rc, err)
	}
}
