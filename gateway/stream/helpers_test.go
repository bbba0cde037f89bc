package stream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// env is a hub on a real HTTP server (HTTP/1.1 and h2c on one listener)
// with an embedded NATS server and a publisher connection.
type env struct {
	t        *testing.T
	hub      *stream.Hub
	hubNC    *nats.Conn
	pub      *nats.Conn
	subjects schemas.Subjects
	base     string
	srv      *http.Server
	conns    chan net.Conn // the connections accepted, as they come
}

func newEnv(t *testing.T, o stream.Options) *env {
	t.Helper()
	return newEnvBuf(t, o, 0)
}

// newEnvBuf is newEnv whose accepted connections have a send buffer of
// sndbuf bytes (0: the system's, auto-tuned up to megabytes), so that a
// client that reads slowly soon makes the hub's writes wait.
func newEnvBuf(t *testing.T, o stream.Options, sndbuf int) *env {
	t.Helper()
	return newEnvWith(t, o, sndbuf, nil)
}

// newEnvWith is newEnvBuf calling setup, when not nil, with the hub's
// connection and options before the hub is built.
func newEnvWith(t *testing.T, o stream.Options, sndbuf int, setup func(nc *nats.Conn, o *stream.Options)) *env {
	t.Helper()
	_, url := opstest.RunNATS(t)
	hubNC, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(); hubNC.Close() })
	o.Conn = hubNC
	o.Subjects = schemas.MustSubjects("t")
	if setup != nil {
		setup(hubNC, &o)
	}
	hub, err := stream.NewHub(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/streams/{type}", namedClient(hub))
	mux.Handle("GET /ui/", hub.Page())
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	// The gateway's bounds: a write timeout shorter than the streams' life.
	srv := &http.Server{Handler: mux, Protocols: &p, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	conns := make(chan net.Conn, 64)
	// As the gateway does: the hub bounds an HTTP/1.1 stream's unsent bytes.
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		select {
		case conns <- c:
		default:
		}
		return stream.WithConn(ctx, c)
	}
	srv.RegisterOnShutdown(hub.Close)
	var lc net.ListenConfig
	if sndbuf > 0 {
		lc.Control = sockopt(syscall.SO_SNDBUF, sndbuf)
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = hub.Shutdown(ctx)
	})
	return &env{t: t, hub: hub, hubNC: hubNC, pub: pub, subjects: o.Subjects, base: "http://" + ln.Addr().String(), srv: srv, conns: conns}
}

// clientHeader names a test request's client, as the gateway's keys do.
const clientHeader = "X-Test-Client"

// namedClient names the client of a request that has a clientHeader to
// next, as the gateway does for a request's key (stream.WithClient).
func namedClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := r.Header.Get(clientHeader); c != "" {
			r = r.WithContext(stream.WithClient(r.Context(), c))
		}
		next.ServeHTTP(w, r)
	})
}

// settle waits until the hub's subscriptions are known to the NATS server.
func (e *env) settle() {
	e.t.Helper()
	if err := e.hubNC.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

// publishQuote publishes an enriched quote whose bid is bid.
func (e *env) publishQuote(sym string, bid float64) {
	e.t.Helper()
	ev := schemas.Enriched{ID: fmt.Sprintf("%s-%v", sym, bid), Source: "/test", Type: schemas.TypeQuoteEnrichedV1,
		Subject: sym, Time: time.Now().UnixNano(), Kind: schemas.KindQuote}
	ev.Quote.Quote = schemas.Quote{Symbol: sym, Bid: bid, Ask: bid + 1, Present: schemas.FSymbol | schemas.FBid | schemas.FAsk}
	ev.Quote.Mid = bid + 0.5
	if err := e.pub.Publish(e.subjects.Enriched(schemas.KindQuote, sym), ev.AppendMsgpack(nil)); err != nil {
		e.t.Error(err)
	}
}

// publishTrade publishes an enriched trade whose size is n.
func (e *env) publishTrade(sym string, n int64) {
	e.t.Helper()
	ev := schemas.Enriched{ID: fmt.Sprintf("%s-t%d", sym, n), Source: "/test", Type: schemas.TypeTradeEnrichedV1,
		Subject: sym, Time: time.Now().UnixNano(), Kind: schemas.KindTrade}
	ev.Trade.Trade = schemas.Trade{Symbol: sym, Price: 10, Size: n, Present: schemas.FSymbol | schemas.FPrice | schemas.FSize}
	if err := e.pub.Publish(e.subjects.Enriched(schemas.KindTrade, sym), ev.AppendMsgpack(nil)); err != nil {
		e.t.Error(err)
	}
}

// publishing calls f(1), f(2), ... in a goroutine until it returns false
// or the returned stop is called; stop waits for it to return.
func (e *env) publishing(f func(i int) bool) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			if !f(i) {
				e.flushPub()
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

func (e *env) flushPub() {
	e.t.Helper()
	if err := e.pub.Flush(); err != nil {
		e.t.Error(err)
	}
}

// proto is a client protocol.
type proto struct {
	name string
	h1   bool
}

var protos = []proto{{"h1", true}, {"h2c", false}}

// client returns an HTTP client speaking p; rcvbuf, when not 0, shrinks the
// socket's receive buffer so that a client that stops reading is soon slow.
func client(p proto, rcvbuf int) *http.Client {
	var ps http.Protocols
	if p.h1 {
		ps.SetHTTP1(true)
	} else {
		ps.SetUnencryptedHTTP2(true)
	}
	d := &net.Dialer{}
	tr := &http.Transport{Protocols: &ps, DialContext: d.DialContext, DisableCompression: true}
	if rcvbuf > 0 {
		d.Control = sockopt(syscall.SO_RCVBUF, rcvbuf)
		// Go's HTTP/2 client otherwise buffers up to 4 MiB a stream
		// whether the application reads or not.
		tr.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: rcvbuf, MaxReceiveBufferPerConnection: 64 << 10}
	}
	return &http.Client{Transport: tr}
}

func sockopt(opt, v int) func(_, _ string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, v) })
		return err
	}
}

// sseEvent is one server-sent event, its data decoded.
type sseEvent struct {
	id, event string
	data      map[string]any
}

func (ev sseEvent) num(key string) float64 {
	f, _ := ev.data[key].(float64)
	return f
}

func (ev sseEvent) bid() float64 {
	d, _ := ev.data["data"].(map[string]any)
	f, _ := d["bid"].(float64)
	return f
}

// sse is a server-sent events reader.
type sse struct {
	resp *http.Response
	r    *bufio.Reader
}

func get(t *testing.T, hc *http.Client, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func openSSE(t *testing.T, hc *http.Client, url string, hdr ...string) *sse {
	t.Helper()
	resp := get(t, hc, url, append([]string{"Accept", "text/event-stream"}, hdr...)...)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sse{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next event (comments skipped).
func (s *sse) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.event != "" || ev.data != nil {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &ev.data); err != nil {
				return ev, fmt.Errorf("data %q: %w", line, err)
			}
		default:
			return ev, fmt.Errorf("unexpected line %q", line)
		}
	}
}

func (s *sse) mustNext(t *testing.T) sseEvent {
	t.Helper()
	ev, err := s.next()
	if err != nil {
		t.Fatalf("reading an event: %v", err)
	}
	return ev
}

// problem reads a problem+json answer and checks its status.
func wantProblem(t *testing.T, resp *http.Response, status int) string {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Status != status {
		t.Fatalf("problem %s: %v", b, err)
	}
	return p.Detail
}

var errNotYet = errors.New("not yet")
