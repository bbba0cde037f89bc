package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/ops/tracing"
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

			batched := `[` + structured + `,{"specversion":"1.0","id":"tr-3-` + name + `","source":"t","type":"marketdata.quote.v1","data":` + quoteJSON("AAPL", 189.52, 189.56) + `}]`
			batched = strings.Replace(batched, `"tr-1-`, `"tr-4-`, 1)
			resp, body = post(t, c, url, "application/cloudevents-batch+json", batched, "Traceparent", testTraceParent)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("batched: status %d: %s", resp.StatusCode, body)
			}
			got := map[string]int{}
			for range 2 {
				p, _ := nextTrace(t, enriched)
				got[p]++
			}
			if got[ownTraceParent] != 1 || got[testTraceParent] != 1 {
				t.Errorf("batched mode: traceparents %v, want the first event's own and the request's for the second", got)
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

// otlpSink is an OTLP/HTTP trace receiver: it decodes each export request
// (protobuf) and keeps the spans.
type otlpSink struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPSink(t *testing.T) (*otlpSink, string) {
	t.Helper()
	s := &otlpSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				s.spans = append(s.spans, ss.GetSpans()...)
			}
		}
		s.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// byKind returns the spans of kind k received so far.
func (s *otlpSink) byKind(k tracepb.Span_SpanKind) []*tracepb.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*tracepb.Span
	for _, sp := range s.spans {
		if sp.GetKind() == k {
			out = append(out, sp)
		}
	}
	return out
}

func linksTo(sp *tracepb.Span, spanID []byte) bool {
	for _, l := range sp.GetLinks() {
		if bytes.Equal(l.GetSpanId(), spanID) {
			return true
		}
	}
	return false
}

// With --otlp-endpoint, a request's spans reach a real OTLP/HTTP receiver
// joined up: the gateway's request span is a child of the request's
// traceparent, the batch span a child of it and linked to it, the worker's
// span a child of the batch span and linked to the request span; the
// response and the enriched event name the request span. A request without
// a traceparent, at sampling ratio 0, leaves no span.
func TestTracingSpansArriveLinked(t *testing.T) {
	sink, url := newOTLPSink(t)
	st := stackWith(t, func(cfg *devConfig) {
		cfg.trace = tracing.Options{Endpoint: url, SampleRatio: 0, BatchTimeout: 20 * time.Millisecond}
		cfg.gateway.opts.HTTP2Server = gateway.HTTP2Fast // as the commands run by default
	})
	events := "http://" + st.gw.Addr() + "/v1/events/quote"
	c := clients()["h2c"]
	resp, body := post(t, c, events, "application/json", quoteJSON("MSFT", 411.0, 411.1), "Prefer", "return=representation")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Traceresponse") != "" {
		t.Fatalf("untraced request: status %d traceresponse %q: %s", resp.StatusCode, resp.Header.Get("Traceresponse"), body)
	}
	resp, body = post(t, c, events, "application/json", quoteJSON("AAPL", 189.52, 189.56),
		"Prefer", "return=representation", "Traceparent", testTraceParent)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var servers, producers, consumers []*tracepb.Span
	opstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		servers, producers, consumers = sink.byKind(tracepb.Span_SPAN_KIND_SERVER), sink.byKind(tracepb.Span_SPAN_KIND_PRODUCER), sink.byKind(tracepb.Span_SPAN_KIND_CONSUMER)
		if len(servers) < 1 || len(producers) < 1 || len(consumers) < 1 {
			return fmt.Errorf("spans: %d request, %d batch, %d worker", len(servers), len(producers), len(consumers))
		}
		return nil
	})
	if len(servers) != 1 || len(producers) != 1 || len(consumers) != 1 {
		t.Fatalf("spans: %d request, %d batch, %d worker; want one each (the untraced request has none)", len(servers), len(producers), len(consumers))
	}
	req, batch, work := servers[0], producers[0], consumers[0]
	traceID, _ := hex.DecodeString(testTraceParent[3:35])
	parentID, _ := hex.DecodeString(testTraceParent[36:52])
	if !bytes.Equal(req.GetTraceId(), traceID) || !bytes.Equal(req.GetParentSpanId(), parentID) {
		t.Errorf("request span trace %x parent %x, want %x %x", req.GetTraceId(), req.GetParentSpanId(), traceID, parentID)
	}
	if !bytes.Equal(batch.GetParentSpanId(), req.GetSpanId()) || !linksTo(batch, req.GetSpanId()) {
		t.Errorf("batch span parent %x links %v: want parent and link %x (the request span)", batch.GetParentSpanId(), batch.GetLinks(), req.GetSpanId())
	}
	if !bytes.Equal(work.GetParentSpanId(), batch.GetSpanId()) || !bytes.Equal(work.GetTraceId(), traceID) || !linksTo(work, req.GetSpanId()) {
		t.Errorf("worker span trace %x parent %x links %v: want parent %x (the batch span) and a link to %x", work.GetTraceId(), work.GetParentSpanId(), work.GetLinks(), batch.GetSpanId(), req.GetSpanId())
	}
	if len(work.GetEvents()) < 2 {
		t.Errorf("worker span events %v: want its stages", work.GetEvents())
	}
	want := fmt.Sprintf("00-%x-%x-01", traceID, req.GetSpanId())
	if got := resp.Header.Get("Traceresponse"); got != want {
		t.Errorf("traceresponse %q, want %q (the request span)", got, want)
	}
	var ev struct {
		TraceParent string `json:"traceparent"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.TraceParent != want {
		t.Errorf("result's traceparent %q (%v), want %q", ev.TraceParent, err, want)
	}

	// An async publish (over h2c, the fast edge's path) is
	// traced the same way, its 202 naming its request span.
	resp, body = post(t, c, events, "application/json", quoteJSON("AAPL", 189.52, 189.56), "Traceparent", ownTraceParent)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("async: status %d: %s", resp.StatusCode, body)
	}
	ownTrace, _ := hex.DecodeString(ownTraceParent[3:35])
	opstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		for _, k := range []tracepb.Span_SpanKind{tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_PRODUCER, tracepb.Span_SPAN_KIND_CONSUMER} {
			found := false
			for _, sp := range sink.byKind(k) {
				found = found || bytes.Equal(sp.GetTraceId(), ownTrace)
			}
			if !found {
				return fmt.Errorf("no %v span of the async request's trace yet", k)
			}
		}
		return nil
	})
	for _, sp := range sink.byKind(tracepb.Span_SPAN_KIND_SERVER) {
		if bytes.Equal(sp.GetTraceId(), ownTrace) {
			if want := fmt.Sprintf("00-%x-%x-01", ownTrace, sp.GetSpanId()); resp.Header.Get("Traceresponse") != want {
				t.Errorf("async traceresponse %q, want %q", resp.Header.Get("Traceresponse"), want)
			}
		}
	}
	// The fast edge's answer times its stages as net/http's does: three
	// requests, three observations of each stage up to the answer.
	// (Polled: a handler may finish its bookkeeping just after its answer
	// is out.)
	opstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		var page bytes.Buffer
		st.metrics.WritePrometheus(&page)
		for _, stage := range []string{"admit", "decode", "batch_wait", "publish", "response_write"} {
			if want := `sluice_gateway_stage_seconds_count{stage="` + stage + `"} 3`; !strings.Contains(page.String(), want) {
				return fmt.Errorf("/metrics lacks %s", want)
			}
		}
		return nil
	})
}
