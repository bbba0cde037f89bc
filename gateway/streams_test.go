package gateway

import (
	"bufio"
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
