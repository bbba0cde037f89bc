package enrich_test

import (
	"reflect"
	"sync"
	"testing"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
)

// TestEnrichChecks covers what the reference data refuses (issue #12, item
// 4): off_tick, off_lot, derived values that are not finite. Each case gets
// a fresh Store, so no price band carries over.
func TestEnrichChecks(t *testing.T) {
	type want struct{ field, code string }
	quote := func(symbol string, bid, ask float64, bidSize, askSize int64) *schemas.Event {
		ev := quoteEvent(symbol, bid, ask)
		ev.Quote.BidSize, ev.Quote.AskSize = bidSize, askSize
		return ev
	}
	tests := []struct {
		name string
		ev   *schemas.Event
		want []want
	}{
		// The README's example and float64 prices that are not exact in binary.
		{"AAPL on tick", quote("AAPL", 189.52, 189.53, 100, 200), nil},
		{"cents not exact in binary", quote("AAPL", 0.07, 1234.57, 1, 1), nil},
		{"big price on tick", tradeEvent("AAPL", 987654321.99, 1), nil},
		{"one tick", tradeEvent("AAPL", 0.01, 1), nil},
		{"fx pip", quote("EUR/USD", 1.08412, 1.08415, 1000, 5000), nil},
		{"yen lots", tradeEvent("7203.T", 2850, 300), nil},
		{"zero size is a whole number of lots", quote("7203.T", 2850, 2851, 0, 100), nil},

		{"half a cent", quote("AAPL", 189.525, 189.53, 100, 200), []want{{"bid", schemas.CodeOffTick}}},
		{"below one tick", tradeEvent("AAPL", 0.004, 1), []want{{"price", schemas.CodeOffTick}}},
		{"subnormal price", tradeEvent("AAPL", 5e-324, 1), []want{{"price", schemas.CodeOffTick}}},
		{"a billionth of a tick off", tradeEvent("AAPL", 189.52+1e-8, 1), []want{{"price", schemas.CodeOffTick}}},
		{"yen fraction", quote("7203.T", 2850, 2850.5, 100, 100), []want{{"ask", schemas.CodeOffTick}}},
		{"yen odd lot", tradeEvent("7203.T", 2850, 150), []want{{"size", schemas.CodeOffLot}}},
		{"fx odd lots", quote("EUR/USD", 1.08412, 1.08415, 1500, 999), []want{{"bid_size", schemas.CodeOffLot}, {"ask_size", schemas.CodeOffLot}}},
		{"everything off", quote("7203.T", 2850.5, 2851.5, 1, 2), []want{
			{"bid", schemas.CodeOffTick}, {"ask", schemas.CodeOffTick}, {"bid_size", schemas.CodeOffLot}, {"ask_size", schemas.CodeOffLot}}},

		// What validation lets through with its bounds lifted: no derived
		// value may be infinite (BIG has no tick to check).
		{"mid overflows", quote("BIG", 1.7e308, 1.75e308, 1, 1), []want{{"mid", schemas.CodeOutOfRange}}},
		{"spread overflows", quote("BIG", -1.7e308, 1.7e308, 1, 1), []want{{"spread", schemas.CodeOutOfRange}}},
		{"notional overflows", tradeEvent("BIG", 1e308, 1<<62), []want{{"notional", schemas.CodeOutOfRange}, {"notional_usd", schemas.CodeOutOfRange}}},
		{"notional_usd overflows", tradeEvent("BIG", 1e290, 1<<40), []want{{"notional_usd", schemas.CodeOutOfRange}}},
		{"the tick of a huge price", tradeEvent("AAPL", 1e308, 1), []want{{"price", schemas.CodeOffTick}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := enrich.Enricher{Store: smallStore(t), PriceBand: enrich.DefaultPriceBand}
			e.Store.PutInstrument(schemas.Instrument{Symbol: "BIG", Currency: "XXX"})
			e.Store.PutFX(schemas.FXRate{Currency: "XXX", USDRate: 1e20})
			out := schemas.Enriched{ID: "untouched"}
			errs := e.Enrich(tc.ev, now, &out, nil)
			ok := len(errs) == len(tc.want)
			for i := 0; ok && i < len(errs); i++ {
				ok = errs[i].Field == tc.want[i].field && errs[i].Code == tc.want[i].code && errs[i].Detail != ""
			}
			if !ok {
				t.Fatalf("errors = %+v, want %+v", errs, tc.want)
			}
			if len(errs) > 0 && !reflect.DeepEqual(out, schemas.Enriched{ID: "untouched"}) {
				t.Errorf("out changed on error: %+v", out)
			}
		})
	}
}

func TestEnrichCheckDetails(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t), PriceBand: 0.5}
	f := func(ev *schemas.Event, want ...schemas.FieldError) {
		t.Helper()
		errs := e.Enrich(ev, now, new(schemas.Enriched), nil)
		if !reflect.DeepEqual(errs, want) {
			t.Errorf("errors = %+v, want %+v", errs, want)
		}
	}
	f(tradeEvent("AAPL", 189.525, 1), schemas.FieldError{Field: "price", Code: schemas.CodeOffTick,
		Detail: "price 189.525 is not a multiple of the tick size 0.01 of AAPL"})
	f(tradeEvent("7203.T", 2850, 150), schemas.FieldError{Field: "size", Code: schemas.CodeOffLot,
		Detail: "size 150 is not a multiple of the lot size 100 of 7203.T"})
	e.Store.PutInstrument(schemas.Instrument{Symbol: "BIG", Currency: "USD"})
	f(tradeEvent("BIG", 1e300, 1<<40), schemas.FieldError{Field: "notional", Code: schemas.CodeOutOfRange,
		Detail: "notional would be +Inf: the prices and sizes are too large to derive it"},
		schemas.FieldError{Field: "notional_usd", Code: schemas.CodeOutOfRange,
			Detail: "notional_usd would be +Inf: the prices and sizes are too large to derive it"})
	if errs := e.Enrich(tradeEvent("AAPL", 189.52, 1), now, new(schemas.Enriched), nil); errs != nil {
		t.Fatal(errs)
	}
	f(tradeEvent("AAPL", 1895.2, 1), schemas.FieldError{Field: "price", Code: schemas.CodePriceOutOfBand,
		Detail: "price 1895.2 is more than 50% away from the last price 189.52 of AAPL"})
}

// TestEnrichPriceBand walks one symbol through the band: the first price
// sets the level, a price outside it is refused and does not move it, the
// bandConfirm-th refusal in a row is taken as the new level.
func TestEnrichPriceBand(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t), PriceBand: 0.5}
	steps := []struct {
		ev   *schemas.Event
		want []string // fields refused as price_out_of_band
	}{
		{quoteEvent("AAPL", 189.50, 189.54), nil},             // no level yet: sets 189.52
		{tradeEvent("AAPL", 280, 100), nil},                   // +47.7%: inside
		{tradeEvent("AAPL", 1895.20, 100), []string{"price"}}, // ×10 of 280: refused, level stays 280
		{quoteEvent("AAPL", 139.99, 421), []string{"bid", "ask"}},
		{tradeEvent("AAPL", 141, 100), nil}, // inside again: the refusals in a row start over
		{tradeEvent("AAPL", 18.95, 100), []string{"price"}},
		{tradeEvent("AAPL", 18.95, 100), []string{"price"}},
		{tradeEvent("AAPL", 18.95, 100), nil}, // the third in a row: the market moved
		{tradeEvent("AAPL", 19.10, 100), nil},
		{tradeEvent("AAPL", 141, 100), []string{"price"}},
		{tradeEvent("BRK.B", 410.25, 1), nil}, // another symbol, another level
	}
	for i, s := range steps {
		errs := e.Enrich(s.ev, now, new(schemas.Enriched), nil)
		var got []string
		for _, fe := range errs {
			if fe.Code != schemas.CodePriceOutOfBand {
				t.Fatalf("step %d: %+v", i, errs)
			}
			got = append(got, fe.Field)
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d (%v): refused %v, want %v: %+v", i, s.ev.Kind, got, s.want, errs)
		}
	}

	// The level survives reference data writes; an off-tick event does
	// not move it; a zero band does not check.
	e.Store.Replace(enrich.Sample())
	e.Store.PutInstrument(schemas.Instrument{Symbol: "AAPL", Currency: "USD", TickSize: 0.01, LotSize: 1})
	if errs := e.Enrich(tradeEvent("AAPL", 141, 100), now, new(schemas.Enriched), nil); len(errs) != 1 {
		t.Errorf("after Replace: %+v, want price_out_of_band against 19.10", errs)
	}
	if errs := e.Enrich(tradeEvent("AAPL", 141.005, 100), now, new(schemas.Enriched), nil); len(errs) != 1 || errs[0].Code != schemas.CodeOffTick {
		t.Errorf("off tick: %+v", errs)
	}
	off := enrich.Enricher{Store: e.Store}
	if errs := off.Enrich(tradeEvent("AAPL", 1e6, 100), now, new(schemas.Enriched), nil); errs != nil {
		t.Errorf("band 0: %+v", errs)
	}
	if errs := e.Enrich(tradeEvent("AAPL", 19.12, 100), now, new(schemas.Enriched), nil); errs != nil {
		t.Errorf("a zero band moved the level: %+v", errs)
	}
}

// TestEnrichPriceBandConcurrent runs the band from several goroutines (run
// it with -race): every in-band event is enriched, every out-of-band one
// that is not a confirmation refused.
func TestEnrichPriceBandConcurrent(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t), PriceBand: 0.5}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out schemas.Enriched
			var errs []schemas.FieldError
			for i := range 2000 {
				price := 189.50 + float64((g+i)%5)/100
				if errs = e.Enrich(tradeEvent("AAPL", price, 100), now, &out, errs[:0]); len(errs) != 0 {
					t.Errorf("in band %v: %+v", price, errs)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestEnrichWithBandDoesNotAllocate(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t), PriceBand: enrich.DefaultPriceBand}
	q, tr := quoteEvent("AAPL", 189.5, 189.52), tradeEvent("7203.T", 2850, 100)
	var out schemas.Enriched
	errs := make([]schemas.FieldError, 0, 4)
	if n := testing.AllocsPerRun(100, func() {
		errs = e.Enrich(q, now, &out, errs[:0])
		errs = e.Enrich(tr, now, &out, errs)
	}); n != 0 || len(errs) != 0 {
		t.Errorf("%v allocations, errors %+v", n, errs)
	}
}

// BenchmarkEnrichBand is BenchmarkEnrichQuote and BenchmarkEnrichParallel
// with the price band on: what the band's lookup and atomics cost.
func BenchmarkEnrichBand(b *testing.B) {
	e := enrich.Enricher{Store: enrich.NewStore(), PriceBand: enrich.DefaultPriceBand}
	e.Store.Replace(enrich.Sample())
	b.Run("quote", func(b *testing.B) {
		ev := quoteEvent("BRK.B", 410, 411)
		var out schemas.Enriched
		errs := make([]schemas.FieldError, 0, 4)
		b.ReportAllocs()
		for b.Loop() {
			if errs = e.Enrich(ev, now, &out, errs[:0]); len(errs) != 0 {
				b.Fatal(errs)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			q, tr := quoteEvent("AAPL", 189.5, 189.52), tradeEvent("7203.T", 2850, 100)
			var out schemas.Enriched
			var errs []schemas.FieldError
			for i := 0; pb.Next(); i++ {
				ev := q
				if i%2 == 1 {
					ev = tr
				}
				if errs = e.Enrich(ev, now, &out, errs[:0]); len(errs) != 0 {
					b.Error(errs)
					return
				}
			}
		})
	})
}
