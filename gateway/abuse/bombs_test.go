package abuse

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBodyBombs: bodies that claim more than they hold, or nest without
// end, are answered 400 at once; too many events 413.
func TestBodyBombs(t *testing.T) {
	e := newEnv(t, nil)
	quotes := func(n int) []byte {
		return []byte("[" + strings.Repeat(goodQuote+",", n-1) + goodQuote + "]")
	}
	cases := []struct {
		name, ct string
		body     []byte
		want     int
	}{
		{"msgpack array32 of 2^32-1", "application/msgpack", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x80}, 400},
		{"msgpack map32 of 2^32-1", "application/msgpack", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a'}, 400},
		{"msgpack str32 of 4 GiB", "application/msgpack", []byte{0x81, 0xa6, 's', 'y', 'm', 'b', 'o', 'l', 0xdb, 0xff, 0xff, 0xff, 0xff, 'A'}, 400},
		{"msgpack bin32 of 4 GiB", "application/msgpack", []byte{0x81, 0xa3, 'b', 'i', 'd', 0xc6, 0xff, 0xff, 0xff, 0xff}, 400},
		{"msgpack nested 100k deep", "application/msgpack", bytes.Repeat([]byte{0x91}, 100_000), 400},
		{"JSON arrays nested 100k deep", "application/json", []byte(strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)), 400},
		{"JSON objects nested 100k deep", "application/json", []byte(strings.Repeat(`{"a":`, 100_000)), 400},
		{"10,001 events", "application/json", quotes(10_001), 413},
	}
	for _, tc := range cases {
		for name, c := range map[string]*http.Client{"h1": e.h1, "h2c": e.h2c} {
			start := time.Now()
			status, ct, body, err := e.post(c, tc.ct, tc.body)
			took := time.Since(start)
			t.Logf("%s (%s): %d in %v %.100s", tc.name, name, status, took.Round(time.Microsecond), body)
			if err != nil || status != tc.want || ct != "application/problem+json" {
				t.Errorf("%s (%s): %d %q %v, want %d problem+json", tc.name, name, status, ct, err, tc.want)
			}
		}
	}
	e.recovered()
}

// TestInvalidText: invalid UTF-8 and NUL bytes in symbols and CloudEvents
// attributes are refused, 400 by the gateway or 422 by the worker, never a
// 5xx. Each is sent with Prefer: return=representation, so the answer is
// the worker's verdict when the gateway lets the event through.
func TestInvalidText(t *testing.T) {
	e := newEnv(t, nil)
	quote := func(symbol string) []byte {
		return []byte(`{"symbol":"` + symbol + `","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200}`)
	}
	ce := func(id, source, subject string) []byte {
		return []byte(`{"specversion":"1.0","id":"` + id + `","source":"` + source + `","type":"marketdata.quote.v1",` +
			`"subject":"` + subject + `","datacontenttype":"application/json","data":` + goodQuote + `}`)
	}
	mp := func(symbol []byte) []byte { // {"symbol": <str8>, ...} with the other fields
		b := []byte{0x85, 0xa6, 's', 'y', 'm', 'b', 'o', 'l', 0xd9, byte(len(symbol))}
		b = append(b, symbol...)
		for _, kv := range []struct {
			k string
			v []byte
		}{{"bid", []byte{0xcb, 0x40, 0x67, 0xb0, 0, 0, 0, 0, 0}}, {"ask", []byte{0xcb, 0x40, 0x67, 0xb1, 0, 0, 0, 0, 0}},
			{"bid_size", []byte{100}}, {"ask_size", []byte{100}}} {
			b = append(b, 0xa0|byte(len(kv.k)))
			b = append(b, kv.k...)
			b = append(b, kv.v...)
		}
		return b
	}
	cases := []struct {
		name, ct string
		body     []byte
	}{
		{"JSON symbol with raw 0xff", "application/json", quote("AA\xffPL")},
		{"JSON symbol with an escaped NUL", "application/json", quote(`AA\u0000PL`)},
		{"JSON symbol with a lone surrogate", "application/json", quote(`AA\ud800PL`)},
		{"msgpack symbol with 0xff", "application/msgpack", mp([]byte("AA\xffPL"))},
		{"msgpack symbol with NUL", "application/msgpack", mp([]byte("AA\x00PL"))},
		{"CloudEvent id with NUL", "application/cloudevents+json", ce(`1\u00002`, "s", "AAPL")},
		{"CloudEvent id with raw 0xff", "application/cloudevents+json", ce("1\xff2", "s", "AAPL")},
		{"CloudEvent source with NUL", "application/cloudevents+json", ce("1", `s\u0000t`, "AAPL")},
		{"CloudEvent source with raw 0xff", "application/cloudevents+json", ce("1", "s\xfft", "AAPL")},
		{"CloudEvent subject with NUL", "application/cloudevents+json", ce("1", "s", `AA\u0000PL`)},
		{"CloudEvent subject with raw 0xff", "application/cloudevents+json", ce("1", "s", "AA\xffPL")},
	}
	var accepted []string // CloudEvents attributes let through: the known gap below
	for _, tc := range cases {
		status, _, body, err := e.post(e.h2c, tc.ct, tc.body, "Prefer", "return=representation")
		t.Logf("%s: %d %.160s", tc.name, status, body)
		switch {
		case err != nil || status >= 500:
			t.Errorf("%s: %d %v, want 400 or 422, never a 5xx", tc.name, status, err)
		case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		case strings.HasPrefix(tc.name, "CloudEvent"):
			accepted = append(accepted, tc.name)
		default:
			t.Errorf("%s: accepted (%d %.100s), want 400 or 422", tc.name, status, body)
		}
	}
	// Binary mode: attributes in ce-* headers. HTTP/1.1 and HTTP/2 both
	// refuse a NUL in a header value before the gateway sees it; raw 0xff
	// bytes pass.
	for _, attr := range []string{"Ce-Id", "Ce-Source", "Ce-Subject"} {
		hdr := []string{"Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Source", "s", "Ce-Type", "marketdata.quote.v1", "Ce-Subject", "AAPL",
			"Prefer", "return=representation"}
		for i := 0; i < len(hdr); i += 2 {
			if hdr[i] == attr {
				hdr[i+1] = "A\xffB"
			}
		}
		status, _, body, err := e.post(e.h1, "application/json", []byte(goodQuote), hdr...)
		t.Logf("binary mode, %s with raw 0xff: %d %.160s", attr, status, body)
		if err != nil || status >= 500 {
			t.Errorf("binary mode, %s with raw 0xff: %d %v, never a 5xx", attr, status, err)
		} else if status < 400 {
			accepted = append(accepted, "binary mode "+attr+" with raw 0xff")
		}
	}
	e.recovered()
	if len(accepted) > 0 {
		// Known gap (issue #12): the gateway checks CloudEvents attributes
		// for presence, not for valid UTF-8 or control bytes, and echoes
		// them; drop this skip once decode_cloudevents.go refuses them.
		t.Skipf("accepted, want 400: %s", strings.Join(accepted, "; "))
	}
}
