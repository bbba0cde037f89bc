package decode

import (
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/sluice-dev/sluice/schemas"
)

const (
	allQuote = schemas.FSymbol | schemas.FBid | schemas.FAsk | schemas.FBidSize | schemas.FAskSize | schemas.FVenue | schemas.FTS
	allTrade = schemas.FSymbol | schemas.FPrice | schemas.FSize | schemas.FVenue | schemas.FTS | schemas.FTradeID | schemas.FConditions
	// noTS is a full quote but for ts.
	noTS = allQuote &^ schemas.FTS
)

var (
	tsTime  = time.Date(2025, 1, 2, 15, 4, 5, 121956789, time.UTC)
	tsNanos = tsTime.UnixNano()
	tsJSON  = `"2025-01-02T15:04:05.121956789Z"`
)

// aapl is the quote of aaplJSON.
var aapl = schemas.Quote{Symbol: "AAPL", Bid: 189.5, Ask: 189.52, BidSize: 100, AskSize: 200,
	Venue: "XNAS", TS: tsNanos, Present: allQuote}

const aaplJSON = `{"symbol":"AAPL","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200,"venue":"XNAS","ts":"2025-01-02T15:04:05.121956789Z"}`

func plainQuote(q schemas.Quote) schemas.Event {
	return schemas.Event{Kind: schemas.KindQuote, Known: true, Type: schemas.TypeQuoteV1, Quote: q}
}

func plainTrade(tr schemas.Trade) schemas.Event {
	return schemas.Event{Kind: schemas.KindTrade, Known: true, Type: schemas.TypeTradeV1, Trade: tr}
}

func sym(s string) schemas.Quote { return schemas.Quote{Symbol: s, Present: schemas.FSymbol} }

// decodeCase is one body and what Body must make of it: the events
// and shape, or an error status whose detail contains errSub.
type decodeCase struct {
	name   string
	kind   schemas.Kind // default quote
	ct     string
	hdr    map[string]string
	add    [][2]string // headers added after hdr, to repeat one
	body   string
	max    int // maxEvents, default 100
	want   []schemas.Event
	single bool
	status int
	errSub string
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kind := c.kind
			if kind == schemas.KindUnknown {
				kind = schemas.KindQuote
			}
			max := c.max
			if max == 0 {
				max = 100
			}
			h := http.Header{}
			if c.ct != "" {
				h.Set("Content-Type", c.ct)
			}
			for k, v := range c.hdr {
				h.Set(k, v)
			}
			for _, kv := range c.add {
				h.Add(kv[0], kv[1])
			}
			got, single, err := Body(kind, h, []byte(c.body), max, nil)
			if c.status != 0 {
				if err == nil {
					t.Fatalf("decoded %+v, want status %d", got, c.status)
				}
				if err.Status != c.status || !strings.Contains(err.Detail, c.errSub) {
					t.Fatalf("error %d %q, want %d containing %q", err.Status, err.Detail, c.status, c.errSub)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %d %q", err.Status, err.Detail)
			}
			if single != c.single {
				t.Errorf("single = %v, want %v", single, c.single)
			}
			if len(got) == 0 && len(c.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("events\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) { runDecodeCases(t, jsonDecodeCases()) }

func jsonDecodeCases() []decodeCase {
	two := []schemas.Event{plainQuote(aapl), plainQuote(sym("MSFT"))}
	return []decodeCase{
		{name: "object", ct: "application/json", body: aaplJSON, want: []schemas.Event{plainQuote(aapl)}, single: true},
		{name: "no content type", body: aaplJSON, want: []schemas.Event{plainQuote(aapl)}, single: true},
		{name: "params and case", ct: "Application/JSON; charset=utf-8", body: aaplJSON, want: []schemas.Event{plainQuote(aapl)}, single: true},
		{name: "array", ct: "application/json", body: "[" + aaplJSON + `,{"symbol":"MSFT"}]`, want: two},
		{name: "array spaced", ct: "application/json", body: " \n[ " + aaplJSON + " ,\r\n\t{ \"symbol\" : \"MSFT\" } ] \n", want: two},
		{name: "array of one", ct: "application/json", body: "[" + aaplJSON + "]", want: []schemas.Event{plainQuote(aapl)}},
		{name: "empty array", ct: "application/json", body: "[]"},
		{name: "empty object", ct: "application/json", body: "{}", want: []schemas.Event{plainQuote(schemas.Quote{})}, single: true},
		{name: "wrong types are invalid, not errors", ct: "application/json",
			body: `{"symbol":1,"bid":"189.5","ask":true,"bid_size":1.5,"ask_size":"3","venue":[],"ts":{"a":1}}`,
			want: []schemas.Event{plainQuote(schemas.Quote{Present: allQuote, Invalid: allQuote})}, single: true},
		// Numbers (issue #12, item 4): an integer past int64 saturates for
		// the worker's out_of_range; an integral number is an integer; a
		// number no float64 holds is malformed.
		{name: "integer past int64 saturates", ct: "application/json", body: `{"bid_size":9223372036854775808,"ask_size":-1e30}`,
			want: []schemas.Event{plainQuote(schemas.Quote{BidSize: math.MaxInt64, AskSize: math.MinInt64, Present: schemas.FBidSize | schemas.FAskSize})}, single: true},
		{name: "integral numbers are integers", ct: "application/json", body: `{"bid_size":1.0,"ask_size":2.50e2}`,
			want: []schemas.Event{plainQuote(schemas.Quote{BidSize: 1, AskSize: 250, Present: schemas.FBidSize | schemas.FAskSize})}, single: true},
		{name: "fractional size is invalid", ct: "application/json", body: `{"bid_size":1.5,"ask_size":1e-1}`,
			want: []schemas.Event{plainQuote(schemas.Quote{Present: schemas.FBidSize | schemas.FAskSize, Invalid: schemas.FBidSize | schemas.FAskSize})}, single: true},
		{name: "float overflow is malformed", ct: "application/json", body: `{"bid":1e999}`, status: 400, errSub: "number 1e999 does not fit a float64"},
		{name: "negative float overflow is malformed", kind: schemas.KindTrade, ct: "application/json", body: `{"price":-1.5e309}`, status: 400, errSub: "does not fit a float64"},
		{name: "float underflow is malformed", ct: "application/json", body: `{"ask":1e-400}`, status: 400, errSub: "number 1e-400 does not fit a float64"},
		{name: "zero with a big exponent is zero", ct: "application/json", body: `{"bid":0e999,"ask":-0.0e-999}`,
			want: []schemas.Event{plainQuote(schemas.Quote{Present: schemas.FBid | schemas.FAsk})}, single: true},
		{name: "subnormal fits", ct: "application/json", body: `{"bid":5e-324}`,
			want: []schemas.Event{plainQuote(schemas.Quote{Bid: 5e-324, Present: schemas.FBid})}, single: true},
		{name: "overflow in an array names the offset", ct: "application/json", body: `[{"bid":1},{"bid":1e400}]`, status: 400, errSub: "offset 18: number 1e400"},
		{name: "overflow in an ignored field is fine", ct: "application/json", body: `{"x":1e999,"symbol":"A"}`,
			want: []schemas.Event{plainQuote(sym("A"))}, single: true},
		{name: "integer prices", ct: "application/json", body: `{"bid":189,"ask":-2,"bid_size":-5}`,
			want: []schemas.Event{plainQuote(schemas.Quote{Bid: 189, Ask: -2, BidSize: -5, Present: schemas.FBid | schemas.FAsk | schemas.FBidSize})}, single: true},
		{name: "exponents", ct: "application/json", body: `{"bid":1.895E2,"ask":18952e-2}`,
			want: []schemas.Event{plainQuote(schemas.Quote{Bid: 189.5, Ask: 189.52, Present: schemas.FBid | schemas.FAsk})}, single: true},
		{name: "null is absent", ct: "application/json", body: `{"symbol":"A","bid":null,"ask":null,"ts":null,"venue":null}`,
			want: []schemas.Event{plainQuote(sym("A"))}, single: true},
		{name: "unknown fields ignored", ct: "application/json",
			body: `{"x":{"nested":[1,-2.5e3,{"a":null,"b":[true,false]}],"s":"\"}"},"symbol":"A","y":"z","z":[]}`,
			want: []schemas.Event{plainQuote(sym("A"))}, single: true},
		{name: "escapes", ct: "application/json", body: `{"symbol":"caf\u00e9 \"q\" \\ \/ \b\f\n\r\t \ud83d\ude00 \u20AC"}`,
			want: []schemas.Event{plainQuote(sym("café \"q\" \\ / \b\f\n\r\t 😀 €"))}, single: true},
		{name: "raw utf-8", ct: "application/json", body: `{"symbol":"Zürich 😀"}`,
			want: []schemas.Event{plainQuote(sym("Zürich 😀"))}, single: true},
		{name: "lone surrogates", ct: "application/json", body: `{"symbol":"a\ud83db\ude00c\ud83d\u0041"}`,
			want: []schemas.Event{plainQuote(sym("a\uFFFDb\uFFFDc\uFFFDA"))}, single: true},
		{name: "ts nanoseconds", ct: "application/json", body: `{"ts":"2025-01-02T15:04:05.121956789Z"}`,
			want: []schemas.Event{plainQuote(schemas.Quote{TS: tsNanos, Present: schemas.FTS})}, single: true},
		{name: "ts offset", ct: "application/json", body: `{"ts":"2025-01-02T16:04:05.5+01:00"}`,
			want: []schemas.Event{plainQuote(schemas.Quote{TS: time.Date(2025, 1, 2, 15, 4, 5, 5e8, time.UTC).UnixNano(), Present: schemas.FTS})}, single: true},
		{name: "ts seconds only", ct: "application/json", body: `{"ts":"2025-01-02T15:04:05Z"}`,
			want: []schemas.Event{plainQuote(schemas.Quote{TS: time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC).UnixNano(), Present: schemas.FTS})}, single: true},
		{name: "ts integer", ct: "application/json", body: `{"ts":1735830245121956789}`,
			want: []schemas.Event{plainQuote(schemas.Quote{TS: tsNanos, Present: schemas.FTS})}, single: true},
		{name: "ts invalid", ct: "application/json", body: `{"ts":"yesterday"}`,
			want: []schemas.Event{plainQuote(schemas.Quote{Present: schemas.FTS, Invalid: schemas.FTS})}, single: true},
		{name: "ts integral float", ct: "application/json", body: `{"ts":1.7e18}`,
			want: []schemas.Event{plainQuote(schemas.Quote{TS: 17e17, Present: schemas.FTS})}, single: true},
		{name: "ts fractional", ct: "application/json", body: `{"ts":1.5}`,
			want: []schemas.Event{plainQuote(schemas.Quote{Present: schemas.FTS, Invalid: schemas.FTS})}, single: true},
		// Times past int64 nanoseconds saturate (issue #12, item 5): the
		// worker calls them future_timestamp or stale.
		{name: "ts beyond int64 nanoseconds", ct: "application/json", body: `{"ts":"3000-01-01T00:00:00Z"}`,
			want: []schemas.Event{plainQuote(schemas.Quote{TS: math.MaxInt64, Present: schemas.FTS})}, single: true},
		{name: "ts 9999", ct: "application/json", body: `{"ts":"9999-12-31T23:59:59Z"}`,
			want: []schemas.Event{plainQuote(schemas.Quote{TS: math.MaxInt64, Present: schemas.FTS})}, single: true},
		{name: "ts before 1678", ct: "application/json", body: `{"ts":"1600-01-01T00:00:00Z"}`,
			want: []schemas.Event{plainQuote(schemas.Quote{TS: math.MinInt64, Present: schemas.FTS})}, single: true},
		{name: "ts integer past int64", kind: schemas.KindTrade, ct: "application/json", body: `{"ts":99999999999999999999}`,
			want: []schemas.Event{plainTrade(schemas.Trade{TS: math.MaxInt64, Present: schemas.FTS})}, single: true},
		{name: "trade", kind: schemas.KindTrade, ct: "application/json",
			body: `{"symbol":"IBM","price":150.25,"size":10,"venue":"XNYS","ts":1735830245121956789,"trade_id":"t-1","conditions":["@","F"]}`,
			want: []schemas.Event{plainTrade(schemas.Trade{Symbol: "IBM", Price: 150.25, Size: 10, Venue: "XNYS", TS: tsNanos,
				TradeID: "t-1", Conditions: []string{"@", "F"}, Present: allTrade})}, single: true},
		{name: "trade wrong types", kind: schemas.KindTrade, ct: "application/json",
			body: `{"symbol":[],"price":"1","size":1.5,"venue":7,"ts":false,"trade_id":1,"conditions":["@",1]}`,
			want: []schemas.Event{plainTrade(schemas.Trade{Conditions: []string{"@", ""}, Present: allTrade, Invalid: allTrade})}, single: true},
		{name: "trade conditions not an array", kind: schemas.KindTrade, ct: "application/json", body: `{"conditions":"@"}`,
			want: []schemas.Event{plainTrade(schemas.Trade{Present: schemas.FConditions, Invalid: schemas.FConditions})}, single: true},

		{name: "repeated key, last wins", ct: "application/json", body: `{"bid":"x","bid":1.5,"symbol":1,"symbol":"A","ask":2,"ask":"y"}`,
			want: []schemas.Event{plainQuote(schemas.Quote{Symbol: "A", Bid: 1.5, Present: schemas.FBid | schemas.FSymbol | schemas.FAsk, Invalid: schemas.FAsk})}, single: true},
		{name: "repeated key, null last", ct: "application/json", body: `{"bid":1.5,"bid":null,"symbol":"A","venue":7,"venue":null}`,
			want: []schemas.Event{plainQuote(sym("A"))}, single: true},
		{name: "trade repeated key, null last", kind: schemas.KindTrade, ct: "application/json", body: `{"price":1,"price":null,"trade_id":"x","trade_id":null,"symbol":"A"}`,
			want: []schemas.Event{plainTrade(schemas.Trade{Symbol: "A", Present: schemas.FSymbol})}, single: true},
		{name: "invalid UTF-8 is replaced", ct: "application/json", body: "{\"symbol\":\"a\xffb\xe2\x82\",\"venue\":\"\xc3\xa9\xc3\"}",
			want: []schemas.Event{plainQuote(schemas.Quote{Symbol: "a\uFFFDb\uFFFD\uFFFD", Venue: "é\uFFFD", Present: schemas.FSymbol | schemas.FVenue})}, single: true},
		{name: "invalid UTF-8 with escapes", ct: "application/json", body: "{\"symbol\":\"\\n\xff\"}",
			want: []schemas.Event{plainQuote(sym("\n\uFFFD"))}, single: true},
		{name: "too many", ct: "application/json", max: 2, body: `[{},{},{}]`, status: 413, errSub: "more than 2 events"},
		{name: "max exactly", ct: "application/json", max: 2, body: `[{"symbol":"A"},{"symbol":"B"}]`,
			want: []schemas.Event{plainQuote(sym("A")), plainQuote(sym("B"))}},

		{name: "trailing comma", ct: "application/json", body: `{"symbol":"A",}`, status: 400, errSub: "offset 14"},
		{name: "unterminated object", ct: "application/json", body: `{"symbol":"A"`, status: 400, errSub: "offset 13"},
		{name: "unterminated array", ct: "application/json", body: `[{"symbol":"A"}`, status: 400, errSub: "offset"},
		{name: "unterminated string", ct: "application/json", body: `{"symbol":"A`, status: 400, errSub: "unterminated string"},
		{name: "trailing data", ct: "application/json", body: `{"symbol":"A"} {}`, status: 400, errSub: "trailing data"},
		{name: "missing colon", ct: "application/json", body: `{"symbol" "A"}`, status: 400, errSub: "offset 10"},
		{name: "bare key", ct: "application/json", body: `{symbol:"A"}`, status: 400, errSub: "offset 1"},
		{name: "leading zero", ct: "application/json", body: `{"bid":01}`, status: 400, errSub: "bad number"},
		{name: "bad literal", ct: "application/json", body: `{"x":nul}`, status: 400, errSub: "offset"},
		{name: "bad literal for field", ct: "application/json", body: `{"bid":nope}`, status: 400, errSub: "offset"},
		{name: "control character", ct: "application/json", body: "{\"symbol\":\"a\tb\"}", status: 400, errSub: "control character"},
		{name: "bad escape", ct: "application/json", body: `{"symbol":"a\x"}`, status: 400, errSub: "bad escape"},
		{name: "bad unicode escape", ct: "application/json", body: `{"symbol":"\u12G4"}`, status: 400, errSub: "bad \\u escape"},
		{name: "too deep", ct: "application/json", body: `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, status: 400, errSub: "nesting too deep"},
		{name: "trailing NUL", ct: "application/json", body: "{}\x00", status: 400, errSub: "trailing data"},
		{name: "trailing NUL after array", ct: "application/json", body: "[{}] \x00", status: 400, errSub: "trailing data"},
		{name: "scalar", ct: "application/json", body: `"AAPL"`, status: 400, errSub: "expected a JSON object or array"},
		{name: "empty", ct: "application/json", body: ``, status: 400, errSub: "expected a JSON object or array"},
		{name: "element not an object", ct: "application/json", body: `[{},1]`, status: 400, errSub: "element 1 (offset 4) is not an object"},
		{name: "unsupported", ct: "text/plain", body: aaplJSON, status: 415, errSub: `"text/plain"`},
		{name: "unsupported xml", ct: "application/xml", body: `<quote/>`, status: 415, errSub: "application/x-ndjson"},
	}
}

func TestDecodeNDJSON(t *testing.T) { runDecodeCases(t, ndjsonDecodeCases()) }

func ndjsonDecodeCases() []decodeCase {
	three := []schemas.Event{plainQuote(aapl), plainQuote(sym("B")), plainQuote(sym("C"))}
	lines := []string{aaplJSON, `{"symbol":"B"}`, `{"symbol":"C"}`}
	return []decodeCase{
		{name: "trailing newline", ct: "application/x-ndjson", body: strings.Join(lines, "\n") + "\n", want: three},
		{name: "no trailing newline", ct: "application/x-ndjson", body: strings.Join(lines, "\n"), want: three},
		{name: "CRLF", ct: "application/x-ndjson", body: strings.Join(lines, "\r\n") + "\r\n", want: three},
		{name: "blank lines", ct: "application/x-ndjson", body: "\n\n" + lines[0] + "\n  \n\r\n\t\n" + lines[1] + "\n\n" + lines[2] + "\n\n", want: three},
		{name: "jsonl alias", ct: "application/jsonl", body: strings.Join(lines, "\n"), want: three},
		{name: "one line", ct: "application/x-ndjson", body: aaplJSON + "\n", want: []schemas.Event{plainQuote(aapl)}},
		{name: "wrong types", ct: "application/x-ndjson", body: `{"bid":"x"}` + "\n",
			want: []schemas.Event{plainQuote(schemas.Quote{Present: schemas.FBid, Invalid: schemas.FBid})}},
		{name: "json-seq", ct: "application/json-seq", body: "\x1e" + strings.Join(lines, "\n\x1e") + "\n", want: three},
		{name: "json-seq multi-line texts", ct: "application/json-seq", body: "\x1e{\n \"symbol\": \"B\"\n}\n\x1e\x1e {\"symbol\":\r\n\"C\"}\n",
			want: []schemas.Event{plainQuote(sym("B")), plainQuote(sym("C"))}},
		{name: "json-seq malformed record", ct: "application/json-seq", body: "\x1e{}\n\x1e{\"symbol\":}\n", status: 400, errSub: "record 2: malformed JSON"},
		{name: "json-seq without separators", ct: "application/json-seq", body: "{}\n{}\n", status: 400, errSub: "record 0: malformed JSON"},
		{name: "empty", ct: "application/x-ndjson", body: "", status: 400, errSub: "empty body"},
		{name: "only blank lines", ct: "application/x-ndjson", body: "\n \r\n\n", status: 400, errSub: "empty body"},
		{name: "malformed line", ct: "application/x-ndjson", body: lines[0] + "\n{\"symbol\":}\n", status: 400, errSub: "line 2: malformed JSON at offset 10"},
		{name: "NUL line", ct: "application/x-ndjson", body: lines[0] + "\n\x00\n", status: 400, errSub: "line 2: expected a JSON object"},
		{name: "NUL after object", ct: "application/x-ndjson", body: lines[0] + "\x00\n", status: 400, errSub: "line 1: malformed JSON at offset 125: trailing data"},
		{name: "array line", ct: "application/x-ndjson", body: "[" + lines[0] + "]\n", status: 400, errSub: "line 1: expected a JSON object"},
		{name: "two objects on a line", ct: "application/x-ndjson", body: "{} {}\n", status: 400, errSub: "line 1: "},
		{name: "too many", ct: "application/x-ndjson", max: 2, body: strings.Join(lines, "\n"), status: 413, errSub: "more than 2 events"},
		{name: "max exactly with blanks", ct: "application/x-ndjson", max: 3, body: strings.Join(lines, "\n\n") + "\n\n", want: three},
	}
}

// msgpackQuote encodes aapl with schemas' append functions.
func msgpackQuote() []byte {
	b := schemas.AppendMapHeader(nil, 8)
	b = schemas.AppendString(b, "symbol")
	b = schemas.AppendString(b, "AAPL")
	b = schemas.AppendString(b, "bid")
	b = schemas.AppendFloat64(b, 189.5)
	b = schemas.AppendString(b, "ask")
	b = schemas.AppendFloat64(b, 189.52)
	b = schemas.AppendString(b, "bid_size")
	b = schemas.AppendInt(b, 100)
	b = schemas.AppendString(b, "ask_size")
	b = schemas.AppendInt(b, 200)
	b = schemas.AppendString(b, "venue")
	b = schemas.AppendString(b, "XNAS")
	b = schemas.AppendString(b, "ts")
	b = schemas.AppendTimestamp(b, tsNanos)
	b = schemas.AppendString(b, "unknown")
	b = schemas.AppendArrayHeader(b, 2)
	b = schemas.AppendNil(b)
	b = schemas.AppendBool(b, true)
	return b
}

func mustMsgpack(t testing.TB, v any) string {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// vmQuote is a quote as another MessagePack library's user would write it.
type vmQuote struct {
	Symbol  string    `msgpack:"symbol"`
	Bid     float64   `msgpack:"bid"`
	Ask     float32   `msgpack:"ask"`
	BidSize int       `msgpack:"bid_size"`
	AskSize uint16    `msgpack:"ask_size"`
	Venue   string    `msgpack:"venue,omitempty"`
	TS      time.Time `msgpack:"ts"`
}

func TestDecodeMsgpack(t *testing.T) { runDecodeCases(t, msgpackDecodeCases(t)) }

func msgpackDecodeCases(t testing.TB) []decodeCase {
	one := string(msgpackQuote())
	arr := string(schemas.AppendArrayHeader(nil, 2)) + one + one
	arr16 := string(schemas.AppendArrayHeader32(nil, 2)) + one + one
	vmMap := map[string]any{"symbol": "AAPL", "bid": 189.5, "ask": 189.52, "bid_size": 100, "ask_size": int8(-3),
		"venue": "XNAS", "ts": tsTime, "extra": map[string]any{"k": []any{1, "x"}}}
	vmWant := aapl
	vmWant.AskSize = -3
	wrong := map[string]any{"symbol": 1, "bid": "x", "ask": nil, "bid_size": 1.5, "ask_size": true, "venue": []byte{1}, "ts": "now"}
	return []decodeCase{
		{name: "map (schemas)", ct: "application/msgpack", body: one, want: []schemas.Event{plainQuote(aapl)}, single: true},
		{name: "x-msgpack alias", ct: "application/x-msgpack", body: one, want: []schemas.Event{plainQuote(aapl)}, single: true},
		{name: "array (schemas)", ct: "application/msgpack", body: arr, want: []schemas.Event{plainQuote(aapl), plainQuote(aapl)}},
		{name: "array32 (schemas)", ct: "application/msgpack", body: arr16, want: []schemas.Event{plainQuote(aapl), plainQuote(aapl)}},
		{name: "map (msgpack/v5 map)", ct: "application/msgpack", body: mustMsgpack(t, vmMap), want: []schemas.Event{plainQuote(vmWant)}, single: true},
		{name: "array (msgpack/v5 structs)", ct: "application/msgpack",
			body: mustMsgpack(t, []vmQuote{{Symbol: "AAPL", Bid: 189.5, Ask: 0.5, BidSize: 100, AskSize: 200, Venue: "XNAS", TS: tsTime}, {Symbol: "B", TS: time.Unix(1, 5)}}),
			want: []schemas.Event{
				plainQuote(schemas.Quote{Symbol: "AAPL", Bid: 189.5, Ask: 0.5, BidSize: 100, AskSize: 200, Venue: "XNAS", TS: tsNanos, Present: allQuote}),
				plainQuote(schemas.Quote{Symbol: "B", TS: 1e9 + 5, Present: noTS&^schemas.FVenue | schemas.FTS}),
			}},
		// nil (ask) is absent, as null is in JSON bodies.
		{name: "wrong types are invalid (msgpack/v5)", ct: "application/msgpack", body: mustMsgpack(t, wrong),
			want: []schemas.Event{plainQuote(schemas.Quote{Present: allQuote &^ schemas.FAsk, Invalid: allQuote &^ schemas.FAsk})}, single: true},
		{name: "ts integer (msgpack/v5)", ct: "application/msgpack", body: mustMsgpack(t, map[string]any{"ts": tsNanos}),
			want: []schemas.Event{plainQuote(schemas.Quote{TS: tsNanos, Present: schemas.FTS})}, single: true},
		{name: "trade (msgpack/v5)", kind: schemas.KindTrade, ct: "application/msgpack",
			body: mustMsgpack(t, map[string]any{"symbol": "IBM", "price": 150.25, "size": 10, "venue": "XNYS", "ts": tsTime, "trade_id": "t-1", "conditions": []string{"@", "F"}}),
			want: []schemas.Event{plainTrade(schemas.Trade{Symbol: "IBM", Price: 150.25, Size: 10, Venue: "XNYS", TS: tsNanos,
				TradeID: "t-1", Conditions: []string{"@", "F"}, Present: allTrade})}, single: true},
		{name: "empty array", ct: "application/msgpack", body: "\x90"},
		{name: "too many", ct: "application/msgpack", max: 1, body: arr, status: 413, errSub: "more than 1 events"},
		{name: "trailing data", ct: "application/msgpack", body: one + "\xc0", status: 400, errSub: "trailing data"},
		{name: "truncated", ct: "application/msgpack", body: one[:len(one)-3], status: 400, errSub: "event 0"},
		{name: "array truncated", ct: "application/msgpack", body: arr[:len(arr)-5], status: 400, errSub: "event 1"},
		{name: "not a map", ct: "application/msgpack", body: "\xa4AAPL", status: 400, errSub: "expected a MessagePack map or array"},
		{name: "array of strings", ct: "application/msgpack", body: "\x91\xa1A", status: 400, errSub: "event 0"},
		{name: "empty", ct: "application/msgpack", body: "", status: 400, errSub: "expected a MessagePack map or array"},
	}
}

// ceJSON is a full structured-mode CloudEvent of a quote.
const ceJSON = `{"specversion":"1.0","id":"client-1","source":"urn:test:feed","type":"marketdata.quote.v1",` +
	`"subject":"AAPL","time":"2025-01-02T15:04:05.121956789Z","dataschema":"urn:sluice:jsonschema:marketdata.quote.v1",` +
	`"datacontenttype":"application/json","myext":{"ignored":true},"data":` + aaplJSON + `}`

func ceQuote(id string, q schemas.Quote) schemas.Event {
	return schemas.Event{ID: id, Source: "urn:test:feed", Type: schemas.TypeQuoteV1, Kind: schemas.KindQuote, Known: true, Quote: q}
}

func TestDecodeCloudEvents(t *testing.T) { runDecodeCases(t, ceDecodeCases()) }

func ceDecodeCases() []decodeCase {
	full := ceQuote("client-1", aapl)
	full.Subject, full.Time, full.DataSchema = "AAPL", tsNanos, "urn:sluice:jsonschema:marketdata.quote.v1"
	minimal := func(id, extra string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"urn:test:feed","type":"marketdata.quote.v1"` + extra + `,"data":{"symbol":"A"}}`
	}
	v9 := ceQuote("x", sym("A"))
	v9.Type, v9.Known = "marketdata.quote.v9", false
	const ce = "application/cloudevents+json"
	const batch = "application/cloudevents-batch+json"
	return []decodeCase{
		{name: "structured", ct: ce, body: ceJSON, want: []schemas.Event{full}, single: true},
		{name: "structured with charset", ct: "application/cloudevents+json; charset=UTF-8", body: minimal("x", ""), want: []schemas.Event{ceQuote("x", sym("A"))}, single: true},
		{name: "data first", ct: ce, body: `{"data":{"symbol":"A"},"id":"x","type":"marketdata.quote.v1","source":"urn:test:feed","specversion":"1.0"}`,
			want: []schemas.Event{ceQuote("x", sym("A"))}, single: true},
		{name: "null optional attributes", ct: ce, body: minimal("x", `,"subject":null,"dataschema":null,"datacontenttype":null`),
			want: []schemas.Event{ceQuote("x", sym("A"))}, single: true},
		{name: "unknown version accepted", ct: ce, body: `{"specversion":"1.0","id":"x","source":"urn:test:feed","type":"marketdata.quote.v9","data":{"symbol":"A"}}`,
			want: []schemas.Event{v9}, single: true},
		{name: "type of another kind", ct: ce, body: strings.Replace(ceJSON, "marketdata.quote.v1", "marketdata.trade.v1", 1), status: 400, errSub: `"marketdata.trade.v1" does not belong on /v1/events/quote`},
		{name: "type of another domain", ct: ce, body: strings.Replace(ceJSON, "marketdata.quote.v1", "com.example.quote.v1", 1), status: 400, errSub: "does not belong"},
		{name: "no id", ct: ce, body: strings.Replace(ceJSON, `"id":"client-1",`, "", 1), status: 400, errSub: "no id"},
		{name: "no source", ct: ce, body: strings.Replace(ceJSON, `"source":"urn:test:feed",`, "", 1), status: 400, errSub: "no source"},
		{name: "no type", ct: ce, body: strings.Replace(ceJSON, `"type":"marketdata.quote.v1",`, "", 1), status: 400, errSub: "no type"},
		{name: "spec 0.3", ct: ce, body: strings.Replace(ceJSON, `"1.0"`, `"0.3"`, 1), status: 400, errSub: "specversion"},
		{name: "no data", ct: ce, body: `{"specversion":"1.0","id":"x","source":"s","type":"marketdata.quote.v1"}`, status: 400, errSub: "no data"},
		{name: "data not an object", ct: ce, body: minimal("x", `,"data":"AAPL"`), status: 400, errSub: "data must be a JSON object"},
		{name: "data_base64", ct: ce, body: minimal("x", `,"data_base64":"e30="`), status: 400, errSub: "data_base64"},
		{name: "non-JSON datacontenttype", ct: ce, body: minimal("x", `,"datacontenttype":"application/xml"`), status: 400, errSub: "datacontenttype"},
		{name: "+json datacontenttype", ct: ce, body: minimal("x", `,"datacontenttype":"application/vnd.quote+json"`),
			want: []schemas.Event{ceQuote("x", sym("A"))}, single: true},
		{name: "repeated data, last wins", ct: ce, body: minimal("x", `,"data":{"symbol":"Z","bid":1}`), want: []schemas.Event{ceQuote("x", sym("A"))}, single: true},
		{name: "null time", ct: ce, body: minimal("x", `,"time":null`), want: []schemas.Event{ceQuote("x", sym("A"))}, single: true},
		{name: "subject not a string", ct: ce, body: minimal("x", `,"subject":5`), status: 400, errSub: "attribute subject must be a string"},
		{name: "id not a string", ct: ce, body: `{"specversion":"1.0","id":7,"source":"s","type":"marketdata.quote.v1","data":{}}`, status: 400, errSub: "attribute id must be a string"},
		{name: "dataschema not a string", ct: ce, body: minimal("x", `,"dataschema":{}`), status: 400, errSub: "attribute dataschema must be a string"},
		{name: "datacontenttype not a string", ct: ce, body: minimal("x", `,"datacontenttype":1`), status: 400, errSub: "attribute datacontenttype must be a string"},
		{name: "bad time", ct: ce, body: minimal("x", `,"time":"noon"`), status: 400, errSub: `time "noon"`},
		{name: "time not a string", ct: ce, body: minimal("x", `,"time":1`), status: 400, errSub: "time must be"},
		{name: "malformed", ct: ce, body: `{"specversion":"1.0","id":}`, status: 400, errSub: "malformed JSON at offset 26"},
		{name: "array", ct: ce, body: "[" + ceJSON + "]", status: 400, errSub: "expected '{'"},
		{name: "trailing data", ct: ce, body: ceJSON + "x", status: 400, errSub: "trailing data"},

		{name: "batch", ct: batch, body: "[" + minimal("a", "") + "," + minimal("b", "") + "]",
			want: []schemas.Event{ceQuote("a", sym("A")), ceQuote("b", sym("A"))}},
		{name: "batch trailing NUL", ct: batch, body: "[]\x00", status: 400, errSub: "trailing data"},
		{name: "structured trailing NUL", ct: ce, body: ceJSON + "\x00", status: 400, errSub: "trailing data"},
		{name: "batch empty", ct: batch, body: "[]"},
		{name: "batch object", ct: batch, body: ceJSON, status: 400, errSub: "takes an array"},
		{name: "batch bad element", ct: batch, body: "[" + minimal("a", "") + "," + strings.Replace(minimal("b", ""), "1.0", "2.0", 1) + "]", status: 400, errSub: "event 1: cloudevent specversion"},
		{name: "batch type of another kind", ct: batch, body: "[" + strings.Replace(minimal("a", ""), "quote", "trade", 1) + "]", status: 400, errSub: "event 0: "},
		{name: "batch too many", ct: batch, max: 1, body: "[" + minimal("a", "") + "," + minimal("b", "") + "]", status: 413, errSub: "more than 1"},
		{name: "batch malformed", ct: batch, body: "[" + minimal("a", "") + ",", status: 400, errSub: "offset"},

		// The ids of one request differ (issue #12, item 7): 400 naming both.
		{name: "batch same id", ct: batch, body: "[" + minimal("a", "") + "," + minimal("b", "") + "," + minimal("a", "") + "]",
			status: 400, errSub: `events 0 and 2 have the same id "a"`},
		{name: "long batch same id", ct: batch, max: 1000, body: ceBatch(minimal, 200, 57, 190), status: 400, errSub: `events 57 and 190 have the same id "e57"`},
		{name: "long batch", ct: batch, max: 1000, body: ceBatch(minimal, 1000, -1, -1), want: func() []schemas.Event {
			evs := make([]schemas.Event, 1000)
			for i := range evs {
				evs[i] = ceQuote(fmt.Sprintf("e%d", i), sym("A"))
			}
			return evs
		}()},
		{name: "structured time 9999", ct: ce, body: minimal("x", `,"time":"9999-12-31T23:59:59Z"`),
			want: []schemas.Event{func() schemas.Event { e := ceQuote("x", sym("A")); e.Time = math.MaxInt64; return e }()}, single: true},
	}
}

// ceBatch is a CloudEvents batch of n events with ids e0, e1, …, but for
// event j, whose id is event i's (none when j < 0).
func ceBatch(minimal func(id, extra string) string, n, i, j int) string {
	var b strings.Builder
	b.WriteByte('[')
	for k := range n {
		if k > 0 {
			b.WriteByte(',')
		}
		id := k
		if k == j {
			id = i
		}
		b.WriteString(minimal(fmt.Sprintf("e%d", id), ""))
	}
	b.WriteByte(']')
	return b.String()
}

func TestDecodeBinary(t *testing.T) { runDecodeCases(t, binaryDecodeCases(t)) }

func binaryDecodeCases(t testing.TB) []decodeCase {
	attrs := func(kv ...string) map[string]string {
		m := map[string]string{"ce-specversion": "1.0", "ce-id": "bin-1", "ce-source": "urn:test:feed",
			"ce-type": "marketdata.quote.v1", "ce-subject": "AAPL", "ce-time": "2025-01-02T15:04:05.121956789Z"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	want := ceQuote("bin-1", aapl)
	want.Subject, want.Time = "AAPL", tsNanos
	v9 := want
	v9.Type, v9.Known = "marketdata.quote.v9", false
	return []decodeCase{
		{name: "json data", ct: "application/json", hdr: attrs(), body: aaplJSON, want: []schemas.Event{want}, single: true},
		{name: "json data no content type", hdr: attrs(), body: aaplJSON, want: []schemas.Event{want}, single: true},
		{name: "+json data", ct: "application/vnd.quote+json", hdr: attrs(), body: aaplJSON, want: []schemas.Event{want}, single: true},
		{name: "msgpack data", ct: "application/msgpack", hdr: attrs(), body: string(msgpackQuote()), want: []schemas.Event{want}, single: true},
		{name: "msgpack/v5 data", ct: "application/msgpack", hdr: attrs(),
			body: mustMsgpack(t, vmQuote{Symbol: "AAPL", Bid: 189.5, Ask: 0.5, BidSize: 100, AskSize: 200, Venue: "XNAS", TS: tsTime}),
			want: func() []schemas.Event {
				w := want
				w.Quote.Ask = 0.5
				return []schemas.Event{w}
			}(), single: true},
		{name: "dataschema", ct: "application/json", hdr: attrs("ce-dataschema", "urn:x"), body: aaplJSON,
			want: func() []schemas.Event { w := want; w.DataSchema = "urn:x"; return []schemas.Event{w} }(), single: true},
		{name: "no time", ct: "application/json", hdr: attrs("ce-time", ""), body: aaplJSON,
			want: func() []schemas.Event { w := want; w.Time = 0; return []schemas.Event{w} }(), single: true},
		{name: "unknown version accepted", ct: "application/json", hdr: attrs("ce-type", "marketdata.quote.v9"), body: aaplJSON, want: []schemas.Event{v9}, single: true},
		{name: "type of another kind", ct: "application/json", hdr: attrs("ce-type", "marketdata.trade.v1"), body: aaplJSON, status: 400, errSub: "does not belong on /v1/events/quote"},
		{name: "no id", ct: "application/json", hdr: attrs("ce-id", ""), body: aaplJSON, status: 400, errSub: "no id"},
		{name: "bad spec", ct: "application/json", hdr: attrs("ce-specversion", "0.3"), body: aaplJSON, status: 400, errSub: "specversion"},
		{name: "bad time", ct: "application/json", hdr: attrs("ce-time", "noon"), body: aaplJSON, status: 400, errSub: "ce-time"},
		{name: "json array data", ct: "application/json", hdr: attrs(), body: "[" + aaplJSON + "]", status: 400, errSub: "must be a JSON object"},
		{name: "malformed json data", ct: "application/json", hdr: attrs(), body: `{"symbol":`, status: 400, errSub: "offset"},
		{name: "malformed msgpack data", ct: "application/msgpack", hdr: attrs(), body: "\x81\xa6symbol", status: 400, errSub: "decoding quote"},
		{name: "msgpack trailing", ct: "application/msgpack", hdr: attrs(), body: string(msgpackQuote()) + "\x00", status: 400, errSub: "trailing data"},
		{name: "unsupported data", ct: "text/csv", hdr: attrs(), body: "AAPL,1,2", status: 415, errSub: "binary-mode"},

		// One event, one of each attribute (issue #12, item 7).
		{name: "two ce-id", ct: "application/json", hdr: attrs(), add: [][2]string{{"ce-id", "bin-2"}}, body: aaplJSON,
			status: 400, errSub: "ce-id appears 2 times: a binary-mode event has one id"},
		{name: "three ce-source", ct: "application/json", hdr: attrs(), add: [][2]string{{"ce-source", "a"}, {"ce-source", "b"}}, body: aaplJSON,
			status: 400, errSub: "ce-source appears 3 times"},
		{name: "two ce-time", ct: "application/json", hdr: attrs(), add: [][2]string{{"ce-time", "2025-01-02T15:04:05Z"}}, body: aaplJSON,
			status: 400, errSub: "ce-time appears 2 times"},
		{name: "two ce-specversion", ct: "application/json", hdr: attrs(), add: [][2]string{{"ce-specversion", "1.0"}}, body: aaplJSON,
			status: 400, errSub: "ce-specversion appears 2 times"},

		// A time past int64 nanoseconds is RFC 3339 all the same (issue #12,
		// item 5): it saturates, and the worker says what it is.
		{name: "time 9999", ct: "application/json", hdr: attrs("ce-time", "9999-12-31T23:59:59Z"), body: aaplJSON,
			want: func() []schemas.Event { w := want; w.Time = math.MaxInt64; return []schemas.Event{w} }(), single: true},
		{name: "time year 1", ct: "application/json", hdr: attrs("ce-time", "0001-01-01T00:00:00Z"), body: aaplJSON,
			want: func() []schemas.Event { w := want; w.Time = math.MinInt64; return []schemas.Event{w} }(), single: true},
	}
}

// TestDecodeReuse checks that a reused destination carries nothing over
// from the request before.
func TestDecodeReuse(t *testing.T) {
	h := http.Header{"Content-Type": {"application/json"}}
	dst, _, err := Body(schemas.KindTrade, h, []byte(`[{"symbol":"A","conditions":["x"],"venue":1},{"symbol":"B"}]`), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, single, err := Body(schemas.KindTrade, h, []byte(`{"price":1}`), 10, dst)
	if err != nil {
		t.Fatal(err)
	}
	want := []schemas.Event{plainTrade(schemas.Trade{Price: 1, Present: schemas.FPrice})}
	if !single || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v single %v, want %+v", got, single, want)
	}
}

func TestMediaType(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := mediaType(in); got != want {
			t.Errorf("mediaType(%q) = %q, want %q", in, got, want)
		}
	}
	f("application/json", "application/json")
	f(" Application/JSON ; charset=utf-8", "application/json")
	f("application/cloudevents+json;charset=UTF-8", "application/cloudevents+json")
	f("", "")
	f(";", "")
}
