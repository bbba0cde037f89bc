package workers_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

// testNow is the workers' clock in tests; events are stamped a second
// before it.
var testNow = time.Date(2025, 6, 2, 14, 30, 0, 0, time.UTC).UnixNano()

const (
	waitFor   = 10 * time.Second
	pollEvery = 5 * time.Millisecond
)

var subjects = schemas.MustSubjects("")

// runNATS starts a NATS server for the test and returns its URL.
func runNATS(t testing.TB) string {
	t.Helper()
	_, url := opstest.RunNATS(t)
	return url
}

// connect opens a connection closed by t.Cleanup.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// sampleEnricher returns an enricher over a fresh store loaded with
// enrich.Sample.
func sampleEnricher() *enrich.Enricher {
	s := enrich.NewStore()
	s.Replace(enrich.Sample())
	return &enrich.Enricher{Store: s}
}

// startWorker builds and starts a worker on its own connection with the
// test clock, sample reference data unless opts sets an enricher, and shuts
// it down in t.Cleanup.
func startWorker(t testing.TB, url string, opts workers.Options) *workers.Worker {
	t.Helper()
	if opts.Conn == nil {
		opts.Conn = connect(t, url)
	}
	if opts.Enricher == nil {
		opts.Enricher = sampleEnricher()
	}
	if opts.Now == nil {
		opts.Now = func() int64 { return testNow }
	}
	w, err := workers.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := w.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return w
}

func fullQuote(sym string, bid, ask float64) schemas.Quote {
	return schemas.Quote{
		Symbol: sym, Bid: bid, Ask: ask, BidSize: 100, AskSize: 200, Venue: "XNAS", TS: testNow - 1e9,
		Present: schemas.FSymbol | schemas.FBid | schemas.FAsk | schemas.FBidSize | schemas.FAskSize | schemas.FVenue | schemas.FTS,
	}
}

// quote returns a quote event; corr 0 means nobody waits for its result.
func quote(id, sym string, bid, ask float64, corr uint64, seq uint32) *schemas.Event {
	return &schemas.Event{
		ID: id, Source: "test/gateway", Type: schemas.TypeQuoteV1, Subject: sym,
		Time: testNow - 1e9, ReceivedAt: testNow - 5e8, Corr: corr, Seq: seq,
		Kind: schemas.KindQuote, Known: true, Quote: fullQuote(sym, bid, ask),
	}
}

// trade returns a trade event.
func trade(id, sym, venue string, price float64, size int64, corr uint64, seq uint32) *schemas.Event {
	return &schemas.Event{
		ID: id, Source: "test/gateway", Type: schemas.TypeTradeV1, Subject: sym,
		Time: testNow - 1e9, ReceivedAt: testNow - 5e8, Corr: corr, Seq: seq,
		Kind: schemas.KindTrade, Known: true,
		Trade: schemas.Trade{
			Symbol: sym, Price: price, Size: size, Venue: venue, TS: testNow - 1e9, TradeID: "t-" + id,
			Conditions: []string{"@"},
			Present:    schemas.FSymbol | schemas.FPrice | schemas.FSize | schemas.FVenue | schemas.FTS | schemas.FTradeID | schemas.FConditions,
		},
	}
}

// frame encodes events as a batch frame.
func frame(evs ...*schemas.Event) []byte {
	b := schemas.BatchFrameHeader(nil)
	for _, ev := range evs {
		b = ev.AppendMsgpack(b)
	}
	schemas.FinishBatchFrame(b, len(evs))
	return b
}

// publishFrame publishes data as a batch of n events of kind on its ingest
// subject, with reply as the reply inbox ("" for none).
func publishFrame(t testing.TB, nc *nats.Conn, kind schemas.Kind, reply string, data []byte, n int) {
	t.Helper()
	m := &nats.Msg{
		Subject: subjects.Ingest(kind),
		Reply:   reply,
		Data:    data,
		Header: nats.Header{
			schemas.HeaderFrame: {schemas.FrameBatchV1},
			schemas.HeaderCount: {strconv.Itoa(n)},
		},
	}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatalf("publishing batch: %v", err)
	}
}

// publishBatch publishes evs as one batch frame.
func publishBatch(t testing.TB, nc *nats.Conn, kind schemas.Kind, reply string, evs ...*schemas.Event) {
	t.Helper()
	publishFrame(t, nc, kind, reply, frame(evs...), len(evs))
}

// collector gathers every message on a subject.
type collector struct {
	mu   sync.Mutex
	msgs []*nats.Msg
}

// collect subscribes to subject (wildcards allowed) and returns the
// collector; the subscription is confirmed before it returns.
func collect(t testing.TB, nc *nats.Conn, subject string) *collector {
	t.Helper()
	c := &collector{}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("subscribing to %s: %v", subject, err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Msgs returns a copy of what arrived so far.
func (c *collector) Msgs() []*nats.Msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*nats.Msg(nil), c.msgs...)
}

// wait waits until exactly n messages arrived (more fails at once) and
// returns them.
func (c *collector) wait(t testing.TB, n int) []*nats.Msg {
	t.Helper()
	var msgs []*nats.Msg
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		msgs = c.Msgs()
		if len(msgs) < n {
			return fmt.Errorf("%d messages, want %d", len(msgs), n)
		}
		return nil
	})
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	return msgs
}

// settle makes sure that everything published on nc before it, and
// everything the workers published in response to what arrived on their
// connections, had the time to arrive: it waits until count stays the same
// across a round trip on each connection, and at least until want.
func settle(t testing.TB, count func() int, want int, conns ...*nats.Conn) {
	t.Helper()
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		before := count()
		for _, nc := range conns {
			if err := nc.Flush(); err != nil {
				return err
			}
		}
		if after := count(); after != before || after < want {
			return fmt.Errorf("count %d, want %d and stable", after, want)
		}
		return nil
	})
}

func decodeEnriched(t testing.TB, data []byte) *schemas.Enriched {
	t.Helper()
	var e schemas.Enriched
	r := schemas.NewReader(data)
	if err := e.DecodeMsgpack(&r); err != nil {
		t.Fatalf("decoding enriched event: %v", err)
	}
	return &e
}

func decodeDeadLetter(t testing.TB, data []byte) *schemas.DeadLetter {
	t.Helper()
	var d schemas.DeadLetter
	r := schemas.NewReader(data)
	if err := d.DecodeMsgpack(&r); err != nil {
		t.Fatalf("decoding dead letter: %v", err)
	}
	return &d
}

// decodeReply decodes a reply frame into its results.
func decodeReply(t testing.TB, m *nats.Msg) []schemas.Result {
	t.Helper()
	if got := m.Header.Get(schemas.HeaderFrame); got != schemas.FrameReplyV1 {
		t.Errorf("reply %s header = %q, want %q", schemas.HeaderFrame, got, schemas.FrameReplyV1)
	}
	r := schemas.NewReader(m.Data)
	n := r.ArrayHeader()
	res := make([]schemas.Result, n)
	for i := range res {
		if err := res[i].DecodeMsgpack(&r); err != nil {
			t.Fatalf("decoding result %d: %v", i, err)
		}
	}
	if r.Err() != nil || !r.Done() {
		t.Fatalf("reply frame: err %v, %d bytes left", r.Err(), len(r.Rest()))
	}
	return res
}

// waitReply waits for one reply frame on sub.
func waitReply(t testing.TB, sub *nats.Subscription) []schemas.Result {
	t.Helper()
	m, err := sub.NextMsg(waitFor)
	if err != nil {
		t.Fatalf("waiting for the reply: %v", err)
	}
	return decodeReply(t, m)
}

// inbox subscribes to a fresh inbox for replies.
func inbox(t testing.TB, nc *nats.Conn) (string, *nats.Subscription) {
	t.Helper()
	in := nc.NewInbox()
	sub, err := nc.SubscribeSync(in)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return in, sub
}

// noMore fails if sub receives anything within a round trip of nc.
func noMore(t testing.TB, nc *nats.Conn, sub *nats.Subscription) {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(10 * time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("unexpected message %v (err %v)", m, err)
	}
}

func near(got, want float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= 1e-9*max(1, want, -want)
}
