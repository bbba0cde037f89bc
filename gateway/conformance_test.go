package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sluice-dev/sluice/schemas"
)

// The CloudEvents conformance tests drive the gateway with the reference
// Go SDK, the hand-written decoders' counterpart: what the SDK sends in
// binary and structured mode must arrive on NATS unchanged, and what the
// gateway answers must parse as a valid CloudEvent with the SDK.

// sdkClient returns a CloudEvents client that posts quotes to e over e's
// protocol, with extra options.
func (e *testEnv) sdkClient(opts ...cehttp.Option) cloudevents.Client {
	e.t.Helper()
	opts = append([]cehttp.Option{
		cloudevents.WithTarget(e.base + "/v1/events/quote"),
		cehttp.WithClient(*e.client),
	}, opts...)
	c, err := cloudevents.NewClientHTTP(opts...)
	if err != nil {
		e.t.Fatalf("NewClientHTTP: %v", err)
	}
	return c
}

// sdkQuote is a quote event as an SDK user builds it.
func sdkQuote(t *testing.T, id string) event.Event {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource("urn:sdk:feed/1")
	ev.SetType(schemas.TypeQuoteV1)
	ev.SetSubject("AAPL")
	ev.SetTime(tsTime)
	ev.SetExtension("sequence", "42")
	data := map[string]any{"symbol": "AAPL", "bid": 189.5, "ask": 189.52, "bid_size": 100, "ask_size": 200,
		"venue": "XNAS", "ts": "2025-01-02T15:04:05.121956789Z"}
	if err := ev.SetData(cloudevents.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestConformanceSDKSend(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		frames := e.subscribeFrames(schemas.KindQuote)
		c := e.sdkClient()
		for _, enc := range []struct {
			name string
			ctx  func(context.Context) context.Context
		}{
			{"binary", cloudevents.WithEncodingBinary},
			{"structured", cloudevents.WithEncodingStructured},
		} {
			t.Run(enc.name, func(t *testing.T) {
				sent := sdkQuote(t, "sdk-"+enc.name)
				res := c.Send(enc.ctx(context.Background()), sent)
				if !cloudevents.IsACK(res) {
					t.Fatalf("Send: %v", res)
				}
				var hr *cehttp.Result
				if !cloudevents.ResultAs(res, &hr) || hr.StatusCode != http.StatusAccepted {
					t.Fatalf("result %v, want HTTP 202", res)
				}
				_, evs := frames.next()
				if len(evs) != 1 {
					t.Fatalf("%d events", len(evs))
				}
				got := evs[0]
				if got.ID != sent.ID() || got.Source != sent.Source() || got.Type != sent.Type() ||
					got.Subject != sent.Subject() || got.Time != sent.Time().UnixNano() {
					t.Errorf("attributes on NATS %+v, sent %v", got, sent)
				}
				want := aapl
				if got.Quote != want {
					t.Errorf("data on NATS %+v, want %+v", got.Quote, want)
				}
			})
		}
	})
}

// TestConformanceSDKParsesResults checks the gateway's representation
// answer with the SDK, both by json.Unmarshal into event.Event and through
// the SDK client's own request-reply.
func TestConformanceSDKParsesResults(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		e.startResponder(schemas.KindQuote, nil)

		resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"), "Prefer", "return=representation")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d: %s", resp.StatusCode, body)
		}
		var ev event.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("SDK cannot read %s: %v", body, err)
		}
		checkEnrichedSDK(t, &ev, "")

		c := e.sdkClient(cehttp.WithHeader("Prefer", "return=representation"))
		for _, ctx := range []context.Context{
			cloudevents.WithEncodingBinary(context.Background()),
			cloudevents.WithEncodingStructured(context.Background()),
		} {
			sent := sdkQuote(t, "sdk-rr")
			sent.SetTime(time.Now())
			if err := sent.SetData(cloudevents.ApplicationJSON, map[string]any{"symbol": "MSFT", "bid": 410.1,
				"ask": 410.2, "bid_size": 5, "ask_size": 7}); err != nil {
				t.Fatal(err)
			}
			sent.SetSubject("MSFT")
			got, res := c.Request(ctx, sent)
			if !cloudevents.IsACK(res) {
				t.Fatalf("Request: %v", res)
			}
			if got == nil {
				t.Fatal("SDK found no event in the answer")
			}
			checkEnrichedSDK(t, got, "sdk-rr")
		}
	})
}

func checkEnrichedSDK(t *testing.T, ev *event.Event, id string) {
	t.Helper()
	if err := ev.Validate(); err != nil {
		t.Fatalf("SDK says the answer is no valid CloudEvent: %v\n%v", err, ev)
	}
	if ev.SpecVersion() != "1.0" || ev.Type() != schemas.TypeQuoteEnrichedV1 || ev.DataContentType() != "application/json" ||
		ev.Subject() == "" || ev.Time().IsZero() || (id != "" && ev.ID() != id) {
		t.Errorf("attributes %v", ev)
	}
	var data map[string]any
	if err := ev.DataAs(&data); err != nil {
		t.Fatalf("data: %v", err)
	}
	if data["symbol"] != ev.Subject() || data["mid"] == nil || data["instrument"] == nil {
		t.Errorf("data %v", data)
	}
}

// TestConformanceSDKRefusals checks that what the gateway refuses from the
// SDK comes back as an HTTP result with the right status.
func TestConformanceSDKRefusals(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		c := e.sdkClient()
		ev := sdkQuote(t, "wrong-kind")
		ev.SetType(schemas.TypeTradeV1)
		for _, ctx := range []context.Context{
			cloudevents.WithEncodingBinary(context.Background()),
			cloudevents.WithEncodingStructured(context.Background()),
		} {
			res := c.Send(ctx, ev)
			var hr *cehttp.Result
			if cloudevents.IsACK(res) || !errors.As(res, &hr) || hr.StatusCode != http.StatusBadRequest {
				t.Errorf("trade on the quote path: %v, want HTTP 400", res)
			}
		}
	})
}
