package gateway

import (
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-dev/sluice/schemas"
)

// TestFastEdgeWaitsWithoutGoroutines: requests waiting for their results
// (Prefer: return=representation) on the fast edge hold no goroutine of
// the gateway's each, their bodies plain or compressed (gzip, zstd:
// decompressed on the connection's goroutine), and are answered with their
// results once the workers reply; on std each holds its handler's
// goroutine.
func TestFastEdgeWaitsWithoutGoroutines(t *testing.T) {
	for _, tc := range []struct{ server, coding string }{
		{HTTP2Fast, ""}, {HTTP2Fast, "gzip"}, {HTTP2Fast, "zstd"}, {HTTP2Std, ""}, {HTTP2Std, "gzip"},
	} {
		server := tc.server
		t.Run(server+"/"+tc.coding, func(t *testing.T) {
			req, hdr := quoteJSONBody("AAPL"), []string{"Prefer", "return=representation"}
			switch tc.coding {
			case "gzip":
				req, hdr = string(gzipped(t, []byte(req))), append(hdr, "Content-Encoding", "gzip")
			case "zstd":
				req, hdr = string(zstded(t, []byte(req))), append(hdr, "Content-Encoding", "zstd")
			}
			e := newTestEnv(t, "h2c", nil, func(o *Options) { o.HTTP2Server = server })
			hold := make(chan struct{})
			e.startResponder(schemas.KindQuote, hold)
			// One request first: the connection and its goroutines exist
			// before the count.
			resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"))
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("warm-up: %d %s", resp.StatusCode, body)
			}
			const n = 40
			before := runtime.NumGoroutine()
			var wg sync.WaitGroup
			statuses := make([]int, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, body := e.post("quote", "application/json", req, hdr...)
					statuses[i] = resp.StatusCode
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"symbol":"AAPL"`) {
						t.Errorf("request %d: %d %s", i, resp.StatusCode, body)
					}
				}()
			}
			checkFor(t, func() error { return wantCount(uint64(cap(e.srv.replies.free)-len(e.srv.replies.free)), n) })
			// Each request takes two goroutines of the client's: its
			// caller's and the one Go's HTTP/2 transport runs it on.
			extra := runtime.NumGoroutine() - before - 2*n
			close(hold)
			wg.Wait()
			t.Logf("%s: %d goroutines beyond the clients' for %d waiting requests", server, extra, n)
			if server == HTTP2Fast && extra >= n/2 {
				t.Errorf("fast edge: %d goroutines for %d waiting requests, want none each", extra, n)
			}
			if server == HTTP2Std && extra < n {
				t.Errorf("std: %d goroutines for %d waiting requests: the count does not see handlers", extra, n)
			}
		})
	}
}
