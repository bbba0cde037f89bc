package decode

import (
	"math"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

// quoteJSON reads a JSON quote object into q. A field of the wrong type is
// marked invalid (the worker rejects it with invalid_field); null is the
// same as absent; unknown fields are ignored; when a key repeats, the last
// value wins, as in encoding/json and the MessagePack decoder. Only
// malformed JSON is an error (on s).
func (s *scanner) quoteJSON(q *schemas.Quote) {
	s.expect('{')
	for first := true; s.more('}', first); first = false {
		key := s.str()
		s.expect(':')
		if s.peek() == 'n' {
			s.literal()
			clearQuoteField(q, key)
			continue
		}
		var bit uint16
		var ok bool
		switch key {
		case "symbol":
			bit = schemas.FSymbol
			q.Symbol, ok = s.jsonString()
		case "bid":
			bit = schemas.FBid
			q.Bid, ok = s.jsonFloat()
		case "ask":
			bit = schemas.FAsk
			q.Ask, ok = s.jsonFloat()
		case "bid_size":
			bit = schemas.FBidSize
			q.BidSize, ok = s.jsonInt()
		case "ask_size":
			bit = schemas.FAskSize
			q.AskSize, ok = s.jsonInt()
		case "venue":
			bit = schemas.FVenue
			q.Venue, ok = s.jsonString()
		case "ts":
			bit = schemas.FTS
			q.TS, ok = s.jsonTime()
		default:
			s.skip(1)
			continue
		}
		q.Present, q.Invalid = mark(q.Present, q.Invalid, bit, ok)
	}
}

// mark records a field read as present, and as invalid unless ok; a valid
// value clears the invalid mark of an earlier value of the same key.
func mark(present, invalid, bit uint16, ok bool) (uint16, uint16) {
	if ok {
		return present | bit, invalid &^ bit
	}
	return present | bit, invalid | bit
}

// clearQuoteField makes the field of key absent again (a null that follows
// a value of the same key; nulls are rare, so this is off the hot path).
func clearQuoteField(q *schemas.Quote, key string) {
	var bit uint16
	switch key {
	case "symbol":
		bit, q.Symbol = schemas.FSymbol, ""
	case "bid":
		bit, q.Bid = schemas.FBid, 0
	case "ask":
		bit, q.Ask = schemas.FAsk, 0
	case "bid_size":
		bit, q.BidSize = schemas.FBidSize, 0
	case "ask_size":
		bit, q.AskSize = schemas.FAskSize, 0
	case "venue":
		bit, q.Venue = schemas.FVenue, ""
	case "ts":
		bit, q.TS = schemas.FTS, 0
	}
	q.Present &^= bit
	q.Invalid &^= bit
}

// clearTradeField is clearQuoteField for a trade.
func clearTradeField(t *schemas.Trade, key string) {
	var bit uint16
	switch key {
	case "symbol":
		bit, t.Symbol = schemas.FSymbol, ""
	case "price":
		bit, t.Price = schemas.FPrice, 0
	case "size":
		bit, t.Size = schemas.FSize, 0
	case "venue":
		bit, t.Venue = schemas.FVenue, ""
	case "ts":
		bit, t.TS = schemas.FTS, 0
	case "trade_id":
		bit, t.TradeID = schemas.FTradeID, ""
	case "conditions":
		bit, t.Conditions = schemas.FConditions, t.Conditions[:0]
	}
	t.Present &^= bit
	t.Invalid &^= bit
}

// tradeJSON reads a JSON trade object into t, as [scanner.quoteJSON].
func (s *scanner) tradeJSON(t *schemas.Trade) {
	s.expect('{')
	for first := true; s.more('}', first); first = false {
		key := s.str()
		s.expect(':')
		if s.peek() == 'n' {
			s.literal()
			clearTradeField(t, key)
			continue
		}
		var bit uint16
		var ok bool
		switch key {
		case "symbol":
			bit = schemas.FSymbol
			t.Symbol, ok = s.jsonString()
		case "price":
			bit = schemas.FPrice
			t.Price, ok = s.jsonFloat()
		case "size":
			bit = schemas.FSize
			t.Size, ok = s.jsonInt()
		case "venue":
			bit = schemas.FVenue
			t.Venue, ok = s.jsonString()
		case "ts":
			bit = schemas.FTS
			t.TS, ok = s.jsonTime()
		case "trade_id":
			bit = schemas.FTradeID
			t.TradeID, ok = s.jsonString()
		case "conditions":
			bit = schemas.FConditions
			t.Conditions, ok = s.jsonStrings(t.Conditions[:0])
		default:
			s.skip(1)
			continue
		}
		t.Present, t.Invalid = mark(t.Present, t.Invalid, bit, ok)
	}
}

// jsonString reads a string value; another type is skipped and reported
// not ok.
func (s *scanner) jsonString() (string, bool) {
	if s.peek() != '"' {
		s.skip(1)
		return "", false
	}
	return s.str(), true
}

// jsonFloat reads a number. A number that a float64 cannot hold (1e999
// overflows to an infinity, a nonzero 1e-400 underflows to zero) is
// malformed: the request fails with 400 rather than an event carrying a
// value the client did not send. Another type is skipped and reported not
// ok.
func (s *scanner) jsonFloat() (float64, bool) {
	if !isNumberStart(s.peek()) {
		s.skip(1)
		return 0, false
	}
	start := s.off
	n := s.number()
	if s.err != nil {
		return 0, false
	}
	f, err := parseFloat(n)
	if err != nil || (f == 0 && !isZero(n)) {
		s.off = start
		s.fail("number %s does not fit a float64", clip(n))
		return 0, false
	}
	return f, true
}

// jsonInt reads an integer: digits, or any JSON number whose value is an
// integer (1.0, 2e3), as JSON Schema's "integer" allows. An integer past
// int64 saturates to math.MinInt64 or math.MaxInt64, for the worker to
// reject as out_of_range (or negative_size); a fraction, or another type,
// is not ok.
func (s *scanner) jsonInt() (int64, bool) {
	if !isNumberStart(s.peek()) {
		s.skip(1)
		return 0, false
	}
	n := s.number()
	if s.err != nil {
		return 0, false
	}
	return parseInt(n)
}

// jsonTime reads an RFC 3339 string (up to nanoseconds) or an integer of
// Unix nanoseconds; a time past int64 nanoseconds saturates (see
// [parseTime]).
func (s *scanner) jsonTime() (int64, bool) {
	switch c := s.peek(); {
	case c == '"':
		return parseTime(s.str())
	case isNumberStart(c):
		return s.jsonInt()
	}
	s.skip(1)
	return 0, false
}

// minTime and maxTime bound the times that Unix nanoseconds in an int64
// hold (1677 to 2262); past them UnixNano's result is undefined.
var minTime, maxTime = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// parseTime parses an RFC 3339 time (up to nanoseconds) into Unix
// nanoseconds. A time that int64 nanoseconds cannot hold saturates to
// math.MinInt64 (before 1677) or math.MaxInt64 (after 2262), never wraps:
// the worker rejects it as stale or future_timestamp, which is what it is.
//
// The common shapes (YYYY-MM-DDTHH:MM:SS, up to nine fraction digits, Z or
// ±HH:MM) are read by hand: time.Parse was 14% of the gateway's CPU on the
// single-event path. Anything else falls back to time.Parse, so what is
// accepted and what it means do not change (FuzzParseTime holds the two
// equal).
func parseTime(v string) (int64, bool) {
	if ns, ok, done := parseTimeFast(v); done {
		return ns, ok
	}
	return parseTimeStd(v)
}

// parseTimeStd is parseTime through time.Parse.
func parseTimeStd(v string) (int64, bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	switch {
	case err != nil:
		return 0, false
	case t.Before(minTime):
		return math.MinInt64, true
	case t.After(maxTime):
		return math.MaxInt64, true
	}
	return t.UnixNano(), true
}

// The Unix seconds and nanoseconds of minTime and maxTime.
var (
	minSec, minNsec = minTime.Unix(), int64(minTime.Nanosecond())
	maxSec, maxNsec = maxTime.Unix(), int64(maxTime.Nanosecond())
)

// parseTimeFast reads v when it has one of the common RFC 3339 shapes
// and every field is in range; done is false for anything else (the
// caller then asks time.Parse).
func parseTimeFast(v string) (ns int64, ok, done bool) {
	// YYYY-MM-DDTHH:MM:SS is 19 bytes, then a fraction, then Z or ±HH:MM.
	if len(v) < 20 || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' {
		return 0, false, false
	}
	year, ok1 := digits(v[0:4])
	month, ok2 := digits(v[5:7])
	day, ok3 := digits(v[8:10])
	hour, ok4 := digits(v[11:13])
	minute, ok5 := digits(v[14:16])
	sec, ok6 := digits(v[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false, false
	}
	rest := v[19:]
	var nsec int64
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 { // no digit, or more than nanoseconds
			return 0, false, false
		}
		f, _ := digits(rest[1:n])
		for i := n; i < 10; i++ {
			f *= 10
		}
		nsec = f
		rest = rest[n:]
	}
	var offset int64
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := digits(rest[1:3])
		om, okm := digits(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return 0, false, false
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false, false
	}
	unix := daysFromCivil(year, month, day)*86400 + hour*3600 + minute*60 + sec - offset
	switch {
	case unix < minSec || unix == minSec && nsec < minNsec:
		return math.MinInt64, true, true
	case unix > maxSec || unix == maxSec && nsec > maxNsec:
		return math.MaxInt64, true, true
	}
	return unix*1e9 + nsec, true, true
}

// digits reads s, all ASCII digits (at most 18 of them), as a number.
func digits(s string) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int64(c)
	}
	return n, true
}

// daysIn is the number of days of month in year (proleptic Gregorian).
func daysIn(month, year int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to the date (Howard
// Hinnant's days_from_civil, proleptic Gregorian).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400 // y >= -1 here: the year has four digits
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func (s *scanner) jsonStrings(dst []string) ([]string, bool) {
	if s.peek() != '[' {
		s.skip(1)
		return dst, false
	}
	s.off++
	ok := true
	for first := true; s.more(']', first); first = false {
		v, good := s.jsonString()
		ok = ok && good
		dst = append(dst, v)
	}
	return dst, ok
}

// payloadJSON reads one payload object of kind into ev.
func (s *scanner) payloadJSON(kind schemas.Kind, ev *schemas.Event) {
	switch kind {
	case schemas.KindQuote:
		s.quoteJSON(&ev.Quote)
	case schemas.KindTrade:
		s.tradeJSON(&ev.Trade)
	}
}
