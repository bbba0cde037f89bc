package stream

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

func benchQuote(sym string) []byte {
	ev := schemas.Enriched{ID: "0123456789abcdef", Source: "/bench", Type: schemas.TypeQuoteEnrichedV1,
		Subject: sym, Time: 1, Kind: schemas.KindQuote}
	ev.Quote.Quote = schemas.Quote{Symbol: sym, Bid: 189.5, Ask: 189.52, BidSize: 100, AskSize: 200,
		Present: schemas.FSymbol | schemas.FBid | schemas.FAsk | schemas.FBidSize | schemas.FAskSize}
	ev.Quote.Mid, ev.Quote.Spread = 189.51, 0.02
	ev.Quote.Instrument = schemas.Instrument{Symbol: sym, Name: "Apple Inc.", MIC: "XNAS", Currency: "USD"}
	return ev.AppendMsgpack(nil)
}

// BenchmarkFanout measures the hub's work per received event: cache
// update, sequence, dedupe and the offers to n subscribers' queues (quotes,
// conflated, as when subscribers are slower than the feed).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			_, url := opstest.RunNATS(b)
			nc, err := nats.Connect(url)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			h, err := NewHub(Options{Conn: nc, Subjects: schemas.MustSubjects("b")})
			if err != nil {
				b.Fatal(err)
			}
			f := h.feeds[schemas.KindQuote]
			req := &request{kind: schemas.KindQuote, symbols: []string{"AAPL"}}
			for range n {
				if err := f.register(newQueue(true, 256), req); err != nil {
					b.Fatal(err)
				}
			}
			data := benchQuote("AAPL")
			idAt := len(data) - 8 // the last bytes differ per event (dedupe)
			m := &nats.Msg{Subject: "b.enriched.quote.AAPL", Data: data}
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := range b.N {
				binary.LittleEndian.PutUint64(data[idAt:], uint64(i))
				f.onMsg(m)
			}
		})
	}
}

// BenchmarkEncode measures framing one event for a subscriber, once its
// JSON form is made (once per event, for all subscribers).
func BenchmarkEncode(b *testing.B) {
	it := item{ev: &event{data: benchQuote("AAPL")}, seq: 12345, pos: 67890, replaced: 3}
	tok := Token{Stream: "core:sluice.enriched.quote", Epoch: 1_765_000_000_000_000_000, Pos: 67890}.Append(nil)
	for _, c := range []struct {
		name string
		f    format
	}{{"sse", formatSSE}, {"ndjson", formatNDJSON}, {"msgpack", formatWSMsgpack}} {
		b.Run(c.name, func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for range b.N {
				buf, _ = appendEvent(buf[:0], c.f, &it, tok)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// BenchmarkFanoutDurable is BenchmarkFanout for a durable type: the
// stream's consumer hands each stored event to the feed (onStored), which
// updates the cache and offers it to n subscribers' queues.
func BenchmarkFanoutDurable(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			_, url := opstest.RunNATS(b)
			nc, err := nats.Connect(url)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			subj := schemas.MustSubjects("b")
			r, err := NewJetStream(nc, subj, bus.AllModes(bus.ModeDurable))
			if err != nil {
				b.Fatal(err)
			}
			h, err := NewHub(Options{Conn: nc, Subjects: subj, Replayer: r})
			if err != nil {
				b.Fatal(err)
			}
			f := h.feeds[schemas.KindQuote]
			req := &request{kind: schemas.KindQuote, symbols: []string{"AAPL"}}
			for range n {
				f.registerLive(newQueue(true, 256), req)
			}
			data := benchQuote("AAPL")
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := range b.N {
				f.onStored(ReplayedEvent{Symbol: "AAPL", Data: data, Pos: uint64(i + 1)}, 1)
			}
		})
	}
}
