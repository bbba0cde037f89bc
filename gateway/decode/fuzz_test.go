package decode

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

// The fuzz targets feed arbitrary bodies to Body under one
// Content-Type each, seeded from the decoder tables. Body must never
// panic, must refuse with 400, 413, 415 or 422 (a field past its size
// bound, with that field's failure) only, every event it accepts must be
// within the size bounds, and survive the wire: it encodes with AppendMsgpack, decodes back with
// schemas' Event.DecodeMsgpack, and re-encodes to the same bytes.
//
//	go test -run='^$' -fuzz=FuzzDecodeJSON -fuzztime=20s ./gateway/decode/
//
// Inputs that once failed are kept in testdata/fuzz/<target>/ and run with
// every go test.

const fuzzMaxEvents = 64

// seedFuzz adds the bodies of the table cases with Content-Type ct.
func seedFuzz(f *testing.F, ct string, cases []decodeCase) {
	f.Helper()
	n := 0
	for _, c := range cases {
		if c.ct == ct && c.hdr == nil {
			f.Add([]byte(c.body), c.kind == schemas.KindTrade)
			n++
		}
	}
	if n == 0 {
		f.Fatalf("no seeds for %s", ct)
	}
}

func fuzzDecode(t *testing.T, ct string, body []byte, trade bool) {
	kind := schemas.KindQuote
	if trade {
		kind = schemas.KindTrade
	}
	h := http.Header{"Content-Type": {ct}}
	// Body aliases body in the events: keep a copy to check that it
	// does not write to it.
	orig := bytes.Clone(body)
	evs, single, err := Body(kind, h, body, fuzzMaxEvents, nil)
	if !bytes.Equal(orig, body) {
		t.Fatal("Body modified the body")
	}
	if err != nil {
		switch err.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		case http.StatusUnprocessableEntity:
			if len(err.Errors) != 1 || err.Errors[0].Code != schemas.CodeInvalidField {
				t.Fatalf("422 (%s) with errors %+v", err.Detail, err.Errors)
			}
		default:
			t.Fatalf("status %d (%s)", err.Status, err.Detail)
		}
		if err.Detail == "" {
			t.Fatal("error without detail")
		}
		return
	}
	if len(evs) > fuzzMaxEvents {
		t.Fatalf("%d events, max %d", len(evs), fuzzMaxEvents)
	}
	if single && len(evs) != 1 {
		t.Fatalf("single with %d events", len(evs))
	}
	for i := range evs {
		if fe, ok := schemas.CheckSizes(&evs[i]); !ok {
			t.Fatalf("event %d accepted past its size bounds: %+v", i, fe)
		}
		checkRoundTrip(t, &evs[i], kind)
	}
	checkAgainstEncodingJSON(t, ct, body, evs)
}

// checkAgainstEncodingJSON holds the hand-written JSON decoder to
// encoding/json: a body it accepts is valid JSON, and every string field it
// read is the string encoding/json reads (escapes, surrogates, invalid
// UTF-8, repeated keys: the last one wins).
func checkAgainstEncodingJSON(t *testing.T, ct string, body []byte, evs []schemas.Event) {
	t.Helper()
	var objs []map[string]any
	switch ct {
	case "application/msgpack":
		return
	case "application/x-ndjson":
		for _, line := range bytes.Split(body, []byte("\n")) {
			if len(bytes.Trim(line, " \t\r")) == 0 {
				continue
			}
			var m map[string]any
			if err := unmarshalNumbers(line, &m); err != nil {
				t.Fatalf("accepted line %q that encoding/json refuses: %v", line, err)
			}
			objs = append(objs, m)
		}
	default:
		if !json.Valid(body) {
			t.Fatalf("accepted %q, which is not valid JSON", body)
		}
		if len(evs) == 1 && bytes.TrimLeft(body, " \t\r\n")[0] == '{' {
			objs = make([]map[string]any, 1)
			if err := unmarshalNumbers(body, &objs[0]); err != nil {
				t.Fatal(err)
			}
		} else if err := unmarshalNumbers(body, &objs); err != nil {
			t.Fatal(err)
		}
	}
	if len(objs) != len(evs) {
		t.Fatalf("%d events from %d objects", len(evs), len(objs))
	}
	for i, m := range objs {
		ev := &evs[i]
		if ct == "application/cloudevents+json" || ct == "application/cloudevents-batch+json" {
			agreeString(t, m, "id", ev.ID, ev.ID != "")
			agreeString(t, m, "source", ev.Source, ev.Source != "")
			agreeString(t, m, "type", ev.Type, ev.Type != "")
			agreeString(t, m, "subject", ev.Subject, ev.Subject != "")
			agreeString(t, m, "dataschema", ev.DataSchema, ev.DataSchema != "")
			m, _ = m["data"].(map[string]any)
		}
		switch ev.Kind {
		case schemas.KindQuote:
			q := &ev.Quote
			agreeString(t, m, "symbol", q.Symbol, q.Present&^q.Invalid&schemas.FSymbol != 0)
			agreeString(t, m, "venue", q.Venue, q.Present&^q.Invalid&schemas.FVenue != 0)
			agreeNumber(t, m, "bid", q.Bid, q.Present&^q.Invalid&schemas.FBid != 0)
			agreeNumber(t, m, "ask", q.Ask, q.Present&^q.Invalid&schemas.FAsk != 0)
		case schemas.KindTrade:
			tr := &ev.Trade
			agreeString(t, m, "symbol", tr.Symbol, tr.Present&^tr.Invalid&schemas.FSymbol != 0)
			agreeString(t, m, "venue", tr.Venue, tr.Present&^tr.Invalid&schemas.FVenue != 0)
			agreeString(t, m, "trade_id", tr.TradeID, tr.Present&^tr.Invalid&schemas.FTradeID != 0)
			agreeNumber(t, m, "price", tr.Price, tr.Present&^tr.Invalid&schemas.FPrice != 0)
		}
	}
}

// unmarshalNumbers is json.Unmarshal keeping numbers as json.Number, so
// that a number out of float64's range is no error.
func unmarshalNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// agreeString checks that when encoding/json reads key as a string, the
// decoder read the same string as a valid field, and the other way round.
// An empty string and an absent one are the same for attributes.
func agreeString(t *testing.T, m map[string]any, key, got string, valid bool) {
	t.Helper()
	want, isString := m[key].(string)
	if isString && want == "" && !valid {
		return
	}
	if isString != valid || (valid && want != got) {
		t.Fatalf("%s: decoder read %q (valid %v), encoding/json %#v", key, got, valid, m[key])
	}
}

// agreeNumber checks a float field as agreeString does a string one.
func agreeNumber(t *testing.T, m map[string]any, key string, got float64, valid bool) {
	t.Helper()
	var want float64
	num, isNumber := m[key].(json.Number)
	if isNumber {
		var err error
		want, err = strconv.ParseFloat(string(num), 64)
		isNumber = err == nil
	}
	if isNumber != valid || (valid && want != got) {
		t.Fatalf("%s: decoder read %v (valid %v), encoding/json %#v", key, got, valid, m[key])
	}
}

// checkRoundTrip encodes ev, decodes it with schemas and re-encodes it.
func checkRoundTrip(t *testing.T, ev *schemas.Event, kind schemas.Kind) {
	t.Helper()
	if ev.Kind != kind {
		t.Fatalf("event of kind %v on the %v path", ev.Kind, kind)
	}
	enc := ev.AppendMsgpack(nil)
	var back schemas.Event
	r := schemas.NewReader(enc)
	if err := back.DecodeMsgpack(&r); err != nil {
		t.Fatalf("decoding %+v back: %v", ev, err)
	}
	if !r.Done() || r.Err() != nil {
		t.Fatalf("decoding %+v back: %d trailing bytes, err %v", ev, len(r.Rest()), r.Err())
	}
	if back.ID != ev.ID || back.Source != ev.Source || back.Type != ev.Type || back.Subject != ev.Subject ||
		back.Time != ev.Time || back.DataSchema != ev.DataSchema || back.Known != ev.Known || back.Kind != ev.Kind {
		t.Fatalf("attributes changed on the wire:\n sent %+v\n read %+v", ev, back)
	}
	if !ev.Known {
		return // an unknown version's data is left for the worker to reject
	}
	if again := back.AppendMsgpack(nil); !bytes.Equal(again, enc) {
		t.Fatalf("re-encoding differs:\n%x\n%x\nevent %+v", enc, again, ev)
	}
	switch kind {
	case schemas.KindQuote:
		if back.Quote.Present != ev.Quote.Present || back.Quote.Invalid != ev.Quote.Invalid {
			t.Fatalf("quote fields changed: %+v -> %+v", ev.Quote, back.Quote)
		}
	case schemas.KindTrade:
		if back.Trade.Present != ev.Trade.Present || back.Trade.Invalid != ev.Trade.Invalid {
			t.Fatalf("trade fields changed: %+v -> %+v", ev.Trade, back.Trade)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	seedFuzz(f, "application/json", jsonDecodeCases())
	f.Fuzz(func(t *testing.T, body []byte, trade bool) { fuzzDecode(t, "application/json", body, trade) })
}

func FuzzDecodeNDJSON(f *testing.F) {
	seedFuzz(f, "application/x-ndjson", ndjsonDecodeCases())
	f.Fuzz(func(t *testing.T, body []byte, trade bool) { fuzzDecode(t, "application/x-ndjson", body, trade) })
}

func FuzzDecodeMsgpackBody(f *testing.F) {
	seedFuzz(f, "application/msgpack", msgpackDecodeCases(f))
	f.Fuzz(func(t *testing.T, body []byte, trade bool) { fuzzDecode(t, "application/msgpack", body, trade) })
}

func FuzzDecodeCloudEventJSON(f *testing.F) {
	seedFuzz(f, "application/cloudevents+json", ceDecodeCases())
	f.Fuzz(func(t *testing.T, body []byte, trade bool) {
		fuzzDecode(t, "application/cloudevents+json", body, trade)
	})
}

func FuzzDecodeCEBatch(f *testing.F) {
	seedFuzz(f, "application/cloudevents-batch+json", ceDecodeCases())
	f.Fuzz(func(t *testing.T, body []byte, trade bool) {
		fuzzDecode(t, "application/cloudevents-batch+json", body, trade)
	})
}

// FuzzParseTime holds parseTime's hand-written fast path to time.Parse:
// for every input both give the same nanoseconds and the same verdict.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2026-12-06T16:00:00Z", "2026-12-06T16:00:00.123456789Z", "2026-12-06T16:00:00.1+05:30",
		"2026-12-06T16:00:00-00:00", "2024-02-29T23:59:59.999999999Z", "2023-02-29T00:00:00Z",
		"1677-09-21T00:12:43.145224191Z", "1677-09-21T00:12:43.145224192Z", "2262-04-11T23:47:16.854775807Z",
		"2262-04-11T23:47:16.854775808Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59+23:59",
		"2026-12-06T16:00:60Z", "2026-12-06T24:00:00Z", "2026-12-06T16:00:00.Z", "2026-12-06T16:00:00,5Z",
		"2026-12-06T16:00:00.1234567891Z", "2026-12-06t16:00:00z", "2026-12-06T16:00:00+24:00", "2026-13-01T00:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gotNs, gotOK := parseTime(s)
		wantNs, wantOK := parseTimeStd(s)
		if gotNs != wantNs || gotOK != wantOK {
			t.Fatalf("parseTime(%q) = %d, %v; time.Parse gives %d, %v", s, gotNs, gotOK, wantNs, wantOK)
		}
	})
}
