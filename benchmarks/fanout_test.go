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

// A fanout count meets its targets when SSE delivers at least half of
// what direct NATS does with a p99 of at most 50 ms; the note names what
// it missed.
func TestFanoutMissed(t *testing.T) {
	f := func(delivered, direct, p99 float64, want string) {
		t.Helper()
		if got := fanoutMissed(fanoutRun{delivered: delivered, p99: p99}, fanoutRun{delivered: direct}); got != want {
			t.Errorf("fanoutMissed(%v, %v, %v ms) = %q, want %q", delivered, direct, p99, got, want)
		}
	}
	f(100, 100, 50, "")
	f(50, 100, 1, "")
	f(49, 100, 1, "SSE delivered 0.49× direct NATS (target ≥ 0.5×)")
	f(100, 100, 50.1, "SSE p99 50.1 ms (target ≤ 50 ms)")
	f(10, 100, 400, "SSE delivered 0.10× direct NATS (target ≥ 0.5×), SSE p99 400.0 ms (target ≤ 50 ms)")
}
