package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"

	"github.com/sluice-dev/sluice/internal/selfsigned"
	"github.com/sluice-dev/sluice/schemas"
)

// newClientTLS returns a fresh client TLS config trusting roots: one per
// transport, since HTTP/2 setup mutates NextProtos.
func newClientTLS(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// into a temporary directory and returns the PEM files' paths and a pool
// trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	certFile, keyFile, roots, err := selfsigned.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, roots
}

// TestTLSH2 serves TLS: an h2 client negotiates HTTP/2 by ALPN, an
// HTTP/1.1-only client still gets through, and both reach NATS.
func TestTLSH2(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := selfSigned(t)
	e := newTestEnv(t, "h2", roots, func(o *Options) { o.TLSCert, o.TLSKey = certFile, keyFile })
	frames := e.subscribeFrames(schemas.KindQuote)

	resp, body := e.post("quote", "application/json", quoteJSONBody("AAPL"))
	ids := wantAccepted(t, resp, body, 1)
	if resp.Proto != "HTTP/2.0" || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
		t.Fatalf("Proto %q, TLS %v: want HTTP/2.0 over TLS with ALPN h2", resp.Proto, resp.TLS)
	}
	_, evs := frames.next()
	if len(evs) != 1 || evs[0].ID != ids[0] || evs[0].Subject != "AAPL" {
		t.Fatalf("frame events %+v, want id %s", evs, ids[0])
	}

	h1 := &testEnv{t: t, base: e.base, mode: "h1tls", client: newTestClient(t, "h1tls", roots)}
	resp, body = h1.do(http.MethodGet, "/v1/types", "", nil)
	if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/1.1" || resp.TLS == nil {
		t.Fatalf("HTTP/1.1 over TLS: %d %s %s", resp.StatusCode, resp.Proto, body)
	}

	// A cleartext client does not get an answer from a TLS listener.
	plain := newTestClient(t, "h1", nil)
	if resp, err := plain.Get("http://" + e.srv.Addr() + "/v1/types"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("cleartext request served by the TLS listener")
		}
	}
}

// TestTLSOptions checks that a cert without its key is refused up front and
// that a missing file fails Start.
func TestTLSOptions(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, "h1", nil)
	if _, err := New(Options{Conn: e.nc, TLSCert: "cert.pem"}); err == nil {
		t.Error("New with a cert and no key succeeded")
	}
	s, err := New(Options{Conn: e.nc, Listen: "127.0.0.1:0", TLSCert: "/nonexistent/cert.pem", TLSKey: "/nonexistent/key.pem"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("Start with missing key files succeeded")
	}
}
