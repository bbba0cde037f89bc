package schemas

import "strings"

// Kind names an event type independently of its version.
type Kind uint8

// The event kinds sluice knows.
const (
	KindUnknown Kind = iota
	KindQuote
	KindTrade
)

// Kinds lists every known kind, in a stable order.
var Kinds = []Kind{KindQuote, KindTrade}

// String returns the kind's name as used in paths and subjects: "quote", "trade".
func (k Kind) String() string {
	switch k {
	case KindQuote:
		return "quote"
	case KindTrade:
		return "trade"
	}
	return "unknown"
}

// ParseKind maps a kind name ("quote", "trade") to its Kind.
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "quote":
		return KindQuote, true
	case "trade":
		return KindTrade, true
	}
	return KindUnknown, false
}

// CloudEvents types. The version is explicit: a worker rejects a version it
// does not know with [CodeUnknownVersion].
const (
	Domain              = "marketdata"
	TypeQuoteV1         = "marketdata.quote.v1"
	TypeTradeV1         = "marketdata.trade.v1"
	TypeQuoteEnrichedV1 = "marketdata.quote.enriched.v1"
	TypeTradeEnrichedV1 = "marketdata.trade.enriched.v1"
	SpecVersion         = "1.0"
	// ContentTypeMsgpack is the datacontenttype of events on NATS.
	ContentTypeMsgpack = "application/msgpack"
)

// CEType returns the current (v1) CloudEvents type of k.
func (k Kind) CEType() string {
	switch k {
	case KindQuote:
		return TypeQuoteV1
	case KindTrade:
		return TypeTradeV1
	}
	return ""
}

// EnrichedType returns the CloudEvents type of k's enriched event.
func (k Kind) EnrichedType() string {
	switch k {
	case KindQuote:
		return TypeQuoteEnrichedV1
	case KindTrade:
		return TypeTradeEnrichedV1
	}
	return ""
}

// ParseType splits a CloudEvents type of the form "marketdata.<kind>.v<N>"
// into its kind and whether the version is one this build knows. A type of
// another domain or shape returns ok false.
func ParseType(t string) (k Kind, known bool, ok bool) {
	switch t {
	case TypeQuoteV1:
		return KindQuote, true, true
	case TypeTradeV1:
		return KindTrade, true, true
	}
	rest, found := strings.CutPrefix(t, Domain+".")
	if !found {
		return KindUnknown, false, false
	}
	name, ver, found := strings.Cut(rest, ".")
	if !found || len(ver) < 2 || ver[0] != 'v' {
		return KindUnknown, false, false
	}
	for _, c := range ver[1:] {
		if c < '0' || c > '9' {
			return KindUnknown, false, false
		}
	}
	k, ok = ParseKind(name)
	return k, false, ok
}

// Field presence bits, used by [Quote.Present] and [Trade.Present] to tell a
// missing field from a zero one, and by Invalid to mark a field whose value
// had the wrong type.
const (
	FSymbol uint16 = 1 << iota
	FBid
	FAsk
	FBidSize
	FAskSize
	FVenue
	FTS
	FPrice
	FSize
	FTradeID
	FConditions
)

// Quote is the payload of marketdata.quote.v1.
type Quote struct {
	Symbol  string
	Bid     float64
	Ask     float64
	BidSize int64
	AskSize int64
	Venue   string // MIC, optional
	TS      int64  // exchange time, Unix nanoseconds
	// Present has a bit per field that the producer set.
	Present uint16
	// Invalid has a bit per field whose value had the wrong type; such a
	// field travels as nil and is rejected with [CodeInvalidField].
	Invalid uint16
}

// Trade is the payload of marketdata.trade.v1.
type Trade struct {
	Symbol     string
	Price      float64
	Size       int64
	Venue      string
	TS         int64 // exchange time, Unix nanoseconds
	TradeID    string
	Conditions []string
	Present    uint16
	Invalid    uint16
}

// Instrument is the reference data of one listing.
type Instrument struct {
	Symbol     string  `json:"symbol"`
	Name       string  `json:"name"`
	MIC        string  `json:"mic"`
	Currency   string  `json:"currency"`
	ISIN       string  `json:"isin"`
	AssetClass string  `json:"asset_class"`
	TickSize   float64 `json:"tick_size"`
	LotSize    int64   `json:"lot_size"`
}

// FXRate is the value of one unit of Currency in US dollars.
type FXRate struct {
	Currency string  `json:"currency"`
	USDRate  float64 `json:"usd_rate"`
}

// Event is one market-data event inside the CloudEvents envelope, as the
// gateway puts it in a batch frame and a worker reads it.
type Event struct {
	ID      string
	Source  string
	Type    string // e.g. marketdata.quote.v1
	Subject string // the instrument symbol
	Time    int64  // Unix nanoseconds
	// DataSchema is the optional dataschema attribute.
	DataSchema string
	// ReceivedAt is when the gateway received the event (extension sluicerecv).
	ReceivedAt int64
	// Corr correlates a result with a waiting request (extension sluicecorr);
	// zero means nobody waits.
	Corr uint64
	// Seq is the event's index inside its request (extension sluiceseq).
	Seq uint32
	// TraceParent and TraceState are the W3C trace context of the event
	// (the CloudEvents distributed-tracing extension attributes traceparent
	// and tracestate); empty when the event has none. See [ValidTraceParent].
	TraceParent string
	TraceState  string
	// Kind is derived from Type by decoders; for an unknown version it is
	// the kind named in Type and Known is false.
	Kind  Kind
	Known bool
	Quote Quote
	Trade Trade
}

// EnrichedQuote is the payload of marketdata.quote.enriched.v1.
type EnrichedQuote struct {
	Quote
	Mid        float64
	Spread     float64
	SpreadBps  float64
	Instrument Instrument
	ReceivedAt int64
	EnrichedAt int64
}

// EnrichedTrade is the payload of marketdata.trade.enriched.v1.
type EnrichedTrade struct {
	Trade
	Notional    float64
	NotionalUSD float64
	Instrument  Instrument
	ReceivedAt  int64
	EnrichedAt  int64
}

// Enriched is an enriched event as workers publish it on
// <prefix>.enriched.<kind>.<symbol>.
type Enriched struct {
	ID      string
	Source  string
	Type    string
	Subject string
	Time    int64
	// TraceParent and TraceState are the trace context the event came
	// with (extension attributes traceparent, tracestate), or empty.
	TraceParent string
	TraceState  string
	Kind        Kind
	Quote       EnrichedQuote
	Trade       EnrichedTrade
}

// FieldError is one validation failure.
type FieldError struct {
	Field  string `json:"field"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// Validation codes: stable, documented in README.md.
const (
	CodeMissingField      = "missing_field"
	CodeInvalidField      = "invalid_field"
	CodeCrossedQuote      = "crossed_quote"
	CodeNonPositivePrice  = "non_positive_price"
	CodeNegativeSize      = "negative_size"
	CodeStale             = "stale"
	CodeFutureTimestamp   = "future_timestamp"
	CodeUnknownInstrument = "unknown_instrument"
	CodeUnknownVersion    = "unknown_version"
	// CodeOutOfRange is a number past a bound: a price above
	// [Limits.MaxPrice], a size above [Limits.MaxSize] or past int64, or a
	// derived value (mid, spread, notional) that is not finite.
	CodeOutOfRange = "out_of_range"
	// CodeOffTick is a price that is not a multiple of the instrument's
	// tick_size.
	CodeOffTick = "off_tick"
	// CodeOffLot is a size that is not a multiple of the instrument's
	// lot_size.
	CodeOffLot = "off_lot"
	// CodePriceOutOfBand is a price further from the symbol's last enriched
	// price than the worker's price band allows.
	CodePriceOutOfBand = "price_out_of_band"
	// CodeTooLarge is an event whose enriched form (or result) does not
	// fit in one NATS message (the server's max_payload): it is rejected
	// by the worker, its dead letter holding the event as it came.
	CodeTooLarge = "too_large"
)

// Codes lists every validation code, in the order of the README's table.
var Codes = []string{
	CodeMissingField, CodeInvalidField, CodeCrossedQuote, CodeNonPositivePrice, CodeNegativeSize,
	CodeOutOfRange, CodeOffTick, CodeOffLot, CodePriceOutOfBand, CodeStale, CodeFutureTimestamp,
	CodeUnknownInstrument, CodeUnknownVersion, CodeTooLarge,
}
