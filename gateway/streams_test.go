package gateway

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/gateway/stream"
)

// TestStreamsNeedSubscribePermission: with a keys file, GET
// /v1/streams/{type} needs a key (401) whose subscribe list names the type
// (403); a permitted key gets the stream.
func TestStreamsNeedSubscribePermission(t *testing.T) {
	kf := &admit.KeysFile{Keys: []admit.Key{
		{Client: "reader", SHA256: admit.HashKey("k-reader"), Subscribe: []string{"quote"}},
		{Client: "publisher", SHA256: admit.HashKey("k-pub")},
	}}
	for _, mode := range []string{"h1", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			e := newTestEnv(t, mode, nil, func(o *Options) {
				o.Admission = AdmissionOptions{Keys: kf}
				hub, err := stream.NewHub(stream.Options{Conn: o.Conn, Subjects: o.Subjects})
				if err != nil {
					t.Fatal(err)
				}
				o.Streams = hub
			})
			accept := []string{"Accept", "text/event-stream"}
			resp, body := e.do("GET", "/v1/streams/quote?symbols=A", "", nil, accept...)
			wantProblem(t, resp, body, http.StatusUnauthorized)
			resp, body = e.do("GET", "/v1/streams/quote?symbols=A", "", nil, append(accept, "X-API-Key", "k-pub")...)
			wantProblem(t, resp, body, http.StatusForbidden, `client "publisher" may not subscribe to quote events`)
			resp, body = e.do("GET", "/v1/streams/trade?symbols=A", "", nil, append(accept, "X-API-Key", "k-reader")...)
			wantProblem(t, resp, body, http.StatusForbidden)
			resp, body = e.do("GET", "/v1/streams/order?symbols=A", "", nil, append(accept, "X-API-Key", "k-reader")...)
			wantProblem(t, resp, body, http.StatusNotFound)
			// The live board is mounted beside the streams.
			if resp, body := e.do("GET", "/ui/", "", nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "EventSource") {
				t.Fatalf("GET /ui/: %s %.80s", resp.Status, body)
			}

			req, _ := http.NewRequest("GET", e.base+"/v1/streams/quote?symbols=A", nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Authorization", "Bearer k-reader")
			sresp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer sresp.Body.Close()
			line, err := bufio.NewReader(sresp.Body).ReadString('\n')
			if sresp.StatusCode != http.StatusOK || err != nil || !strings.Contains(line, stream.TypeSnapshotEnd) {
				t.Fatalf("permitted subscriber: %s, first line %q, %v", sresp.Status, line, err)
			}
		})
	}
}

// TestStreamsPerKeyLimit: with a keys file, the streams a key's client
// holds open at once are bounded by the hub's MaxSubscribersPerKey (429
// with Retry-After past it); another client is not limited by it, and a
// stream whose peer goes gives its slot back. scripts/test.sh runs it on
// both HTTP/2 servers (SLUICE_HTTP2_SERVER).
func TestStreamsPerKeyLimit(t *testing.T) {
	kf := &admit.KeysFile{Keys: []admit.Key{
		{Client: "reader", SHA256: admit.HashKey("k-reader"), Subscribe: []string{"quote"}},
		{Client: "reader", SHA256: admit.HashKey("k-reader-2"), Subscribe: []string{"quote"}},
		{Client: "other", SHA256: admit.HashKey("k-other"), Subscribe: []string{"quote"}},
	}}
	for _, mode := range []string{"h1", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			var hub *stream.Hub
			e := newTestEnv(t, mode, nil, func(o *Options) {
				o.Admission = AdmissionOptions{Keys: kf}
				var err error
				hub, err = stream.NewHub(stream.Options{Conn: o.Conn, Subjects: o.Subjects, MaxSubscribersPerKey: 2})
				if err != nil {
					t.Fatal(err)
				}
				o.Streams = hub
			})
			open := func(key string) *http.Response {
				t.Helper()
				req, _ := http.NewRequest("GET", e.base+"/v1/streams/quote?symbols=A", nil)
				req.Header.Set("Accept", "text/event-stream")
				req.Header.Set("X-API-Key", key)
				resp, err := e.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK {
					resp.Body.Close()
					t.Fatalf("GET with %s: %s", key, resp.Status)
				}
				t.Cleanup(func() { resp.Body.Close() })
				return resp
			}
			waitHeld := func(client string, want int) {
				t.Helper()
				checkFor(t, func() error {
					if n := hub.ClientSubscribers(client); n != want {
						return fmt.Errorf("client %q holds %d streams, want %d", client, n, want)
					}
					return nil
				})
			}
			first := open("k-reader")
			open("k-reader-2") // the same client: its keys share the bound
			waitHeld("reader", 2)
			resp, body := e.do("GET", "/v1/streams/quote?symbols=A", "", nil, "Accept", "text/event-stream", "X-API-Key", "k-reader")
			wantProblem(t, resp, body, http.StatusTooManyRequests, `client "reader" already has 2 streams open`)
			if ra := resp.Header.Get("Retry-After"); ra != "1" {
				t.Errorf("Retry-After %q, want 1", ra)
			}
			open("k-other")
			first.Body.Close()
			waitHeld("reader", 1)
			open("k-reader")
			waitHeld("reader", 2)
			waitHeld("other", 1)
		})
	}
}
