package enrich_test

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
)

const (
	recvAt = int64(1_700_000_000_000_000_000)
	now    = recvAt + 250_000
)

func quoteEvent(symbol string, bid, ask float64) *schemas.Event {
	return &schemas.Event{
		ID: "q-1", Source: "test", Type: schemas.TypeQuoteV1, Subject: symbol,
		Time: recvAt - 1000, ReceivedAt: recvAt, Kind: schemas.KindQuote, Known: true,
		Quote: schemas.Quote{Symbol: symbol, Bid: bid, Ask: ask, BidSize: 100, AskSize: 200, Venue: "XNAS", TS: recvAt - 2000},
	}
}

func tradeEvent(symbol string, price float64, size int64) *schemas.Event {
	return &schemas.Event{
		ID: "t-1", Source: "test", Type: schemas.TypeTradeV1, Subject: symbol,
		Time: recvAt - 1000, ReceivedAt: recvAt, Kind: schemas.KindTrade, Known: true,
		Trade: schemas.Trade{Symbol: symbol, Price: price, Size: size, TradeID: "T1", Conditions: []string{"@"}, TS: recvAt - 2000},
	}
}

func TestEnrichQuote(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t)}
	tests := []struct {
		name                   string
		symbol                 string
		bid, ask               float64
		mid, spread, spreadBps float64
	}{
		{"usd equity", "AAPL", 189.50, 189.52, 189.51, 0.02, 1.0554},
		{"dotted symbol", "BRK.B", 410, 411, 410.5, 1, 24.3605},
		{"gbx listing in pence", "VOD.L", 72.10, 72.14, 72.12, 0.04, 5.5463},
		{"jpy listing", "7203.T", 2850, 2851, 2850.5, 1, 3.5082},
		{"fx pair", "EUR/USD", 1.08412, 1.08415, 1.084135, 0.00003, 0.2767},
		{"locked", "AAPL", 100, 100, 100, 0, 0},
		{"zero mid", "AAPL", -1, 1, 0, 2, 0},
		// A quote needs no FX rate.
		{"currency without fx", "NOFX", 10, 10.5, 10.25, 0.5, 487.8049},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := quoteEvent(tc.symbol, tc.bid, tc.ask)
			if inst, _ := e.Store.Instrument(tc.symbol); inst.LotSize > 1 {
				ev.Quote.BidSize, ev.Quote.AskSize = 10*inst.LotSize, 20*inst.LotSize // whole lots
			}
			var out schemas.Enriched
			errs := e.Enrich(ev, now, &out, nil)
			if len(errs) != 0 {
				t.Fatalf("errors: %+v", errs)
			}
			q := out.Quote
			if !near(q.Mid, tc.mid) || !near(q.Spread, tc.spread) || !near(q.SpreadBps, tc.spreadBps) {
				t.Errorf("mid, spread, bps = %v, %v, %v; want %v, %v, %v", q.Mid, q.Spread, q.SpreadBps, tc.mid, tc.spread, tc.spreadBps)
			}
			inst, _ := e.Store.Instrument(tc.symbol)
			if q.Instrument != *inst {
				t.Errorf("instrument = %+v, want %+v", q.Instrument, *inst)
			}
			if q.Quote != ev.Quote || q.ReceivedAt != recvAt || q.EnrichedAt != now {
				t.Errorf("quote, received, enriched = %+v, %d, %d", q.Quote, q.ReceivedAt, q.EnrichedAt)
			}
			checkEnvelope(t, &out, ev, schemas.TypeQuoteEnrichedV1)
			if !reflect.DeepEqual(out.Trade, schemas.EnrichedTrade{}) {
				t.Errorf("trade payload of an enriched quote is set: %+v", out.Trade)
			}
		})
	}
}

// TestDerivedValuesPrint: derived values print as the decimals they are,
// not with float64's noise ((189.52+189.55)/2 is 189.53500000000003 in
// float64, 0.1 × 3 is 0.30000000000000004): a mid has one decimal more
// than the tick, a spread and a notional the tick's, spread_bps four,
// notional_usd six.
func TestDerivedValuesPrint(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t)}
	var out schemas.Enriched
	if errs := e.Enrich(quoteEvent("AAPL", 189.52, 189.55), now, &out, nil); len(errs) != 0 {
		t.Fatal(errs)
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	q := out.Quote
	if got := f(q.Mid) + " " + f(q.Spread) + " " + f(q.SpreadBps); got != "189.535 0.03 1.5828" {
		t.Errorf("mid spread bps = %s, want 189.535 0.03 1.5828", got)
	}
	fx := quoteEvent("EUR/USD", 1.08412, 1.08415)
	fx.Quote.BidSize, fx.Quote.AskSize = 1000, 2000 // whole lots
	if errs := e.Enrich(fx, now, &out, nil); len(errs) != 0 {
		t.Fatal(errs)
	}
	if got := f(out.Quote.Mid) + " " + f(out.Quote.Spread); got != "1.084135 3e-05" {
		t.Errorf("fx mid spread = %s, want 1.084135 3e-05", got)
	}
	if errs := e.Enrich(tradeEvent("VOD.L", 72.1, 3000), now, &out, nil); len(errs) != 0 {
		t.Fatal(errs)
	}
	if got := f(out.Trade.Notional) + " " + f(out.Trade.NotionalUSD); got != "216300 2747.01" {
		t.Errorf("notional, usd = %s, want 216300 2747.01", got)
	}
}

func TestEnrichTrade(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t)}
	tests := []struct {
		name                  string
		symbol                string
		price                 float64
		size                  int64
		notional, notionalUSD float64
	}{
		{"usd equity", "AAPL", 189.51, 100, 18951, 18951},
		{"dotted symbol", "BRK.B", 410.25, 3, 1230.75, 1230.75},
		// 1,000 shares at 72.5 pence are 72,500 pence, 725 pounds, 920.75 dollars at 1.27.
		{"gbx listing in pence", "VOD.L", 72.5, 1000, 72500, 920.75},
		// 100 shares at 2,850 yen are 285,000 yen, 1,909.50 dollars at 0.0067.
		{"jpy listing", "7203.T", 2850, 100, 285000, 1909.5},
		{"eur listing", "SAP.DE", 180, 10, 1800, 1944},
		{"zero size", "AAPL", 189.51, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := tradeEvent(tc.symbol, tc.price, tc.size)
			var out schemas.Enriched
			errs := e.Enrich(ev, now, &out, nil)
			if len(errs) != 0 {
				t.Fatalf("errors: %+v", errs)
			}
			tr := out.Trade
			if !near(tr.Notional, tc.notional) || !near(tr.NotionalUSD, tc.notionalUSD) {
				t.Errorf("notional, USD = %v, %v; want %v, %v", tr.Notional, tr.NotionalUSD, tc.notional, tc.notionalUSD)
			}
			inst, _ := e.Store.Instrument(tc.symbol)
			if tr.Instrument != *inst {
				t.Errorf("instrument = %+v, want %+v", tr.Instrument, *inst)
			}
			if !reflect.DeepEqual(tr.Trade, ev.Trade) || tr.ReceivedAt != recvAt || tr.EnrichedAt != now {
				t.Errorf("trade, received, enriched = %+v, %d, %d", tr.Trade, tr.ReceivedAt, tr.EnrichedAt)
			}
			checkEnvelope(t, &out, ev, schemas.TypeTradeEnrichedV1)
			if out.Quote != (schemas.EnrichedQuote{}) {
				t.Errorf("quote payload of an enriched trade is set: %+v", out.Quote)
			}
		})
	}
}

func checkEnvelope(t *testing.T, out *schemas.Enriched, ev *schemas.Event, typ string) {
	t.Helper()
	if out.ID != ev.ID || out.Source != ev.Source || out.Subject != ev.Subject || out.Time != ev.Time ||
		out.Type != typ || out.Kind != ev.Kind {
		t.Errorf("envelope = {%q %q %q %q %d %v}, want {%q %q %q %q %d %v}",
			out.ID, out.Source, out.Type, out.Subject, out.Time, out.Kind,
			ev.ID, ev.Source, typ, ev.Subject, ev.Time, ev.Kind)
	}
}

func TestEnrichErrors(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t)}
	unknownKind := quoteEvent("AAPL", 1, 2)
	unknownKind.Kind, unknownKind.Type = schemas.KindUnknown, "marketdata.bar.v1"
	tests := []struct {
		name string
		ev   *schemas.Event
		want schemas.FieldError
	}{
		{"unknown quote symbol", quoteEvent("XYZ", 1, 2),
			schemas.FieldError{Field: "symbol", Code: schemas.CodeUnknownInstrument, Detail: `no reference data for symbol "XYZ"`}},
		{"unknown trade symbol", tradeEvent("XYZ", 1, 2),
			schemas.FieldError{Field: "symbol", Code: schemas.CodeUnknownInstrument, Detail: `no reference data for symbol "XYZ"`}},
		{"trade currency without fx", tradeEvent("NOFX", 10, 5),
			schemas.FieldError{Field: "symbol", Code: schemas.CodeUnknownInstrument, Detail: `no USD rate for currency "CHF" of "NOFX"`}},
		{"unknown kind", unknownKind,
			schemas.FieldError{Field: "type", Code: schemas.CodeInvalidField, Detail: `cannot enrich events of type "marketdata.bar.v1"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prior := []schemas.FieldError{{Field: "other", Code: "x"}}
			out := schemas.Enriched{ID: "untouched"}
			errs := e.Enrich(tc.ev, now, &out, prior)
			want := []schemas.FieldError{prior[0], tc.want}
			if !reflect.DeepEqual(errs, want) {
				t.Errorf("errors = %+v\nwant %+v", errs, want)
			}
			if !reflect.DeepEqual(out, schemas.Enriched{ID: "untouched"}) {
				t.Errorf("out changed on error: %+v", out)
			}
		})
	}
}

func TestEnrichGBXWithoutRate(t *testing.T) {
	s := smallStore(t)
	s.DeleteFX("GBX")
	e := enrich.Enricher{Store: s}
	errs := e.Enrich(tradeEvent("VOD.L", 72.5, 10), now, new(schemas.Enriched), nil)
	want := `no USD rate for currency "GBX" of "VOD.L"`
	if len(errs) != 1 || errs[0].Detail != want {
		t.Errorf("errors = %+v, want one with %q", errs, want)
	}
}

// TestEnrichReusedOut checks that enriching into an out that held another
// kind of event leaves nothing of it behind.
func TestEnrichReusedOut(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t)}
	var out schemas.Enriched
	if errs := e.Enrich(tradeEvent("AAPL", 10, 10), now, &out, nil); errs != nil {
		t.Fatal(errs)
	}
	if errs := e.Enrich(quoteEvent("AAPL", 10, 11), now, &out, nil); errs != nil {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(out.Trade, schemas.EnrichedTrade{}) {
		t.Errorf("trade payload left over: %+v", out.Trade)
	}
}

// TestEnrichOverwritesEverything fills every field of out, at every depth,
// then checks that enriching into it gives what enriching into a zero value
// gives; a field added to schemas.Enriched that Enrich does not write fails
// here.
func TestEnrichOverwritesEverything(t *testing.T) {
	e := enrich.Enricher{Store: smallStore(t)}
	for _, ev := range []*schemas.Event{quoteEvent("AAPL", 10, 11), tradeEvent("VOD.L", 70, 10)} {
		var clean, dirty schemas.Enriched
		fill(reflect.ValueOf(&dirty).Elem())
		e.Enrich(ev, now, &clean, nil)
		if errs := e.Enrich(ev, now, &dirty, nil); errs != nil {
			t.Fatal(errs)
		}
		if !reflect.DeepEqual(clean, dirty) {
			t.Errorf("%v: stale values left in out:\n%+v\nwant\n%+v", ev.Kind, dirty, clean)
		}
	}
}

// fill sets every settable scalar in v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.String:
		v.SetString("stale")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
	}
}

func BenchmarkEnrichQuote(b *testing.B) {
	e := enrich.Enricher{Store: enrich.NewStore()}
	e.Store.Replace(enrich.Sample())
	ev := quoteEvent("BRK.B", 410, 411)
	var out schemas.Enriched
	errs := make([]schemas.FieldError, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		if errs = e.Enrich(ev, now, &out, errs[:0]); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

func BenchmarkEnrichTrade(b *testing.B) {
	e := enrich.Enricher{Store: enrich.NewStore()}
	e.Store.Replace(enrich.Sample())
	ev := tradeEvent("VOD.L", 72.5, 1000)
	var out schemas.Enriched
	errs := make([]schemas.FieldError, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		if errs = e.Enrich(ev, now, &out, errs[:0]); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

func BenchmarkEnrichParallel(b *testing.B) {
	e := enrich.Enricher{Store: enrich.NewStore()}
	e.Store.Replace(enrich.Sample())
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
}
