package workers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
	"github.com/sluice-dev/sluice/workers"
)

func TestValidQuoteIsEnriched(t *testing.T) {
	url := runNATS(t)
	set := metrics.NewSet()
	startWorker(t, url, workers.Options{Group: "quotes", Metrics: set})
	nc := connect(t, url)
	enriched := collect(t, nc, "sluice.enriched.quote.AAPL")
	reply, replies := inbox(t, nc)

	publishBatch(t, nc, schemas.KindQuote, reply, quote("q1", "AAPL", 189.98, 190.02, 7, 0))

	msgs := enriched.wait(t, 1)
	e := decodeEnriched(t, msgs[0].Data)
	q := e.Quote
	switch {
	case e.ID != "q1" || e.Type != schemas.TypeQuoteEnrichedV1 || e.Subject != "AAPL":
		t.Errorf("envelope = %q %q %q", e.ID, e.Type, e.Subject)
	case e.Source != "sluice/worker/quotes":
		t.Errorf("source = %q, want sluice/worker/quotes", e.Source)
	case !near(q.Mid, 190) || !near(q.Spread, 0.04) || !near(q.SpreadBps, 2.1053):
		t.Errorf("mid %v spread %v spread_bps %v", q.Mid, q.Spread, q.SpreadBps)
	case q.Instrument.Name != "Apple Inc." || q.Instrument.ISIN != "US0378331005" || q.Instrument.Currency != "USD":
		t.Errorf("instrument = %+v", q.Instrument)
	case q.Bid != 189.98 || q.Ask != 190.02 || q.BidSize != 100 || q.AskSize != 200 || q.Venue != "XNAS":
		t.Errorf("quote fields = %+v", q.Quote)
	case q.EnrichedAt != testNow || q.ReceivedAt != testNow-5e8:
		t.Errorf("enriched_at %d received_at %d", q.EnrichedAt, q.ReceivedAt)
	}

	res := waitReply(t, replies)
	if len(res) != 1 || res[0].Status != 200 || res[0].Corr != 7 || res[0].Seq != 0 {
		t.Fatalf("results = %+v", res)
	}
	if got := decodeEnriched(t, res[0].Event); got.ID != "q1" || !near(got.Quote.Mid, 190) {
		t.Errorf("result event = %+v", got)
	}

	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	for _, want := range []string{
		`sluice_worker_batches_total{group="quotes"} 1`,
		`sluice_worker_events_total{group="quotes",type="quote",outcome="enriched"} 1`,
		`sluice_worker_replies_total{group="quotes"} 1`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestCrossedQuoteIsDeadLettered(t *testing.T) {
	url := runNATS(t)
	w := startWorker(t, url, workers.Options{Group: "quotes"})
	nc := connect(t, url)
	dlq := collect(t, nc, "sluice.dlq.quote")
	enriched := collect(t, nc, "sluice.enriched.>")
	reply, replies := inbox(t, nc)

	ev := quote("bad1", "AAPL", 190.10, 190.00, 9, 3)
	publishBatch(t, nc, schemas.KindQuote, reply, ev)

	msgs := dlq.wait(t, 1)
	if got := msgs[0].Header.Get(schemas.HeaderReason); got != schemas.CodeCrossedQuote {
		t.Errorf("%s = %q, want %q", schemas.HeaderReason, got, schemas.CodeCrossedQuote)
	}
	d := decodeDeadLetter(t, msgs[0].Data)
	if len(d.Errors) != 1 || d.Errors[0].Code != schemas.CodeCrossedQuote || d.Errors[0].Field != "bid" {
		t.Errorf("errors = %+v", d.Errors)
	}
	if want := ev.AppendMsgpack(nil); !bytes.Equal(d.Event, want) {
		t.Errorf("dead letter event = %x, want the event as sent %x", d.Event, want)
	}

	res := waitReply(t, replies)
	if len(res) != 1 || res[0].Status != 422 || res[0].Corr != 9 || res[0].Seq != 3 ||
		len(res[0].Errors) != 1 || res[0].Errors[0].Code != schemas.CodeCrossedQuote {
		t.Fatalf("results = %+v", res)
	}
	settle(t, func() int { return int(w.Processed()) }, 1, nc)
	if n := len(enriched.Msgs()); n != 0 {
		t.Errorf("%d enriched events for a rejected quote", n)
	}
}

func TestReplyFrameHoldsOneResultPerWaitingEventInOrder(t *testing.T) {
	url := runNATS(t)
	startWorker(t, url, workers.Options{Group: "quotes"})
	nc := connect(t, url)
	reply, replies := inbox(t, nc)

	publishBatch(t, nc, schemas.KindQuote, reply,
		quote("a", "AAPL", 1, 2, 11, 0),
		quote("b", "MSFT", 3, 2, 11, 1), // crossed
		quote("c", "AAPL", 1, 2, 0, 0),  // nobody waits
		quote("d", "NOPE", 1, 2, 12, 0), // unknown instrument
		quote("e", "MSFT", 400, 401, 13, 5),
	)

	res := waitReply(t, replies)
	want := []struct {
		corr   uint64
		seq    uint32
		status int
		code   string
	}{
		{11, 0, 200, ""},
		{11, 1, 422, schemas.CodeCrossedQuote},
		{12, 0, 422, schemas.CodeUnknownInstrument},
		{13, 5, 200, ""},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(res), len(want), res)
	}
	for i, w := range want {
		r := res[i]
		if r.Corr != w.corr || r.Seq != w.seq || r.Status != w.status {
			t.Errorf("result %d = corr %d seq %d status %d, want %d %d %d", i, r.Corr, r.Seq, r.Status, w.corr, w.seq, w.status)
		}
		switch {
		case w.status == 200 && (len(r.Event) == 0 || len(r.Errors) != 0):
			t.Errorf("result %d: event %d bytes, errors %v", i, len(r.Event), r.Errors)
		case w.status == 422 && (len(r.Errors) == 0 || r.Errors[0].Code != w.code || r.Event != nil):
			t.Errorf("result %d: errors %+v, want code %s", i, r.Errors, w.code)
		}
	}
	noMore(t, nc, replies)
}

func TestNoReplyWithoutWaitingEvents(t *testing.T) {
	url := runNATS(t)
	w := startWorker(t, url, workers.Options{Group: "quotes"})
	nc := connect(t, url)
	reply, replies := inbox(t, nc)

	publishBatch(t, nc, schemas.KindQuote, reply, quote("a", "AAPL", 1, 2, 0, 0))
	settle(t, func() int { return int(w.Processed()) }, 1, nc)
	noMore(t, nc, replies)
	if s := w.Stats(); s.Replies != 0 || s.Enriched != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestSymbolWithDotMapsToSubjectToken(t *testing.T) {
	url := runNATS(t)
	startWorker(t, url, workers.Options{Group: "quotes"})
	nc := connect(t, url)
	all := collect(t, nc, "sluice.enriched.quote.>")

	publishBatch(t, nc, schemas.KindQuote, "", quote("b1", "BRK.B", 410.1, 410.3, 0, 0))

	msgs := all.wait(t, 1)
	if msgs[0].Subject != "sluice.enriched.quote.BRK_B" {
		t.Errorf("subject = %q, want sluice.enriched.quote.BRK_B", msgs[0].Subject)
	}
	if e := decodeEnriched(t, msgs[0].Data); e.Quote.Symbol != "BRK.B" || e.Quote.Instrument.MIC != "XNYS" {
		t.Errorf("enriched = %+v", e.Quote)
	}
}

func TestTradeInPenceGetsUSDNotional(t *testing.T) {
	url := runNATS(t)
	startWorker(t, url, workers.Options{Group: "trades"})
	nc := connect(t, url)
	enriched := collect(t, nc, "sluice.enriched.trade.VOD_L")

	publishBatch(t, nc, schemas.KindTrade, "", trade("t1", "VOD.L", "XLON", 72.5, 1000, 0, 0))

	e := decodeEnriched(t, enriched.wait(t, 1)[0].Data)
	tr := e.Trade
	switch {
	case e.Type != schemas.TypeTradeEnrichedV1 || e.Kind != schemas.KindTrade:
		t.Errorf("type %q kind %v", e.Type, e.Kind)
	case tr.Instrument.Currency != "GBX":
		t.Errorf("currency = %q, want GBX", tr.Instrument.Currency)
	case !near(tr.Notional, 72500) || !near(tr.NotionalUSD, 72500*0.0127):
		t.Errorf("notional %v notional_usd %v, want 72500 and %v", tr.Notional, tr.NotionalUSD, 72500*0.0127)
	case tr.TradeID != "t-t1" || len(tr.Conditions) != 1 || tr.Conditions[0] != "@":
		t.Errorf("trade fields = %+v", tr.Trade)
	}
}

func TestRejectionsGoToTheDeadLetterSubject(t *testing.T) {
	unknownVersion := quote("v2", "AAPL", 1, 2, 1, 1)
	unknownVersion.Type = "marketdata.quote.v2"
	noSize := quote("ns", "AAPL", 1, 2, 1, 2)
	noSize.Quote.Present &^= schemas.FBidSize

	for _, tc := range []struct {
		name string
		ev   *schemas.Event
		code string
	}{
		{"unknown instrument", quote("ui", "ZZZZ", 1, 2, 1, 0), schemas.CodeUnknownInstrument},
		{"unknown version", unknownVersion, schemas.CodeUnknownVersion},
		{"missing field", noSize, schemas.CodeMissingField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := runNATS(t)
			set := metrics.NewSet()
			startWorker(t, url, workers.Options{Group: "quotes", Metrics: set})
			nc := connect(t, url)
			dlq := collect(t, nc, "sluice.dlq.quote")
			reply, replies := inbox(t, nc)

			publishBatch(t, nc, schemas.KindQuote, reply, tc.ev)

			m := dlq.wait(t, 1)[0]
			if got := m.Header.Get(schemas.HeaderReason); got != tc.code {
				t.Errorf("reason = %q, want %q", got, tc.code)
			}
			if d := decodeDeadLetter(t, m.Data); len(d.Errors) == 0 || d.Errors[0].Code != tc.code || len(d.Event) == 0 {
				t.Errorf("dead letter = %+v", d)
			}
			res := waitReply(t, replies)
			if len(res) != 1 || res[0].Status != 422 || res[0].Errors[0].Code != tc.code {
				t.Errorf("results = %+v", res)
			}
			var buf bytes.Buffer
			set.WritePrometheus(&buf)
			want := `sluice_worker_rejected_total{group="quotes",type="quote",code="` + tc.code + `"} 1`
			if !strings.Contains(buf.String(), want) {
				t.Errorf("metrics lack %q", want)
			}
		})
	}
}

func TestBrokenFramesAreAnsweredAsFarAsDecodable(t *testing.T) {
	url := runNATS(t)
	w := startWorker(t, url, workers.Options{Group: "quotes"})
	nc := connect(t, url)
	dlq := collect(t, nc, "sluice.dlq.quote")
	enriched := collect(t, nc, "sluice.enriched.quote.>")
	reply, replies := inbox(t, nc)

	// An event whose data is a map with an integer key: the envelope
	// decodes, the data does not. It is rejected; the frame goes on.
	badData := schemas.AppendMapHeader(nil, 4)
	for _, kv := range [][2]string{{"id", "bd"}, {"type", schemas.TypeQuoteV1}} {
		badData = schemas.AppendString(badData, kv[0])
		badData = schemas.AppendString(badData, kv[1])
	}
	badData = schemas.AppendString(badData, "sluicecorr")
	badData = schemas.AppendUint(badData, 21)
	badData = schemas.AppendString(badData, "data")
	badData = append(badData, 0x81, 0x01, 0x02)

	good := quote("g1", "AAPL", 1, 2, 21, 1)
	data := schemas.BatchFrameHeader(nil)
	data = append(data, badData...)
	data = good.AppendMsgpack(data)
	data = append(data, 0xc1, 0xc1) // then garbage where the third event should be
	schemas.FinishBatchFrame(data, 3)
	publishFrame(t, nc, schemas.KindQuote, reply, data, 3)

	res := waitReply(t, replies)
	if len(res) != 2 || res[0].Status != 422 || res[0].Errors[0].Field != "event" ||
		res[0].Errors[0].Code != schemas.CodeInvalidField || res[1].Status != 200 || res[1].Seq != 1 {
		t.Fatalf("results = %+v", res)
	}
	dlq.wait(t, 1)
	enriched.wait(t, 1)

	// Not even a frame: nothing to answer, counted.
	publishFrame(t, nc, schemas.KindQuote, reply, []byte("not msgpack"), 1)
	settle(t, func() int { return int(w.Stats().Batches) }, 2, nc)
	if s := w.Stats(); s.DecodeErrors != 3 || s.Enriched != 1 || s.Rejected != 1 {
		t.Errorf("stats = %+v, want 3 decode errors, 1 enriched, 1 rejected", s)
	}
	noMore(t, nc, replies)
}

func TestGroupMembersSplitBatches(t *testing.T) {
	url := runNATS(t)
	w1 := startWorker(t, url, workers.Options{Group: "quotes", Concurrency: 2})
	w2 := startWorker(t, url, workers.Options{Group: "quotes", Concurrency: 2})
	nc := connect(t, url)
	enriched := collect(t, nc, "sluice.enriched.quote.>")

	const batches, perBatch = 200, 5
	syms := []string{"AAPL", "MSFT", "BRK.B", "NVDA", "AMZN"}
	for i := range batches {
		evs := make([]*schemas.Event, perBatch)
		for j := range evs {
			evs[j] = quote(fmt.Sprintf("e-%d-%d", i, j), syms[j], 100, 100.5, 0, 0)
		}
		publishBatch(t, nc, schemas.KindQuote, "", evs...)
	}
	msgs := enriched.wait(t, batches*perBatch)
	seen := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		id := decodeEnriched(t, m.Data).ID
		if seen[id] {
			t.Fatalf("event %s enriched twice", id)
		}
		seen[id] = true
	}
	p1, p2 := w1.Processed(), w2.Processed()
	if p1 == 0 || p2 == 0 || p1+p2 != batches*perBatch {
		t.Errorf("processed %d and %d, want both > 0 and %d in all", p1, p2, batches*perBatch)
	}
	if b1, b2 := w1.Stats().Batches, w2.Stats().Batches; b1+b2 != batches {
		t.Errorf("batches %d + %d, want %d", b1, b2, batches)
	}
}

func TestReferenceDataChangesReachTheNextBatch(t *testing.T) {
	url := runNATS(t)
	enr := sampleEnricher()
	startWorker(t, url, workers.Options{Group: "quotes", Enricher: enr})
	nc := connect(t, url)
	reply, replies := inbox(t, nc)

	publishBatch(t, nc, schemas.KindQuote, reply, quote("n1", "NEWCO", 10, 11, 1, 0))
	if res := waitReply(t, replies); res[0].Status != 422 || res[0].Errors[0].Code != schemas.CodeUnknownInstrument {
		t.Fatalf("before the change: %+v", res)
	}

	enr.Store.PutInstrument(schemas.Instrument{Symbol: "NEWCO", Name: "New Co", MIC: "XNAS", Currency: "USD", ISIN: "US0000000001", AssetClass: "equity", TickSize: 0.01, LotSize: 1})
	apple, _ := enr.Store.Instrument("AAPL")
	renamed := *apple
	renamed.Name = "Apple (renamed)"
	enr.Store.PutInstrument(renamed)

	publishBatch(t, nc, schemas.KindQuote, reply, quote("n2", "NEWCO", 10, 11, 2, 0), quote("a2", "AAPL", 10, 11, 2, 1))
	res := waitReply(t, replies)
	if len(res) != 2 || res[0].Status != 200 || res[1].Status != 200 {
		t.Fatalf("after the change: %+v", res)
	}
	if e := decodeEnriched(t, res[0].Event); e.Quote.Instrument.Name != "New Co" {
		t.Errorf("NEWCO instrument = %+v", e.Quote.Instrument)
	}
	if e := decodeEnriched(t, res[1].Event); e.Quote.Instrument.Name != "Apple (renamed)" {
		t.Errorf("AAPL instrument = %+v", e.Quote.Instrument)
	}
}

// gate is a stage that holds every batch until opened, and counts the
// batches that reached it.
type gate struct {
	open    chan struct{}
	entered atomic.Int64
	once    sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) Process(ctx context.Context, _ *workers.Batch) error {
	g.entered.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
	}
	return nil
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func TestShutdownDrainsEveryReceivedBatch(t *testing.T) {
	url := runNATS(t)
	g := newGate()
	wnc := connect(t, url)
	enr := sampleEnricher()
	w, err := workers.New(workers.Options{
		Conn: wnc, Group: "quotes", Enricher: enr, Concurrency: 2, QueueLen: 4,
		Stages: []workers.Stage{g}, Now: func() int64 { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	nc := connect(t, url)
	enriched := collect(t, nc, "sluice.enriched.quote.>")

	const batches, perBatch = 50, 4
	for i := range batches {
		evs := make([]*schemas.Event, perBatch)
		for j := range evs {
			evs[j] = quote(fmt.Sprintf("s-%d-%d", i, j), "AAPL", 1, 2, 0, 0)
		}
		publishBatch(t, nc, schemas.KindQuote, "", evs...)
	}
	if err := nc.Flush(); err != nil { // the server has every batch
		t.Fatal(err)
	}
	// Both goroutines hold a batch, the queue and the subscription the rest.
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if n := g.entered.Load(); n != 2 {
			return fmt.Errorf("%d batches in the stage, want 2", n)
		}
		return nil
	})

	done := make(chan error, 1)
	go func() { done <- w.Shutdown(context.Background()) }()
	// Shutdown is waiting for the held batches; nothing comes out before
	// the gate opens.
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with batches held", err)
	default:
	}
	g.release()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := w.Processed(); got != batches*perBatch {
		t.Errorf("processed %d events, want %d", got, batches*perBatch)
	}
	// Shutdown flushed: the server has every enriched event.
	enriched.wait(t, batches*perBatch)
	if err := w.Start(); !errors.Is(err, workers.ErrShutdown) {
		t.Errorf("Start after Shutdown = %v, want ErrShutdown", err)
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
}

func TestShutdownGivesUpWhenTheContextEnds(t *testing.T) {
	url := runNATS(t)
	g := newGate()
	defer g.release()
	set := metrics.NewSet()
	w, err := workers.New(workers.Options{
		Conn: connect(t, url), Group: "quotes", Enricher: sampleEnricher(), Concurrency: 1,
		Stages: []workers.Stage{g}, Metrics: set, Now: func() int64 { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	nc := connect(t, url)
	for i := range 5 {
		publishBatch(t, nc, schemas.KindQuote, "", quote(fmt.Sprint(i), "AAPL", 1, 2, 0, 0))
	}
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if g.entered.Load() != 1 || w.Stats().Queued != 4 {
			return fmt.Errorf("entered %d queued %d", g.entered.Load(), w.Stats().Queued)
		}
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	// The held batch sees its context cancelled and completes; the four
	// queued ones are skipped.
	if err := w.Shutdown(waitCtx(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Shutdown = %v, want the first one's result", err)
	}
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	if want := `sluice_worker_abandoned_batches_total{group="quotes"} 4`; !strings.Contains(buf.String(), want) {
		t.Errorf("metrics lack %q:\n%s", want, buf.String())
	}
	if p := w.Processed(); p != 1 {
		t.Errorf("processed %d, want the 1 batch in progress", p)
	}
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func TestSlowConsumerDropsAreCounted(t *testing.T) {
	url := runNATS(t)
	g := newGate()
	defer g.release()
	set := metrics.NewSet()
	wnc := connect(t, url)
	w, err := workers.New(workers.Options{
		Conn: wnc, Group: "quotes", Enricher: sampleEnricher(),
		Concurrency: 1, QueueLen: 1, PendingMsgs: 1,
		Stages: []workers.Stage{g}, Metrics: set, Now: func() int64 { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	nc := connect(t, url)
	const batches = 20
	for i := range batches {
		publishBatch(t, nc, schemas.KindQuote, "", quote(fmt.Sprint(i), "AAPL", 1, 2, 0, 0))
	}
	// Once both connections made a round trip, the worker's client has
	// seen every batch: held, queued, pending or dropped.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, waitFor, pollEvery, func() error {
		if g.entered.Load() != 1 {
			return errors.New("no batch in the stage yet")
		}
		return nil
	})
	if err := wnc.Flush(); err != nil {
		t.Fatal(err)
	}
	g.release()
	if err := w.Shutdown(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	s := w.Stats()
	if s.Dropped == 0 || s.Dropped+w.Processed() != batches {
		t.Errorf("dropped %d + processed %d, want > 0 dropped and %d in all", s.Dropped, w.Processed(), batches)
	}
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	if want := fmt.Sprintf(`sluice_worker_slow_consumer_drops_total{group="quotes"} %d`, s.Dropped); !strings.Contains(buf.String(), want) {
		t.Errorf("metrics lack %q", want)
	}
}

func TestStagesCanRejectEvents(t *testing.T) {
	url := runNATS(t)
	noPennies := workers.StageFunc(func(_ context.Context, b *workers.Batch) error {
		for i := range b.Len() {
			if !b.Rejected(i) && b.Enriched(i).Quote.Mid < 1 {
				b.Reject(i, schemas.FieldError{Field: "bid", Code: "penny_quote", Detail: "mid below 1"})
			}
		}
		return nil
	})
	set := metrics.NewSet()
	startWorker(t, url, workers.Options{Group: "quotes", Stages: []workers.Stage{noPennies}, Metrics: set})
	nc := connect(t, url)
	dlq := collect(t, nc, "sluice.dlq.quote")
	reply, replies := inbox(t, nc)

	publishBatch(t, nc, schemas.KindQuote, reply, quote("p", "AAPL", 0.5, 0.6, 1, 0), quote("ok", "AAPL", 5, 6, 1, 1))
	res := waitReply(t, replies)
	if len(res) != 2 || res[0].Status != 422 || res[0].Errors[0].Code != "penny_quote" || res[1].Status != 200 {
		t.Fatalf("results = %+v", res)
	}
	if got := dlq.wait(t, 1)[0].Header.Get(schemas.HeaderReason); got != "penny_quote" {
		t.Errorf("reason = %q", got)
	}
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	if want := `sluice_worker_rejected_total{group="quotes",type="quote",code="other"} 1`; !strings.Contains(buf.String(), want) {
		t.Errorf("metrics lack %q", want)
	}
}

func TestStageErrorAbandonsTheBatch(t *testing.T) {
	url := runNATS(t)
	fail := workers.StageFunc(func(context.Context, *workers.Batch) error { return errors.New("boom") })
	w := startWorker(t, url, workers.Options{Group: "quotes", Stages: []workers.Stage{fail}})
	nc := connect(t, url)
	all := collect(t, nc, "sluice.>")
	reply, replies := inbox(t, nc)

	publishBatch(t, nc, schemas.KindQuote, reply, quote("x", "AAPL", 1, 2, 1, 0))
	settle(t, func() int { return int(w.Stats().Batches) }, 1, nc)
	noMore(t, nc, replies)
	for _, m := range all.Msgs() {
		// Load reports go out every 100 ms whatever the batches do.
		if !strings.HasPrefix(m.Subject, "sluice.ingest.") && !strings.HasPrefix(m.Subject, "sluice.load.") {
			t.Errorf("published %s for an abandoned batch", m.Subject)
		}
	}
}

func TestMetricsArePreCreated(t *testing.T) {
	url := runNATS(t)
	set := metrics.NewSet()
	startWorker(t, url, workers.Options{Group: "trades", Metrics: set})
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	out := buf.String()
	want := []string{
		`sluice_worker_batches_total{group="trades"} 0`,
		`sluice_worker_events_total{group="trades",type="trade",outcome="enriched"} 0`,
		`sluice_worker_events_total{group="trades",type="trade",outcome="rejected"} 0`,
		`sluice_worker_replies_total{group="trades"} 0`,
		`sluice_worker_decode_errors_total{group="trades"} 0`,
		`sluice_worker_slow_consumer_drops_total{group="trades"} 0`,
		`sluice_worker_inflight_batches{group="trades"} 0`,
	}
	for _, code := range []string{
		schemas.CodeMissingField, schemas.CodeInvalidField, schemas.CodeCrossedQuote, schemas.CodeNonPositivePrice,
		schemas.CodeNegativeSize, schemas.CodeStale, schemas.CodeFutureTimestamp, schemas.CodeUnknownInstrument,
		schemas.CodeUnknownVersion,
	} {
		want = append(want, `sluice_worker_rejected_total{group="trades",type="trade",code="`+code+`"} 0`)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}

func TestCustomPrefixAndGroup(t *testing.T) {
	url := runNATS(t)
	subs := schemas.MustSubjects("cell1.sluice")
	startWorker(t, url, workers.Options{Group: "everything", Kinds: []schemas.Kind{schemas.KindQuote, schemas.KindTrade}, Subjects: subs})
	nc := connect(t, url)
	all := collect(t, nc, "cell1.sluice.enriched.>")

	for _, m := range []struct {
		subj string
		ev   *schemas.Event
	}{
		{subs.Ingest(schemas.KindQuote), quote("q", "AAPL", 1, 2, 0, 0)},
		{subs.Ingest(schemas.KindTrade), trade("t", "AAPL", "XNAS", 190, 10, 0, 0)},
	} {
		if err := nc.Publish(m.subj, frame(m.ev)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for _, m := range all.wait(t, 2) {
		got[m.Subject] = true
	}
	if !got["cell1.sluice.enriched.quote.AAPL"] || !got["cell1.sluice.enriched.trade.AAPL"] {
		t.Errorf("subjects = %v", got)
	}
}

func TestLifecycleErrors(t *testing.T) {
	url := runNATS(t)
	w := startWorker(t, url, workers.Options{Group: "quotes"})
	if err := w.Start(); !errors.Is(err, workers.ErrStarted) {
		t.Errorf("second Start = %v, want ErrStarted", err)
	}
	idle, err := workers.New(workers.Options{Conn: connect(t, url), Group: "quotes", Enricher: sampleEnricher()})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown before Start = %v", err)
	}
	if err := idle.Start(); !errors.Is(err, workers.ErrShutdown) {
		t.Errorf("Start after Shutdown = %v, want ErrShutdown", err)
	}
}

func TestStartFailsOnClosedConnection(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	nc.Close()
	w, err := workers.New(workers.Options{Conn: nc, Group: "quotes", Enricher: sampleEnricher()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err == nil {
		t.Fatal("Start on a closed connection succeeded")
	}
	if err := w.Shutdown(context.Background()); err == nil {
		t.Error("Shutdown after a failed Start should report the Start error")
	}
}

func TestConnectionClosedUnderTheWorker(t *testing.T) {
	url := runNATS(t)
	wnc := connect(t, url)
	w, err := workers.New(workers.Options{Conn: wnc, Group: "quotes", Enricher: sampleEnricher()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	wnc.Close()
	err = w.Shutdown(waitCtx(t))
	if err == nil || !strings.Contains(err.Error(), "flushing") {
		t.Errorf("Shutdown = %v, want a flush error", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	url := runNATS(t)
	nc := connect(t, url)
	enr := sampleEnricher()
	f := func(name string, mod func(*workers.Options), wantErr string) {
		t.Helper()
		o := workers.Options{Conn: nc, Group: "quotes", Enricher: enr}
		mod(&o)
		err := o.Validate()
		if wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			return
		}
		if !errors.Is(err, workers.ErrInvalidOptions) || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: err = %v, want ErrInvalidOptions with %q", name, err, wantErr)
		}
		if _, err := workers.New(o); !errors.Is(err, workers.ErrInvalidOptions) {
			t.Errorf("%s: New err = %v", name, err)
		}
	}
	f("defaults", func(*workers.Options) {}, "")
	f("custom group with kinds", func(o *workers.Options) { o.Group = "all-md_1"; o.Kinds = schemas.Kinds }, "")
	f("no conn", func(o *workers.Options) { o.Conn = nil }, "Conn")
	f("no enricher", func(o *workers.Options) { o.Enricher = nil }, "Enricher")
	f("no store", func(o *workers.Options) { o.Enricher = &enrich.Enricher{} }, "Enricher")
	f("no group", func(o *workers.Options) { o.Group = "" }, "Group")
	f("group with dot", func(o *workers.Options) { o.Group = "a.b" }, "Group")
	f("custom group without kinds", func(o *workers.Options) { o.Group = "other" }, "Kinds")
	f("unknown kind", func(o *workers.Options) { o.Kinds = []schemas.Kind{schemas.KindUnknown} }, "unknown kind")
	f("kind twice", func(o *workers.Options) { o.Kinds = []schemas.Kind{schemas.KindQuote, schemas.KindQuote} }, "twice")
	f("negative concurrency", func(o *workers.Options) { o.Concurrency = -1 }, "Concurrency")
	f("negative queue", func(o *workers.Options) { o.QueueLen = -1 }, "QueueLen")
	f("nil stage", func(o *workers.Options) { o.Stages = []workers.Stage{nil} }, "Stages[0]")
	f("negative stage delay", func(o *workers.Options) { o.StageDelay = -time.Millisecond }, "StageDelay")
	f("negative stage cost", func(o *workers.Options) { o.StageCost = -time.Millisecond }, "StageCost")
}

// TestReplyInboxFromHeader: a core batch's results go to the inbox in its
// Sluice-Reply header when it has one, not to the message's reply subject
// (which a gateway keeps for done frames and no-responders notices).
func TestReplyInboxFromHeader(t *testing.T) {
	url := runNATS(t)
	startWorker(t, url, workers.Options{Group: "quotes"})
	nc := connect(t, url)
	header, fromHeader := inbox(t, nc)
	replySubj, fromReply := inbox(t, nc)
	m := &nats.Msg{Subject: subjects.Ingest(schemas.KindQuote), Reply: replySubj,
		Data: frame(quote("q1", "AAPL", 189.98, 190.02, 7, 0)),
		Header: nats.Header{
			schemas.HeaderFrame: {schemas.FrameBatchV1},
			schemas.HeaderCount: {"1"},
			schemas.HeaderReply: {header},
		}}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if res := waitReply(t, fromHeader); len(res) != 1 || res[0].Status != 200 {
		t.Fatalf("results %+v", res)
	}
	for {
		m, err := fromReply.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		if m.Header.Get(schemas.HeaderFrame) == schemas.FrameReplyV1 {
			t.Fatal("a reply frame went to the message's reply subject")
		}
	}
}
