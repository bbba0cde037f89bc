package gateway

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// testSource is the Options.Source of every test gateway.
const testSource = "sluice/gateway/test"

// testEnv is one gateway serving on a free loopback port, publishing on its
// own embedded NATS server.
type testEnv struct {
	t       *testing.T
	natsURL string
	nc      *nats.Conn // the gateway's connection
	srv     *Server
	set     *metrics.Set
	base    string // scheme://host:port
	mode    string
	client  *http.Client
	subj    schemas.Subjects
}

// envOption adjusts the gateway's options before it is built.
type envOption func(*Options)

// newTestEnv starts NATS and a gateway for mode "h1" or "h2c" (cleartext
// listener) or "h2" (TLS, with the options' TLSCert and TLSKey set by the
// caller through opt and roots trusting them).
func newTestEnv(t *testing.T, mode string, roots *x509.CertPool, opts ...envOption) *testEnv {
	t.Helper()
	_, url := opstest.RunNATS(t)
	return newTestEnvOn(t, url, mode, roots, opts...)
}

// newTestEnvOn is newTestEnv on the NATS server at url.
func newTestEnvOn(t *testing.T, url, mode string, roots *x509.CertPool, opts ...envOption) *testEnv {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connecting to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	set := metrics.NewSet()
	o := Options{
		Conn:           nc,
		Listen:         "127.0.0.1:0",
		Source:         testSource,
		Metrics:        set,
		RequestTimeout: 5 * time.Second,
		// Admission needs workers' load reports; these tests are about
		// the edge behind it.
		Admission: AdmissionOptions{Disabled: true},
		// The default is the fast edge (gateway/h2edge);
		// SLUICE_HTTP2_SERVER=std runs the tests against net/http's
		// HTTP/2 server (scripts/test.sh runs both).
		HTTP2Server: os.Getenv("SLUICE_HTTP2_SERVER"),
	}
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	scheme := "http"
	if mode == "h2" {
		scheme = "https"
	}
	e := &testEnv{t: t, natsURL: url, nc: nc, srv: srv, set: set, mode: mode,
		base: scheme + "://" + srv.Addr(), subj: o.Subjects}
	e.client = newTestClient(t, mode, roots)
	return e
}

// newTestClient returns a client speaking only mode's protocol: HTTP/1.1,
// h2c with prior knowledge, or h2 over TLS.
func newTestClient(t *testing.T, mode string, roots *x509.CertPool) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	var p http.Protocols
	switch mode {
	case "h1":
		p.SetHTTP1(true)
	case "h2c":
		p.SetUnencryptedHTTP2(true)
	case "h2":
		p.SetHTTP2(true)
		tr.TLSClientConfig = newClientTLS(roots)
	case "h1tls":
		p.SetHTTP1(true)
		tr.TLSClientConfig = newClientTLS(roots)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	tr.Protocols = &p
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// wantProto is the resp.Proto a client of mode sees.
func wantProto(mode string) string {
	if mode == "h2c" || mode == "h2" {
		return "HTTP/2.0"
	}
	return "HTTP/1.1"
}

// forModes runs f as parallel subtests over HTTP/1.1 and h2c, as net/http
// runs its own handler tests in h1 and h2 modes.
func forModes(t *testing.T, f func(t *testing.T, mode string)) {
	t.Helper()
	for _, mode := range []string{"h1", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f(t, mode)
		})
	}
}

// do sends a request and returns the response with its body read. hdr holds
// header name/value pairs.
func (e *testEnv) do(method, path, ct string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, body)
	if err != nil {
		e.t.Fatalf("NewRequest: %v", err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("reading response: %v", err)
	}
	if got := wantProto(e.mode); resp.Proto != got {
		e.t.Errorf("resp.Proto = %q, want %q", resp.Proto, got)
	}
	return resp, b
}

// post sends body to /v1/events/<kind>.
func (e *testEnv) post(kind, ct, body string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/events/"+kind, ct, strings.NewReader(body), hdr...)
}

// counter returns the value of the gateway's counter name.
func (e *testEnv) counter(name string) uint64 {
	return e.set.GetOrCreateCounter(name).Get()
}

// acceptedBody is the 202 answer.
type acceptedBody struct {
	Accepted int      `json:"accepted"`
	IDs      []string `json:"ids"`
}

// wantAccepted checks a 202 answer holding n ids and returns them.
func wantAccepted(t *testing.T, resp *http.Response, body []byte, n int) []string {
	t.Helper()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d, want 202; body %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var a acceptedBody
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("202 body %s: %v", body, err)
	}
	if a.Accepted != n || len(a.IDs) != n {
		t.Fatalf("202 body %s: want %d accepted ids", body, n)
	}
	seen := map[string]bool{}
	for _, id := range a.IDs {
		if id == "" || seen[id] {
			t.Fatalf("202 body %s: empty or repeated id %q", body, id)
		}
		seen[id] = true
	}
	return a.IDs
}

// problemBody is an RFC 9457 answer as the gateway renders it.
type problemBody struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail"`
	Errors []schemas.FieldError `json:"errors"`
}

// wantProblem checks an application/problem+json answer of status whose
// detail contains each of details.
func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, details ...string) problemBody {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problemBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	if p.Status != status || p.Title == "" || p.Detail == "" || p.Type == "" {
		t.Errorf("problem %+v: want status %d, a type, a title and a detail", p, status)
	}
	for _, d := range details {
		if !strings.Contains(p.Detail, d) {
			t.Errorf("problem detail %q does not contain %q", p.Detail, d)
		}
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%d without Retry-After", status)
		}
	}
	return p
}

// frameSub receives the batch frames published on one ingest subject.
type frameSub struct {
	t  *testing.T
	ch chan *nats.Msg
}

// subscribeFrames subscribes to kind's ingest subject on a connection of its
// own; the subscription is registered with the server when it returns.
func (e *testEnv) subscribeFrames(kind schemas.Kind) *frameSub {
	e.t.Helper()
	nc, err := nats.Connect(e.natsURL)
	if err != nil {
		e.t.Fatalf("connecting: %v", err)
	}
	e.t.Cleanup(nc.Close)
	ch := make(chan *nats.Msg, 1024)
	if _, err := nc.ChanSubscribe(e.subj.Ingest(kind), ch); err != nil {
		e.t.Fatalf("subscribing: %v", err)
	}
	if err := nc.Flush(); err != nil {
		e.t.Fatalf("flush: %v", err)
	}
	return &frameSub{t: e.t, ch: ch}
}

// next returns the next frame and its events, failing after 10 s.
func (f *frameSub) next() (*nats.Msg, []schemas.Event) {
	f.t.Helper()
	select {
	case msg := <-f.ch:
		return msg, decodeFrame(f.t, msg)
	case <-time.After(10 * time.Second):
		f.t.Fatal("no batch frame within 10s")
		return nil, nil
	}
}

// events collects frames until n events have arrived.
func (f *frameSub) events(n int) ([]*nats.Msg, []schemas.Event) {
	f.t.Helper()
	var msgs []*nats.Msg
	var evs []schemas.Event
	for len(evs) < n {
		m, e := f.next()
		msgs = append(msgs, m)
		evs = append(evs, e...)
	}
	if len(evs) != n {
		f.t.Fatalf("got %d events, want %d", len(evs), n)
	}
	return msgs, evs
}

// decodeFrame checks a batch frame's headers and decodes its events.
func decodeFrame(t testing.TB, msg *nats.Msg) []schemas.Event {
	t.Helper()
	if got := msg.Header.Get(schemas.HeaderFrame); got != schemas.FrameBatchV1 {
		t.Fatalf("%s header = %q, want %q", schemas.HeaderFrame, got, schemas.FrameBatchV1)
	}
	r := schemas.NewReader(msg.Data)
	n, err := schemas.ReadBatchFrame(&r)
	if err != nil {
		t.Fatalf("ReadBatchFrame: %v", err)
	}
	if got := msg.Header.Get(schemas.HeaderCount); got != fmt.Sprint(n) {
		t.Fatalf("%s header = %q, frame holds %d", schemas.HeaderCount, got, n)
	}
	evs := make([]schemas.Event, n)
	for i := range evs {
		if err := evs[i].DecodeMsgpack(&r); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if !r.Done() || r.Err() != nil {
		t.Fatalf("frame: trailing bytes or error %v", r.Err())
	}
	return evs
}

// responder is a test worker: a real NATS peer in the workers' queue group
// that validates each waiting event with schemas.Validate and answers with
// a reply frame, as the contract in schemas says. It stands in for the
// workers package, which the gateway's tests do not import.
type responder struct {
	frames atomic.Int64
	// hold, when set, delays each reply until it is closed.
	hold chan struct{}
}

// startResponder serves kind's ingest subject of e.
func (e *testEnv) startResponder(kind schemas.Kind, hold chan struct{}) *responder {
	e.t.Helper()
	nc, err := nats.Connect(e.natsURL)
	if err != nil {
		e.t.Fatalf("connecting: %v", err)
	}
	e.t.Cleanup(nc.Close)
	rs := &responder{hold: hold}
	_, err = nc.QueueSubscribe(e.subj.Ingest(kind), "test-workers", func(msg *nats.Msg) {
		rs.frames.Add(1)
		reply := rs.answer(msg)
		if reply == nil || msg.Reply == "" {
			return
		}
		if rs.hold != nil {
			<-rs.hold
		}
		out := nats.NewMsg(msg.Reply)
		out.Header.Set(schemas.HeaderFrame, schemas.FrameReplyV1)
		out.Data = reply
		_ = nc.PublishMsg(out)
	})
	if err != nil {
		e.t.Fatalf("subscribing responder: %v", err)
	}
	if err := nc.Flush(); err != nil {
		e.t.Fatalf("flush: %v", err)
	}
	return rs
}

// answer builds the reply frame of one batch frame, nil when no event in it
// waits for a result.
func (rs *responder) answer(msg *nats.Msg) []byte {
	r := schemas.NewReader(msg.Data)
	n, err := schemas.ReadBatchFrame(&r)
	if err != nil {
		return nil
	}
	b := schemas.AppendArrayHeader32(nil, 0)
	results := 0
	var ev schemas.Event
	var errs []schemas.FieldError
	now := time.Now().UnixNano()
	for i := 0; i < n; i++ {
		if err := ev.DecodeMsgpack(&r); err != nil || ev.Corr == 0 {
			continue
		}
		results++
		errs = schemas.Validate(&ev, now, schemas.Limits{}, errs[:0])
		if len(errs) > 0 {
			b = schemas.AppendResultInvalid(b, ev.Corr, ev.Seq, errs)
			continue
		}
		en := enrichForTest(&ev, now)
		b = schemas.AppendResultOK(b, ev.Corr, ev.Seq, &en)
	}
	if results == 0 {
		return nil
	}
	schemas.PatchArrayHeader32(b, results)
	return b
}

// enrichForTest derives an enriched event the way a worker would, with a
// made-up instrument.
func enrichForTest(ev *schemas.Event, now int64) schemas.Enriched {
	en := schemas.Enriched{ID: ev.ID, Source: ev.Source, Subject: ev.Subject, Time: ev.Time, Kind: ev.Kind}
	switch ev.Kind {
	case schemas.KindQuote:
		q := ev.Quote
		en.Type = schemas.TypeQuoteEnrichedV1
		en.Quote = schemas.EnrichedQuote{Quote: q, Mid: (q.Bid + q.Ask) / 2, Spread: q.Ask - q.Bid,
			SpreadBps:  (q.Ask - q.Bid) / ((q.Bid + q.Ask) / 2) * 1e4,
			Instrument: testInstrument(q.Symbol, q.Venue), ReceivedAt: ev.ReceivedAt, EnrichedAt: now}
	case schemas.KindTrade:
		tr := ev.Trade
		en.Type = schemas.TypeTradeEnrichedV1
		en.Trade = schemas.EnrichedTrade{Trade: tr, Notional: tr.Price * float64(tr.Size),
			NotionalUSD: tr.Price * float64(tr.Size), Instrument: testInstrument(tr.Symbol, tr.Venue),
			ReceivedAt: ev.ReceivedAt, EnrichedAt: now}
	}
	return en
}

func testInstrument(sym, mic string) schemas.Instrument {
	return schemas.Instrument{Symbol: sym, Name: sym + " Inc.", MIC: mic, Currency: "USD",
		ISIN: "US0000000000", AssetClass: "equity", TickSize: 0.01, LotSize: 1}
}

// quoteJSONBody is a valid quote without ts, symbol sym.
func quoteJSONBody(sym string) string {
	return `{"symbol":"` + sym + `","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200,"venue":"XNAS"}`
}

// checkFor polls f until it returns nil, for up to 10 s.
func checkFor(t testing.TB, f func() error) {
	t.Helper()
	opstest.CheckFor(t, 10*time.Second, 2*time.Millisecond, f)
}

// wantCount is a checkFor condition on a count.
func wantCount(got, want uint64) error {
	if got != want {
		return fmt.Errorf("got %d, want %d", got, want)
	}
	return nil
}
