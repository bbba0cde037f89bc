package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestBackoffWait(t *testing.T) {
	const ms = time.Millisecond
	b := Backoff{Min: ms, Max: 100 * ms}
	for _, tt := range []struct {
		b          Backoff
		streak     int
		retryAfter time.Duration
		jitter     float64
		want       time.Duration
	}{
		{b, 1, -1, 0, ms},
		{b, 2, -1, 0, 2 * ms},
		{b, 3, -1, 0, 4 * ms},
		{b, 7, -1, 0, 64 * ms},
		{b, 8, -1, 0, 100 * ms}, // 128 ms, capped
		{b, 1000, -1, 0, 100 * ms},
		{b, 8, time.Second, 0, 100 * ms}, // the gateway's Retry-After: 1 is above the cap
		{b, 8, 10 * ms, 0, 10 * ms},      // a shorter Retry-After caps
		{b, 3, 0, 0, 0},                  // Retry-After: 0 means now
		{b, 3, -1, 0.5, 3 * ms},          // jitter takes up to half off
		{b, 8, -1, 0.999999, 50*ms + 50*ms/1000000},
		{Backoff{}, 5, -1, 0, 0},                           // off
		{Backoff{Min: 3 * ms}, 5, -1, 0, 3 * ms},           // Max defaults to Min
		{Backoff{Min: ms, Max: 5 * ms}, 40, -1, 0, 5 * ms}, // no overflow on a long streak
	} {
		if got := tt.b.wait(tt.streak, tt.retryAfter, tt.jitter); got != tt.want {
			t.Errorf("%+v.wait(%d, %v, %v) = %v, want %v", tt.b, tt.streak, tt.retryAfter, tt.jitter, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	f := func(in string, want time.Duration) {
		t.Helper()
		if got := parseRetryAfter(in); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
	f("1", time.Second)
	f("0", 0)
	f("120", 2*time.Minute)
	f("", -1)
	f("-1", -1)
	f("1.5", -1)
	f("Wed, 21 Oct 2015 07:28:00 GMT", -1)
}

// backoffRun runs closed loop against a server that refuses every request
// with 503, and returns the requests that reached it.
func backoffRun(t *testing.T, proto Proto, streams int, b Backoff, retryAfter string, d time.Duration) (int64, *Result) {
	t.Helper()
	ts := newTestServer(t, false, func(int64) int { return http.StatusServiceUnavailable })
	ts.retryAfter = retryAfter
	res, err := Run(context.Background(), Config{Target: ts.URL, Backoff: b, Duration: d,
		Client: ClientOptions{Proto: proto, Conns: 1, Streams: streams}, Payloads: testPayloads(t, PayloadOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	return ts.arrived.Load(), res
}

// TestClosedLoopBacksOff checks that a refused closed-loop stream waits,
// longer at each refusal in a row, and then sends again: with waits of at
// least 0.5, 1, 2, ... 256 ms, one stream sends at most 11 requests in
// 600 ms, and sending at once it would send hundreds.
func TestClosedLoopBacksOff(t *testing.T) {
	for _, proto := range []Proto{ProtoH1, ProtoH2C} {
		t.Run(string(proto), func(t *testing.T) {
			const streams = 3
			n, res := backoffRun(t, proto, streams, Backoff{Min: time.Millisecond, Max: time.Second}, "", 600*time.Millisecond)
			t.Logf("%d requests, status %v, errors %d", n, res.Status, res.Errors)
			if n < 2*streams || n > 11*streams {
				t.Fatalf("%d requests from %d streams, want between %d and %d", n, streams, 2*streams, 11*streams)
			}
			if res.Status[http.StatusServiceUnavailable] == 0 || res.Errors != 0 {
				t.Fatalf("status %v, errors %d: want 503s counted and no error", res.Status, res.Errors)
			}
		})
	}
}

// TestClosedLoopBackoffHonoursRetryAfter checks that the answer's
// Retry-After caps the wait: Retry-After: 0 sends again at once, where the
// 200 ms backoff alone would allow 2 requests in 300 ms.
func TestClosedLoopBackoffHonoursRetryAfter(t *testing.T) {
	for _, proto := range []Proto{ProtoH1, ProtoH2C} {
		t.Run(string(proto), func(t *testing.T) {
			n, _ := backoffRun(t, proto, 1, Backoff{Min: 200 * time.Millisecond}, "0", 300*time.Millisecond)
			if n < 10 {
				t.Fatalf("%d requests with Retry-After: 0, want at least 10", n)
			}
		})
	}
}

// TestOpenLoopIgnoresBackoff checks that an open-loop run keeps its
// offered rate whatever the answers: it measures shedding.
func TestOpenLoopIgnoresBackoff(t *testing.T) {
	for _, proto := range []Proto{ProtoH1, ProtoH2C} {
		t.Run(string(proto), func(t *testing.T) {
			ts := newTestServer(t, false, func(int64) int { return http.StatusServiceUnavailable })
			res, err := Run(context.Background(), Config{Target: ts.URL, Mode: Open, Rate: 200,
				Backoff: Backoff{Min: time.Second}, Duration: 500 * time.Millisecond,
				Client: ClientOptions{Proto: proto, Conns: 1, Streams: 100}, Payloads: testPayloads(t, PayloadOptions{})})
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(ts.arrived.Load()); got != "100" || res.Status[http.StatusServiceUnavailable] != 100 {
				t.Fatalf("%s requests arrived, status %v; want the 100 scheduled, all 503", got, res.Status)
			}
		})
	}
}
