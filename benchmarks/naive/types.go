package naive

import (
	"encoding/json"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// Payload is a quote or a trade as a client sends it. Pointers tell a
// missing field from a zero one.
type Payload struct {
	Symbol     *string    `json:"symbol,omitempty"`
	Bid        *float64   `json:"bid,omitempty"`
	Ask        *float64   `json:"ask,omitempty"`
	BidSize    *int64     `json:"bid_size,omitempty"`
	AskSize    *int64     `json:"ask_size,omitempty"`
	Price      *float64   `json:"price,omitempty"`
	Size       *int64     `json:"size,omitempty"`
	Venue      *string    `json:"venue,omitempty"`
	TS         *time.Time `json:"ts,omitempty"`
	TradeID    *string    `json:"trade_id,omitempty"`
	Conditions []string   `json:"conditions,omitempty"`
}

// Envelope is a JSON CloudEvent as the naive gateway publishes it.
type Envelope struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	ReceivedAt      time.Time `json:"sluicerecv"`
	Data            Payload   `json:"data"`
}

// EnrichedData is the payload of an enriched event.
type EnrichedData struct {
	Payload
	Mid         *float64           `json:"mid,omitempty"`
	Spread      *float64           `json:"spread,omitempty"`
	SpreadBps   *float64           `json:"spread_bps,omitempty"`
	Notional    *float64           `json:"notional,omitempty"`
	NotionalUSD *float64           `json:"notional_usd,omitempty"`
	Instrument  schemas.Instrument `json:"instrument"`
	ReceivedAt  time.Time          `json:"received_at"`
	EnrichedAt  time.Time          `json:"enriched_at"`
}

// Enriched is an enriched JSON CloudEvent.
type Enriched struct {
	SpecVersion     string       `json:"specversion"`
	ID              string       `json:"id"`
	Source          string       `json:"source"`
	Type            string       `json:"type"`
	Subject         string       `json:"subject"`
	Time            time.Time    `json:"time"`
	DataContentType string       `json:"datacontenttype"`
	Data            EnrichedData `json:"data"`
}

// DeadLetter is a rejected event with its reasons.
type DeadLetter struct {
	Errors []schemas.FieldError `json:"errors"`
	Event  Envelope             `json:"event"`
}

// Result is the outcome of one event, as the worker answers a request.
type Result struct {
	ID     string               `json:"id"`
	Status int                  `json:"status"`
	Event  json.RawMessage      `json:"event,omitempty"`
	Errors []schemas.FieldError `json:"errors,omitempty"`
}

// Results answers a request that holds several events.
type Results struct {
	Enriched int      `json:"enriched"`
	Rejected int      `json:"rejected"`
	Results  []Result `json:"results"`
}

// Accepted answers a fire-and-forget request.
type Accepted struct {
	Accepted int      `json:"accepted"`
	IDs      []string `json:"ids"`
}

// Problem is an RFC 9457 error answer.
type Problem struct {
	Status int                  `json:"status"`
	Title  string               `json:"title"`
	Detail string               `json:"detail,omitempty"`
	Errors []schemas.FieldError `json:"errors,omitempty"`
}

// toEvent maps an envelope onto sluice's event type, for validation and
// enrichment with sluice's own rules.
func toEvent(env *Envelope, kind schemas.Kind) schemas.Event {
	ev := schemas.Event{ID: env.ID, Source: env.Source, Type: env.Type, Subject: env.Subject,
		Time: env.Time.UnixNano(), ReceivedAt: env.ReceivedAt.UnixNano(), Kind: kind, Known: true}
	d := &env.Data
	var present uint16
	str := func(p *string, bit uint16) string {
		if p == nil {
			return ""
		}
		present |= bit
		return *p
	}
	flt := func(p *float64, bit uint16) float64 {
		if p == nil {
			return 0
		}
		present |= bit
		return *p
	}
	num := func(p *int64, bit uint16) int64 {
		if p == nil {
			return 0
		}
		present |= bit
		return *p
	}
	var ts int64
	if d.TS != nil {
		present |= schemas.FTS
		ts = d.TS.UnixNano()
	}
	if kind == schemas.KindQuote {
		ev.Quote = schemas.Quote{Symbol: str(d.Symbol, schemas.FSymbol), Bid: flt(d.Bid, schemas.FBid),
			Ask: flt(d.Ask, schemas.FAsk), BidSize: num(d.BidSize, schemas.FBidSize), AskSize: num(d.AskSize, schemas.FAskSize),
			Venue: str(d.Venue, schemas.FVenue), TS: ts}
		ev.Quote.Present = present
		return ev
	}
	ev.Trade = schemas.Trade{Symbol: str(d.Symbol, schemas.FSymbol), Price: flt(d.Price, schemas.FPrice),
		Size: num(d.Size, schemas.FSize), Venue: str(d.Venue, schemas.FVenue), TS: ts,
		TradeID: str(d.TradeID, schemas.FTradeID), Conditions: d.Conditions}
	if d.Conditions != nil {
		present |= schemas.FConditions
	}
	ev.Trade.Present = present
	return ev
}
