package workers

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

var benchNow = time.Date(2025, 6, 2, 14, 30, 0, 0, time.UTC).UnixNano()

// discard is a publisher that drops everything: the worker path without
// NATS.
type discard struct{ msgs, bytes int }

func (d *discard) Publish(_ string, data []byte) error {
	d.msgs++
	d.bytes += len(data)
	return nil
}

func (d *discard) PublishMsg(m *nats.Msg) error { return d.Publish(m.Subject, m.Data) }

func (d *discard) MaxPayload() int64 { return 1 << 20 }

// benchSymbols returns n symbols of the sample reference data, with
// currency USD for trades to have a rate.
func benchSymbols(n int) []string {
	rd := enrich.Sample()
	syms := make([]string, 0, n)
	for _, in := range rd.Instruments {
		if len(syms) == n {
			break
		}
		syms = append(syms, in.Symbol)
	}
	return syms
}

// benchFrame builds a batch frame of n events of kind over 50 symbols.
// Every rejectEvery-th event is a crossed quote or a negative-price trade
// (0: none); every event waits for a result when corr is set.
func benchFrame(kind schemas.Kind, n, rejectEvery int, corr bool) []byte {
	return benchFrameConds(kind, n, rejectEvery, corr, nil)
}

// benchFrameConds is benchFrame with trade conditions.
func benchFrameConds(kind schemas.Kind, n, rejectEvery int, corr bool, conds []string) []byte {
	syms := benchSymbols(50)
	b := schemas.BatchFrameHeader(nil)
	for i := range n {
		ev := schemas.Event{
			ID: fmt.Sprintf("0192b3c4-d5e6-7f80-9a0b-%012d", i), Source: "sluice/gateway/bench",
			Subject: syms[i%len(syms)], Time: benchNow - 1e6, ReceivedAt: benchNow - 1e6, Kind: kind, Known: true,
		}
		if corr {
			ev.Corr, ev.Seq = uint64(1000+i), uint32(i)
		}
		bad := rejectEvery > 0 && i%rejectEvery == rejectEvery-1
		switch kind {
		case schemas.KindQuote:
			ev.Type = schemas.TypeQuoteV1
			ev.Quote = schemas.Quote{Symbol: ev.Subject, Bid: 100.01, Ask: 100.03, BidSize: 300, AskSize: 500,
				Venue: "XNAS", TS: benchNow - 2e6,
				Present: schemas.FSymbol | schemas.FBid | schemas.FAsk | schemas.FBidSize | schemas.FAskSize | schemas.FVenue | schemas.FTS}
			if bad {
				ev.Quote.Bid = 101
			}
		case schemas.KindTrade:
			ev.Type = schemas.TypeTradeV1
			ev.Trade = schemas.Trade{Symbol: ev.Subject, Price: 100.02, Size: 200, Venue: "XNAS", TS: benchNow - 2e6,
				TradeID: fmt.Sprint(i), Present: schemas.FSymbol | schemas.FPrice | schemas.FSize | schemas.FVenue | schemas.FTS | schemas.FTradeID}
			if conds != nil {
				ev.Trade.Conditions = conds
				ev.Trade.Present |= schemas.FConditions
			}
			if bad {
				ev.Trade.Price = -1
			}
		}
		b = ev.AppendMsgpack(b)
	}
	schemas.FinishBatchFrame(b, n)
	return b
}

func benchOptions(group string) Options {
	store := enrich.NewStore()
	store.Replace(enrich.Sample())
	o := Options{Group: group, Enricher: &enrich.Enricher{Store: store}, Now: func() int64 { return benchNow }}
	o.setDefaults()
	return o
}

// BenchmarkProcess measures the worker path without NATS: decode a frame of
// 100 events, validate, enrich, encode each enriched event and look up its
// subject (and the dead letters and reply frame where the case has them).
// One op is one event.
func BenchmarkProcess(b *testing.B) {
	const perFrame = 100
	for _, bc := range []struct {
		name        string
		group       string
		kind        schemas.Kind
		rejectEvery int
		reply       bool
		conds       []string
	}{
		{"quotes", "quotes", schemas.KindQuote, 0, false, nil},
		{"trades", "trades", schemas.KindTrade, 0, false, nil},
		{"trades-conditions", "trades", schemas.KindTrade, 0, false, []string{"@", "F"}},
		{"quotes-reply", "quotes", schemas.KindQuote, 0, true, nil},
		{"quotes-10pct-rejected", "quotes", schemas.KindQuote, 10, false, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := benchOptions(bc.group)
			pl := newPipeline(&opts)
			pub := &discard{}
			p := newProcessor(context.Background(), pl, pub)
			msg := &nats.Msg{Subject: opts.Subjects.Ingest(bc.kind), Data: benchFrameConds(bc.kind, perFrame, bc.rejectEvery, bc.reply, bc.conds)}
			if bc.reply {
				msg.Reply = "_INBOX.bench.1"
			}
			ks := pl.kinds[bc.kind]
			p.handle(msg, ks) // warm the buffers and the subject cache
			b.SetBytes(int64(len(msg.Data) / perFrame))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += perFrame {
				p.handle(msg, ks)
			}
			b.StopTimer()
			if got := pl.enriched.Load() + pl.rejected.Load(); got < uint64(b.N) {
				b.Fatalf("processed %d events, want >= %d", got, b.N)
			}
		})
	}
}

// BenchmarkEndToEnd measures a worker on a real (embedded) NATS server:
// frames of 100 quotes published on one connection and processed by a
// worker on another; with a subscriber, the enriched events are received on
// a third. One op is one event. Allocations count the whole process: NATS
// server, publisher, subscriber and worker.
func BenchmarkEndToEnd(b *testing.B) {
	b.Run("subscriber", func(b *testing.B) { benchEndToEnd(b, true) })
	b.Run("no-subscriber", func(b *testing.B) { benchEndToEnd(b, false) })
}

func benchEndToEnd(b *testing.B, subscribe bool) {
	const perFrame, window = 100, 200 // frames in flight at most
	_, url := opstest.RunNATS(b)
	conn := func() *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	opts := benchOptions("quotes")
	opts.Conn = conn()
	w, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Shutdown(context.Background()) })

	var received atomic.Int64
	done := func() int64 { return int64(w.Processed()) }
	if subscribe {
		sc := conn()
		sub, err := sc.Subscribe(opts.Subjects.EnrichedAll(), func(*nats.Msg) { received.Add(1) })
		if err != nil {
			b.Fatal(err)
		}
		_ = sub.SetPendingLimits(-1, -1)
		if err := sc.Flush(); err != nil {
			b.Fatal(err)
		}
		done = received.Load
	}

	pc := conn()
	data := benchFrame(schemas.KindQuote, perFrame, 0, false)
	subj := opts.Subjects.Ingest(schemas.KindQuote)
	frames := (b.N + perFrame - 1) / perFrame
	want := int64(frames * perFrame)
	b.SetBytes(int64(len(data) / perFrame))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range frames {
		for int64(i-window)*perFrame > done() {
			time.Sleep(20 * time.Microsecond) // pacing: keep the pipeline under its limits
		}
		if err := pc.Publish(subj, data); err != nil {
			b.Fatal(err)
		}
	}
	opstest.CheckFor(b, time.Minute, 100*time.Microsecond, func() error {
		if n := done(); n < want {
			return fmt.Errorf("%d of %d events done (worker: %+v)", n, want, w.Stats())
		}
		return nil
	})
}
