package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/nats-io/nats.go"
	"github.com/sluice-dev/sluice/ops/opstest"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/sluice-dev/sluice/schemas"
)

// TestPublishAccepted posts one quote without ts and checks the 202 answer
// and the batch frame that reaches NATS.
func TestPublishAccepted(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		frames := e.subscribeFrames(schemas.KindQuote)
		before := time.Now().UnixNano()
		resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"))
		after := time.Now().UnixNano()
		ids := wantAccepted(t, resp, body, 1)

		_, evs := frames.next()
		if len(evs) != 1 {
			t.Fatalf("frame holds %d events, want 1", len(evs))
		}
		ev := evs[0]
		switch {
		case ev.ID != ids[0]:
			t.Errorf("id %q, want %q", ev.ID, ids[0])
		case ev.Source != testSource:
			t.Errorf("source %q, want %q", ev.Source, testSource)
		case ev.Type != schemas.TypeQuoteV1 || !ev.Known || ev.Kind != schemas.KindQuote:
			t.Errorf("type %q known %v kind %v", ev.Type, ev.Known, ev.Kind)
		case ev.Subject != "AAPL":
			t.Errorf("subject %q, want the symbol", ev.Subject)
		case ev.ReceivedAt < before || ev.ReceivedAt > after:
			t.Errorf("sluicerecv %d outside [%d, %d]", ev.ReceivedAt, before, after)
		case ev.Quote.Present&schemas.FTS == 0 || ev.Quote.TS != ev.ReceivedAt:
			t.Errorf("ts %d (present %v), want it defaulted to the receive time %d", ev.Quote.TS, ev.Quote.Present&schemas.FTS != 0, ev.ReceivedAt)
		case ev.Time != ev.Quote.TS:
			t.Errorf("time %d, want ts %d", ev.Time, ev.Quote.TS)
		case ev.Corr != 0:
			t.Errorf("sluicecorr %d on an async event", ev.Corr)
		}
		q := ev.Quote
		if q.Symbol != "AAPL" || q.Bid != 189.5 || q.Ask != 189.52 || q.BidSize != 100 || q.AskSize != 200 || q.Venue != "XNAS" || q.Invalid != 0 {
			t.Errorf("payload %+v", q)
		}
		if got := e.counter(`sluice_gateway_events_accepted_total{type="quote"}`); got != 1 {
			t.Errorf("accepted counter = %d, want 1", got)
		}
		if got := e.counter(`sluice_gateway_requests_total{status="202"}`); got != 1 {
			t.Errorf("202 counter = %d, want 1", got)
		}
	})
}

// TestPublishMinimal: Prefer: return=minimal answers 202 with no body and
// says so in Preference-Applied; the events still go to NATS, with the ids
// the gateway gave them.
func TestPublishMinimal(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		frames := e.subscribeFrames(schemas.KindQuote)
		body := quoteJSONBody("AAPL") + "\n" + quoteJSONBody("MSFT")
		resp, got := e.post("quote", "application/x-ndjson", body, "Prefer", "respond-async, return=minimal")
		if resp.StatusCode != http.StatusAccepted || len(got) != 0 || resp.ContentLength > 0 {
			t.Fatalf("status %d, Content-Length %d, body %q: want 202 and no body", resp.StatusCode, resp.ContentLength, got)
		}
		if pa := resp.Header.Get("Preference-Applied"); pa != "return=minimal" {
			t.Errorf("Preference-Applied %q, want return=minimal", pa)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			t.Errorf("Content-Type %q on an answer without a body", ct)
		}
		_, evs := frames.events(2)
		if evs[0].ID == "" || evs[1].ID == "" || evs[0].ID == evs[1].ID {
			t.Errorf("ids %q and %q, want two distinct ids given by the gateway", evs[0].ID, evs[1].ID)
		}
		if got := e.counter(`sluice_gateway_events_accepted_total{type="quote"}`); got != 2 {
			t.Errorf("accepted counter = %d, want 2", got)
		}
		if got := e.counter(`sluice_gateway_requests_total{status="202"}`); got != 1 {
			t.Errorf("202 counter = %d, want 1", got)
		}
	})
}

// TestPublishTimes checks the time defaults: a client ts becomes the
// CloudEvents time; a CloudEvent's time becomes a missing ts.
func TestPublishTimes(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		frames := e.subscribeFrames(schemas.KindQuote)

		resp, body := e.post("quote", "application/json", aaplJSON)
		wantAccepted(t, resp, body, 1)
		_, evs := frames.next()
		if evs[0].Quote.TS != tsNanos || evs[0].Time != tsNanos {
			t.Errorf("ts %d time %d, want both %d", evs[0].Quote.TS, evs[0].Time, tsNanos)
		}

		ce := `{"specversion":"1.0","id":"c1","source":"urn:s","type":"marketdata.quote.v1","time":"2025-01-02T15:04:05.121956789Z","data":` + quoteJSONBody("MSFT") + `}`
		resp, body = e.post("quote", "application/cloudevents+json", ce)
		wantAccepted(t, resp, body, 1)
		_, evs = frames.next()
		if evs[0].Quote.TS != tsNanos || evs[0].Time != tsNanos || evs[0].Subject != "MSFT" {
			t.Errorf("ts %d time %d subject %q, want ts from the CloudEvents time", evs[0].Quote.TS, evs[0].Time, evs[0].Subject)
		}
	})
}

// TestPublishBatchBodies posts collections in every batch format and checks
// that the ids answered are the ids on NATS, in order.
func TestPublishBatchBodies(t *testing.T) {
	ndjson := quoteJSONBody("A") + "\r\n\n" + quoteJSONBody("B") + "\n" + quoteJSONBody("C") + "\n"
	arr := "[" + quoteJSONBody("A") + "," + quoteJSONBody("B") + "," + quoteJSONBody("C") + "]"
	mp, err := msgpack.Marshal([]map[string]any{{"symbol": "A", "bid": 1.0}, {"symbol": "B", "bid": 1.0}, {"symbol": "C", "bid": 1.0}})
	if err != nil {
		t.Fatal(err)
	}
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		frames := e.subscribeFrames(schemas.KindQuote)
		for _, c := range []struct{ ct, body string }{
			{"application/x-ndjson", ndjson},
			{"application/json", arr},
			{"application/msgpack", string(mp)},
		} {
			resp, body := e.post("quote", c.ct, c.body)
			ids := wantAccepted(t, resp, body, 3)
			_, evs := frames.events(3)
			for i, ev := range evs {
				if ev.ID != ids[i] || ev.Subject != string(rune('A'+i)) {
					t.Errorf("%s event %d: id %q subject %q, want %q %c", c.ct, i, ev.ID, ev.Subject, ids[i], 'A'+i)
				}
			}
		}
	})
}

// TestCloudEventIDsKept checks that client ids and sources survive, in
// structured, batched and binary mode, and that an unknown version passes
// the gateway (the worker rejects it).
func TestCloudEventIDsKept(t *testing.T) {
	ce := func(id, typ string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"urn:feed","type":"` + typ + `","data":` + quoteJSONBody("IBM") + `}`
	}
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		frames := e.subscribeFrames(schemas.KindQuote)

		resp, body := e.post("quote", "application/cloudevents+json", ce("client-1", "marketdata.quote.v1"))
		if ids := wantAccepted(t, resp, body, 1); ids[0] != "client-1" {
			t.Errorf("ids %v, want the client's", ids)
		}
		resp, body = e.post("quote", "application/cloudevents-batch+json", "["+ce("b-1", "marketdata.quote.v1")+","+ce("b-2", "marketdata.quote.v9")+"]")
		if ids := wantAccepted(t, resp, body, 2); !slices.Equal(ids, []string{"b-1", "b-2"}) {
			t.Errorf("ids %v, want b-1 b-2", ids)
		}
		resp, body = e.post("quote", "application/json", quoteJSONBody("IBM"),
			"ce-specversion", "1.0", "ce-id", "bin-1", "ce-source", "urn:feed", "ce-type", "marketdata.quote.v1")
		if ids := wantAccepted(t, resp, body, 1); ids[0] != "bin-1" {
			t.Errorf("ids %v, want bin-1", ids)
		}
		_, evs := frames.events(4)
		for i, want := range []string{"client-1", "b-1", "b-2", "bin-1"} {
			if evs[i].ID != want || evs[i].Source != "urn:feed" || evs[i].Subject != "IBM" {
				t.Errorf("event %d: id %q source %q subject %q, want %q urn:feed IBM", i, evs[i].ID, evs[i].Source, evs[i].Subject, want)
			}
		}
		if evs[2].Type != "marketdata.quote.v9" || evs[2].Known {
			t.Errorf("v9 event: type %q known %v", evs[2].Type, evs[2].Known)
		}
	})
}

// ceOut is the CloudEvents JSON the gateway answers with.
type ceOut struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Subject         string         `json:"subject"`
	Time            string         `json:"time"`
	DataContentType string         `json:"datacontenttype"`
	Data            map[string]any `json:"data"`
}

// TestRepresentation asks for results with Prefer: return=representation
// and checks each answer shape against a test worker on NATS.
func TestRepresentation(t *testing.T) {
	prefer := []string{"Prefer", "return=representation"}
	crossed := `{"symbol":"AAPL","bid":190,"ask":189,"bid_size":1,"ask_size":1}`
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		e.startResponder(schemas.KindQuote, nil)

		t.Run("single", func(t *testing.T) {
			resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"), prefer...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if pa := resp.Header.Get("Preference-Applied"); pa != "return=representation" {
				t.Errorf("Preference-Applied %q", pa)
			}
			var ev ceOut
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if ev.SpecVersion != "1.0" || ev.ID == "" || ev.Source != testSource || ev.Type != schemas.TypeQuoteEnrichedV1 ||
				ev.Subject != "AAPL" || ev.DataContentType != "application/json" {
				t.Errorf("attributes %+v", ev)
			}
			if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil {
				t.Errorf("time %q: %v", ev.Time, err)
			}
			if ev.Data["symbol"] != "AAPL" || ev.Data["mid"] != 189.51 || ev.Data["bid_size"] != 100.0 {
				t.Errorf("data %v", ev.Data)
			}
		})

		t.Run("invalid", func(t *testing.T) {
			resp, body := e.post("quote", "application/json", crossed, prefer...)
			p := wantProblem(t, resp, body, http.StatusUnprocessableEntity, "failed validation")
			if len(p.Errors) == 0 || p.Errors[0].Code != schemas.CodeCrossedQuote || p.Errors[0].Field == "" {
				t.Errorf("errors %+v, want crossed_quote", p.Errors)
			}
		})

		t.Run("unknown version", func(t *testing.T) {
			ce := `{"specversion":"1.0","id":"v9","source":"urn:s","type":"marketdata.quote.v9","data":` + quoteJSONBody("AAPL") + `}`
			resp, body := e.post("quote", "application/cloudevents+json", ce, prefer...)
			p := wantProblem(t, resp, body, http.StatusUnprocessableEntity, "v9")
			if len(p.Errors) != 1 || p.Errors[0].Code != schemas.CodeUnknownVersion {
				t.Errorf("errors %+v, want unknown_version", p.Errors)
			}
		})

		t.Run("batch", func(t *testing.T) {
			body := quoteJSONBody("A") + "\n" + crossed + "\n" + quoteJSONBody("C") + "\n"
			resp, out := e.post("quote", "application/x-ndjson", body, prefer...)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), out)
			}
			var got struct {
				Enriched, Rejected int
				Results            []struct {
					ID     string               `json:"id"`
					Status int                  `json:"status"`
					Event  *ceOut               `json:"event"`
					Errors []schemas.FieldError `json:"errors"`
				}
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if got.Enriched != 2 || got.Rejected != 1 || len(got.Results) != 3 {
				t.Fatalf("results %s", out)
			}
			for i, want := range []int{200, 422, 200} {
				r := got.Results[i]
				if r.Status != want || r.ID == "" {
					t.Errorf("result %d: %+v, want status %d", i, r, want)
				}
				if want == 200 && (r.Event == nil || r.Event.ID != r.ID || r.Event.Subject != string(rune('A'+i))) {
					t.Errorf("result %d event %+v", i, r.Event)
				}
				if want == 422 && (len(r.Errors) == 0 || r.Errors[0].Code != schemas.CodeCrossedQuote) {
					t.Errorf("result %d errors %+v", i, r.Errors)
				}
			}
		})

		t.Run("msgpack single", func(t *testing.T) {
			resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"), "Prefer", "return=representation", "Accept", "application/msgpack")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/msgpack" {
				t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var en schemas.Enriched
			r := schemas.NewReader(body)
			if err := en.DecodeMsgpack(&r); err != nil || !r.Done() {
				t.Fatalf("decoding %x: %v", body, err)
			}
			if en.Type != schemas.TypeQuoteEnrichedV1 || en.Subject != "AAPL" || en.Quote.Mid != 189.51 {
				t.Errorf("enriched %+v", en)
			}
		})

		t.Run("msgpack batch", func(t *testing.T) {
			body := "[" + quoteJSONBody("A") + "," + crossed + "]"
			resp, out := e.post("quote", "application/json", body, "Prefer", "return=representation", "Accept", "application/msgpack")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/msgpack" {
				t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var got struct {
				Enriched int `msgpack:"enriched"`
				Rejected int `msgpack:"rejected"`
				Results  []struct {
					ID     string               `msgpack:"id"`
					Status int                  `msgpack:"status"`
					Event  map[string]any       `msgpack:"event"`
					Errors []schemas.FieldError `msgpack:"errors"`
				} `msgpack:"results"`
			}
			if err := msgpack.Unmarshal(out, &got); err != nil {
				t.Fatalf("%x: %v", out, err)
			}
			if got.Enriched != 1 || got.Rejected != 1 || len(got.Results) != 2 ||
				got.Results[0].Status != 200 || got.Results[0].Event["subject"] != "A" ||
				got.Results[1].Status != 422 || len(got.Results[1].Errors) == 0 {
				t.Errorf("results %+v", got)
			}
		})
	})
}

// TestRepresentationTimeout waits for a result nobody sends: 504 after the
// request timeout.
func TestRepresentationTimeout(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.RequestTimeout = 200 * time.Millisecond })
		start := time.Now()
		resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"), "Prefer", "return=representation")
		elapsed := time.Since(start)
		wantProblem(t, resp, body, http.StatusGatewayTimeout, "0 of 1 results", "200ms")
		if elapsed < 200*time.Millisecond {
			t.Errorf("504 after %v, before the request timeout", elapsed)
		}
		if got := e.counter(`sluice_gateway_result_timeouts_total`); got != 1 {
			t.Errorf("timeouts counter = %d", got)
		}
		if free := len(e.srv.replies.free); free != len(e.srv.replies.slots) {
			t.Errorf("%d of %d reply slots free after the timeout", free, len(e.srv.replies.slots))
		}
	})
}

// TestLateReplyDropped holds the worker's reply past the request's deadline:
// the request gets 504 and the late reply is dropped and counted.
func TestLateReplyDropped(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.RequestTimeout = 200 * time.Millisecond })
		hold := make(chan struct{})
		rs := e.startResponder(schemas.KindQuote, hold)
		resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"), "Prefer", "return=representation")
		wantProblem(t, resp, body, http.StatusGatewayTimeout)
		if rs.frames.Load() != 1 {
			t.Fatalf("responder saw %d frames", rs.frames.Load())
		}
		close(hold)
		checkFor(t, func() error {
			return wantCount(e.counter(`sluice_gateway_replies_dropped_total`), 1)
		})
		// The slot serves the next request normally.
		resp, body = e.post("quote", "application/json", quoteJSONBody("AAPL"), "Prefer", "return=representation")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after a late reply: %d %s", resp.StatusCode, body)
		}
	})
}

// TestErrors checks every refusal of the data listener: its status and an
// application/problem+json body with status, title and detail.
func TestErrors(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.MaxBodyBytes = 256; o.MaxEvents = 3 })
		big := strings.Repeat(" ", 300) + quoteJSONBody("A")
		cases := []struct {
			name, method, path, ct string
			body                   io.Reader
			status                 int
			detail                 string
		}{
			{"unknown type", "POST", "/v1/events/bogus", "application/json", strings.NewReader("{}"), 404, `unknown event type "bogus"`},
			{"unknown path", "GET", "/v2/nothing", "", nil, 404, "no route GET /v2/nothing"},
			{"events subpath", "POST", "/v1/events/quote/x", "application/json", strings.NewReader("{}"), 404, "no route"},
			{"wrong method", "GET", "/v1/events/quote", "", nil, 405, "use POST"},
			{"wrong method put", "PUT", "/v1/events/quote", "application/json", strings.NewReader("{}"), 405, "use POST"},
			{"wrong method types", "POST", "/v1/types", "application/json", strings.NewReader("{}"), 405, "use GET"},
			{"unsupported media", "POST", "/v1/events/quote", "text/plain", strings.NewReader("AAPL 1 2"), 415, "text/plain"},
			{"malformed", "POST", "/v1/events/quote", "application/json", strings.NewReader(`{"symbol":"A",}`), 400, "malformed JSON at offset 14"},
			{"empty", "POST", "/v1/events/quote", "application/x-ndjson", strings.NewReader(""), 400, "empty body"},
			{"no events", "POST", "/v1/events/quote", "application/json", strings.NewReader("[]"), 400, "no events"},
			{"other kind", "POST", "/v1/events/quote", "application/cloudevents+json",
				strings.NewReader(`{"specversion":"1.0","id":"x","source":"s","type":"marketdata.trade.v1","data":{}}`), 400, "does not belong"},
			{"too many events", "POST", "/v1/events/quote", "application/json", strings.NewReader("[{},{},{},{}]"), 413, "more than 3 events"},
			{"too large", "POST", "/v1/events/quote", "application/json", strings.NewReader(big), 413, "larger than 256 bytes"},
			{"too large chunked", "POST", "/v1/events/quote", "application/json", io.MultiReader(strings.NewReader(big)), 413, "larger than 256 bytes"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				resp, body := e.do(c.method, c.path, c.ct, c.body)
				wantProblem(t, resp, body, c.status, c.detail)
				if c.status == 405 && resp.Header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
			})
		}
		if got := e.counter(`sluice_gateway_requests_total{status="413"}`); got != 3 {
			t.Errorf("413 counter = %d, want 3", got)
		}
	})
}

// TestTooLargeChunkedStream sends a chunked body that never ends on its own:
// the gateway answers 413 once the limit is passed, without reading it all.
func TestTooLargeChunkedStream(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.MaxBodyBytes = 1024 })
		pr, pw := io.Pipe()
		defer pw.Close()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunk := bytes.Repeat([]byte(" "), 512)
			for i := 0; i < 1000; i++ { // bounded: 512 KiB at most
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
			pw.Close()
		}()
		resp, body := e.do("POST", "/v1/events/quote", "application/json", pr)
		wantProblem(t, resp, body, http.StatusRequestEntityTooLarge, "larger than 1024 bytes")
		pw.CloseWithError(io.ErrClosedPipe)
		wg.Wait()
	})
}

// TestTypes lists the event types with their JSON Schemas.
func TestTypes(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		resp, body := e.do("GET", "/v1/types", "", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var got struct {
			Types []struct {
				Name, Path, Type, Subject string
				EnrichedType              string `json:"enriched_type"`
				Schema                    map[string]any
			}
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&got); err != nil || dec.More() {
			t.Fatalf("%s: %v", body, err)
		}
		if len(got.Types) != 2 {
			t.Fatalf("types %+v", got.Types)
		}
		for i, k := range schemas.Kinds {
			ty := got.Types[i]
			if ty.Name != k.String() || ty.Path != "/v1/events/"+k.String() || ty.Type != k.CEType() ||
				ty.EnrichedType != k.EnrichedType() || ty.Subject != "sluice.ingest."+k.String() {
				t.Errorf("type %d: %+v", i, ty)
			}
			if ty.Schema["$schema"] == nil || ty.Schema["title"] != k.CEType() || ty.Schema["properties"] == nil {
				t.Errorf("%s schema %v", k, ty.Schema)
			}
		}
		resp, _ = e.do("HEAD", "/v1/types", "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD /v1/types: %d", resp.StatusCode)
		}
	})
}

// TestBatcherFull503 sets a memory bound smaller than one event: every
// request is refused with 503 and Retry-After, and nothing stays reserved.
func TestBatcherFull503(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.Batch.MaxPendingBytes = 16 })
		for _, prefer := range []string{"return=minimal", "return=representation"} {
			resp, body := e.post("quote", "application/json", quoteJSONBody("A"), "Prefer", prefer)
			wantProblem(t, resp, body, http.StatusServiceUnavailable, "batcher memory bound", "--batch-max-pending")
		}
		if p := e.srv.batchers[schemas.KindQuote].pending.Load(); p != 0 {
			t.Errorf("%d bytes still reserved", p)
		}
		if free := len(e.srv.replies.free); free != len(e.srv.replies.slots) {
			t.Errorf("reply slot leaked: %d of %d free", free, len(e.srv.replies.slots))
		}
		if a := e.srv.batchers[schemas.KindQuote].active.Load(); a != 0 {
			t.Errorf("batcher active = %d after refusals", a)
		}
	})
}

// TestMaxWaiting503 fills the only reply slot with a request that waits,
// and checks that the next one that wants a result is refused with 503
// while async publishing still works.
func TestMaxWaiting503(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.MaxWaiting = 1; o.RequestTimeout = time.Second })
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest("POST", e.base+"/v1/events/quote", strings.NewReader(quoteJSONBody("A")))
			req.Header.Set("Prefer", "return=representation")
			resp, err := e.client.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		checkFor(t, func() error { return wantCount(uint64(len(e.srv.replies.free)), 0) })
		resp, body := e.post("quote", "application/json", quoteJSONBody("B"), "Prefer", "return=representation")
		wantProblem(t, resp, body, http.StatusServiceUnavailable, "too many requests waiting", "--max-waiting")
		resp, body = e.post("quote", "application/json", quoteJSONBody("C"))
		wantAccepted(t, resp, body, 1)
		if st := <-done; st != http.StatusGatewayTimeout {
			t.Errorf("waiting request: %d, want 504", st)
		}
	})
}

// TestRepresentationManyBatches sends one request whose 300 events span
// several batch frames (MaxEvents 64), answered by several reply frames:
// every result comes back in request order.
func TestRepresentationManyBatches(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil, func(o *Options) { o.Batch.MaxEvents = 64 })
		rs := e.startResponder(schemas.KindQuote, nil)
		var sb strings.Builder
		for i := 0; i < 300; i++ {
			if i%7 == 3 {
				sb.WriteString(`{"symbol":"X","bid":2,"ask":1,"bid_size":1,"ask_size":1}` + "\n") // crossed
				continue
			}
			sb.WriteString(quoteJSONBody("AAPL") + "\n")
		}
		resp, out := e.post("quote", "application/x-ndjson", sb.String(), "Prefer", "return=representation")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d: %.300s", resp.StatusCode, out)
		}
		var got struct {
			Enriched, Rejected int
			Results            []struct {
				ID     string
				Status int
				Event  *ceOut
			}
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Results) != 300 || got.Rejected != 43 || got.Enriched != 257 {
			t.Fatalf("%d results, %d enriched, %d rejected", len(got.Results), got.Enriched, got.Rejected)
		}
		for i, r := range got.Results {
			want := http.StatusOK
			if i%7 == 3 {
				want = http.StatusUnprocessableEntity
			}
			if r.Status != want || (want == 200 && r.Event.ID != r.ID) {
				t.Fatalf("result %d: %+v, want status %d", i, r, want)
			}
		}
		if rs.frames.Load() < 5 {
			t.Errorf("%d batch frames for 300 events at 64 per frame", rs.frames.Load())
		}
	})
}

// TestClientGoneReleasesSlot cancels a request that waits for its result:
// its reply slot is freed, and the result that comes later is dropped.
func TestClientGoneReleasesSlot(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		hold := make(chan struct{})
		rs := e.startResponder(schemas.KindQuote, hold)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", e.base+"/v1/events/quote", strings.NewReader(quoteJSONBody("A")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Prefer", "return=representation")
		errc := make(chan error, 1)
		go func() {
			resp, err := e.client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		checkFor(t, func() error { return wantCount(uint64(rs.frames.Load()), 1) })
		cancel()
		if err := <-errc; err == nil {
			t.Fatal("canceled request succeeded")
		}
		slots := uint64(len(e.srv.replies.slots))
		checkFor(t, func() error { return wantCount(uint64(len(e.srv.replies.free)), slots) })
		close(hold)
		checkFor(t, func() error { return wantCount(e.counter(`sluice_gateway_replies_dropped_total`), 1) })
	})
}

// TestShutdownDrains shuts the gateway down while a request waits for its
// result: the request still gets it, then Shutdown returns.
func TestShutdownDrains(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		hold := make(chan struct{})
		rs := e.startResponder(schemas.KindQuote, hold)
		status := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest("POST", e.base+"/v1/events/quote", strings.NewReader(quoteJSONBody("A")))
			req.Header.Set("Prefer", "return=representation")
			resp, err := e.client.Do(req)
			if err != nil {
				status <- 0
				return
			}
			resp.Body.Close()
			status <- resp.StatusCode
		}()
		checkFor(t, func() error { return wantCount(uint64(rs.frames.Load()), 1) })
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- e.srv.Shutdown(ctx)
		}()
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) while a request waited", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(hold)
		if st := <-status; st != http.StatusOK {
			t.Errorf("in-flight request: %d, want 200", st)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// TestAwkwardIDs keeps client ids that need JSON escaping intact in the
// 202 answer and on NATS.
func TestAwkwardIDs(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		e := newTestEnv(t, mode, nil)
		frames := e.subscribeFrames(schemas.KindQuote)
		const id = "q\"uo\\te</script>\u2028é😀\t"
		idJSON, _ := json.Marshal(id)
		ce := `{"specversion":"1.0","id":` + string(idJSON) + `,"source":"urn:s","type":"marketdata.quote.v1","data":{"symbol":"A"}}`
		resp, body := e.post("quote", "application/cloudevents+json", ce)
		if ids := wantAccepted(t, resp, body, 1); ids[0] != id {
			t.Errorf("id %q, want %q", ids[0], id)
		}
		if _, evs := frames.next(); evs[0].ID != id {
			t.Errorf("id on NATS %q", evs[0].ID)
		}
	})
}

// TestStartFailureShutdown: a Start that fails (here, the listen address)
// leaves nothing for Shutdown to undo, so Shutdown succeeds; it used to
// unsubscribe the reply inbox a second time and fail.
func TestStartFailureShutdown(t *testing.T) {
	_, url := opstest.RunNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := New(Options{Conn: nc, Listen: "127.0.0.1:not-a-port"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start listened on a bad address")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after a failed Start: %v", err)
	}
}
