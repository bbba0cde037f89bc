package h2edge

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// specHandler answers as h2spec expects: a small body, the request body
// read.
func specHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "hello from h2edge\n")
}

// serveTest serves h2c (tlsOn false) or TLS h2 connections on a loopback
// listener until the test ends, and returns its port.
func serveTest(t testing.TB, h http.Handler, tlsOn bool, opts Options) int {
	t.Helper()
	opts.Handler = h
	s := New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsOn {
		cert := httptest.NewUnstartedServer(nil) // only for its test certificate
		cert.EnableHTTP2 = true
		cert.StartTLS()
		cfg := cert.TLS.Clone()
		cert.Close()
		cfg.NextProtos = []string{"h2"}
		ln = tls.NewListener(ln, cfg)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if tc, ok := c.(*tls.Conn); ok {
					if err := tc.HandshakeContext(context.Background()); err != nil {
						_ = c.Close()
						return
					}
				}
				s.ServeConn(context.Background(), c, false)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); s.StartShutdown() })
	return ln.Addr().(*net.TCPAddr).Port
}

// runH2spec runs h2spec against port and returns how many cases passed
// and failed, and its output.
func runH2spec(t *testing.T, port int, tlsOn bool) (passed, failed int, out string) {
	path, err := exec.LookPath("h2spec")
	if err != nil {
		t.Skip("h2spec is not installed: go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible (.ci/run does)")
	}
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-o", "3"}
	if tlsOn {
		args = append(args, "-t", "-k")
	}
	b, _ := exec.Command(path, args...).CombinedOutput()
	out = string(b)
	m := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("h2spec printed no summary:\n%s", out)
	}
	passed, _ = strconv.Atoi(m[2])
	failed, _ = strconv.Atoi(m[4])
	return passed, failed, out
}

func failures(out string) string {
	if i := strings.Index(out, "Failures:"); i >= 0 {
		return out[i:]
	}
	return out
}

// TestH2specTLS: every h2spec case passes over TLS, h2 chosen by ALPN,
// with extended CONNECT advertised as the gateway does.
func TestH2specTLS(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(specHandler), true, Options{EnableConnectProtocol: true})
	passed, failed, out := runH2spec(t, port, true)
	t.Logf("h2spec over TLS: %d passed, %d failed", passed, failed)
	if failed != 0 {
		t.Errorf("h2spec over TLS: %d failed:\n%s", failed, failures(out))
	}
}

// TestH2specH2C: every h2spec case passes over h2c with prior knowledge
// (extended CONNECT advertised).
func TestH2specH2C(t *testing.T) {
	port := serveTest(t, http.HandlerFunc(specHandler), false, Options{EnableConnectProtocol: true})
	passed, failed, out := runH2spec(t, port, false)
	t.Logf("h2spec over h2c: %d passed, %d failed", passed, failed)
	if failed != 0 {
		t.Errorf("h2spec over h2c: %d failed:\n%s", failed, failures(out))
	}
}
