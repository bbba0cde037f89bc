package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/internal/h2ws"
	"github.com/sluice-dev/sluice/schemas"
)

// wsH2Client is a coder/websocket HTTP client that opens its WebSockets
// over HTTP/2 as RFC 8441's extended CONNECT: h2c with prior knowledge, or
// TLS (h2 by ALPN) trusting roots.
func wsH2Client(t *testing.T, mode string, roots *x509.CertPool) *http.Client {
	h2 := &http2.Transport{}
	if mode == "h2" {
		h2.TLSClientConfig = newClientTLS(roots)
	} else {
		h2.AllowHTTP = true
		h2.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	t.Cleanup(h2.CloseIdleConnections)
	return &http.Client{Transport: &h2ws.Transport{H2: h2}}
}

// wsReader reads one subscriber's WebSocket messages as JSON maps.
type wsReader struct {
	t  *testing.T
	c  *websocket.Conn
	sp string
}

func (r *wsReader) next(ctx context.Context) (map[string]any, error) {
	typ, b, err := r.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if r.sp == stream.SubprotocolMsgpack {
		if typ != websocket.MessageBinary {
			return nil, fmt.Errorf("frame type %v, want binary", typ)
		}
		if b, err = schemas.AppendEventJSON(nil, b); err != nil {
			return nil, err
		}
	} else if typ != websocket.MessageText {
		return nil, fmt.Errorf("frame type %v, want text", typ)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	return m, nil
}

func (r *wsReader) must(ctx context.Context) map[string]any {
	r.t.Helper()
	m, err := r.next(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func bidOf(m map[string]any) any {
	d, _ := m["data"].(map[string]any)
	return d["bid"]
}

// TestWebSocketOverHTTP2 subscribes through the gateway with WebSockets
// over HTTP/2 (RFC 8441) on h2c and TLS, with the server the environment
// picks (the fast edge, or net/http's with SLUICE_HTTP2_SERVER=std) (on
// another route: 405): the snapshot, its marker and live events arrive as messages, JSON by default
// and MessagePack with its subprotocol; a ping is answered; the client's
// close ends the subscription; the gateway's shutdown ends the others with
// the final event and close status 1001.
func TestWebSocketOverHTTP2(t *testing.T) {
	certFile, keyFile, roots := selfSigned(t)
	for _, mode := range []string{"h2c", "h2"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var hub *stream.Hub
			e := newTestEnv(t, mode, roots, func(o *Options) {
				if mode == "h2" {
					o.TLSCert, o.TLSKey = certFile, keyFile
				}
				var err error
				if hub, err = stream.NewHub(stream.Options{Conn: o.Conn, Subjects: o.Subjects}); err != nil {
					t.Fatal(err)
				}
				o.Streams = hub
			})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			hc := wsH2Client(t, mode, roots)
			url := "ws" + e.base[len("http"):] + "/v1/streams/quote?symbols=W"
			dial := func(sp string) *wsReader {
				t.Helper()
				o := &websocket.DialOptions{HTTPClient: hc}
				if sp != "" {
					o.Subprotocols = []string{sp}
				}
				c, resp, err := websocket.Dial(ctx, url, o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.CloseNow() })
				if resp.Proto != "HTTP/2.0" || c.Subprotocol() != sp {
					t.Fatalf("answered over %s with subprotocol %q, want HTTP/2.0 and %q", resp.Proto, c.Subprotocol(), sp)
				}
				return &wsReader{t: t, c: c, sp: sp}
			}
			publish := func(bid float64) {
				t.Helper()
				ev := schemas.Enriched{ID: fmt.Sprintf("W-%v", bid), Source: "/test", Type: schemas.TypeQuoteEnrichedV1,
					Subject: "W", Time: time.Now().UnixNano(), Kind: schemas.KindQuote}
				ev.Quote.Quote = schemas.Quote{Symbol: "W", Bid: bid, Ask: bid + 1, Present: schemas.FSymbol | schemas.FBid | schemas.FAsk}
				// On the hub's own connection: after its subscription.
				if err := e.nc.Publish(e.subj.Enriched(schemas.KindQuote, "W"), ev.AppendMsgpack(nil)); err != nil {
					t.Fatal(err)
				}
			}

			// Elsewhere an extended CONNECT is a method the route does not take.
			if _, resp, err := websocket.Dial(ctx, "ws"+e.base[len("http"):]+"/v1/types",
				&websocket.DialOptions{HTTPClient: hc}); err == nil || resp == nil || resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("WebSocket on /v1/types: %v, %v; want 405", resp, err)
			}

			// The first subscriber has no snapshot, then a live event.
			first := dial("")
			if m := first.must(ctx); m["type"] != stream.TypeSnapshotEnd || m["snapshot"] != float64(0) {
				t.Fatalf("first subscriber's marker %v", m)
			}
			publish(1)
			if m := first.must(ctx); bidOf(m) != float64(1) {
				t.Fatalf("first subscriber's live event %v", m)
			}
			bid := 1.0
			for _, sp := range []string{stream.SubprotocolJSON, stream.SubprotocolMsgpack} {
				sub := dial(sp)
				if m := sub.must(ctx); m["subject"] != "W" || bidOf(m) != bid || m["sluicetoken"] == "" {
					t.Fatalf("%s snapshot %v, want bid %v", sp, m, bid)
				}
				if m := sub.must(ctx); m["type"] != stream.TypeSnapshotEnd || m["snapshot"] != float64(1) {
					t.Fatalf("%s marker %v", sp, m)
				}
				bid++
				publish(bid)
				if m := sub.must(ctx); bidOf(m) != bid {
					t.Fatalf("%s live event %v, want bid %v", sp, m, bid)
				}
				// A ping's pong is read by a reader.
				read := make(chan error, 1)
				go func() { _, err := sub.next(ctx); read <- err }()
				if err := sub.c.Ping(ctx); err != nil {
					t.Fatalf("%s ping: %v", sp, err)
				}
				if err := sub.c.Close(websocket.StatusNormalClosure, ""); err != nil {
					t.Fatalf("%s close: %v", sp, err)
				}
				<-read
				checkFor(t, func() error {
					if n := hub.Subscribers(); n != 1 {
						return fmt.Errorf("%d subscribers served, want the first one alone", n)
					}
					return nil
				})
			}

			done := make(chan error, 1)
			go func() {
				sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer scancel()
				done <- e.srv.Shutdown(sctx)
			}()
			for {
				m, err := first.next(ctx)
				if err != nil {
					t.Fatalf("the first subscriber's stream ended with %v before the final event", err)
				}
				if m["type"] == stream.TypeStreamEnd {
					if m["reason"] != stream.EndShutdown {
						t.Fatalf("final event %v", m)
					}
					break
				}
			}
			if _, err := first.next(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("after the final event: %v, want close status 1001", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		})
	}
}

// TestStrayProtocolRefused: what RFC 8441 (4) and RFC 9113 (8.5) make a
// malformed request never reaches a route: :protocol on a GET is reset by
// the fast edge (PROTOCOL_ERROR) and answered 400 on net/http's server,
// which hands it to the handler; a CONNECT without :protocol that names a
// path is reset by both.
func TestStrayProtocolRefused(t *testing.T) {
	e := newTestEnv(t, "h2c", nil)
	for _, tc := range []struct {
		name   string
		fields []string
	}{
		{"GET with :protocol", []string{":method", "GET", ":protocol", "websocket", ":scheme", "http", ":path", "/v1/types", ":authority", "x"}},
		{"CONNECT with a path, no :protocol", []string{":method", "CONNECT", ":scheme", "http", ":path", "/v1/types", ":authority", "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", e.srv.Addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
				t.Fatal(err)
			}
			fr := http2.NewFramer(c, c)
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			var b bytes.Buffer
			enc := hpack.NewEncoder(&b)
			for i := 0; i < len(tc.fields); i += 2 {
				_ = enc.WriteField(hpack.HeaderField{Name: tc.fields[i], Value: tc.fields[i+1]})
			}
			if err := fr.WriteSettings(); err != nil {
				t.Fatal(err)
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b.Bytes(),
				EndHeaders: true, EndStream: true}); err != nil {
				t.Fatal(err)
			}
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				switch f := f.(type) {
				case *http2.RSTStreamFrame:
					if f.ErrCode != http2.ErrCodeProtocol {
						t.Fatalf("reset %v, want PROTOCOL_ERROR", f.ErrCode)
					}
					return
				case *http2.MetaHeadersFrame:
					if st := f.PseudoValue("status"); st != "400" || tc.fields[1] == "CONNECT" {
						t.Fatalf("answered %s, want a reset or 400", st)
					}
					return
				case *http2.GoAwayFrame:
					t.Fatalf("GOAWAY %v", f.ErrCode)
				}
			}
		})
	}
}
