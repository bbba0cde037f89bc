package loadgen

import (
	"context"
	"testing"
	"time"
)

// TestConnectionShape runs each protocol against a local server and checks
// that the generator speaks it and opens the connections it should: one per
// transport over HTTP/2, however many requests are in flight.
func TestConnectionShape(t *testing.T) {
	cases := []struct {
		proto     Proto
		tls       bool
		wantProto string
		maxConns  int
	}{
		{ProtoH2C, false, "HTTP/2.0", 3},
		{ProtoH2, true, "HTTP/2.0", 3},
		{ProtoH1, false, "HTTP/1.1", 3 * 4},
	}
	for _, c := range cases {
		t.Run(string(c.proto), func(t *testing.T) {
			ts := newTestServer(t, c.tls, nil)
			res, err := Run(context.Background(), Config{Target: ts.URL,
				Client:   ClientOptions{Proto: c.proto, Conns: 3, Streams: 4, TLS: ts.TLS},
				Payloads: testPayloads(t, PayloadOptions{}), Duration: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Answered == 0 || res.Status[202] != res.Answered || res.Errors != 0 {
				t.Fatalf("answered %d, status %v, errors %d", res.Answered, res.Status, res.Errors)
			}
			if !ts.sawProto(c.wantProto) {
				t.Fatalf("server did not see %s", c.wantProto)
			}
			if n := ts.connCount(); n < 1 || n > c.maxConns {
				t.Fatalf("%d connections, want 1..%d", n, c.maxConns)
			}
		})
	}
}

func TestParseProto(t *testing.T) {
	for _, s := range []string{"h1", "h2c", "h2"} {
		if p, err := ParseProto(s); err != nil || string(p) != s {
			t.Fatalf("ParseProto(%q) = %q, %v", s, p, err)
		}
	}
	if _, err := ParseProto("h3"); err == nil {
		t.Fatal("h3 accepted")
	}
	if _, err := NewTransports(ClientOptions{Proto: ProtoH2}); err == nil {
		t.Fatal("h2 without TLS accepted")
	}
}
