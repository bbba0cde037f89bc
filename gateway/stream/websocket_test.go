package stream_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"testing"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"

	"github.com/sluice-dev/sluice/bus"
	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/internal/h2ws"
	"github.com/sluice-dev/sluice/schemas"
)

// h2cWebSocket is a coder/websocket HTTP client that opens its WebSockets
// over h2c, as RFC 8441's extended CONNECT.
func h2cWebSocket(t *testing.T) *http.Client {
	h2 := &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	t.Cleanup(h2.CloseIdleConnections)
	return &http.Client{Transport: &h2ws.Transport{H2: h2}}
}

// TestWebSocket reads a stream with coder/websocket's client, over
// HTTP/1.1 (an upgrade) and h2c (RFC 8441), JSON text frames by default
// and MessagePack binary frames with the msgpack subprotocol: the
// snapshot, its end, then live events.
func TestWebSocket(t *testing.T) {
	e := newEnv(t, stream.Options{})
	holder := openSSE(t, client(protos[0], 0), e.base+"/v1/streams/quote?symbols=W")
	holder.mustNext(t)
	e.settle()
	e.publishQuote("W", 1)
	e.flushPub()
	holder.mustNext(t)
	n := 1.0
	for _, p := range protos {
		for _, sp := range []string{"", stream.SubprotocolJSON, stream.SubprotocolMsgpack} {
			t.Run(p.name+"/subprotocol="+sp, func(t *testing.T) {
				ctx := t.Context()
				var o websocket.DialOptions
				if sp != "" {
					o.Subprotocols = []string{sp}
				}
				want := "HTTP/1.1"
				if !p.h1 {
					o.HTTPClient, want = h2cWebSocket(t), "HTTP/2.0"
				}
				c, resp, err := websocket.Dial(ctx, "ws"+e.base[4:]+"/v1/streams/quote?symbols=W", &o)
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				if resp.Proto != want {
					t.Errorf("answered over %s, want %s", resp.Proto, want)
				}
				read := func() map[string]any {
					t.Helper()
					typ, b, err := c.Read(ctx)
					if err != nil {
						t.Fatal(err)
					}
					m := map[string]any{}
					if sp == stream.SubprotocolMsgpack {
						if typ != websocket.MessageBinary {
							t.Fatalf("frame type %v, want binary", typ)
						}
						js, err := schemas.AppendEventJSON(nil, b)
						if err != nil {
							t.Fatal(err)
						}
						b = js
					} else if typ != websocket.MessageText {
						t.Fatalf("frame type %v, want text", typ)
					}
					if err := json.Unmarshal(b, &m); err != nil {
						t.Fatalf("%s: %v", b, err)
					}
					return m
				}
				if m := read(); m["subject"] != "W" || m["sluiceseq"] != n || m["sluicetoken"] == "" {
					t.Fatalf("snapshot %v", m)
				}
				if m := read(); m["type"] != stream.TypeSnapshotEnd || m["snapshot"] != float64(1) {
					t.Fatalf("marker %v", m)
				}
				e.settle()
				n++
				e.publishQuote("W", n)
				e.flushPub()
				holder.mustNext(t)
				if m := read(); m["sluiceseq"] != n || m["data"].(map[string]any)["bid"] != n {
					t.Fatalf("live %v", m)
				}
			})
		}
	}
}

// TestWebSocketDurableResume: a WebSocket subscriber resumes from a
// durable token (last_event_id, as a browser's WebSocket cannot set
// Last-Event-ID) and gets the trades after it, then live ones.
func TestWebSocketDurableResume(t *testing.T) {
	e, st := newDurableEnv(t, stream.Options{})
	for i := 1; i <= 3; i++ {
		e.publishTrade("W", int64(i))
	}
	e.flushPub()
	waitStored(t, st, 3)
	ctx := t.Context()
	tok := stream.Token{Stream: bus.EnrichedStream(e.subjects) + "/trade", Pos: 1}.String()
	c, _, err := websocket.Dial(ctx, "ws"+e.base[4:]+"/v1/streams/trade?symbols=W&last_event_id="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for want := 2; want <= 4; want++ {
		if want == 4 {
			e.publishTrade("W", 4)
			e.flushPub()
		}
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Data struct {
				Size int `json:"size"`
			} `json:"data"`
			Token string `json:"sluicetoken"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Data.Size != want || m.Token == "" {
			t.Fatalf("%s (%v), want trade %d with a token", b, err, want)
		}
	}
}
