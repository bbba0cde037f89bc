package schemas_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/schemas"
)

// seedEvents is the table the event fuzzers start from: valid encodings of
// every shape the encoders write, and the odd ones other writers send.
func seedEvents() [][]byte {
	withInvalid := sampleQuote()
	withInvalid.Quote.Invalid = schemas.FBid | schemas.FTS
	withSchema := sampleTrade()
	withSchema.DataSchema = "urn:x"
	withSchema.Trade.Invalid = schemas.FConditions
	v2 := sampleQuote()
	v2.Type = "marketdata.quote.v2"
	seeds := [][]byte{
		encodeEvent(sampleQuote(), nil),
		encodeEvent(sampleTrade(), nil),
		encodeEvent(withInvalid, nil),
		encodeEvent(withSchema, nil),
		encodeEvent(v2, nil),
		eventMap("data", eventMap("bid", 1.0, "bid", nil), "type", schemas.TypeQuoteV1, "x", []byte{0xd4, 1, 1}),
		eventMap("type", schemas.TypeTradeV1, "time", schemas.AppendTimestamp(nil, -1),
			"data", eventMap("conditions", []byte{0x92, 0xa1, 'a', 0xc4, 0x01, 'b'}, "ts", []byte{0xd6, 0xff, 0, 0, 0, 1})),
		eventMap(),
	}
	return seeds
}

func FuzzEventDecode(f *testing.F) {
	for _, s := range seedEvents() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var ev schemas.Event
		r := schemas.NewReader(in)
		if err := ev.DecodeMsgpack(&r); err != nil || !ev.Known {
			return
		}
		// A decoded event of a known type re-encodes to an equal event,
		// and the encoding is then stable.
		b := ev.AppendMsgpack(nil)
		var ev2 schemas.Event
		r2 := schemas.NewReader(b)
		if err := ev2.DecodeMsgpack(&r2); err != nil || !r2.Done() {
			t.Fatalf("re-encoded event does not decode: %v\n% x", err, b)
		}
		if !sameEvent(&ev, &ev2) {
			t.Fatalf("round trip changed the event\n%+v\n%+v", ev, ev2)
		}
		if b2 := ev2.AppendMsgpack(nil); !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable\n% x\n% x", b, b2)
		}
		// Validation never panics, whatever the values.
		schemas.Validate(&ev, sampleTime, schemas.Limits{}, nil)
	})
}

func FuzzBatchFrame(f *testing.F) {
	f.Add(goldenBatch())
	f.Add(schemas.BatchFrameHeader(nil))
	for _, s := range seedEvents() {
		f.Add(append(schemas.AppendArrayHeader(nil, 2), append(s, s...)...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := schemas.NewReader(in)
		n, err := schemas.ReadBatchFrame(&r)
		if err != nil {
			return
		}
		if n > len(in) {
			t.Fatalf("count %d beyond the %d bytes of the frame", n, len(in))
		}
		var ev schemas.Event
		for i := 0; i < n; i++ {
			start := r.Offset()
			err := ev.DecodeMsgpack(&r)
			if r.Err() != nil {
				return // the rest of the frame is lost
			}
			if r.Offset() <= start {
				t.Fatalf("event %d consumed nothing", i)
			}
			if err != nil {
				continue // a malformed event costs only itself
			}
		}
	})
}

func FuzzResultDecode(f *testing.F) {
	f.Add(goldenReply())
	errs := []schemas.FieldError{{Field: "f", Code: "c", Detail: "d"}}
	f.Add(schemas.AppendResultInvalid(nil, 1, 2, errs))
	f.Add(schemas.AppendResultInvalid(nil, 1<<64-1, 1<<32-1, nil))
	en := sampleEnrichedTrade()
	f.Add(schemas.AppendResultOK(nil, 7, 0, &en))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := schemas.NewReader(in)
		if r.Peek()&0xf0 == 0x90 || r.Peek() == 0xdc || r.Peek() == 0xdd {
			r.ArrayHeader() // a whole reply frame: read its first result
		}
		var res schemas.Result
		if err := res.DecodeMsgpack(&r); err != nil {
			return
		}
		// Re-encoding an invalid result gives the same result back.
		b := schemas.AppendResultInvalid(nil, res.Corr, res.Seq, res.Errors)
		var res2 schemas.Result
		r2 := schemas.NewReader(b)
		if err := res2.DecodeMsgpack(&r2); err != nil || res2.Corr != res.Corr || res2.Seq != res.Seq ||
			res2.Status != 422 || !sameErrors(res.Errors, res2.Errors) {
			t.Fatalf("round trip: %+v, %v; want %+v", res2, err, res)
		}
		if res.Event != nil {
			var en schemas.Enriched
			er := schemas.NewReader(res.Event)
			_ = en.DecodeMsgpack(&er) // must not panic
		}
	})
}

func FuzzDeadLetter(f *testing.F) {
	errs := []schemas.FieldError{{Field: "type", Code: schemas.CodeUnknownVersion, Detail: "x"}}
	f.Add(schemas.AppendDeadLetter(nil, errs, encodeEvent(sampleQuote(), nil)))
	f.Add(schemas.AppendDeadLetter(nil, nil, nil))
	f.Add(schemas.AppendDeadLetter(nil, append(errs, errs...), []byte{0x01}))
	f.Fuzz(func(t *testing.T, in []byte) {
		var d schemas.DeadLetter
		r := schemas.NewReader(in)
		if err := d.DecodeMsgpack(&r); err != nil {
			return
		}
		b := schemas.AppendDeadLetter(nil, d.Errors, d.Event)
		var d2 schemas.DeadLetter
		r2 := schemas.NewReader(b)
		if err := d2.DecodeMsgpack(&r2); err != nil || !sameErrors(d.Errors, d2.Errors) || !bytes.Equal(d.Event, d2.Event) {
			t.Fatalf("round trip: %+v, %v; want %+v", d2, err, d)
		}
	})
}

func FuzzEnrichedDecode(f *testing.F) {
	for _, en := range []schemas.Enriched{sampleEnrichedQuote(), sampleEnrichedTrade()} {
		f.Add(en.AppendMsgpack(nil))
	}
	f.Add(eventMap("data", eventMap("mid", 1, "symbol", nil, "instrument", eventMap("x", 1)), "type", schemas.TypeQuoteEnrichedV1))
	f.Fuzz(func(t *testing.T, in []byte) {
		var en schemas.Enriched
		r := schemas.NewReader(in)
		if err := en.DecodeMsgpack(&r); err != nil {
			return
		}
		// The first re-encoding normalizes (invalid fields dropped, every
		// enrichment written); from then on encode and decode are stable.
		b := en.AppendMsgpack(nil)
		var en2 schemas.Enriched
		r2 := schemas.NewReader(b)
		if err := en2.DecodeMsgpack(&r2); err != nil || !r2.Done() {
			t.Fatalf("re-encoded enriched event does not decode: %v\n% x", err, b)
		}
		if b2 := en2.AppendMsgpack(nil); !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable\n% x\n% x", b, b2)
		}
		if out, err := schemas.AppendEventJSON(nil, b); err != nil || !json.Valid(out) {
			t.Fatalf("JSON of an enriched event: %v\n%s", err, out)
		}
	})
}

func FuzzEventJSON(f *testing.F) {
	for _, s := range seedEvents() {
		f.Add(s)
	}
	for _, g := range goldens {
		f.Add(g.encode())
	}
	f.Add([]byte{0x92, 0xca, 0x7f, 0xc0, 0, 0, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1})
	f.Add(eventMap("s", "\xff\u2028\x00\"\\", "ts", -1, "b", []byte{0xc4, 1, 0x80}))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := schemas.AppendEventJSON(nil, in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON from % x:\n%s", in, out)
		}
	})
}

func FuzzSymbolToken(f *testing.F) {
	for _, s := range []string{"AAPL", "BRK.B", "BF.B", "A_B", "X%Y", "*", ">", " ", "ÄÖ", "a.b_c%d", "", "\x00\xff", "%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sym string) {
		tok := schemas.SymbolToken(sym)
		if msg := checkToken(sym, tok); msg != "" {
			t.Fatalf("SymbolToken(%q) = %q %s", sym, tok, msg)
		}
		if !utf8.ValidString(tok) || strings.ContainsRune(tok, utf8.RuneError) {
			t.Fatalf("SymbolToken(%q) = %q is not plain ASCII", sym, tok)
		}
		// Any string read as a token either fails or maps to a symbol.
		if back, err := schemas.TokenSymbol(sym); err == nil && len(back) > len(sym) {
			t.Fatalf("TokenSymbol(%q) = %q grew", sym, back)
		}
	})
}

func sameErrors(a, b []schemas.FieldError) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
