package baseline

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func startServer(t *testing.T, v Variant) *Server {
	t.Helper()
	s, err := New(Options{Variant: v, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func clients() map[string]*http.Client {
	var h1, h2c http.Protocols
	h1.SetHTTP1(true)
	h2c.SetUnencryptedHTTP2(true)
	return map[string]*http.Client{
		"h1":  {Transport: &http.Transport{Protocols: &h1}},
		"h2c": {Transport: &http.Transport{Protocols: &h2c}},
	}
}

// TestVariants posts a body to every variant over HTTP/1.1 and h2c.
func TestVariants(t *testing.T) {
	cases := []struct {
		v      Variant
		status int
		body   []byte
	}{
		{Plain, http.StatusAccepted, AcceptedBody},
		{Buffered, http.StatusAccepted, AcceptedBody},
		{Body, http.StatusOK, EnrichedBody},
	}
	for _, c := range cases {
		s := startServer(t, c.v)
		cls := clients()
		t.Cleanup(func() { // before the server's shutdown, which waits for open connections
			for _, cl := range cls {
				cl.CloseIdleConnections()
			}
		})
		for name, cl := range cls {
			t.Run(string(c.v)+"/"+name, func(t *testing.T) {
				body := strings.Repeat(`{"symbol":"AAPL","bid":1,"ask":2,"bid_size":1,"ask_size":1}`+"\n", 300)
				resp, err := cl.Post("http://"+s.Addr()+"/v1/events/quote", "application/x-ndjson", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				wantProto := 1
				if name == "h2c" {
					wantProto = 2
				}
				if resp.StatusCode != c.status || !bytes.Equal(got, c.body) || resp.ProtoMajor != wantProto {
					t.Fatalf("%s %d %s: %s", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"), got)
				}
			})
		}
	}
}

// TestEnrichedBodySize keeps the body variant's answer the size of an
// enriched event.
func TestEnrichedBodySize(t *testing.T) {
	if n := len(EnrichedBody); n < 600 || n > 800 {
		t.Fatalf("enriched body is %d bytes", n)
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(Options{Variant: "fancy"}); err == nil {
		t.Fatal("unknown variant accepted")
	}
	if _, err := New(Options{TLSCert: "x"}); err == nil {
		t.Fatal("a certificate without a key accepted")
	}
}
