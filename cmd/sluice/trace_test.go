package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/schemas"
)

const (
	testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTraceState  = "rojo=00f067aa0ba902b7"
	ownTraceParent  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

// nextTrace waits for the next message on sub and returns the trace context
// of the event in it (for a dead letter, of the event as it came).
func nextTrace(t *testing.T, sub *nats.Subscription) (parent, state string) {
	t.Helper()
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("waiting on %s: %v", sub.Subject, err)
	}
	r := schemas.NewReader(m.Data)
	var dl schemas.DeadLetter
	if sub.Subject == "sluice.dlq.quote" {
		if err := dl.DecodeMsgpack(&r); err != nil {
			t.Fatal(err)
		}
		r = schemas.NewReader(dl.Event)
	}
	var ev schemas.Event
	if err := ev.DecodeMsgpack(&r); err != nil {
		t.Fatal(err)
	}
	return ev.TraceParent, ev.TraceState
}

// A request's W3C trace context travels with its events through the
// worker: into the enriched event on NATS, the dead letter, the result in
// the response body and the traceresponse header; an event's own
// CloudEvents traceparent (structured or binary mode) wins over the
// request's, and a malformed traceparent is carried nowhere.
func TestTraceContextEndToEnd(t *testing.T) {
	st := stack(t)
	nc, err := nats.Connect(st.nats.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	enriched, err := nc.SubscribeSync("sluice.enriched.quote.>")
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := nc.SubscribeSync("sluice.dlq.quote")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + st.gw.Addr() + "/v1/events/quote"
	for name, c := range clients() {
		t.Run(name, func(t *testing.T) {
			resp, body := post(t, c, url, "application/json", quoteJSON("AAPL", 189.52, 189.56),
				"Prefer", "return=representation", "Traceparent", testTraceParent, "Tracestate", testTraceState)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Traceresponse"); got != testTraceParent {
				t.Errorf("traceresponse %q, want %q", got, testTraceParent)
			}
			var ev struct {
				TraceParent string `json:"traceparent"`
				TraceState  string `json:"tracestate"`
			}
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if ev.TraceParent != testTraceParent || ev.TraceState != testTraceState {
				t.Errorf("result's trace (%q, %q), want (%q, %q)", ev.TraceParent, ev.TraceState, testTraceParent, testTraceState)
			}
			if p, s := nextTrace(t, enriched); p != testTraceParent || s != testTraceState {
				t.Errorf("enriched event's trace (%q, %q)", p, s)
			}

			resp, body = post(t, c, url, "application/json", quoteJSON("MSFT", 411.0, 410.9), "Traceparent", testTraceParent)
			if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Traceresponse") != testTraceParent {
				t.Fatalf("status %d traceresponse %q: %s", resp.StatusCode, resp.Header.Get("Traceresponse"), body)
			}
			if p, s := nextTrace(t, dlq); p != testTraceParent || s != "" {
				t.Errorf("dead letter's trace (%q, %q)", p, s)
			}

			structured := `{"specversion":"1.0","id":"tr-1-` + name + `","source":"t","type":"marketdata.quote.v1","traceparent":"` + ownTraceParent + `","data":` + quoteJSON("AAPL", 189.52, 189.56) + `}`
			resp, body = post(t, c, url, "application/cloudevents+json", structured, "Traceparent", testTraceParent)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("structured: status %d: %s", resp.StatusCode, body)
			}
			if p, _ := nextTrace(t, enriched); p != ownTraceParent {
				t.Errorf("structured event's own traceparent: got %q", p)
			}

			resp, body = post(t, c, url, "application/json", quoteJSON("AAPL", 189.52, 189.56),
				"Ce-Specversion", "1.0", "Ce-Id", "tr-2-"+name, "Ce-Source", "t", "Ce-Type", "marketdata.quote.v1",
				"Ce-Traceparent", ownTraceParent, "Ce-Tracestate", testTraceState)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("binary: status %d: %s", resp.StatusCode, body)
			}
			if p, s := nextTrace(t, enriched); p != ownTraceParent || s != testTraceState {
				t.Errorf("binary event's trace (%q, %q)", p, s)
			}

			resp, body = post(t, c, url, "application/json", quoteJSON("AAPL", 189.52, 189.56),
				"Traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "Tracestate", testTraceState)
			if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Traceresponse") != "" {
				t.Fatalf("invalid traceparent: status %d traceresponse %q: %s", resp.StatusCode, resp.Header.Get("Traceresponse"), body)
			}
			if p, s := nextTrace(t, enriched); p != "" || s != "" {
				t.Errorf("invalid traceparent carried as (%q, %q)", p, s)
			}
		})
	}
}
