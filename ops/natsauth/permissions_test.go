package natsauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/sluice-dev/sluice/ops/natsauth"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// connect connects as user with its password, the CA and its inbox prefix.
func connect(t *testing.T, s *opstest.SecureNATS, user string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.URL, append(s.Options(t, user), nats.Name("natsauth-test-"+user),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...)
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// violation runs act on a fresh connection of user, then a round trip to
// the server, and returns the permissions violation the server answered
// with, or nil.
func violation(t *testing.T, s *opstest.SecureNATS, user string, act func(*nats.Conn) error) error {
	t.Helper()
	nc := connect(t, s, user)
	if err := act(nc); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("%s: flush: %v", user, err)
	}
	if err := nc.LastError(); err != nil {
		return err
	}
	return nil
}

func pub(subject string) func(*nats.Conn) error {
	return func(nc *nats.Conn) error { return nc.Publish(subject, []byte("x")) }
}

func sub(subject string) func(*nats.Conn) error {
	return func(nc *nats.Conn) error { _, err := nc.SubscribeSync(subject); return err }
}

func qsub(subject, queue string) func(*nats.Conn) error {
	return func(nc *nats.Conn) error { _, err := nc.QueueSubscribeSync(subject, queue); return err }
}

// TestRolePermissions: against a server running the stack's own NATS
// configuration, each role's forbidden publish or subscribe is refused by
// the server (a permissions violation naming the subject), and the same
// role's allowed counterpart is not, so the test can tell the two apart.
func TestRolePermissions(t *testing.T) {
	s := opstest.RunSecureNATS(t)
	cases := []struct {
		user, what string
		act        func(*nats.Conn) error
		forbidden  string // the subject the violation names, "" when allowed
	}{
		{"gateway-a", "subscribe to gateway-b's inbox", sub("_INBOX.gateway.b.>"), "_INBOX.gateway.b.>"},
		{"gateway-a", "subscribe to every inbox", sub("_INBOX.>"), "_INBOX.>"},
		{"gateway-a", "subscribe to a reply of gateway-b", sub("_INBOX.gateway.b.abc.1"), "_INBOX.gateway.b.abc.1"},
		{"gateway-a", "publish an enriched event", pub("sluice.enriched.quote.AAPL"), "sluice.enriched.quote.AAPL"},
		{"gateway-a", "publish a dead letter", pub("sluice.dlq.quote"), "sluice.dlq.quote"},
		{"gateway-a", "read the ingest batches", sub("sluice.ingest.>"), "sluice.ingest.>"},
		{"gateway-a", "purge the enriched stream", pub("$JS.API.STREAM.PURGE.sluice-enriched"), "$JS.API.STREAM.PURGE.sluice-enriched"},
		{"gateway-a", "subscribe to its own inbox", sub("_INBOX.gateway.a.abc.*"), ""},
		{"gateway-a", "publish a batch", pub("sluice.ingest.quote"), ""},
		{"gateway-b", "subscribe to gateway-a's inbox", sub("_INBOX.gateway.a.>"), "_INBOX.gateway.a.>"},
		{"worker-quotes", "publish an ingest batch", pub("sluice.ingest.quote"), "sluice.ingest.quote"},
		{"worker-quotes", "read batches outside its queue", sub("sluice.ingest.quote"), "sluice.ingest.quote"},
		{"worker-quotes", "read quotes in the trades queue", qsub("sluice.ingest.quote", "trades"), "sluice.ingest.quote"},
		{"worker-quotes", "read trades in the trades queue", qsub("sluice.ingest.trade", "trades"), "sluice.ingest.trade"},
		{"worker-quotes", "publish an enriched trade", pub("sluice.enriched.trade.AAPL"), "sluice.enriched.trade.AAPL"},
		{"worker-quotes", "report the trades group's load", pub("sluice.load.trades"), "sluice.load.trades"},
		{"worker-quotes", "pull the trades group's batches", pub("$JS.API.CONSUMER.MSG.NEXT.sluice-ingest.trades"), "$JS.API.CONSUMER.MSG.NEXT.sluice-ingest.trades"},
		{"worker-quotes", "pull a partition of the trades group", pub("$JS.API.CONSUMER.MSG.NEXT.sluice-ingest.trades-p3"), "$JS.API.CONSUMER.MSG.NEXT.sluice-ingest.trades-p3"},
		{"worker-quotes", "ack a batch of a partition of the trades group", pub("$JS.ACK.sluice-ingest.trades-p3.1.2.3.4.5.6"), "$JS.ACK.sluice-ingest.trades-p3.1.2.3.4.5.6"},
		{"worker-quotes", "pull a partition past the eighth", pub("$JS.API.CONSUMER.MSG.NEXT.sluice-ingest.quotes-p8"), "$JS.API.CONSUMER.MSG.NEXT.sluice-ingest.quotes-p8"},
		{"worker-quotes", "pull a partition of its group", pub("$JS.API.CONSUMER.MSG.NEXT.sluice-ingest.quotes-p7"), ""},
		{"worker-quotes", "create a partition's consumer", pub("$JS.API.CONSUMER.CREATE.sluice-ingest.quotes-p0.sluice.ingest.quote.0"), ""},
		{"worker-quotes", "ack a batch of a partition", pub("$JS.ACK.sluice-ingest.quotes-p5.1.2.3.4.5.6"), ""},
		{"worker-trades", "read a partition's consumer info", pub("$JS.API.CONSUMER.INFO.sluice-ingest.trades-p2"), ""},
		{"gateway-a", "publish a batch of a partition", pub("sluice.ingest.quote.3"), ""},
		{"worker-quotes", "subscribe to a gateway's inbox", sub("_INBOX.gateway.a.>"), "_INBOX.gateway.a.>"},
		{"worker-quotes", "subscribe to the trades workers' inbox", sub("_INBOX.worker.trades.>"), "_INBOX.worker.trades.>"},
		{"worker-quotes", "delete the ingest stream", pub("$JS.API.STREAM.DELETE.sluice-ingest"), "$JS.API.STREAM.DELETE.sluice-ingest"},
		{"worker-quotes", "read quotes in the quotes queue", qsub("sluice.ingest.quote", "quotes"), ""},
		{"worker-quotes", "publish an enriched quote", pub("sluice.enriched.quote.AAPL"), ""},
		{"worker-quotes", "answer a gateway", pub("_INBOX.gateway.b.abc.1"), ""},
		{"worker-trades", "publish an ingest batch", pub("sluice.ingest.trade"), "sluice.ingest.trade"},
		{"worker-trades", "read quotes in the quotes queue", qsub("sluice.ingest.quote", "quotes"), "sluice.ingest.quote"},
		{"worker-trades", "read trades in the trades queue", qsub("sluice.ingest.trade", "trades"), ""},
		{"worker-trades", "publish an enriched trade", pub("sluice.enriched.trade.AAPL"), ""},
		{"subscriber", "publish an enriched event", pub("sluice.enriched.quote.AAPL"), "sluice.enriched.quote.AAPL"},
		{"subscriber", "publish an ingest batch", pub("sluice.ingest.quote"), "sluice.ingest.quote"},
		{"subscriber", "publish to a gateway's inbox", pub("_INBOX.gateway.a.abc.1"), "_INBOX.gateway.a.abc.1"},
		{"subscriber", "publish a load report", pub("sluice.load.quotes"), "sluice.load.quotes"},
		{"subscriber", "put reference data", pub("$KV.sluice_refdata.instrument.AAPL"), "$KV.sluice_refdata.instrument.AAPL"},
		{"subscriber", "purge the enriched stream", pub("$JS.API.STREAM.PURGE.sluice-enriched"), "$JS.API.STREAM.PURGE.sluice-enriched"},
		{"subscriber", "read the ingest batches", sub("sluice.ingest.>"), "sluice.ingest.>"},
		{"subscriber", "read enriched events", sub("sluice.enriched.quote.*"), ""},
		{"operator", "publish an ingest batch", pub("sluice.ingest.quote"), "sluice.ingest.quote"},
		{"operator", "publish an enriched event", pub("sluice.enriched.quote.AAPL"), "sluice.enriched.quote.AAPL"},
		{"operator", "subscribe to a gateway's inbox", sub("_INBOX.gateway.a.>"), "_INBOX.gateway.a.>"},
		{"operator", "read every pipeline subject", sub("sluice.>"), ""},
	}
	for _, c := range cases {
		err := violation(t, s, c.user, c.act)
		switch {
		case c.forbidden == "" && err != nil:
			t.Errorf("%s may %s, but: %v", c.user, c.what, err)
		case c.forbidden != "" && !errors.Is(err, nats.ErrPermissionViolation):
			t.Errorf("%s must not %s: got %v, want a permissions violation", c.user, c.what, err)
		case c.forbidden != "" && !strings.Contains(err.Error(), `"`+c.forbidden+`"`):
			t.Errorf("%s must not %s: the violation %q does not name %s", c.user, c.what, err, c.forbidden)
		}
	}
}

// TestSubscriberCannotDeleteStream: the subscriber's request to delete the
// enriched stream is refused by the server and the stream stays; the
// operator, whose role it is, may.
func TestSubscriberCannotDeleteStream(t *testing.T) {
	s := opstest.RunSecureNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := jetstream.New(connect(t, s, "operator"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: "sluice-enriched", Subjects: []string{"sluice.enriched.>"}}); err != nil {
		t.Fatalf("the operator creates the stream: %v", err)
	}
	nc := connect(t, s, "subscriber")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	defer dcancel()
	if err := js.DeleteStream(dctx, "sluice-enriched"); err == nil {
		t.Fatal("the subscriber deleted the enriched stream")
	}
	if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Errorf("the subscriber's delete: last error %v, want a permissions violation", err)
	}
	if _, err := admin.Stream(ctx, "sluice-enriched"); err != nil {
		t.Fatalf("the stream is gone after the subscriber's delete: %v", err)
	}
	if err := admin.DeleteStream(ctx, "sluice-enriched"); err != nil {
		t.Fatalf("the operator's delete: %v", err)
	}
}

// TestRotatePassword: a rotated password works once the server has reloaded
// its configuration (SIGHUP in the stack), and the old one no longer does:
// the server cuts the connections made with it and refuses new ones; the
// other users keep theirs.
func TestRotatePassword(t *testing.T) {
	s := opstest.RunSecureNATS(t)
	oldOpts := s.Options(t, "worker-quotes")
	before := connect(t, s, "worker-quotes")
	res, err := natsauth.Init(natsauth.Options{NATSDir: s.NATSDir, UsersDir: s.UsersDir, Rotate: []string{"worker-quotes"},
		Cost: bcrypt.MinCost})
	if err != nil || len(res.NewPasswords) != 1 || res.NewCert {
		t.Fatalf("rotating worker-quotes: %+v %v", res, err)
	}
	s.Reload(t)
	// The server checks its clients again: the old password's is cut.
	opstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if before.IsConnected() {
			return errors.New("a connection made with the old password is still up after the reload")
		}
		return nil
	})
	if nc, err := nats.Connect(s.URL, oldOpts...); err == nil || !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Errorf("worker-quotes' old password after the reload: %v, want an authorization violation", err)
	}
	connect(t, s, "worker-quotes")
	connect(t, s, "gateway-a")
}
