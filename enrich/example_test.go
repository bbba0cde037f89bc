package enrich_test

import (
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/schemas"
)

func ExampleEnricher_Enrich() {
	store := enrich.NewStore()
	store.Replace(enrich.Sample())
	e := enrich.Enricher{Store: store}

	// 1,000 Vodafone shares at 72.5 pence.
	ev := &schemas.Event{
		ID: "t-1", Subject: "VOD.L", Kind: schemas.KindTrade, Type: schemas.TypeTradeV1,
		Trade: schemas.Trade{Symbol: "VOD.L", Price: 72.5, Size: 1000},
	}
	var out schemas.Enriched
	errs := e.Enrich(ev, 0, &out, nil)
	fmt.Println(out.Type, out.Trade.Instrument.Currency, out.Trade.Notional, out.Trade.NotionalUSD, len(errs))

	ev.Trade.Symbol = "NOPE"
	errs = e.Enrich(ev, 0, &out, errs)
	fmt.Printf("%s: %s\n", errs[0].Code, errs[0].Detail)
	// Output:
	// marketdata.trade.enriched.v1 GBX 72500 920.75 0
	// unknown_instrument: no reference data for symbol "NOPE"
}

func ExampleParseRefData() {
	_, err := enrich.ParseRefData(strings.NewReader(`{"instruments": [
		{"symbol": "AAPL", "currency": "USD", "tick_size": 0.01, "lot_size": 1},
		{"symbol": "AAPL", "currency": "USD"},
		{"symbol": "BRK B", "currency": "US"}]}`))
	fmt.Println(err)
	// Output:
	// instrument 1 ("AAPL"): duplicate symbol, first at instrument 0
	// instrument 2 ("BRK B"): symbol "BRK B" has ' ' at byte 3: only A-Z a-z 0-9 . - _ / are allowed; currency "US" is not a 3-letter code
}

func ExampleInstrumentKey() {
	fmt.Println(enrich.BucketName("sluice"))
	fmt.Println(enrich.InstrumentKey("BRK.B"))
	fmt.Println(enrich.FXKey("GBX"))
	// Output:
	// sluice_refdata
	// instrument.BRK_B
	// fx.GBX
}
