package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/schemas"
)

// The benchmarks measure the gateway's own work per event, without
// net/http: the real handler (handleEvents: read body, decode, fill in ids
// and times, encode MessagePack, batch, publish on a real NATS connection to
// an embedded server, answer 202) driven with a reusable request and a
// discarding ResponseWriter. DESIGN.md's target is <= 8 allocations per
// event on this path. Each reports ns/event and allocs/event beside the
// usual per-op numbers.
//
//	go test -run='^$' -bench=. -benchmem -count=5 ./gateway/

// benchBody is a request body that can be rewound without allocating.
type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

// discardWriter is a ResponseWriter that keeps its header map and drops
// the body.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(status int)      { d.status = status }

// benchRequest is one reusable POST /v1/events/quote.
type benchRequest struct {
	r    *http.Request
	body *benchBody
	data []byte
	w    *discardWriter
}

func newBenchRequest(ct string, data []byte) *benchRequest {
	br := &benchRequest{body: &benchBody{}, data: data, w: &discardWriter{h: http.Header{}}}
	r, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://gateway/v1/events/quote", nil)
	r.Header.Set("Content-Type", ct)
	r.SetPathValue("type", "quote")
	r.Body = br.body
	br.r = r
	return br
}

// serve runs the handler once and fails on anything but 202.
func (br *benchRequest) serve(b *testing.B, s *Server) {
	br.body.Reset(br.data)
	br.r.ContentLength = int64(len(br.data))
	br.w.status = 0
	s.handleEvents(br.w, br.r)
	if br.w.status != http.StatusAccepted {
		b.Fatalf("status %d", br.w.status)
	}
}

// newBenchServer builds a gateway (not listening: the handler is called
// directly) on a real NATS connection to a NATS server in a child process,
// where a subscriber drains the ingest subjects as a worker group would.
// newBenchServer starts a gateway on a real NATS server. batch sets the
// batcher: a benchmark of one request at a time must flush each request's
// batch by count, or every request waits for the linger (a sequential
// client's requests arrive closer together than it, so the idle flush does
// not apply) and ns/op measures the timer.
func newBenchServer(b *testing.B, batch BatchOptions) *Server {
	b.Helper()
	nc, err := nats.Connect(runNATSProcess(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	s, err := New(Options{Conn: nc, Source: testSource, Admission: AdmissionOptions{Disabled: true}, Batch: batch})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// newDurableBenchServer is newBenchServer with every type durable, on a
// NATS server with JetStream (file storage) and the ingest stream applied:
// each batch is stored before its request is answered.
func newDurableBenchServer(b *testing.B, batch BatchOptions) *Server {
	b.Helper()
	nc, err := nats.Connect(runNATSChild(b, "js"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	s, err := New(Options{Conn: nc, Source: testSource, Admission: AdmissionOptions{Disabled: true}, Batch: batch,
		Delivery: bus.AllModes(bus.ModeDurable)})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.applyIngest(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// BenchmarkDurableQuoteJSON is BenchmarkGatewayQuoteJSON in durable mode:
// one event, one batch, one stored message, one ack round trip per op.
func BenchmarkDurableQuoteJSON(b *testing.B) {
	s := newDurableBenchServer(b, BatchOptions{MaxEvents: 1})
	br := newBenchRequest("application/json", []byte(quoteJSONBody("AAPL")))
	br.serve(b, s)
	b.SetBytes(int64(len(br.data)))
	p := startPerEvent(b, 1)
	for i := 0; i < b.N; i++ {
		br.serve(b, s)
	}
	p.stop()
}

// BenchmarkDurableQuoteJSONParallel is BenchmarkGatewayQuoteJSONParallel
// in durable mode: batches fill while earlier ones await their acks.
func BenchmarkDurableQuoteJSONParallel(b *testing.B) {
	s := newDurableBenchServer(b, BatchOptions{})
	data := []byte(quoteJSONBody("AAPL"))
	b.SetBytes(int64(len(data)))
	b.SetParallelism(16)
	p := startPerEvent(b, 1)
	b.RunParallel(func(pb *testing.PB) {
		br := newBenchRequest("application/json", data)
		for pb.Next() {
			br.serve(b, s)
		}
	})
	p.stop()
}

// BenchmarkDurableNDJSON100 is BenchmarkGatewayNDJSON100 in durable mode.
func BenchmarkDurableNDJSON100(b *testing.B) {
	s := newDurableBenchServer(b, BatchOptions{MaxEvents: 100})
	br := newBenchRequest("application/x-ndjson", ndjson100())
	br.serve(b, s)
	b.SetBytes(int64(len(br.data)))
	p := startPerEvent(b, 100)
	for i := 0; i < b.N; i++ {
		br.serve(b, s)
	}
	p.stop()
}

// perEvent measures allocations over the timed loop and reports ns/event
// and allocs/event for events events per op.
type perEvent struct {
	b      *testing.B
	events int
	ms     runtime.MemStats
}

func startPerEvent(b *testing.B, events int) *perEvent {
	b.ReportAllocs()
	p := &perEvent{b: b, events: events}
	runtime.ReadMemStats(&p.ms)
	b.ResetTimer()
	return p
}

func (p *perEvent) stop() {
	p.b.StopTimer()
	var end runtime.MemStats
	runtime.ReadMemStats(&end)
	n := float64(p.b.N) * float64(p.events)
	p.b.ReportMetric(float64(p.b.Elapsed().Nanoseconds())/n, "ns/event")
	p.b.ReportMetric(float64(end.Mallocs-p.ms.Mallocs)/n, "allocs/event")
}

// BenchmarkGatewayQuoteJSON is one single-quote JSON request at a time,
// each its own batch (flushed by count), so this is the worst case per
// event: every event pays a batch's publish and allocations.
func BenchmarkGatewayQuoteJSON(b *testing.B) {
	s := newBenchServer(b, BatchOptions{MaxEvents: 1})
	br := newBenchRequest("application/json", []byte(quoteJSONBody("AAPL")))
	br.serve(b, s) // warm the pools
	b.SetBytes(int64(len(br.data)))
	p := startPerEvent(b, 1)
	for i := 0; i < b.N; i++ {
		br.serve(b, s)
	}
	p.stop()
}

// BenchmarkGatewayQuoteJSONParallel runs single-quote requests from 16
// goroutines per core, as concurrent HTTP/2 streams would: batches fill,
// with the default batcher, so ns/op is mostly the linger.
func BenchmarkGatewayQuoteJSONParallel(b *testing.B) {
	s := newBenchServer(b, BatchOptions{})
	data := []byte(quoteJSONBody("AAPL"))
	b.SetBytes(int64(len(data)))
	b.SetParallelism(16)
	p := startPerEvent(b, 1)
	b.RunParallel(func(pb *testing.PB) {
		br := newBenchRequest("application/json", data)
		for pb.Next() {
			br.serve(b, s)
		}
	})
	p.stop()
}

func ndjson100() []byte {
	var sb strings.Builder
	for i := 0; i < 100; i++ {
		sb.WriteString(`{"symbol":"AAPL","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200,"venue":"XNAS","ts":"2025-01-02T15:04:05.121956789Z"}`)
		sb.WriteByte('\n')
	}
	return []byte(sb.String())
}

// BenchmarkGatewayNDJSON100 is a 100-quote NDJSON request, per event; the
// request fills its batch.
func BenchmarkGatewayNDJSON100(b *testing.B) {
	s := newBenchServer(b, BatchOptions{MaxEvents: 100})
	br := newBenchRequest("application/x-ndjson", ndjson100())
	br.serve(b, s)
	b.SetBytes(int64(len(br.data)))
	p := startPerEvent(b, 100)
	for i := 0; i < b.N; i++ {
		br.serve(b, s)
	}
	p.stop()
}

// BenchmarkGatewayMsgpack100 is a 100-quote MessagePack array request; the
// request fills its batch.
func BenchmarkGatewayMsgpack100(b *testing.B) {
	s := newBenchServer(b, BatchOptions{MaxEvents: 100})
	one := msgpackQuote()
	data := schemas.AppendArrayHeader(nil, 100)
	for i := 0; i < 100; i++ {
		data = append(data, one...)
	}
	br := newBenchRequest("application/msgpack", data)
	br.serve(b, s)
	b.SetBytes(int64(len(data)))
	p := startPerEvent(b, 100)
	for i := 0; i < b.N; i++ {
		br.serve(b, s)
	}
	p.stop()
}

// quoteStd is the quote as encoding/json users would declare it.
type quoteStd struct {
	Symbol  string    `json:"symbol"`
	Bid     float64   `json:"bid"`
	Ask     float64   `json:"ask"`
	BidSize int64     `json:"bid_size"`
	AskSize int64     `json:"ask_size"`
	Venue   string    `json:"venue"`
	TS      time.Time `json:"ts"`
}

// BenchmarkDecodeQuoteJSON compares the hand-written decoder with
// encoding/json on the same body, the reason the former exists.
func BenchmarkDecodeQuoteJSON(b *testing.B) {
	body := []byte(aaplJSON)
	h := http.Header{"Content-Type": {"application/json"}}
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		dst := make([]schemas.Event, 0, 1)
		for i := 0; i < b.N; i++ {
			var err *decodeError
			if dst, _, err = decodeBody(schemas.KindQuote, h, body, 100, dst); err != nil || dst[0].Quote.Present != allQuote {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		var q quoteStd
		for i := 0; i < b.N; i++ {
			q = quoteStd{}
			if err := json.Unmarshal(body, &q); err != nil || q.Symbol != "AAPL" {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeNDJSON100 decodes a 100-quote NDJSON body, per event.
func BenchmarkDecodeNDJSON100(b *testing.B) {
	body := ndjson100()
	h := http.Header{"Content-Type": {"application/x-ndjson"}}
	dst := make([]schemas.Event, 0, 100)
	b.SetBytes(int64(len(body)))
	p := startPerEvent(b, 100)
	for i := 0; i < b.N; i++ {
		var err *decodeError
		if dst, _, err = decodeBody(schemas.KindQuote, h, body, 1000, dst); err != nil || len(dst) != 100 {
			b.Fatal(err)
		}
	}
	p.stop()
}

// BenchmarkGatewayShed is one quote request refused by queue-depth
// shedding (503 with its problem+json detail): the cost of each excess
// request when a worker group is the bottleneck, as in the overload
// scenario at 10× the group's capacity.
func BenchmarkGatewayShed(b *testing.B) {
	s := newBenchServer(b, BatchOptions{MaxEvents: 1})
	s.adm.opts.Disabled = false
	g := s.adm.groups[schemas.KindQuote].load
	overloaded := func() {
		g.Observe(&schemas.LoadReport{Worker: "w1", Group: g.Name(), PendingEvents: 1 << 20, Rate: 1000, MaxRate: 1000,
			IntervalMS: 100}, time.Now())
	}
	overloaded()
	br := newBenchRequest("application/json", []byte(quoteJSONBody("AAPL")))
	shed := func() {
		br.body.Reset(br.data)
		br.r.ContentLength = int64(len(br.data))
		br.w.status = 0
		clear(br.w.h)
		s.handleEvents(br.w, br.r)
		if br.w.status != http.StatusServiceUnavailable {
			b.Fatalf("status %d", br.w.status)
		}
	}
	shed()
	p := startPerEvent(b, 1)
	for i := 0; i < b.N; i++ {
		if i%4096 == 0 {
			overloaded() // the worker stays alive
		}
		shed()
	}
	p.stop()
}
