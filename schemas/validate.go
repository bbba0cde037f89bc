package schemas

import (
	"fmt"
	"math"
	"time"
)

// Default validation bounds.
const (
	DefaultMaxAge    = time.Hour
	DefaultMaxFuture = 5 * time.Second
	// DefaultMaxPrice is the highest price accepted, in any currency: far
	// above any listed instrument's, low enough that price times size stays
	// exact to the cent in a float64 for any sane size.
	DefaultMaxPrice = 1e9
	// DefaultMaxSize is the highest size accepted: a trillion units, more
	// than the shares outstanding of any company.
	DefaultMaxSize = 1_000_000_000_000
	// MaxExactInt is the highest integer a float64 holds exactly (2^53-1),
	// and the highest [Limits.MaxSize] can be: a larger size would not
	// survive a JSON consumer that reads numbers as float64.
	MaxExactInt = 1<<53 - 1
)

// Limits are the bounds of validation. The zero value means the defaults.
type Limits struct {
	// MaxAge rejects events whose ts is older than now-MaxAge (code stale).
	MaxAge time.Duration
	// MaxFuture rejects events whose ts is later than now+MaxFuture (code
	// future_timestamp).
	MaxFuture time.Duration
	// MaxPrice rejects a bid, ask or price above it (code out_of_range);
	// zero means [DefaultMaxPrice].
	MaxPrice float64
	// MaxSize rejects a size above it (code out_of_range); zero means
	// [DefaultMaxSize], and it is at most [MaxExactInt].
	MaxSize int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxAge <= 0 {
		l.MaxAge = DefaultMaxAge
	}
	if l.MaxFuture <= 0 {
		l.MaxFuture = DefaultMaxFuture
	}
	if !(l.MaxPrice > 0) || math.IsInf(l.MaxPrice, 0) { // also NaN
		l.MaxPrice = DefaultMaxPrice
	}
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultMaxSize
	}
	l.MaxSize = min(l.MaxSize, MaxExactInt)
	return l
}

// Validate checks ev against the rules of its type at time now (Unix
// nanoseconds) and appends one [FieldError] per failure to errs. It does not
// check reference data (unknown_instrument is the enricher's). It allocates
// only when it reports a failure.
func Validate(ev *Event, now int64, lim Limits, errs []FieldError) []FieldError {
	if !ev.Known {
		if len(ev.Type) > MaxTypeLen {
			return appendSizeErrors(ev, errs)
		}
		return append(errs, FieldError{Field: "type", Code: CodeUnknownVersion,
			Detail: fmt.Sprintf("type %q is not one this worker knows (%s, %s)", ev.Type, TypeQuoteV1, TypeTradeV1)})
	}
	lim = lim.withDefaults()
	switch ev.Kind {
	case KindQuote:
		return appendSizeErrors(ev, validateQuote(&ev.Quote, now, lim, errs))
	case KindTrade:
		return appendSizeErrors(ev, validateTrade(&ev.Trade, now, lim, errs))
	}
	return append(errs, FieldError{Field: "type", Code: CodeUnknownVersion, Detail: fmt.Sprintf("unknown type %q", ev.Type)})
}

// field describes one payload field for the shape checks.
type field struct {
	bit      uint16
	name     string
	want     string
	required bool
}

var quoteFields = []field{
	{FSymbol, "symbol", "a string", true},
	{FBid, "bid", "a number", true},
	{FAsk, "ask", "a number", true},
	{FBidSize, "bid_size", "an integer", true},
	{FAskSize, "ask_size", "an integer", true},
	{FVenue, "venue", "a MIC string", false},
	{FTS, "ts", "an RFC 3339 time or integer Unix nanoseconds", false},
}

var tradeFields = []field{
	{FSymbol, "symbol", "a string", true},
	{FPrice, "price", "a number", true},
	{FSize, "size", "an integer", true},
	{FVenue, "venue", "a MIC string", true},
	{FTS, "ts", "an RFC 3339 time or integer Unix nanoseconds", false},
	{FTradeID, "trade_id", "a string", false},
	{FConditions, "conditions", "an array of strings", false},
}

func checkShape(fields []field, present, invalid uint16, errs []FieldError) ([]FieldError, uint16) {
	bad := invalid
	for _, f := range fields {
		switch {
		case present&f.bit == 0 && f.required:
			errs = append(errs, FieldError{Field: f.name, Code: CodeMissingField, Detail: f.name + " is required"})
			bad |= f.bit
		case invalid&f.bit != 0:
			errs = append(errs, FieldError{Field: f.name, Code: CodeInvalidField, Detail: f.name + " must be " + f.want})
		}
	}
	return errs, bad
}

func validateQuote(q *Quote, now int64, lim Limits, errs []FieldError) []FieldError {
	errs, bad := checkShape(quoteFields, q.Present, q.Invalid, errs)
	errs, bad = checkSymbolVenue(q.Symbol, q.Venue, q.Present, bad, errs)
	errs, bad = checkPrice("bid", FBid, q.Bid, lim, bad, errs)
	errs, bad = checkPrice("ask", FAsk, q.Ask, lim, bad, errs)
	errs, bad = checkSize("bid_size", FBidSize, q.BidSize, lim, bad, errs)
	errs, _ = checkSize("ask_size", FAskSize, q.AskSize, lim, bad, errs)
	if bad&(FBid|FAsk) == 0 && q.Bid > q.Ask {
		errs = append(errs, FieldError{Field: "bid", Code: CodeCrossedQuote,
			Detail: fmt.Sprintf("bid %g is above ask %g", q.Bid, q.Ask)})
	}
	return checkTS(q.TS, q.Present, bad, now, lim, errs)
}

func validateTrade(t *Trade, now int64, lim Limits, errs []FieldError) []FieldError {
	errs, bad := checkShape(tradeFields, t.Present, t.Invalid, errs)
	errs, bad = checkSymbolVenue(t.Symbol, t.Venue, t.Present, bad, errs)
	errs, bad = checkPrice("price", FPrice, t.Price, lim, bad, errs)
	errs, bad = checkSize("size", FSize, t.Size, lim, bad, errs)
	return checkTS(t.TS, t.Present, bad, now, lim, errs)
}

func checkSymbolVenue(symbol, venue string, present, bad uint16, errs []FieldError) ([]FieldError, uint16) {
	if bad&FSymbol == 0 && (symbol == "" || len(symbol) > MaxSymbolLen) {
		errs = append(errs, symbolError())
		bad |= FSymbol
	}
	if present&FVenue != 0 && bad&FVenue == 0 && !isMIC(venue) {
		errs = append(errs, venueError(venue))
		bad |= FVenue
	}
	return errs, bad
}

func isMIC(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func checkPrice(name string, bit uint16, v float64, lim Limits, bad uint16, errs []FieldError) ([]FieldError, uint16) {
	if bad&bit != 0 {
		return errs, bad
	}
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return append(errs, FieldError{Field: name, Code: CodeInvalidField, Detail: name + " must be a finite number"}), bad | bit
	case v <= 0:
		return append(errs, FieldError{Field: name, Code: CodeNonPositivePrice,
			Detail: fmt.Sprintf("%s must be positive, got %g", name, v)}), bad | bit
	case v > lim.MaxPrice:
		return append(errs, FieldError{Field: name, Code: CodeOutOfRange,
			Detail: fmt.Sprintf("%s %g is above the maximum price %g", name, v, lim.MaxPrice)}), bad | bit
	}
	return errs, bad
}

// checkSize checks a size. Decoders saturate an integer past int64 to
// math.MinInt64 or math.MaxInt64, which the details name as such.
func checkSize(name string, bit uint16, v int64, lim Limits, bad uint16, errs []FieldError) ([]FieldError, uint16) {
	if bad&bit != 0 {
		return errs, bad
	}
	switch {
	case v == math.MinInt64:
		return append(errs, FieldError{Field: name, Code: CodeNegativeSize,
			Detail: name + " must not be negative, got a number below -2^63"}), bad | bit
	case v < 0:
		return append(errs, FieldError{Field: name, Code: CodeNegativeSize,
			Detail: fmt.Sprintf("%s must not be negative, got %d", name, v)}), bad | bit
	case v == math.MaxInt64:
		return append(errs, FieldError{Field: name, Code: CodeOutOfRange,
			Detail: fmt.Sprintf("%s is not below 2^63, above the maximum size %d", name, lim.MaxSize)}), bad | bit
	case v > lim.MaxSize:
		return append(errs, FieldError{Field: name, Code: CodeOutOfRange,
			Detail: fmt.Sprintf("%s %d is above the maximum size %d", name, v, lim.MaxSize)}), bad | bit
	}
	return errs, bad
}

// checkTS checks ts against [now-MaxAge, now+MaxFuture], bounds that
// saturate rather than wrap. Decoders saturate a time outside int64 Unix
// nanoseconds (before 1677, after 2262) to math.MinInt64 or math.MaxInt64:
// those are stale and future_timestamp like any other.
func checkTS(ts int64, present, bad uint16, now int64, lim Limits, errs []FieldError) []FieldError {
	if present&FTS == 0 || bad&FTS != 0 {
		return errs
	}
	switch {
	case ts < satAdd(now, -int64(lim.MaxAge)):
		return append(errs, FieldError{Field: "ts", Code: CodeStale,
			Detail: fmt.Sprintf("ts %s is older than the maximum age %s", formatNano(ts), lim.MaxAge)})
	case ts > satAdd(now, int64(lim.MaxFuture)):
		return append(errs, FieldError{Field: "ts", Code: CodeFutureTimestamp,
			Detail: fmt.Sprintf("ts %s is more than %s ahead of the worker's clock", formatNano(ts), lim.MaxFuture)})
	}
	return errs
}

// satAdd returns a+b, saturated at the ends of int64.
func satAdd(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// formatNano formats Unix nanoseconds as RFC 3339, and the saturated ends
// of int64 as what they stand for.
func formatNano(ts int64) string {
	switch ts {
	case math.MaxInt64:
		return "past 2262-04-11 (beyond int64 Unix nanoseconds)"
	case math.MinInt64:
		return "before 1677-09-21 (beyond int64 Unix nanoseconds)"
	}
	return time.Unix(0, ts).UTC().Format(time.RFC3339Nano)
}
