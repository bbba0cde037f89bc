package stream

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

// FuzzParseToken: no input panics; a token that parses prints back to
// itself once normalised, and every error wraps ErrBadToken.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{
		Token{Stream: "core:sluice.enriched.quote", Epoch: 1_765_000_000_000_000_000, Pos: 42}.String(),
		Token{Stream: "SLUICE_ENRICHED/trade", Pos: 1 << 63}.String(),
		"", "1.", "1...", "2.YQ.1.2", "1.YQ.1.2.3", "1.!!.1.2", "1.YQ.-1.2", "1.YQ.zzzzzzzzzzzzzzzz.1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("%q: error %v does not wrap ErrBadToken", s, err)
			}
			return
		}
		again, err := ParseToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("%q: %+v prints as %q, which reads back as %+v, %v", s, tok, tok.String(), again, err)
		}
	})
}

// FuzzParseQuery: no query panics; every error is a 400 or 404 problem, and
// what parses keeps its bounds.
func FuzzParseQuery(f *testing.F) {
	for _, c := range []struct{ typ, q, id string }{
		{"quote", "symbols=AAPL,MSFT,BRK.B", ""},
		{"trade", "symbols=*&snapshot=false&max_rate=10", ""},
		{"quote", "symbols=A&since_seq=5&fallback=snapshot", ""},
		{"quote", "symbols=A&since=2026-01-02T15:04:05Z", ""},
		{"quote", "symbols=A", Token{Stream: "core:t.enriched.quote", Pos: 3}.String()},
		{"quote", "symbols=A,A,,B&_=1", "x"},
		{"order", "symbols=A", ""},
		{"quote", "symbols=%00&max_rate=NaN", ""},
	} {
		f.Add(c.typ, c.q, c.id)
	}
	f.Fuzz(func(t *testing.T, typ, rawQuery, lastEventID string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		r, err := parseQuery(typ, q, lastEventID, 5)
		if err != nil {
			var se *StatusError
			if !errors.As(err, &se) || (se.Status != http.StatusBadRequest && se.Status != http.StatusNotFound) || se.Detail == "" {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if len(r.symbols) > 5 || r.all == (len(r.symbols) > 0) || r.maxRate < 0 || r.maxRate > maxRateLimit {
			t.Fatalf("%q: parsed %+v out of bounds", rawQuery, r)
		}
		for _, s := range r.symbols {
			if s == "" || s == "*" || len(s) > maxSymbolLen {
				t.Fatalf("%q: symbol %q", rawQuery, s)
			}
		}
	})
}
