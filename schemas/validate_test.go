package schemas_test

import (
	"math"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// validateNow is the worker's clock in the validation tests: the samples'
// ts is 1.5 ms before it.
var validateNow = sampleTime

func TestValidate(t *testing.T) {
	type want struct{ field, code string }
	quote := func(f func(q *schemas.Quote)) func() schemas.Event {
		return func() schemas.Event { ev := sampleQuote(); f(&ev.Quote); return ev }
	}
	trade := func(f func(t *schemas.Trade)) func() schemas.Event {
		return func() schemas.Event { ev := sampleTrade(); f(&ev.Trade); return ev }
	}
	tests := []struct {
		name string
		ev   func() schemas.Event
		lim  schemas.Limits
		want []want
	}{
		{"valid quote", sampleQuote, schemas.Limits{}, nil},
		{"valid trade", sampleTrade, schemas.Limits{}, nil},
		{"locked quote", quote(func(q *schemas.Quote) { q.Ask = q.Bid }), schemas.Limits{}, nil},
		{"quote without optional fields", quote(func(q *schemas.Quote) { q.Present &^= schemas.FVenue | schemas.FTS }), schemas.Limits{}, nil},
		{"zero sizes", quote(func(q *schemas.Quote) { q.BidSize, q.AskSize = 0, 0 }), schemas.Limits{}, nil},
		{"trade without optional fields", trade(func(t *schemas.Trade) {
			t.Present &^= schemas.FTS | schemas.FTradeID | schemas.FConditions
		}), schemas.Limits{}, nil},

		// One case per code, quotes.
		{"quote missing_field", quote(func(q *schemas.Quote) { q.Present &^= schemas.FAskSize }), schemas.Limits{}, []want{{"ask_size", schemas.CodeMissingField}}},
		{"quote missing symbol", quote(func(q *schemas.Quote) { q.Present &^= schemas.FSymbol; q.Symbol = "" }), schemas.Limits{}, []want{{"symbol", schemas.CodeMissingField}}},
		{"quote invalid_field", quote(func(q *schemas.Quote) { q.Invalid |= schemas.FBidSize }), schemas.Limits{}, []want{{"bid_size", schemas.CodeInvalidField}}},
		{"quote crossed_quote", quote(func(q *schemas.Quote) { q.Bid, q.Ask = 2, 1 }), schemas.Limits{}, []want{{"bid", schemas.CodeCrossedQuote}}},
		{"quote non_positive_price", quote(func(q *schemas.Quote) { q.Bid = 0 }), schemas.Limits{}, []want{{"bid", schemas.CodeNonPositivePrice}}},
		{"quote negative ask", quote(func(q *schemas.Quote) { q.Bid, q.Ask = -2, -1 }), schemas.Limits{},
			[]want{{"bid", schemas.CodeNonPositivePrice}, {"ask", schemas.CodeNonPositivePrice}}},
		{"quote negative_size", quote(func(q *schemas.Quote) { q.AskSize = -1 }), schemas.Limits{}, []want{{"ask_size", schemas.CodeNegativeSize}}},
		{"quote stale", quote(func(q *schemas.Quote) { q.TS = validateNow - int64(time.Hour) - 1 }), schemas.Limits{}, []want{{"ts", schemas.CodeStale}}},
		{"quote future_timestamp", quote(func(q *schemas.Quote) { q.TS = validateNow + int64(5*time.Second) + 1 }), schemas.Limits{}, []want{{"ts", schemas.CodeFutureTimestamp}}},
		{"quote unknown_version", func() schemas.Event {
			ev := sampleQuote()
			ev.Type, ev.Known = "marketdata.quote.v2", false
			return ev
		}, schemas.Limits{}, []want{{"type", schemas.CodeUnknownVersion}}},

		// One case per code, trades.
		{"trade missing_field", trade(func(t *schemas.Trade) { t.Present &^= schemas.FVenue }), schemas.Limits{}, []want{{"venue", schemas.CodeMissingField}}},
		{"trade invalid_field", trade(func(t *schemas.Trade) { t.Invalid |= schemas.FConditions }), schemas.Limits{}, []want{{"conditions", schemas.CodeInvalidField}}},
		{"trade non_positive_price", trade(func(t *schemas.Trade) { t.Price = -0.01 }), schemas.Limits{}, []want{{"price", schemas.CodeNonPositivePrice}}},
		{"trade negative_size", trade(func(t *schemas.Trade) { t.Size = -5 }), schemas.Limits{}, []want{{"size", schemas.CodeNegativeSize}}},
		{"trade stale", trade(func(t *schemas.Trade) { t.TS = 0 }), schemas.Limits{}, []want{{"ts", schemas.CodeStale}}},
		{"trade future_timestamp", trade(func(t *schemas.Trade) { t.TS = math.MaxInt64 }), schemas.Limits{}, []want{{"ts", schemas.CodeFutureTimestamp}}},
		{"trade unknown_version", func() schemas.Event {
			ev := sampleTrade()
			ev.Type, ev.Known = "marketdata.trade.v9", false
			return ev
		}, schemas.Limits{}, []want{{"type", schemas.CodeUnknownVersion}}},
		{"unknown type", func() schemas.Event { return schemas.Event{Type: "other"} }, schemas.Limits{}, []want{{"type", schemas.CodeUnknownVersion}}},

		// Field rules.
		{"NaN bid", quote(func(q *schemas.Quote) { q.Bid = math.NaN() }), schemas.Limits{}, []want{{"bid", schemas.CodeInvalidField}}},
		{"infinite ask", quote(func(q *schemas.Quote) { q.Ask = math.Inf(1) }), schemas.Limits{}, []want{{"ask", schemas.CodeInvalidField}}},
		{"venue XNAS", quote(func(q *schemas.Quote) { q.Venue = "XNAS" }), schemas.Limits{}, nil},
		{"venue nasdaq", quote(func(q *schemas.Quote) { q.Venue = "nasdaq" }), schemas.Limits{}, []want{{"venue", schemas.CodeInvalidField}}},
		{"venue xnas", trade(func(t *schemas.Trade) { t.Venue = "xnas" }), schemas.Limits{}, []want{{"venue", schemas.CodeInvalidField}}},
		{"empty symbol", quote(func(q *schemas.Quote) { q.Symbol = "" }), schemas.Limits{}, []want{{"symbol", schemas.CodeInvalidField}}},
		{"symbol of 33 bytes", trade(func(t *schemas.Trade) { t.Symbol = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456" }), schemas.Limits{}, []want{{"symbol", schemas.CodeInvalidField}}},
		{"ts at the age bound", quote(func(q *schemas.Quote) { q.TS = validateNow - int64(time.Hour) }), schemas.Limits{}, nil},
		{"ts at the future bound", quote(func(q *schemas.Quote) { q.TS = validateNow + int64(5*time.Second) }), schemas.Limits{}, nil},
		{"invalid ts not checked for age", quote(func(q *schemas.Quote) { q.TS, q.Invalid = 0, schemas.FTS }), schemas.Limits{}, []want{{"ts", schemas.CodeInvalidField}}},
		{"invalid bid not crossed", quote(func(q *schemas.Quote) { q.Bid, q.Invalid = 5, schemas.FBid }), schemas.Limits{}, []want{{"bid", schemas.CodeInvalidField}}},

		// Limits.
		{"custom max age", quote(func(q *schemas.Quote) { q.TS = validateNow - int64(2*time.Second) }),
			schemas.Limits{MaxAge: time.Second}, []want{{"ts", schemas.CodeStale}}},
		{"custom max age passes", quote(func(q *schemas.Quote) { q.TS = validateNow - int64(2*time.Hour) }),
			schemas.Limits{MaxAge: 3 * time.Hour}, nil},
		{"custom max future", quote(func(q *schemas.Quote) { q.TS = validateNow + int64(2*time.Millisecond) }),
			schemas.Limits{MaxFuture: time.Millisecond}, []want{{"ts", schemas.CodeFutureTimestamp}}},
		{"custom max future passes", quote(func(q *schemas.Quote) { q.TS = validateNow + int64(time.Minute) }),
			schemas.Limits{MaxFuture: 2 * time.Minute}, nil},

		// Numbers past their bounds (issue #12): out_of_range, never the
		// wrong type; the decoders saturate what int64 cannot hold.
		{"price at the bound", trade(func(t *schemas.Trade) { t.Price = schemas.DefaultMaxPrice }), schemas.Limits{}, nil},
		{"price above the bound", trade(func(t *schemas.Trade) { t.Price = 1e308 }), schemas.Limits{}, []want{{"price", schemas.CodeOutOfRange}}},
		{"bid 1e300 ask 1e301", quote(func(q *schemas.Quote) { q.Bid, q.Ask = 1e300, 1e301 }), schemas.Limits{},
			[]want{{"bid", schemas.CodeOutOfRange}, {"ask", schemas.CodeOutOfRange}}},
		{"custom max price", quote(func(q *schemas.Quote) { q.Ask = 200 }), schemas.Limits{MaxPrice: 190}, []want{{"ask", schemas.CodeOutOfRange}}},
		{"tiny price", trade(func(t *schemas.Trade) { t.Price = 5e-324 }), schemas.Limits{}, nil}, // the tick is the enricher's
		{"size at the bound", trade(func(t *schemas.Trade) { t.Size = schemas.DefaultMaxSize }), schemas.Limits{}, nil},
		{"size above the bound", trade(func(t *schemas.Trade) { t.Size = schemas.DefaultMaxSize + 1 }), schemas.Limits{}, []want{{"size", schemas.CodeOutOfRange}}},
		{"size 2^62", trade(func(t *schemas.Trade) { t.Size = 1 << 62 }), schemas.Limits{}, []want{{"size", schemas.CodeOutOfRange}}},
		{"size past int64", quote(func(q *schemas.Quote) { q.BidSize = math.MaxInt64 }), schemas.Limits{}, []want{{"bid_size", schemas.CodeOutOfRange}}},
		{"size below int64", quote(func(q *schemas.Quote) { q.AskSize = math.MinInt64 }), schemas.Limits{}, []want{{"ask_size", schemas.CodeNegativeSize}}},
		{"max size capped at 2^53-1", trade(func(t *schemas.Trade) { t.Size = schemas.MaxExactInt + 1 }),
			schemas.Limits{MaxSize: math.MaxInt64}, []want{{"size", schemas.CodeOutOfRange}}},
		{"ts past 2262", quote(func(q *schemas.Quote) { q.TS = math.MaxInt64 }), schemas.Limits{}, []want{{"ts", schemas.CodeFutureTimestamp}}},
		{"ts before 1678", trade(func(t *schemas.Trade) { t.TS = math.MinInt64 }), schemas.Limits{}, []want{{"ts", schemas.CodeStale}}},
		{"huge max future does not wrap", quote(func(q *schemas.Quote) { q.TS = math.MaxInt64 }),
			schemas.Limits{MaxFuture: math.MaxInt64}, nil},
		{"huge max age does not wrap", quote(func(q *schemas.Quote) { q.TS = 0 }),
			schemas.Limits{MaxAge: math.MaxInt64}, nil},

		// Several failures are all reported, in field order.
		{"everything wrong", func() schemas.Event {
			return schemas.Event{Type: schemas.TypeQuoteV1, Kind: schemas.KindQuote, Known: true,
				Quote: schemas.Quote{Bid: 1, Present: schemas.FBid | schemas.FAsk | schemas.FVenue, Invalid: schemas.FAsk, Venue: "x"}}
		}, schemas.Limits{}, []want{
			{"symbol", schemas.CodeMissingField}, {"ask", schemas.CodeInvalidField}, {"bid_size", schemas.CodeMissingField},
			{"ask_size", schemas.CodeMissingField}, {"venue", schemas.CodeInvalidField},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev()
			prior := []schemas.FieldError{{Field: "earlier"}}
			errs := schemas.Validate(&ev, validateNow, tc.lim, prior)
			if errs[0] != prior[0] {
				t.Fatal("Validate does not append")
			}
			errs = errs[1:]
			ok := len(errs) == len(tc.want)
			for i := 0; ok && i < len(errs); i++ {
				ok = errs[i].Field == tc.want[i].field && errs[i].Code == tc.want[i].code && errs[i].Detail != ""
			}
			if !ok {
				t.Errorf("Validate = %+v, want %+v", errs, tc.want)
			}
		})
	}
}

// TestValidateAfterDecode validates what the decoder makes of wrong types.
func TestValidateAfterDecode(t *testing.T) {
	in := eventMap("type", schemas.TypeQuoteV1, "data", eventMap("symbol", "AAPL", "bid", "1", "ask", 2.0, "bid_size", 1, "ask_size", 1))
	ev := decodeEvent(t, in)
	errs := schemas.Validate(&ev, validateNow, schemas.Limits{}, nil)
	if len(errs) != 1 || errs[0].Field != "bid" || errs[0].Code != schemas.CodeInvalidField || errs[0].Detail != "bid must be a number" {
		t.Errorf("Validate = %+v", errs)
	}
}

// TestValidateDetails checks the messages of the number and time rules:
// they name what the JSON Schema says and never show a wrapped value.
func TestValidateDetails(t *testing.T) {
	f := func(in []byte, want ...schemas.FieldError) {
		t.Helper()
		ev := decodeEvent(t, in)
		errs := schemas.Validate(&ev, validateNow, schemas.Limits{}, nil)
		if len(errs) != len(want) {
			t.Errorf("Validate = %+v, want %+v", errs, want)
			return
		}
		for i := range want {
			if errs[i] != want[i] {
				t.Errorf("Validate = %+v, want %+v", errs[i], want[i])
			}
		}
	}
	quote := func(pairs ...any) []byte {
		data := []any{"symbol", "AAPL", "bid", 189.52, "ask", 189.53, "bid_size", 100, "ask_size", 200}
		return eventMap("type", schemas.TypeQuoteV1, "data", eventMap(append(data, pairs...)...))
	}
	maxU64 := []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	f(quote("bid_size", 1.0, "ask_size", 2e3)) // integral floats are integers
	f(quote("bid_size", 1.5), schemas.FieldError{Field: "bid_size", Code: schemas.CodeInvalidField, Detail: "bid_size must be an integer"})
	f(quote("ask_size", maxU64), schemas.FieldError{Field: "ask_size", Code: schemas.CodeOutOfRange,
		Detail: "ask_size is not below 2^63, above the maximum size 1000000000000"})
	f(quote("ask_size", 1e13), schemas.FieldError{Field: "ask_size", Code: schemas.CodeOutOfRange,
		Detail: "ask_size 10000000000000 is above the maximum size 1000000000000"})
	f(quote("bid_size", -1e19), schemas.FieldError{Field: "bid_size", Code: schemas.CodeNegativeSize,
		Detail: "bid_size must not be negative, got a number below -2^63"})
	f(quote("ask", 1e10), schemas.FieldError{Field: "ask", Code: schemas.CodeOutOfRange,
		Detail: "ask 1e+10 is above the maximum price 1e+09"})
	f(quote("ts", tsExt96(253402300799, 0)), schemas.FieldError{Field: "ts", Code: schemas.CodeFutureTimestamp,
		Detail: "ts past 2262-04-11 (beyond int64 Unix nanoseconds) is more than 5s ahead of the worker's clock"})
	f(quote("ts", tsExt96(-62135596800, 0)), schemas.FieldError{Field: "ts", Code: schemas.CodeStale,
		Detail: "ts before 1677-09-21 (beyond int64 Unix nanoseconds) is older than the maximum age 1h0m0s"})
}

func TestValidateValidDoesNotAllocate(t *testing.T) {
	for _, ev := range []schemas.Event{sampleQuote(), sampleTrade()} {
		errs := make([]schemas.FieldError, 0, 4)
		if n := testing.AllocsPerRun(100, func() {
			errs = schemas.Validate(&ev, validateNow, schemas.Limits{}, errs[:0])
		}); n != 0 || len(errs) != 0 {
			t.Errorf("%v: %v allocations, errors %+v", ev.Kind, n, errs)
		}
	}
}
