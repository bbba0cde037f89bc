package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops"
	"github.com/sluice-dev/sluice/schemas"
)

func runNATS(t *testing.T) string {
	t.Helper()
	s, err := ops.RunNATS(ops.NATSOptions{Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}

// TestIDSampleAdd reads the ids of an accepted answer and keeps the
// observed ones, in event order.
func TestIDSampleAdd(t *testing.T) {
	pl := &payload{events: 3, flags: []uint8{flagObserved, 0, flagObserved | flagInvalid}}
	var s idSample
	s.add([]byte(`{"accepted":3,"ids":["a1","b2","c3"]}`), pl)
	if s.accepted != 3 || s.sampled != 2 || s.invalid != 1 || len(s.hashes) != 2 ||
		s.hashes[0] != hashID([]byte("a1")) || s.hashes[1] != hashID([]byte("c3")) {
		t.Fatalf("%+v", s)
	}
	s.add([]byte(`{"error":"x"}`), pl)
	if s.accepted != 6 || s.sampled != 2 {
		t.Fatalf("%+v", s)
	}
}

// TestObserver publishes enriched events and dead letters as sluice's
// workers (MessagePack) and the naive worker (JSON) do, and checks that the
// observer matches them with the accepted ids.
func TestObserver(t *testing.T) {
	url := runNATS(t)
	inst := enrich.Sample().Instruments[:16]
	ob, err := NewObserver(ObserverOptions{URL: url, Prefix: "bench", Instruments: inst, SampleEvery: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ob.Start()
	observed := inst[7].Symbol // index 7 of every 8 is observed
	tok := schemas.SymbolToken(observed)
	var s idSample
	accept := func(id string, invalid bool) {
		f := flagObserved
		if invalid {
			f |= flagInvalid
		}
		s.add([]byte(`{"accepted":1,"ids":["`+id+`"]}`), &payload{events: 1, flags: []uint8{f}})
	}
	// sluice: an enriched event, a dead letter.
	ev := schemas.Enriched{ID: "e1", Kind: schemas.KindQuote, Type: schemas.TypeQuoteEnrichedV1, Subject: observed}
	ev.Quote.Symbol = observed
	ev.Quote.ReceivedAt = time.Now().Add(-40 * time.Millisecond).UnixNano() // 40 ms of queueing
	must(t, nc.Publish("bench.enriched.quote."+tok, ev.AppendMsgpack(nil)))
	raw := (&schemas.Event{ID: "d1", Kind: schemas.KindQuote, Type: schemas.TypeQuoteV1}).AppendMsgpack(nil)
	must(t, nc.Publish("bench.dlq.quote", schemas.AppendDeadLetter(nil, []schemas.FieldError{{Field: "bid", Code: "crossed_quote"}}, raw)))
	// naive: the same as JSON.
	must(t, nc.Publish("bench.enriched.trade."+tok, []byte(`{"specversion":"1.0","id":"e2","data":{"trade_id":"T1"}}`)))
	must(t, nc.Publish("bench.dlq.trade", []byte(`{"errors":[{"field":"size","code":"negative_size"}],"event":{"specversion":"1.0","id":"d2"}}`)))
	// An event of a symbol that is not observed never arrives.
	must(t, nc.Publish("bench.enriched.quote."+schemas.SymbolToken(inst[0].Symbol), ev.AppendMsgpack(nil)))
	accept("e1", false)
	accept("d1", true)
	accept("e2", false)
	accept("d2", true)
	accept("lost", false)
	must(t, nc.Flush())
	e := ob.settle(context.Background(), &s, 300*time.Millisecond, 5*time.Second)
	// The delay of the one timed event (the JSON one has no receive time).
	if e.Delay.Count != 1 || e.Delay.P50 < 40 || e.Delay.P50 > 5000 {
		t.Errorf("delay %+v: want one sample of at least 40 ms", e.Delay)
	}
	e.Delay, e.DelayHist = Latency{}, nil
	want := E2E{Accepted: 5, Sampled: 5, ExpectedRejected: 2, Enriched: 2, Rejected: 2, Missing: 1,
		SeenEnriched: 2, SeenRejected: 2}
	if e != want {
		t.Fatalf("got  %+v\nwant %+v", e, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestE2EAdd: the figures of several runs add up, their delays too (the
// rows of a scenario kept the first round's delays only).
func TestE2EAdd(t *testing.T) {
	run := func(accepted uint64, delays ...time.Duration) *E2E {
		h := NewHistogram()
		for _, d := range delays {
			recordLatency(h, d)
		}
		return &E2E{Accepted: accepted, Enriched: accepted, DelayHist: h, Delay: Summarize(h)}
	}
	var sum E2E
	sum.Add(run(3, 10*time.Millisecond, 10*time.Millisecond))
	sum.Add(run(2, 500*time.Millisecond))
	if sum.Accepted != 5 || sum.Enriched != 5 {
		t.Fatalf("counts %+v", sum)
	}
	if sum.Delay.Count != 3 || sum.Delay.Max < 499 {
		t.Fatalf("delay %+v: want 3 samples up to 500 ms", sum.Delay)
	}
}

func TestAddCounts(t *testing.T) {
	var m map[int]uint64
	m = AddCounts(m, map[int]uint64{202: 2})
	m = AddCounts(m, map[int]uint64{202: 1, 503: 4})
	if len(m) != 2 || m[202] != 3 || m[503] != 4 {
		t.Fatalf("%v", m)
	}
	if AddCounts[int](nil, nil) != nil {
		t.Fatal("made a map for nothing")
	}
}
