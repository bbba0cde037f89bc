package schemas_test

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

func ExampleEvent_AppendMsgpack() {
	ev := schemas.Event{
		ID: "q-1", Source: "/gateway/gw-1", Type: schemas.TypeQuoteV1, Subject: "AAPL",
		Time: time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC).UnixNano(),
		Kind: schemas.KindQuote, Known: true,
		Quote: schemas.Quote{
			Symbol: "AAPL", Bid: 189.5, Ask: 189.52, BidSize: 100, AskSize: 200,
			// Only fields with a Present bit are written.
			Present: schemas.FSymbol | schemas.FBid | schemas.FAsk | schemas.FBidSize | schemas.FAskSize,
		},
	}
	buf := make([]byte, 0, 512) // reuse it from event to event
	buf = ev.AppendMsgpack(buf[:0])
	fmt.Printf("%d bytes, a map of %d attributes\n", len(buf), buf[0]&0x0f)

	json, _ := schemas.AppendEventJSON(nil, buf)
	fmt.Println(string(json))
	// Output:
	// 199 bytes, a map of 8 attributes
	// {"specversion":"1.0","id":"q-1","source":"/gateway/gw-1","type":"marketdata.quote.v1","subject":"AAPL","time":"2025-01-02T15:04:05Z","datacontenttype":"application/json","data":{"symbol":"AAPL","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200}}
}

func ExampleEvent_DecodeMsgpack() {
	// A batch frame of two events, as the gateway publishes it.
	frame := schemas.BatchFrameHeader(nil)
	for i, sym := range []string{"AAPL", "BRK.B"} {
		ev := schemas.Event{
			ID: fmt.Sprint("t-", i), Type: schemas.TypeTradeV1, Subject: sym, Kind: schemas.KindTrade,
			Trade: schemas.Trade{Symbol: sym, Price: 100, Size: 5, Present: schemas.FSymbol | schemas.FPrice | schemas.FSize},
		}
		frame = ev.AppendMsgpack(frame)
	}
	schemas.FinishBatchFrame(frame, 2)

	// A worker reads it back. Strings alias frame, so frame must stay
	// unchanged while the events are in use.
	r := schemas.NewReader(frame)
	n, err := schemas.ReadBatchFrame(&r)
	if err != nil {
		panic(err)
	}
	var ev schemas.Event
	for i := 0; i < n; i++ {
		if err := ev.DecodeMsgpack(&r); err != nil {
			fmt.Println("rejected:", err) // r is past the bad event: go on
			continue
		}
		errs := schemas.Validate(&ev, 0, schemas.Limits{}, nil)
		fmt.Printf("%s %s known=%v price=%g errors=%d", ev.ID, ev.Trade.Symbol, ev.Known, ev.Trade.Price, len(errs))
		for _, e := range errs {
			fmt.Printf(" %s:%s", e.Field, e.Code)
		}
		fmt.Println()
	}
	// Output:
	// t-0 AAPL known=true price=100 errors=1 venue:missing_field
	// t-1 BRK.B known=true price=100 errors=1 venue:missing_field
}

func ExampleSymbolToken() {
	for _, sym := range []string{"AAPL", "BRK.B", "A_B", "EUR/USD"} {
		tok := schemas.SymbolToken(sym)
		back, _ := schemas.TokenSymbol(tok)
		fmt.Printf("%-8s %-8s %s\n", sym, tok, back)
	}
	fmt.Println(schemas.MustSubjects("").Enriched(schemas.KindQuote, "BRK.B"))
	// Output:
	// AAPL     AAPL     AAPL
	// BRK.B    BRK_B    BRK.B
	// A_B      A%5FB    A_B
	// EUR/USD  EUR/USD  EUR/USD
	// sluice.enriched.quote.BRK_B
}

func ExampleSubjects_EnrichedFilter() {
	s, err := schemas.NewSubjects("cell1")
	if err != nil {
		panic(err)
	}
	for _, f := range []string{"quote.BRK.B", "quote.*", "*.AAPL", "trade", ">", "option.AAPL"} {
		subj, err := s.EnrichedFilter(f)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(subj)
	}
	// Output:
	// cell1.enriched.quote.BRK_B
	// cell1.enriched.quote.*
	// cell1.enriched.*.AAPL
	// cell1.enriched.trade.>
	// cell1.enriched.>
	// error: filter "option.AAPL": unknown type "option" (want quote, trade, * or >)
}

func ExampleValidate() {
	ev := schemas.Event{
		Type: schemas.TypeQuoteV1, Kind: schemas.KindQuote, Known: true,
		Quote: schemas.Quote{
			Symbol: "AAPL", Bid: 190, Ask: 189.5, BidSize: 1, AskSize: -1, Venue: "nasdaq",
			Present: schemas.FSymbol | schemas.FBid | schemas.FAsk | schemas.FBidSize | schemas.FAskSize | schemas.FVenue,
		},
	}
	for _, e := range schemas.Validate(&ev, time.Now().UnixNano(), schemas.Limits{}, nil) {
		fmt.Printf("%s %s: %s\n", e.Field, e.Code, e.Detail)
	}
	// Output:
	// venue invalid_field: venue "nasdaq" is not a MIC (4 characters A-Z, 0-9)
	// ask_size negative_size: ask_size must not be negative, got -1
	// bid crossed_quote: bid 190 is above ask 189.5
}
