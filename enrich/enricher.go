package enrich

import (
	"fmt"
	"math"

	"github.com/sluice-dev/sluice/schemas"
)

// DefaultPriceBand is the price band workers apply unless told otherwise:
// a price more than 50% away from the symbol's last enriched price. Real
// moves between two consecutive prices of one listing stay far inside it
// (exchanges halt trading at 5-20%); what crosses it is a unit or scale
// error (cents for dollars, a misplaced decimal point, another symbol's
// price).
const DefaultPriceBand = 0.5

// bandConfirm is how many consecutive events of a symbol the price band
// refuses before it takes the next out-of-band price as the new level: a
// market that did move (a split, a crash) is refused for that many events,
// not forever, and one bad first price cannot lock a symbol out.
const bandConfirm = 3

// Enricher derives the fields of enriched events from validated events and
// the reference data in Store, and refuses what the reference data says is
// nonsense. Its methods are safe for concurrent use as long as Store and
// PriceBand are not reassigned.
type Enricher struct {
	Store *Store
	// PriceBand refuses, with [schemas.CodePriceOutOfBand], a price further
	// than this fraction from the symbol's last enriched price (a quote's
	// mid, a trade's price): 0.5 refuses a price below half of it or above
	// one and a half times it. The last price is kept in Store, per symbol,
	// shared by the Enrichers of one Store; after bandConfirm refusals in a
	// row the next price is taken as the new level. Zero (the zero value)
	// disables the band; [DefaultPriceBand] is the workers' default.
	PriceBand float64
}

// Enrich fills out with the enriched form of ev and returns errs unchanged,
// or leaves out untouched and returns errs with one [schemas.FieldError]
// more per failure when ev cannot be enriched:
//   - the symbol has no reference data: field "symbol", code
//     [schemas.CodeUnknownInstrument];
//   - a trade's instrument currency has no USD rate: the same field and code,
//     the detail naming the currency;
//   - a price is not a multiple of the instrument's tick_size (with a
//     relative tolerance of about 1e-9 of a tick, for float64 rounding):
//     code [schemas.CodeOffTick]; a size not a multiple of its lot_size:
//     [schemas.CodeOffLot]; a zero tick_size or lot_size is not checked;
//   - a price outside the band around the symbol's last enriched price
//     (see PriceBand): [schemas.CodePriceOutOfBand];
//   - a derived value (mid, spread, spread_bps, notional, notional_usd)
//     that is not finite: field named after it, [schemas.CodeOutOfRange];
//   - ev.Kind is neither quote nor trade: field "type", code
//     [schemas.CodeInvalidField].
//
// Call it only on an event that passed validation: it trusts prices to be
// positive and finite and sizes to be within int64. now is the enrichment
// time in Unix nanoseconds (EnrichedAt).
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
	before := len(errs)
	// The checks are inlined predicates; only a failure calls out.
	if !onTick(q.Bid, inst.TickSize) || !onTick(q.Ask, inst.TickSize) {
		errs = offTick(errs, "bid", q.Bid, inst)
		errs = offTick(errs, "ask", q.Ask, inst)
	}
	if !onLot(q.BidSize, inst.LotSize) || !onLot(q.AskSize, inst.LotSize) {
		errs = offLot(errs, "bid_size", q.BidSize, inst)
		errs = offLot(errs, "ask_size", q.AskSize, inst)
	}
	// Derived values are rounded to the decimals their inputs allow, so
	// that float64 noise does not show (189.535, not 189.53500000000003):
	// with prices on a tick of p decimals, a spread has p and a mid p+1.
	p := tickDecimals(inst.TickSize)
	mid := roundTo((q.Bid+q.Ask)/2, p+1)
	spread := roundTo(q.Ask-q.Bid, p)
	var bps float64
	if mid != 0 {
		bps = roundTo(spread/mid*1e4, bpsDecimals)
	}
	if !finite(mid) || !finite(spread) || !finite(bps) {
		errs = notFinite(errs, "mid", mid)
		errs = notFinite(errs, "spread", spread)
		errs = notFinite(errs, "spread_bps", bps)
	}
	var m *priceMark
	if e.PriceBand > 0 && len(errs) == before {
		m = e.Store.mark(q.Symbol)
		errs = e.checkBand(errs, m, inst.Symbol, "bid", q.Bid, "ask", q.Ask)
	}
	if len(errs) > before {
		return errs
	}
	setMark(m, mid)
	setEnvelope(out, ev)
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
	before := len(errs)
	if !onTick(t.Price, inst.TickSize) {
		errs = offTick(errs, "price", t.Price, inst)
	}
	if !onLot(t.Size, inst.LotSize) {
		errs = offLot(errs, "size", t.Size, inst)
	}
	notional := roundTo(t.Price*float64(t.Size), tickDecimals(inst.TickSize))
	notionalUSD := roundTo(notional*rate, usdDecimals)
	if !finite(notional) || !finite(notionalUSD) {
		errs = notFinite(errs, "notional", notional)
		errs = notFinite(errs, "notional_usd", notionalUSD)
	}
	var m *priceMark
	if e.PriceBand > 0 && len(errs) == before {
		m = e.Store.mark(t.Symbol)
		errs = e.checkBand(errs, m, inst.Symbol, "price", t.Price, "", 0)
	}
	if len(errs) > before {
		return errs
	}
	setMark(m, t.Price)
	setEnvelope(out, ev)
	out.Trade = schemas.EnrichedTrade{
		Trade:       *t,
		Notional:    notional,
		NotionalUSD: notionalUSD,
		Instrument:  *inst,
		ReceivedAt:  ev.ReceivedAt,
		EnrichedAt:  now,
	}
	return errs
}

// onTick reports whether price is a whole number of ticks (a positive
// price below half a tick is zero ticks: off tick); a tick of zero is not
// checked. The tolerance is 1e-9 of a tick plus what float64 rounding of
// the price, the tick and their quotient can add (3 ulps of the quotient;
// 1e-15 of it is above that): 189.52 is 18952 ticks of 0.01 although
// neither is exact in binary.
func onTick(price, tick float64) bool {
	if !(tick > 0) {
		return true
	}
	r := price / tick
	k := math.Round(r)
	return (k != 0 || price <= 0) && math.Abs(r-k) <= 1e-9+math.Abs(k)*1e-15
}

// Decimals of derived values that no tick bounds: spread_bps to
// 0.0001 basis point, notional_usd to a millionth of a dollar.
const (
	bpsDecimals = 4
	usdDecimals = 6
	// noRounding is what tickDecimals returns for a tick it cannot read
	// as a short decimal (0, or more than maxTickDecimals places).
	noRounding      = -1
	maxTickDecimals = 9
)

// pow10 holds 10^0 ... 10^(maxTickDecimals+1).
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// tickDecimals returns the decimal places of tick (0.01: 2, 0.5: 1, 1: 0),
// or noRounding.
func tickDecimals(tick float64) int {
	if !(tick > 0) {
		return noRounding
	}
	for p := 0; p <= maxTickDecimals; p++ {
		x := tick * pow10[p]
		if math.Abs(x-math.Round(x)) <= 1e-9*x {
			return p
		}
	}
	return noRounding
}

// roundTo rounds x to p decimal places (the float64 nearest the decimal,
// which prints as that decimal); p < 0 leaves x as it is, as does a value
// too large to scale (it is then an integer already for any tick).
func roundTo(x float64, p int) float64 {
	if p < 0 || p >= len(pow10) {
		return x
	}
	y := x * pow10[p]
	if math.Abs(y) >= 1<<52 || y != y {
		return x
	}
	return math.Round(y) / pow10[p]
}

// offTick appends off_tick when price is not on inst's tick.
func offTick(errs []schemas.FieldError, name string, price float64, inst *schemas.Instrument) []schemas.FieldError {
	if onTick(price, inst.TickSize) {
		return errs
	}
	return append(errs, schemas.FieldError{Field: name, Code: schemas.CodeOffTick,
		Detail: fmt.Sprintf("%s %v is not a multiple of the tick size %v of %s", name, price, inst.TickSize, inst.Symbol)})
}

// onLot reports whether size is a multiple of lot; a lot of 0 or 1 is not
// checked.
func onLot(size, lot int64) bool { return lot <= 1 || size%lot == 0 }

// offLot appends off_lot when size is not a multiple of inst's lot.
func offLot(errs []schemas.FieldError, name string, size int64, inst *schemas.Instrument) []schemas.FieldError {
	if onLot(size, inst.LotSize) {
		return errs
	}
	return append(errs, schemas.FieldError{Field: name, Code: schemas.CodeOffLot,
		Detail: fmt.Sprintf("%s %d is not a multiple of the lot size %d of %s", name, size, inst.LotSize, inst.Symbol)})
}

func finite(v float64) bool { return !math.IsInf(v, 0) && !math.IsNaN(v) }

// notFinite appends out_of_range when a derived value is not finite.
func notFinite(errs []schemas.FieldError, name string, v float64) []schemas.FieldError {
	if finite(v) {
		return errs
	}
	return append(errs, schemas.FieldError{Field: name, Code: schemas.CodeOutOfRange,
		Detail: fmt.Sprintf("%s would be %v: the prices and sizes are too large to derive it", name, v)})
}

// checkBand appends price_out_of_band for each of the prices p1 (and p2
// when name2 is set) further than e.PriceBand from m's last price. Out of
// band for the bandConfirm-th time in a row, the event is let through: its
// price becomes the level. Races between concurrent events of one symbol
// only blur which recent price is the reference.
func (e *Enricher) checkBand(errs []schemas.FieldError, m *priceMark, symbol, name1 string, p1 float64, name2 string, p2 float64) []schemas.FieldError {
	if m == nil {
		return errs
	}
	bits := m.bits.Load()
	if bits == 0 {
		return errs
	}
	last := math.Float64frombits(bits)
	band := e.PriceBand * last
	out1 := math.Abs(p1-last) > band
	out2 := name2 != "" && math.Abs(p2-last) > band
	if !out1 && !out2 {
		return errs
	}
	if m.misses.Add(1) >= bandConfirm {
		return errs // setMark resets misses
	}
	add := func(name string, p float64) {
		errs = append(errs, schemas.FieldError{Field: name, Code: schemas.CodePriceOutOfBand,
			Detail: fmt.Sprintf("%s %v is more than %v%% away from the last price %v of %s", name, p, e.PriceBand*100, last, symbol)})
	}
	if out1 {
		add(name1, p1)
	}
	if out2 {
		add(name2, p2)
	}
	return errs
}

// setMark records price as the last enriched price of m's symbol; a nil m
// (the band is off) is left alone. It writes only what changed, so that
// events of a steady price do not bounce the mark's cache line between
// cores.
func setMark(m *priceMark, price float64) {
	if m == nil {
		return
	}
	if bits := math.Float64bits(price); m.bits.Load() != bits {
		m.bits.Store(bits)
	}
	if m.misses.Load() != 0 {
		m.misses.Store(0)
	}
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
	out.TraceParent, out.TraceState = ev.TraceParent, ev.TraceState
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
