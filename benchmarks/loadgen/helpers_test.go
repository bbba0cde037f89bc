package loadgen

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer is a fast local server that counts what it receives.
type testServer struct {
	URL     string
	TLS     *tls.Config // client configuration, for h2
	mu      sync.Mutex
	conns   map[net.Conn]bool
	arrived atomic.Int64
	protos  sync.Map // proto -> true
	times   []time.Time
	status  func(n int64) int
	// retryAfter, when set before the run, is every answer's Retry-After.
	retryAfter string
}

// newTestServer starts an HTTP/1.1 + h2c server, or a TLS h2 server when
// tls is set, that reads the body and answers status(n) (default 202) with
// an accepted body.
func newTestServer(t *testing.T, useTLS bool, status func(n int64) int) *testServer {
	t.Helper()
	ts := &testServer{conns: map[net.Conn]bool{}, status: status}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodPost { // the generator's connection warm-up
			return
		}
		n := ts.arrived.Add(1)
		ts.protos.Store(r.Proto, true)
		ts.mu.Lock()
		ts.times = append(ts.times, time.Now())
		ts.mu.Unlock()
		code := http.StatusAccepted
		if ts.status != nil {
			code = ts.status(n)
		}
		w.Header().Set("Content-Type", "application/json")
		if ts.retryAfter != "" {
			w.Header().Set("Retry-After", ts.retryAfter)
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"accepted":1,"ids":["abc`+string(rune('a'+n%26))+`"]}`)
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ts.mu.Lock()
			ts.conns[c] = true
			ts.mu.Unlock()
		}
	}
	var p http.Protocols
	p.SetHTTP1(true)
	if useTLS {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		ts.TLS = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	} else {
		p.SetUnencryptedHTTP2(true)
		srv.Config.Protocols = &p
		srv.Start()
	}
	t.Cleanup(srv.Close)
	ts.URL = srv.URL
	return ts
}

func (ts *testServer) connCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.conns)
}

func (ts *testServer) sawProto(p string) bool {
	_, ok := ts.protos.Load(p)
	return ok
}

func testPayloads(t *testing.T, o PayloadOptions) *Payloads {
	t.Helper()
	if o.Seed == 0 {
		o.Seed = 42
	}
	p, err := NewPayloads(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
