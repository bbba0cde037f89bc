package stream_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// TestKeepAlive: an idle SSE stream gets comments, an idle NDJSON stream
// empty lines, so that proxies keep them.
func TestKeepAlive(t *testing.T) {
	e := newEnv(t, stream.Options{KeepAlive: 20 * time.Millisecond})
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			s := openSSE(t, client(p, 0), e.base+"/v1/streams/quote?symbols=K&snapshot=false")
			for range 3 {
				line, err := s.r.ReadString('\n')
				if err != nil || line != ": keep-alive\n" {
					t.Fatalf("read %q, %v; want a keep-alive comment", line, err)
				}
				if _, err := s.r.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestPeerThatNeverReads: a subscriber that stops reading holds its
// handler only until a write outlasts --stream-write-timeout.
func TestPeerThatNeverReads(t *testing.T) {
	e := newEnvBuf(t, stream.Options{WriteTimeout: 100 * time.Millisecond, Buffer: 1 << 20}, 4096)
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			s := openSSE(t, client(p, 4096), e.base+"/v1/streams/trade?symbols=*&snapshot=false")
			_ = s // never read
			e.settle()
			stop := e.publishing(func(i int) bool {
				e.publishTrade("N", int64(i))
				if i%100 == 0 {
					time.Sleep(time.Millisecond)
				}
				return true
			})
			defer stop()
			opstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
				if n := e.hub.Subscribers(); n != 0 {
					return fmt.Errorf("%d subscribers still served", n)
				}
				return nil
			})
		})
	}
}

// TestWebSocketShutdown: on shutdown a WebSocket subscriber gets the final
// event, then a close frame with status 1001 (going away).
func TestWebSocketShutdown(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t, stream.Options{})
			ctx := t.Context()
			var o websocket.DialOptions
			if !p.h1 {
				o.HTTPClient = h2cWebSocket(t)
			}
			c, _, err := websocket.Dial(ctx, "ws"+e.base[4:]+"/v1/streams/trade?symbols=X", &o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), stream.TypeSnapshotEnd) {
				t.Fatalf("first frame %s, %v", b, err)
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- e.hub.Shutdown(sctx) }()
			_, b, err := c.Read(ctx)
			if err != nil || !strings.Contains(string(b), `"reason":"shutdown"`) {
				t.Fatalf("final frame %s, %v", b, err)
			}
			if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("after the final frame: %v, want close status 1001", err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			// A new subscriber is refused while shutting down.
			wantProblem(t, get(t, client(protos[0], 0), e.base+"/v1/streams/trade?symbols=X"), 503)
			_ = net.IPv4len
		})
	}
}
