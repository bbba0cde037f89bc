package schemas_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// Fixed instants of the samples, so that encodings are stable.
var (
	sampleTime = time.Date(2025, 1, 2, 15, 4, 5, 123456789, time.UTC).UnixNano()
	sampleRecv = sampleTime + 250_000
	sampleTS   = sampleTime - 1_500_000
)

const allQuoteFields = schemas.FSymbol | schemas.FBid | schemas.FAsk | schemas.FBidSize | schemas.FAskSize | schemas.FVenue | schemas.FTS

const allTradeFields = schemas.FSymbol | schemas.FPrice | schemas.FSize | schemas.FVenue | schemas.FTS | schemas.FTradeID | schemas.FConditions

// sampleQuote is a complete, valid quote event that waits for a result.
func sampleQuote() schemas.Event {
	return schemas.Event{
		ID: "q-0001", Source: "/gateway/gw-1", Type: schemas.TypeQuoteV1, Subject: "AAPL",
		Time: sampleTime, ReceivedAt: sampleRecv, Corr: 42, Seq: 3,
		Kind: schemas.KindQuote, Known: true,
		Quote: schemas.Quote{
			Symbol: "AAPL", Bid: 189.5, Ask: 189.52, BidSize: 100, AskSize: 200,
			Venue: "XNAS", TS: sampleTS, Present: allQuoteFields,
		},
	}
}

// sampleTrade is a complete, valid trade event nobody waits for.
func sampleTrade() schemas.Event {
	return schemas.Event{
		ID: "t-0001", Source: "/gateway/gw-1", Type: schemas.TypeTradeV1, Subject: "BRK.B",
		Time: sampleTime, ReceivedAt: sampleRecv,
		Kind: schemas.KindTrade, Known: true,
		Trade: schemas.Trade{
			Symbol: "BRK.B", Price: 410.25, Size: 300, Venue: "XNYS", TS: sampleTS,
			TradeID: "T-77", Conditions: []string{"@", "F"}, Present: allTradeFields,
		},
	}
}

func sampleInstrument(symbol string) schemas.Instrument {
	return schemas.Instrument{
		Symbol: symbol, Name: "Apple Inc.", MIC: "XNAS", Currency: "USD",
		ISIN: "US0378331005", AssetClass: "equity", TickSize: 0.01, LotSize: 100,
	}
}

func sampleEnrichedQuote() schemas.Enriched {
	ev := sampleQuote()
	return schemas.Enriched{
		ID: ev.ID, Source: "/worker/enrich", Type: schemas.TypeQuoteEnrichedV1, Subject: ev.Subject,
		Time: sampleTime, Kind: schemas.KindQuote,
		Quote: schemas.EnrichedQuote{
			Quote: ev.Quote, Mid: 189.51, Spread: 0.02, SpreadBps: 0.02 / 189.51 * 1e4,
			Instrument: sampleInstrument("AAPL"), ReceivedAt: sampleRecv, EnrichedAt: sampleRecv + 40_000,
		},
	}
}

func sampleEnrichedTrade() schemas.Enriched {
	ev := sampleTrade()
	inst := sampleInstrument("BRK.B")
	inst.Name, inst.MIC, inst.ISIN = "Berkshire Hathaway Inc. Class B", "XNYS", "US0846707026"
	return schemas.Enriched{
		ID: ev.ID, Source: "/worker/enrich", Type: schemas.TypeTradeEnrichedV1, Subject: ev.Subject,
		Time: sampleTime, Kind: schemas.KindTrade,
		Trade: schemas.EnrichedTrade{
			Trade: ev.Trade, Notional: 123075, NotionalUSD: 123075,
			Instrument: inst, ReceivedAt: sampleRecv, EnrichedAt: sampleRecv + 40_000,
		},
	}
}

// encodeEvent appends ev to b.
func encodeEvent(ev schemas.Event, b []byte) []byte { return ev.AppendMsgpack(b) }

func decodeEvent(t testing.TB, b []byte) schemas.Event {
	t.Helper()
	var ev schemas.Event
	r := schemas.NewReader(b)
	if err := ev.DecodeMsgpack(&r); err != nil {
		t.Fatalf("DecodeMsgpack: %v\n% x", err, b)
	}
	if !r.Done() {
		t.Fatalf("DecodeMsgpack left %d bytes", len(r.Rest()))
	}
	return ev
}

// sameFloat compares floats by bits, so that NaN equals NaN and 0 is not -0.
func sameFloat(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

// sameStrings treats nil and empty alike: both encode as an empty array.
func sameStrings(a, b []string) bool { return len(a) == len(b) && (len(a) == 0 || slices.Equal(a, b)) }

func sameQuote(a, b *schemas.Quote) bool {
	x, y := *a, *b
	x.Bid, x.Ask, y.Bid, y.Ask = 0, 0, 0, 0
	return x == y && sameFloat(a.Bid, b.Bid) && sameFloat(a.Ask, b.Ask)
}

func sameTrade(a, b *schemas.Trade) bool {
	return a.Symbol == b.Symbol && sameFloat(a.Price, b.Price) && a.Size == b.Size && a.Venue == b.Venue &&
		a.TS == b.TS && a.TradeID == b.TradeID && sameStrings(a.Conditions, b.Conditions) &&
		a.Present == b.Present && a.Invalid == b.Invalid
}

// sameEvent compares every field of two events; payloads by value.
func sameEvent(a, b *schemas.Event) bool {
	return a.ID == b.ID && a.Source == b.Source && a.Type == b.Type && a.Subject == b.Subject &&
		a.Time == b.Time && a.DataSchema == b.DataSchema && a.ReceivedAt == b.ReceivedAt &&
		a.Corr == b.Corr && a.Seq == b.Seq && a.Kind == b.Kind && a.Known == b.Known &&
		sameQuote(&a.Quote, &b.Quote) && sameTrade(&a.Trade, &b.Trade)
}

func sameEnriched(a, b *schemas.Enriched) bool {
	qa, qb, ta, tb := a.Quote, b.Quote, a.Trade, b.Trade
	return a.ID == b.ID && a.Source == b.Source && a.Type == b.Type && a.Subject == b.Subject &&
		a.Time == b.Time && a.Kind == b.Kind &&
		sameQuote(&qa.Quote, &qb.Quote) && sameFloat(qa.Mid, qb.Mid) && sameFloat(qa.Spread, qb.Spread) &&
		sameFloat(qa.SpreadBps, qb.SpreadBps) && qa.Instrument == qb.Instrument &&
		qa.ReceivedAt == qb.ReceivedAt && qa.EnrichedAt == qb.EnrichedAt &&
		sameTrade(&ta.Trade, &tb.Trade) && sameFloat(ta.Notional, tb.Notional) &&
		sameFloat(ta.NotionalUSD, tb.NotionalUSD) && ta.Instrument == tb.Instrument &&
		ta.ReceivedAt == tb.ReceivedAt && ta.EnrichedAt == tb.EnrichedAt
}
