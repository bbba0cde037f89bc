package h2ws_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"

	"github.com/sluice-dev/sluice/gateway/h2edge"
	"github.com/sluice-dev/sluice/internal/h2ws"
)

// echo accepts a WebSocket and sends back each message it reads, upper
// case first byte, until the peer closes; it reports the request's
// protocol and how the read loop ended.
func echo(t *testing.T, done chan<- error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := h2ws.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"b", "a"}})
		if err != nil {
			done <- err
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				done <- err
				return
			}
			if len(b) > 0 {
				b[0] &^= 0x20
			}
			if err := c.Write(ctx, typ, append([]byte(r.Proto+" "+c.Subprotocol()+" "), b...)); err != nil {
				done <- err
				return
			}
		}
	}
}

// serverTimeout is the test servers' ReadTimeout and WriteTimeout.
const serverTimeout = 200 * time.Millisecond

// serve runs h on a loopback listener: net/http's server ("std", h2c and
// HTTP/1.1) or h2edge's behind it ("fast"), with TLS when tlsOn.
func serve(t *testing.T, h http.Handler, server string, tlsOn bool) (url string, h2 *http2.Transport) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP2(true)
	srv.Config.Protocols = &p
	// The servers' deadlines, which would end an accepted stream were
	// they left on it (TestEcho outlives them).
	srv.Config.WriteTimeout = serverTimeout
	srv.Config.ReadTimeout = serverTimeout
	if server == "fast" {
		h2edge.New(h2edge.Options{EnableConnectProtocol: true, WriteTimeout: serverTimeout,
			ReadTimeout: serverTimeout}).ConfigureServer(srv.Config)
	}
	h2 = &http2.Transport{}
	if tlsOn {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		h2.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs,
			NextProtos: []string{"h2"}}
	} else {
		srv.Start()
		h2.AllowHTTP = true
		h2.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	t.Cleanup(srv.Close)
	t.Cleanup(h2.CloseIdleConnections)
	return srv.URL, h2
}

// TestEcho: a WebSocket over HTTP/2 (h2c and TLS, on both servers) carries
// messages both ways with the negotiated subprotocol, also past the
// servers' read and write timeouts, answers pings, and ends with the close
// code the client sent; HTTP/1.1 upgrades still work.
func TestEcho(t *testing.T) {
	for _, server := range []string{"std", "fast"} {
		for _, mode := range []string{"h1", "h2c", "h2"} {
			t.Run(server+"/"+mode, func(t *testing.T) {
				done := make(chan error, 1)
				url, h2 := serve(t, echo(t, done), server, mode == "h2")
				o := &websocket.DialOptions{Subprotocols: []string{"a"}}
				proto := "HTTP/1.1"
				if mode != "h1" {
					o.HTTPClient = &http.Client{Transport: &h2ws.Transport{H2: h2}}
					proto = "HTTP/2.0"
				}
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				c, resp, err := websocket.Dial(ctx, url+"/ws", o)
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				if resp.Proto != proto || c.Subprotocol() != "a" {
					t.Errorf("answer %s, subprotocol %q; want %s, a", resp.Proto, c.Subprotocol(), proto)
				}
				for i, msg := range []string{"hello", "world"} {
					if i == 1 {
						time.Sleep(2 * serverTimeout) // past the servers' deadlines
					}
					if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
						t.Fatal(err)
					}
					_, b, err := c.Read(ctx)
					if want := proto + " a " + string(msg[0]&^0x20) + msg[1:]; err != nil || string(b) != want {
						t.Fatalf("read %q, %v; want %q", b, err, want)
					}
				}
				// A ping needs a reader to see its pong.
				read := make(chan error, 1)
				go func() { _, _, err := c.Read(ctx); read <- err }()
				if err := c.Ping(ctx); err != nil {
					t.Fatalf("ping: %v", err)
				}
				if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
					t.Fatalf("close: %v", err)
				}
				if err := <-done; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
					t.Errorf("server's read ended with %v, want the client's close 1000", err)
				}
				if err := <-read; err == nil {
					t.Error("client's read did not end")
				}
			})
		}
	}
}

// TestNotAdvertised: against a server that does not advertise extended
// CONNECT, the dial fails rather than hang.
func TestNotAdvertised(t *testing.T) {
	_, h2 := serve(t, http.NotFoundHandler(), "fast", false)
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	h2edge.New(h2edge.Options{}).ConfigureServer(srv.Config)
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, _, err := websocket.Dial(ctx, srv.URL+"/ws", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &h2ws.Transport{H2: h2}}})
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: %v, want a refusal", err)
	}
	t.Log(err)
}

// TestStalledReader: a client that stops reading fills its windows; the
// server's write, bounded by its context, fails rather than wait for ever,
// and the handler returns (Close ends a write stuck on flow control).
func TestStalledReader(t *testing.T) {
	for _, server := range []string{"std", "fast"} {
		t.Run(server, func(t *testing.T) {
			done := make(chan error, 1)
			url, h2 := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := h2ws.Accept(w, r, nil)
				if err != nil {
					done <- err
					return
				}
				defer c.CloseNow()
				msg := make([]byte, 64<<10)
				for {
					ctx, cancel := context.WithTimeout(r.Context(), 300*time.Millisecond)
					err := c.Write(ctx, websocket.MessageBinary, msg)
					cancel()
					if err != nil {
						done <- err
						return
					}
				}
			}), server, false)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url+"/ws", &websocket.DialOptions{
				HTTPClient: &http.Client{Transport: &h2ws.Transport{H2: h2}}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			select {
			case err := <-done:
				t.Logf("the server's write ended: %v", err)
			case <-ctx.Done():
				t.Fatal("the server's write to a client that does not read never ended")
			}
		})
	}
}
