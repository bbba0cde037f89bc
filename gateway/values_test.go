package gateway

import (
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// Test values shared by the gateway's tests; package decode's tests have
// their own.

const allQuote = schemas.FSymbol | schemas.FBid | schemas.FAsk | schemas.FBidSize | schemas.FAskSize | schemas.FVenue | schemas.FTS

var (
	tsTime  = time.Date(2025, 1, 2, 15, 4, 5, 121956789, time.UTC)
	tsNanos = tsTime.UnixNano()
)

// aapl is the quote of aaplJSON.
var aapl = schemas.Quote{Symbol: "AAPL", Bid: 189.5, Ask: 189.52, BidSize: 100, AskSize: 200,
	Venue: "XNAS", TS: tsNanos, Present: allQuote}

const aaplJSON = `{"symbol":"AAPL","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200,"venue":"XNAS","ts":"2025-01-02T15:04:05.121956789Z"}`

func plainQuote(q schemas.Quote) schemas.Event {
	return schemas.Event{Kind: schemas.KindQuote, Known: true, Type: schemas.TypeQuoteV1, Quote: q}
}

func sym(s string) schemas.Quote { return schemas.Quote{Symbol: s, Present: schemas.FSymbol} }

func msgpackQuote() []byte {
	b := schemas.AppendMapHeader(nil, 8)
	b = schemas.AppendString(b, "symbol")
	b = schemas.AppendString(b, "AAPL")
	b = schemas.AppendString(b, "bid")
	b = schemas.AppendFloat64(b, 189.5)
	b = schemas.AppendString(b, "ask")
	b = schemas.AppendFloat64(b, 189.52)
	b = schemas.AppendString(b, "bid_size")
	b = schemas.AppendInt(b, 100)
	b = schemas.AppendString(b, "ask_size")
	b = schemas.AppendInt(b, 200)
	b = schemas.AppendString(b, "venue")
	b = schemas.AppendString(b, "XNAS")
	b = schemas.AppendString(b, "ts")
	b = schemas.AppendTimestamp(b, tsNanos)
	b = schemas.AppendString(b, "unknown")
	b = schemas.AppendArrayHeader(b, 2)
	b = schemas.AppendNil(b)
	b = schemas.AppendBool(b, true)
	return b
}
