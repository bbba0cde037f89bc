package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/ops/opstest/chromium"
	"github.com/sluice-dev/sluice/schemas"
)

// TestWebSocketOverHTTP2InChromium: headless Chromium, a client written
// apart from this repository, loads a page of the gateway over TLS (h2 by
// ALPN) and opens a WebSocket to a stream from it: it takes the gateway's
// SETTINGS_ENABLE_CONNECT_PROTOCOL and sends an extended CONNECT on that
// connection (RFC 8441); the page reads the stream's marker and a live
// quote from it, and its close ends the subscription.
// Skipped where no Chromium is installed.
func TestWebSocketOverHTTP2InChromium(t *testing.T) {
	bin := chromium.Find(t)
	certFile, keyFile, roots := selfSigned(t)
	var mu sync.Mutex
	var seen []string // method and protocol of each WebSocket request
	var hub *stream.Hub
	e := newTestEnv(t, "h2", roots, func(o *Options) {
		o.TLSCert, o.TLSKey = certFile, keyFile
		var err error
		hub, err = stream.NewHub(stream.Options{Conn: o.Conn, Subjects: o.Subjects})
		if err != nil {
			t.Fatal(err)
		}
		o.Streams = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodConnect || r.Header.Get("Upgrade") != "" {
				mu.Lock()
				seen = append(seen, r.Method+" "+r.Proto+" "+r.Header.Get(":protocol"))
				mu.Unlock()
			}
			hub.ServeHTTP(w, r)
		})
	})
	page := chromium.Open(t, bin, "about:blank", 800, 600)
	page.Call(t, "Security.setIgnoreCertificateErrors", map[string]any{"ignore": true}, nil)
	page.Call(t, "Page.navigate", map[string]any{"url": e.base + "/v1/types"}, nil)
	opstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		if v := page.Eval(t, `document.readyState`); v != "complete" {
			return fmt.Errorf("page %v", v)
		}
		return nil
	})
	page.Eval(t, `window.wsGot = []; window.wsErr = "";
		(() => { const ws = new WebSocket(location.origin.replace("https", "wss") + "/v1/streams/quote?symbols=W", ["sluice.v1.json"]);
		  ws.onmessage = (m) => window.wsGot.push(m.data); ws.onerror = () => { window.wsErr = "error"; };
		  window.wsConn = ws; })(); true`)
	opstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		got, _ := page.Eval(t, `JSON.stringify({got: window.wsGot, err: window.wsErr, proto: window.wsConn.protocol})`).(string)
		if !strings.Contains(got, stream.TypeSnapshotEnd) {
			return fmt.Errorf("page: %s", got)
		}
		return nil
	})
	ev := schemas.Enriched{ID: "W-7", Source: "/test", Type: schemas.TypeQuoteEnrichedV1, Subject: "W",
		Time: time.Now().UnixNano(), Kind: schemas.KindQuote}
	ev.Quote.Quote = schemas.Quote{Symbol: "W", Bid: 7, Ask: 8, Present: schemas.FSymbol | schemas.FBid | schemas.FAsk}
	if err := e.nc.Publish(e.subj.Enriched(schemas.KindQuote, "W"), ev.AppendMsgpack(nil)); err != nil {
		t.Fatal(err)
	}
	opstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		got, _ := page.Eval(t, `JSON.stringify(window.wsGot)`).(string)
		if !strings.Contains(got, `\"bid\":7`) {
			return fmt.Errorf("page: %s, want the live quote", got)
		}
		return nil
	})
	// The page's close ends the subscription.
	page.Eval(t, `window.wsConn.close(1000); true`)
	checkFor(t, func() error {
		if n := hub.Subscribers(); n != 0 {
			return fmt.Errorf("%d subscribers after the page closed its WebSocket", n)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	t.Logf("WebSocket requests: %q", seen)
	if len(seen) != 1 || seen[0] != "CONNECT HTTP/2.0 websocket" {
		t.Errorf("WebSocket requests %q, want one extended CONNECT over HTTP/2", seen)
	}
}
