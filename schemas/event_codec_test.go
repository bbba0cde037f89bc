package schemas_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

func TestEventRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ev   func() schemas.Event
	}{
		{"quote", sampleQuote},
		{"trade", sampleTrade},
		{"quote without corr", func() schemas.Event { e := sampleQuote(); e.Corr, e.Seq = 0, 0; return e }},
		{"trade with corr", func() schemas.Event { e := sampleTrade(); e.Corr, e.Seq = 1<<64-1, 1<<32-1; return e }},
		{"corr with seq 0", func() schemas.Event { e := sampleQuote(); e.Seq = 0; return e }},
		{"seq without corr", func() schemas.Event { e := sampleQuote(); e.Corr = 0; return e }},
		{"dataschema", func() schemas.Event {
			e := sampleTrade()
			e.DataSchema = "https://example.com/schemas/trade.v1.json"
			return e
		}},
		{"no received_at", func() schemas.Event { e := sampleQuote(); e.ReceivedAt = 0; return e }},
		{"pre-1970 time", func() schemas.Event { e := sampleQuote(); e.Time = -86_400_000_000_123; return e }},
		{"invalid fields", func() schemas.Event {
			e := sampleQuote()
			e.Quote.Invalid = schemas.FBid | schemas.FVenue | schemas.FTS
			e.Quote.Bid, e.Quote.Venue, e.Quote.TS = 0, "", 0
			return e
		}},
		{"invalid trade fields", func() schemas.Event {
			e := sampleTrade()
			e.Trade.Invalid = schemas.FConditions | schemas.FSize | schemas.FTradeID | schemas.FSymbol
			e.Trade.Conditions, e.Trade.Size, e.Trade.TradeID, e.Trade.Symbol = nil, 0, "", ""
			return e
		}},
		{"missing fields", func() schemas.Event {
			e := sampleQuote()
			e.Quote.Present &^= schemas.FAsk | schemas.FVenue
			e.Quote.Ask, e.Quote.Venue = 0, ""
			return e
		}},
		{"missing trade fields", func() schemas.Event {
			e := sampleTrade()
			e.Trade.Present = schemas.FSymbol
			e.Trade = schemas.Trade{Symbol: e.Trade.Symbol, Present: schemas.FSymbol}
			return e
		}},
		{"empty conditions", func() schemas.Event { e := sampleTrade(); e.Trade.Conditions = nil; return e }},
		{"no payload", func() schemas.Event { e := sampleQuote(); e.Quote = schemas.Quote{}; return e }},
		{"long strings", func() schemas.Event {
			e := sampleQuote()
			e.ID = string(bytes.Repeat([]byte("i"), 70000))
			e.Quote.Symbol = "ü€𝄞 " + string(bytes.Repeat([]byte("s"), 300))
			return e
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.ev()
			b := want.AppendMsgpack(nil)
			got := decodeEvent(t, b)
			if !sameEvent(&got, &want) {
				t.Errorf("round trip\n got %+v\nwant %+v", got, want)
			}
			// Re-encoding gives the same bytes.
			if b2 := got.AppendMsgpack(nil); !bytes.Equal(b, b2) {
				t.Errorf("re-encoded\n% x\nwant\n% x", b2, b)
			}
		})
	}
}

func TestEventAppendsToBuffer(t *testing.T) {
	ev := sampleQuote()
	prefix := []byte("prefix")
	b := ev.AppendMsgpack(prefix)
	if !bytes.HasPrefix(b, prefix) || !bytes.Equal(b[len(prefix):], ev.AppendMsgpack(nil)) {
		t.Fatal("AppendMsgpack does not append")
	}
}

// TestEventPresentBitsOfOtherKind checks that a Present bit of another kind
// does not corrupt the map header.
func TestEventPresentBitsOfOtherKind(t *testing.T) {
	ev := sampleQuote()
	ev.Quote.Present = 0xffff
	got := decodeEvent(t, ev.AppendMsgpack(nil))
	if got.Quote.Present != allQuoteFields {
		t.Errorf("Present = %#x, want %#x", got.Quote.Present, allQuoteFields)
	}
	tr := sampleTrade()
	tr.Trade.Present = 0xffff
	gotTr := decodeEvent(t, tr.AppendMsgpack(nil))
	if gotTr.Trade.Present != allTradeFields {
		t.Errorf("trade Present = %#x, want %#x", gotTr.Trade.Present, allTradeFields)
	}
}

// eventMap builds an event map by hand, in the order given, for the decoding
// cases our encoder never writes.
func eventMap(pairs ...any) []byte {
	b := schemas.AppendMapHeader(nil, len(pairs)/2)
	for i, p := range pairs {
		switch v := p.(type) {
		case string:
			b = schemas.AppendString(b, v)
		case int:
			b = schemas.AppendInt(b, int64(v))
		case float64:
			b = schemas.AppendFloat64(b, v)
		case nil:
			b = schemas.AppendNil(b)
		case []byte: // raw MessagePack
			b = append(b, v...)
		default:
			panic(i)
		}
	}
	return b
}

func TestEventDecode(t *testing.T) {
	quoteData := eventMap("symbol", "AAPL", "bid", 1.5, "ask", 2, "bid_size", 10, "ask_size", 20)
	tests := []struct {
		name  string
		in    []byte
		check func(t *testing.T, ev *schemas.Event)
	}{
		{"data before type", eventMap("data", quoteData, "type", schemas.TypeQuoteV1, "id", "a"),
			func(t *testing.T, ev *schemas.Event) {
				q := ev.Quote
				if ev.Kind != schemas.KindQuote || !ev.Known || q.Symbol != "AAPL" || q.Bid != 1.5 || q.Ask != 2 ||
					q.BidSize != 10 || q.AskSize != 20 || q.Present != schemas.FSymbol|schemas.FBid|schemas.FAsk|schemas.FBidSize|schemas.FAskSize {
					t.Errorf("decoded %+v", ev)
				}
			}},
		{"unknown keys skipped", eventMap("type", schemas.TypeQuoteV1, "ext", eventMap("a", nil, "b", []byte{0x92, 0x01, 0xc3}),
			"data", eventMap("symbol", "X", "unknown", eventMap("deep", 1), "bid", 3.0), "other", 1),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Quote.Symbol != "X" || ev.Quote.Bid != 3 || ev.Quote.Present != schemas.FSymbol|schemas.FBid || ev.Quote.Invalid != 0 {
					t.Errorf("decoded %+v", ev.Quote)
				}
			}},
		{"unknown version", eventMap("type", "marketdata.quote.v2", "data", eventMap("symbol", "X", "bid", "not parsed")),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Kind != schemas.KindQuote || ev.Known || ev.Quote.Present != 0 {
					t.Errorf("Kind %v, Known %v, Quote %+v", ev.Kind, ev.Known, ev.Quote)
				}
			}},
		{"unknown kind", eventMap("type", "marketdata.option.v1", "data", quoteData),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Kind != schemas.KindUnknown || ev.Known {
					t.Errorf("Kind %v, Known %v", ev.Kind, ev.Known)
				}
			}},
		{"other domain", eventMap("type", "com.example.quote.v1", "data", quoteData),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Kind != schemas.KindUnknown || ev.Known {
					t.Errorf("Kind %v, Known %v", ev.Kind, ev.Known)
				}
			}},
		{"no data", eventMap("type", schemas.TypeTradeV1),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Kind != schemas.KindTrade || !ev.Known || ev.Trade.Present != 0 {
					t.Errorf("decoded %+v", ev)
				}
			}},
		{"wrong types marked invalid", eventMap("type", schemas.TypeQuoteV1, "data", eventMap(
			"symbol", 5, "bid", "1.5", "ask", nil, "bid_size", 1.5, "ask_size", "x", "venue", 7, "ts", "2025-01-01")),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Quote.Present != allQuoteFields || ev.Quote.Invalid != allQuoteFields {
					t.Errorf("Present %#x Invalid %#x", ev.Quote.Present, ev.Quote.Invalid)
				}
				if ev.Quote != (schemas.Quote{Present: allQuoteFields, Invalid: allQuoteFields}) {
					t.Errorf("invalid fields hold values: %+v", ev.Quote)
				}
			}},
		{"trade wrong types", eventMap("type", schemas.TypeTradeV1, "data", eventMap(
			"symbol", nil, "price", nil, "size", 2.5, "venue", nil, "ts", 1.5, "trade_id", 9, "conditions", []byte{0x92, 0xa1, 'a', 0x01})),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Trade.Present != allTradeFields || ev.Trade.Invalid != allTradeFields || len(ev.Trade.Conditions) != 0 {
					t.Errorf("Trade %+v", ev.Trade)
				}
			}},
		// An integral float is an integer, as in JSON Schema; past int64 it
		// saturates, for validation to call it out_of_range.
		{"integral floats", eventMap("type", schemas.TypeTradeV1, "data", eventMap("size", 300.0, "ts", []byte{0xca, 0x44, 0x80, 0, 0})), // ts a float32 1024),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Trade.Size != 300 || ev.Trade.TS != 1024 || ev.Trade.Invalid != 0 {
					t.Errorf("Trade %+v", ev.Trade)
				}
			}},
		{"sizes past int64", eventMap("type", schemas.TypeQuoteV1, "data", eventMap(
			"bid_size", []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "ask_size", -1e30)),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Quote.BidSize != math.MaxInt64 || ev.Quote.AskSize != math.MinInt64 || ev.Quote.Invalid != 0 {
					t.Errorf("Quote %+v", ev.Quote)
				}
			}},
		{"NaN and infinite sizes", eventMap("type", schemas.TypeQuoteV1, "data", eventMap("bid_size", math.NaN(), "ask_size", math.Inf(1))),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Quote.Invalid != schemas.FBidSize|schemas.FAskSize {
					t.Errorf("Quote %+v", ev.Quote)
				}
			}},
		{"ts past int64", eventMap("type", schemas.TypeQuoteV1, "data", eventMap("ts", tsExt96(253402300799, 0))),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Quote.TS != math.MaxInt64 || ev.Quote.Invalid != 0 {
					t.Errorf("Quote %+v", ev.Quote)
				}
			}},
		{"ts before int64", eventMap("type", schemas.TypeTradeV1, "data", eventMap("ts", tsExt96(-62135596800, 0))),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Trade.TS != math.MinInt64 || ev.Trade.Invalid != 0 {
					t.Errorf("Trade %+v", ev.Trade)
				}
			}},
		{"ts integer past int64", eventMap("type", schemas.TypeTradeV1, "data", eventMap("ts", []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Trade.TS != math.MaxInt64 || ev.Trade.Invalid != 0 {
					t.Errorf("Trade %+v", ev.Trade)
				}
			}},
		{"conditions not an array", eventMap("type", schemas.TypeTradeV1, "data", eventMap("conditions", "@")),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Trade.Invalid != schemas.FConditions {
					t.Errorf("Trade %+v", ev.Trade)
				}
			}},
		{"ts as timestamp extension", eventMap("type", schemas.TypeQuoteV1, "data", eventMap("ts", schemas.AppendTimestamp(nil, -5))),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Quote.TS != -5 || ev.Quote.Invalid != 0 {
					t.Errorf("Quote %+v", ev.Quote)
				}
			}},
		{"time as integer", eventMap("type", schemas.TypeQuoteV1, "time", 12345),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Time != 12345 {
					t.Errorf("Time %d", ev.Time)
				}
			}},
		{"last value wins", eventMap("type", "x", "type", schemas.TypeQuoteV1, "data", eventMap(
			"bid", 1.0, "bid", nil, "ask", nil, "ask", 2.0, "symbol", "A", "symbol", "B")),
			func(t *testing.T, ev *schemas.Event) {
				q := ev.Quote
				if !ev.Known || q.Bid != 0 || q.Invalid != schemas.FBid || q.Ask != 2 || q.Symbol != "B" {
					t.Errorf("Quote %+v", q)
				}
			}},
		{"empty map", eventMap(),
			func(t *testing.T, ev *schemas.Event) {
				if ev.Kind != schemas.KindUnknown || ev.Type != "" {
					t.Errorf("decoded %+v", ev)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := decodeEvent(t, tc.in)
			tc.check(t, &ev)
		})
	}
}

func TestEventDecodeResets(t *testing.T) {
	ev := sampleTrade()
	r := schemas.NewReader(encodeEvent(sampleQuote(), nil))
	if err := ev.DecodeMsgpack(&r); err != nil {
		t.Fatal(err)
	}
	if ev.Trade.Present != 0 || ev.Trade.Symbol != "" || len(ev.Trade.Conditions) != 0 {
		t.Errorf("the trade of an earlier decode survives: %+v", ev.Trade)
	}
}

func TestEventDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"not a map", []byte{0x91, 0x01}, schemas.ErrType},
		{"empty", nil, schemas.ErrShortBuffer},
		{"id not a string", eventMap("id", 5), schemas.ErrType},
		{"non-string key", []byte{0x81, 0x01, 0x01}, schemas.ErrType},
		{"corr negative", eventMap("sluicecorr", -1), schemas.ErrOverflow},
		{"seq above 32 bits", eventMap("sluiceseq", []byte{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}), schemas.ErrOverflow},
		{"data not a map", eventMap("type", schemas.TypeQuoteV1, "data", []byte{0x93, 1, 2, 3}), schemas.ErrType},
		{"envelope time past int64", eventMap("type", schemas.TypeQuoteV1, "time", tsExt96(253402300799, 0)), schemas.ErrOverflow},
		{"truncated", encodeEvent(sampleQuote(), nil)[:40], schemas.ErrShortBuffer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ev schemas.Event
			r := schemas.NewReader(tc.in)
			if err := ev.DecodeMsgpack(&r); !errors.Is(err, tc.want) {
				t.Errorf("DecodeMsgpack = %v, want %v", err, tc.want)
			}
		})
	}
	// Every strict prefix of an event is an error, never a panic.
	b := encodeEvent(sampleTrade(), nil)
	for i := range b {
		var ev schemas.Event
		r := schemas.NewReader(b[:i])
		if err := ev.DecodeMsgpack(&r); !errors.Is(err, schemas.ErrShortBuffer) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
}

// TestEventDecodeResync checks that a malformed event in a batch costs that
// event only, while a truncated frame stops the batch.
func TestEventDecodeResync(t *testing.T) {
	bad := eventMap("id", 5, "type", schemas.TypeQuoteV1)
	frame := schemas.BatchFrameHeader(nil)
	frame = encodeEvent(sampleQuote(), frame)
	frame = append(frame, bad...)
	frame = encodeEvent(sampleTrade(), frame)
	schemas.FinishBatchFrame(frame, 3)

	r := schemas.NewReader(frame)
	n, err := schemas.ReadBatchFrame(&r)
	if err != nil || n != 3 {
		t.Fatalf("ReadBatchFrame = %d, %v", n, err)
	}
	var kinds []schemas.Kind
	var ev schemas.Event
	for i := 0; i < n; i++ {
		start := r.Offset()
		if err := ev.DecodeMsgpack(&r); err != nil {
			if !errors.Is(err, schemas.ErrType) || !bytes.Equal(frame[start:r.Offset()], bad) || r.Err() != nil {
				t.Fatalf("event %d: %v, raw % x, reader %v", i, err, frame[start:r.Offset()], r.Err())
			}
			kinds = append(kinds, schemas.KindUnknown)
			continue
		}
		kinds = append(kinds, ev.Kind)
	}
	if len(kinds) != 3 || kinds[0] != schemas.KindQuote || kinds[2] != schemas.KindTrade || !r.Done() {
		t.Fatalf("kinds %v, done %v", kinds, r.Done())
	}

	// A truncated event leaves the error sticky.
	r = schemas.NewReader(frame[:len(frame)-3])
	n, _ = schemas.ReadBatchFrame(&r)
	var errs int
	for i := 0; i < n; i++ {
		if ev.DecodeMsgpack(&r) != nil {
			errs++
		}
	}
	if errs != 2 || !errors.Is(r.Err(), schemas.ErrShortBuffer) {
		t.Fatalf("truncated frame: %d errors, reader %v", errs, r.Err())
	}
}

func TestParseType(t *testing.T) {
	tests := []struct {
		in        string
		kind      schemas.Kind
		known, ok bool
	}{
		{"marketdata.quote.v1", schemas.KindQuote, true, true},
		{"marketdata.trade.v1", schemas.KindTrade, true, true},
		{"marketdata.quote.v2", schemas.KindQuote, false, true},
		{"marketdata.trade.v10", schemas.KindTrade, false, true},
		{"marketdata.option.v1", schemas.KindUnknown, false, false},
		{"marketdata.quote.enriched.v1", schemas.KindUnknown, false, false},
		{"marketdata.quote.v", schemas.KindUnknown, false, false},
		{"marketdata.quote.vx", schemas.KindUnknown, false, false},
		{"marketdata.quote", schemas.KindUnknown, false, false},
		{"quote.v1", schemas.KindUnknown, false, false},
		{"", schemas.KindUnknown, false, false},
	}
	for _, tc := range tests {
		k, known, ok := schemas.ParseType(tc.in)
		if k != tc.kind || known != tc.known || ok != tc.ok {
			t.Errorf("ParseType(%q) = %v, %v, %v; want %v, %v, %v", tc.in, k, known, ok, tc.kind, tc.known, tc.ok)
		}
	}
}

func TestKinds(t *testing.T) {
	for _, k := range schemas.Kinds {
		got, ok := schemas.ParseKind(k.String())
		if !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k, got, ok)
		}
		if kk, known, ok := schemas.ParseType(k.CEType()); kk != k || !known || !ok {
			t.Errorf("ParseType(%q) = %v, %v, %v", k.CEType(), kk, known, ok)
		}
		if k.EnrichedType() == "" {
			t.Errorf("%v has no enriched type", k)
		}
	}
	if schemas.KindUnknown.String() != "unknown" || schemas.KindUnknown.CEType() != "" || schemas.KindUnknown.EnrichedType() != "" {
		t.Error("KindUnknown names")
	}
	if _, ok := schemas.ParseKind("unknown"); ok {
		t.Error(`ParseKind("unknown") ok`)
	}
}

// tsExt96 is a MessagePack timestamp 96 extension.
func tsExt96(sec int64, nsec uint32) []byte {
	b := []byte{0xc7, 12, 0xff}
	b = binary.BigEndian.AppendUint32(b, nsec)
	return binary.BigEndian.AppendUint64(b, uint64(sec))
}
