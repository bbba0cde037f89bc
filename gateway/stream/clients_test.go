package stream_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// waitClient waits until client holds want streams open on e's hub.
func (e *env) waitClient(client string, want int) {
	e.t.Helper()
	opstest.CheckFor(e.t, 20*time.Second, 5*time.Millisecond, func() error {
		if n := e.hub.ClientSubscribers(client); n != want {
			return fmt.Errorf("client %q holds %d streams, want %d", client, n, want)
		}
		return nil
	})
}

// TestMaxSubscribersPerKey: a client holding MaxSubscribersPerKey streams
// gets 429 with Retry-After (problem+json) for another, others are not
// limited by it, and a stream that ends because its peer went gives its
// slot back.
func TestMaxSubscribersPerKey(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t, stream.Options{MaxSubscribersPerKey: 2})
			hc := client(p, 0)
			url := e.base + "/v1/streams/quote?symbols=A&snapshot=false"
			a1 := openSSE(t, hc, url, clientHeader, "a")
			openSSE(t, hc, url, clientHeader, "a")
			resp := get(t, hc, url, "Accept", "text/event-stream", clientHeader, "a")
			if ra := resp.Header.Get("Retry-After"); ra != "1" {
				t.Errorf("Retry-After %q, want 1", ra)
			}
			if d := wantProblem(t, resp, http.StatusTooManyRequests); !strings.Contains(d, `client "a" already has 2 streams open`) {
				t.Errorf("detail %q", d)
			}
			// Another client, and requests naming none, are not limited by a's.
			openSSE(t, hc, url, clientHeader, "b")
			openSSE(t, hc, url)
			openSSE(t, hc, url)
			openSSE(t, hc, url)
			if n := e.hub.Subscribers(); n != 6 {
				t.Fatalf("%d subscribers, want 6", n)
			}
			// The peer goes: its slot comes back.
			a1.resp.Body.Close()
			e.waitClient("a", 1)
			openSSE(t, hc, url, clientHeader, "a")
			e.waitClient("a", 2)
		})
	}
}

// TestMaxSubscribersPerKeyRelease: a client's slot is given back whichever
// way its stream ends: cut as a slow consumer, a write that outlasts the
// write timeout, the gateway's shutdown.
func TestMaxSubscribersPerKeyRelease(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name+"/slow consumer", func(t *testing.T) {
			e := newEnvBuf(t, stream.Options{MaxSubscribersPerKey: 1, Buffer: 16, WriteTimeout: time.Hour}, 4096)
			s := openSSE(t, client(p, 4096), e.base+"/v1/streams/trade?symbols=*&snapshot=false", clientHeader, "a")
			e.waitClient("a", 1)
			e.settle()
			// A reader slower than the trades: it is cut, and reads its
			// final event (no write timeout ends it first).
			reason := make(chan any, 1)
			go func() {
				for {
					ev, err := s.next()
					if err != nil || ev.event == stream.TypeStreamEnd {
						reason <- ev.data["reason"]
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			stop := e.publishing(func(i int) bool {
				e.publishTrade("X", int64(i))
				if i%100 == 0 {
					time.Sleep(time.Millisecond)
				}
				return true
			})
			defer stop()
			if r := <-reason; r != stream.EndSlowConsumer {
				t.Fatalf("the stream ended with %v, want %s", r, stream.EndSlowConsumer)
			}
			e.waitClient("a", 0)
		})
		t.Run(p.name+"/write timeout", func(t *testing.T) {
			e := newEnvBuf(t, stream.Options{MaxSubscribersPerKey: 1, Buffer: 1 << 20, WriteTimeout: 100 * time.Millisecond}, 4096)
			openSSE(t, client(p, 4096), e.base+"/v1/streams/trade?symbols=*&snapshot=false", clientHeader, "a")
			e.waitClient("a", 1)
			e.settle()
			stop := e.publishing(func(i int) bool {
				e.publishTrade("N", int64(i))
				if i%100 == 0 {
					time.Sleep(time.Millisecond)
				}
				return true
			})
			defer stop()
			e.waitClient("a", 0)
		})
		t.Run(p.name+"/shutdown", func(t *testing.T) {
			e := newEnv(t, stream.Options{MaxSubscribersPerKey: 1})
			s := openSSE(t, client(p, 0), e.base+"/v1/streams/quote?symbols=A", clientHeader, "a")
			s.mustNext(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.hub.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if n := e.hub.ClientSubscribers("a"); n != 0 {
				t.Fatalf("after shutdown client a holds %d streams", n)
			}
		})
	}
}

// TestMaxSubscribersPerKeyWebSocket: a WebSocket stream, over HTTP/1.1 or
// HTTP/2, counts against its client's bound and gives its slot back when
// the peer closes it.
func TestMaxSubscribersPerKeyWebSocket(t *testing.T) {
	e := newEnv(t, stream.Options{MaxSubscribersPerKey: 1})
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			o := websocket.DialOptions{HTTPHeader: http.Header{clientHeader: {"ws"}}}
			if !p.h1 {
				o.HTTPClient = h2cWebSocket(t)
			}
			url := "ws" + e.base[4:] + "/v1/streams/quote?symbols=W&snapshot=false"
			c, _, err := websocket.Dial(t.Context(), url, &o)
			if err != nil {
				t.Fatal(err)
			}
			e.waitClient("ws", 1)
			if _, resp, err := websocket.Dial(t.Context(), url, &o); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("a second WebSocket of the client: %v, %v; want 429", resp, err)
			}
			c.Close(websocket.StatusNormalClosure, "")
			e.waitClient("ws", 0)
		})
	}
}
