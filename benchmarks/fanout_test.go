package benchmarks

import (
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// The subscribers' latency comes from the event's time attribute, read
// from the SSE data line and from the MessagePack event.
func TestFanoutEventTime(t *testing.T) {
	ns := time.Date(2026, 12, 6, 16, 0, 0, 123456789, time.UTC).UnixNano()
	ev := schemas.Enriched{ID: "1", Source: "/t", Type: schemas.TypeQuoteEnrichedV1, Subject: "S001", Time: ns, Kind: schemas.KindQuote}
	ev.Quote.Quote = schemas.Quote{Symbol: "S001", Bid: 1, Ask: 2, Present: schemas.FSymbol | schemas.FBid | schemas.FAsk}
	data := ev.AppendMsgpack(nil)
	if got := msgpackTime(data); got != ns {
		t.Fatalf("msgpackTime %d, want %d", got, ns)
	}
	js, err := schemas.AppendEventJSON(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventTime(append([]byte("data: "), js...)); got != ns {
		t.Fatalf("eventTime %d, want %d from %s", got, ns, js)
	}
	if got := eventTime([]byte("data: {}")); got != 0 {
		t.Fatalf("eventTime of no time: %d", got)
	}
}

func TestFanoutSymbols(t *testing.T) {
	seen := map[string]int{}
	for i := range 100 {
		for _, s := range fanoutSymbolsOf(i) {
			seen[s]++
		}
	}
	if len(seen) != fanoutSymbols || seen["S000"] != 100*fanoutPerSub/fanoutSymbols {
		t.Fatalf("100 subscribers name %d symbols, S000 %d times", len(seen), seen["S000"])
	}
}
