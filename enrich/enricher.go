package enrich

import (
	"fmt"

	"github.com/sluice-dev/sluice/schemas"
)

// Enricher derives the fields of enriched events from validated events and
// the reference data in Store. Its methods are safe for concurrent use as
// long as Store is not reassigned.
type Enricher struct {
	Store *Store
}

// Enrich fills out with the enriched form of ev and returns errs unchanged,
// or leaves out untouched and returns errs with one more [schemas.FieldError]
// when ev cannot be enriched:
//   - the symbol has no reference data: field "symbol", code
//     [schemas.CodeUnknownInstrument];
//   - a trade's instrument currency has no USD rate: the same field and code,
//     the detail naming the currency;
//   - ev.Kind is neither quote nor trade: field "type", code
//     [schemas.CodeInvalidField].
//
// Call it only on an event that passed validation: it trusts the prices and
// sizes. now is the enrichment time in Unix nanoseconds (EnrichedAt).
//
// On success out is overwritten whole: the envelope copied from ev with the
// enriched type, and for a quote out.Quote (Mid, Spread, SpreadBps), for a
// trade out.Trade (Notional in the listing's currency and NotionalUSD); the
// other payload is zeroed. out shares strings, the trade's Conditions and the
// instrument's strings with ev and the Store. The success path does not
// allocate; the error path allocates the detail.
func (e *Enricher) Enrich(ev *schemas.Event, now int64, out *schemas.Enriched, errs []schemas.FieldError) []schemas.FieldError {
	switch ev.Kind {
	case schemas.KindQuote:
		return e.enrichQuote(ev, now, out, errs)
	case schemas.KindTrade:
		return e.enrichTrade(ev, now, out, errs)
	}
	return append(errs, schemas.FieldError{
		Field:  "type",
		Code:   schemas.CodeInvalidField,
		Detail: fmt.Sprintf("cannot enrich events of type %q", ev.Type),
	})
}

func (e *Enricher) enrichQuote(ev *schemas.Event, now int64, out *schemas.Enriched, errs []schemas.FieldError) []schemas.FieldError {
	q := &ev.Quote
	inst, ok := e.Store.Instrument(q.Symbol)
	if !ok {
		return append(errs, unknownInstrument(q.Symbol))
	}
	setEnvelope(out, ev)
	mid := (q.Bid + q.Ask) / 2
	spread := q.Ask - q.Bid
	var bps float64
	if mid != 0 {
		bps = spread / mid * 1e4
	}
	out.Quote = schemas.EnrichedQuote{
		Quote:      *q,
		Mid:        mid,
		Spread:     spread,
		SpreadBps:  bps,
		Instrument: *inst,
		ReceivedAt: ev.ReceivedAt,
		EnrichedAt: now,
	}
	return errs
}

func (e *Enricher) enrichTrade(ev *schemas.Event, now int64, out *schemas.Enriched, errs []schemas.FieldError) []schemas.FieldError {
	t := &ev.Trade
	inst, ok := e.Store.Instrument(t.Symbol)
	if !ok {
		return append(errs, unknownInstrument(t.Symbol))
	}
	rate, ok := e.Store.USDRate(inst.Currency)
	if !ok {
		return append(errs, schemas.FieldError{
			Field:  "symbol",
			Code:   schemas.CodeUnknownInstrument,
			Detail: fmt.Sprintf("no USD rate for currency %q of %q", inst.Currency, t.Symbol),
		})
	}
	setEnvelope(out, ev)
	notional := t.Price * float64(t.Size)
	out.Trade = schemas.EnrichedTrade{
		Trade:       *t,
		Notional:    notional,
		NotionalUSD: notional * rate,
		Instrument:  *inst,
		ReceivedAt:  ev.ReceivedAt,
		EnrichedAt:  now,
	}
	return errs
}

// setEnvelope writes ev's envelope into out and zeroes the payload of the
// other kind; the caller writes the payload of ev's kind whole. (Zeroing all
// of out first would write the active payload twice.)
func setEnvelope(out *schemas.Enriched, ev *schemas.Event) {
	out.ID = ev.ID
	out.Source = ev.Source
	out.Type = ev.Kind.EnrichedType()
	out.Subject = ev.Subject
	out.Time = ev.Time
	out.Kind = ev.Kind
	switch ev.Kind {
	case schemas.KindQuote:
		out.Trade = schemas.EnrichedTrade{}
	case schemas.KindTrade:
		out.Quote = schemas.EnrichedQuote{}
	}
}

func unknownInstrument(symbol string) schemas.FieldError {
	return schemas.FieldError{
		Field:  "symbol",
		Code:   schemas.CodeUnknownInstrument,
		Detail: fmt.Sprintf("no reference data for symbol %q", symbol),
	}
}
