package schemas

import "testing"

func TestValidTraceParent(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		if got := ValidTraceParent(s); got != want {
			t.Errorf("ValidTraceParent(%q) = %v, want %v", s, got, want)
		}
	}
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true)
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true)
	f("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true)
	f("", false)
	f("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false)
	f("00-00000000000000000000000000000000-00f067aa0ba902b7-01", false)
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false)
	f("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false)
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false)
	f("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false)
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", false)
}

func TestTraceSampled(t *testing.T) {
	if !TraceSampled("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") {
		t.Error("flags 01: not sampled")
	}
	if TraceSampled("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02") {
		t.Error("flags 02: sampled")
	}
}

// An event's and an enriched event's trace context survive the MessagePack
// round trip, and an event without one encodes exactly as before (no key).
func TestTraceContextRoundTrip(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ev := Event{ID: "a", Source: "s", Type: TypeQuoteV1, Subject: "AAPL", Time: 1, Kind: KindQuote,
		Quote: Quote{Symbol: "AAPL", Bid: 1, Ask: 2, Present: FSymbol | FBid | FAsk}}
	plain := ev.AppendMsgpack(nil)
	ev.TraceParent, ev.TraceState = tp, "rojo=00f067aa0ba902b7"
	traced := ev.AppendMsgpack(nil)
	if len(traced) <= len(plain) {
		t.Fatalf("traced event %d bytes, plain %d", len(traced), len(plain))
	}
	var got Event
	for _, c := range []struct {
		raw           []byte
		parent, state string
	}{{plain, "", ""}, {traced, tp, "rojo=00f067aa0ba902b7"}} {
		r := NewReader(c.raw)
		if err := got.DecodeMsgpack(&r); err != nil {
			t.Fatal(err)
		}
		if got.TraceParent != c.parent || got.TraceState != c.state || got.Quote.Ask != 2 {
			t.Errorf("decoded trace (%q, %q) ask %v, want (%q, %q)", got.TraceParent, got.TraceState, got.Quote.Ask, c.parent, c.state)
		}
	}
	en := Enriched{ID: "a", Source: "s", Type: TypeQuoteEnrichedV1, Subject: "AAPL", Kind: KindQuote, TraceParent: tp}
	en.Quote.Quote = ev.Quote
	var back Enriched
	r := NewReader(en.AppendMsgpack(nil))
	if err := back.DecodeMsgpack(&r); err != nil {
		t.Fatal(err)
	}
	if back.TraceParent != tp || back.TraceState != "" {
		t.Errorf("enriched trace (%q, %q), want (%q, \"\")", back.TraceParent, back.TraceState, tp)
	}
	js, err := AppendEventJSON(nil, en.AppendMsgpack(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"traceparent":"` + tp + `"`; !contains(string(js), want) {
		t.Errorf("JSON %s lacks %s", js, want)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
