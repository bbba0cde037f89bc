package schemas_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

func decodeEnriched(t testing.TB, b []byte) schemas.Enriched {
	t.Helper()
	var en schemas.Enriched
	r := schemas.NewReader(b)
	if err := en.DecodeMsgpack(&r); err != nil {
		t.Fatalf("DecodeMsgpack: %v\n% x", err, b)
	}
	if !r.Done() {
		t.Fatalf("DecodeMsgpack left %d bytes", len(r.Rest()))
	}
	return en
}

func TestEnrichedRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		en   func() schemas.Enriched
	}{
		{"quote", sampleEnrichedQuote},
		{"trade", sampleEnrichedTrade},
		{"quote without venue and ts", func() schemas.Enriched {
			en := sampleEnrichedQuote()
			en.Quote.Present &^= schemas.FVenue | schemas.FTS
			en.Quote.Venue, en.Quote.TS = "", 0
			return en
		}},
		{"trade without conditions", func() schemas.Enriched {
			en := sampleEnrichedTrade()
			en.Trade.Present &^= schemas.FConditions
			en.Trade.Conditions = nil
			return en
		}},
		{"zero instrument", func() schemas.Enriched {
			en := sampleEnrichedTrade()
			en.Trade.Instrument = schemas.Instrument{}
			return en
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.en()
			b := want.AppendMsgpack(nil)
			got := decodeEnriched(t, b)
			if !sameEnriched(&got, &want) {
				t.Errorf("round trip\n got %+v\nwant %+v", got, want)
			}
			if b2 := got.AppendMsgpack(nil); !bytes.Equal(b, b2) {
				t.Errorf("re-encoded differs\n% x\n% x", b2, b)
			}
		})
	}
}

// TestEnrichedDropsInvalid checks that an enriched event carries only the
// valid fields of its source event (workers enrich only valid events, but
// the encoder does not rely on it).
func TestEnrichedDropsInvalid(t *testing.T) {
	en := sampleEnrichedQuote()
	en.Quote.Invalid = schemas.FVenue
	got := decodeEnriched(t, en.AppendMsgpack(nil))
	if got.Quote.Present != allQuoteFields&^schemas.FVenue || got.Quote.Invalid != 0 || got.Quote.Venue != "" {
		t.Errorf("Quote %+v", got.Quote.Quote)
	}
}

func TestEnrichedDecode(t *testing.T) {
	inst := eventMap("symbol", "AAPL", "name", "Apple", "future", 1)
	tests := []struct {
		name  string
		in    []byte
		check func(t *testing.T, en *schemas.Enriched)
	}{
		{"data before type, unknown keys", eventMap("data", eventMap("mid", 2.0, "instrument", inst, "x", nil, "notional", 5.0),
			"type", schemas.TypeQuoteEnrichedV1, "new_attr", eventMap()),
			func(t *testing.T, en *schemas.Enriched) {
				if en.Kind != schemas.KindQuote || en.Quote.Mid != 2 || en.Quote.Instrument.Name != "Apple" ||
					en.Quote.Instrument.Symbol != "AAPL" {
					t.Errorf("decoded %+v", en.Quote)
				}
				// Fields of the other kind are not filled.
				if en.Trade.Notional != 0 || en.Trade.Instrument != (schemas.Instrument{}) {
					t.Errorf("trade payload of an enriched quote: %+v", en.Trade)
				}
			}},
		{"trade ignores quote keys", eventMap("type", schemas.TypeTradeEnrichedV1, "data", eventMap("mid", 2.0, "price", 3.0, "received_at", 7)),
			func(t *testing.T, en *schemas.Enriched) {
				if en.Trade.Price != 3 || en.Trade.ReceivedAt != 7 || en.Quote != (schemas.EnrichedQuote{}) {
					t.Errorf("decoded %+v", en)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			en := decodeEnriched(t, tc.in)
			tc.check(t, &en)
		})
	}
}

func TestEnrichedDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"source event type", encodeEvent(sampleQuote(), nil), schemas.ErrFrame},
		{"no type", eventMap("data", eventMap()), schemas.ErrFrame},
		{"no data", eventMap("type", schemas.TypeQuoteEnrichedV1), schemas.ErrShortBuffer},
		{"mid not a number", eventMap("type", schemas.TypeQuoteEnrichedV1, "data", eventMap("mid", "x")), schemas.ErrType},
		{"not a map", []byte{0x01}, schemas.ErrType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var en schemas.Enriched
			r := schemas.NewReader(tc.in)
			if err := en.DecodeMsgpack(&r); !errors.Is(err, tc.want) {
				t.Errorf("DecodeMsgpack = %v, want %v", err, tc.want)
			}
		})
	}
	en := sampleEnrichedTrade()
	b := en.AppendMsgpack(nil)
	for i := range b {
		r := schemas.NewReader(b[:i])
		if err := en.DecodeMsgpack(&r); !errors.Is(err, schemas.ErrShortBuffer) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
}

func TestEnrichedUnknownKindEncodesEmptyData(t *testing.T) {
	en := schemas.Enriched{ID: "x", Type: "something.else"}
	r := schemas.NewReader(en.AppendMsgpack(nil))
	if r.Skip(); r.Err() != nil || !r.Done() {
		t.Fatalf("malformed: %v", r.Err())
	}
}
